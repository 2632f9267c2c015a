//! Launchers of `shaders/norm/`: one workgroup per row.

use crate::error::GpuError;
use crate::runtime::gpu::GpuContext;
use crate::runtime::ops::Dispatch;
use crate::runtime::params::NormParams;
use crate::runtime::pipeline::{Kernel, PipelineCache};

fn norm_dispatch(
    ctx: &GpuContext,
    cache: &PipelineCache,
    kernel: Kernel,
    n: u32,
    rows: u32,
    eps: f32,
    buffers: &[&wgpu::Buffer],
) -> Result<Dispatch, GpuError> {
    if n == 0 || rows == 0 {
        return Err(GpuError::Shape(format!("{kernel:?}: {rows} rows of {n}")));
    }
    let params = NormParams {
        n,
        rows,
        eps,
        _pad: 0,
    };
    Dispatch::new(ctx, cache, kernel, &params, buffers, rows)
}

/// `y = rms_norm(x) * w` for `rows` rows of `n`.
#[allow(clippy::too_many_arguments)]
pub fn rms_norm(
    ctx: &GpuContext,
    cache: &PipelineCache,
    n: u32,
    rows: u32,
    eps: f32,
    x: &wgpu::Buffer,
    w: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<Dispatch, GpuError> {
    norm_dispatch(ctx, cache, Kernel::RmsNorm, n, rows, eps, &[x, w, y])
}

/// `x += r; y = rms_norm(x) * w`: the residual add fused into the next norm.
#[allow(clippy::too_many_arguments)]
pub fn add_rms_norm(
    ctx: &GpuContext,
    cache: &PipelineCache,
    n: u32,
    rows: u32,
    eps: f32,
    r: &wgpu::Buffer,
    w: &wgpu::Buffer,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<Dispatch, GpuError> {
    norm_dispatch(ctx, cache, Kernel::AddRmsNorm, n, rows, eps, &[r, w, y, x])
}

/// `out = rms_norm(y) * w * silu(z)` per head of `n`.
#[allow(clippy::too_many_arguments)]
pub fn gated_rms_norm(
    ctx: &GpuContext,
    cache: &PipelineCache,
    n: u32,
    rows: u32,
    eps: f32,
    y: &wgpu::Buffer,
    z: &wgpu::Buffer,
    w: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Result<Dispatch, GpuError> {
    norm_dispatch(
        ctx,
        cache,
        Kernel::GatedRmsNorm,
        n,
        rows,
        eps,
        &[y, z, w, out],
    )
}

/// `y = x / max(||x||, eps)` per row of `n`.
pub fn l2_norm(
    ctx: &GpuContext,
    cache: &PipelineCache,
    n: u32,
    rows: u32,
    eps: f32,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<Dispatch, GpuError> {
    norm_dispatch(ctx, cache, Kernel::L2Norm, n, rows, eps, &[x, y])
}
