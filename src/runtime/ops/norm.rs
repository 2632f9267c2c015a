//! Launchers of `shaders/norm/row_norms.wgsl`: one workgroup per row of `n`.

use crate::error::GpuError;
use crate::runtime::gpu::GpuContext;
use crate::runtime::ops::Dispatch;
use crate::runtime::params::NormParams;
use crate::runtime::pipeline::{Kernel, PipelineCache};

/// The shader's bindings, by the role each launcher gives them.
const SRC: u32 = 1;
const W: u32 = 2;
const Z: u32 = 3;
const Y: u32 = 4;
const X: u32 = 5;

/// Rows of `n` values and the epsilon every norm takes.
#[derive(Debug, Clone, Copy)]
pub struct Rows {
    pub n: u32,
    pub rows: u32,
    pub eps: f32,
}

fn dispatch(
    ctx: &GpuContext,
    cache: &PipelineCache,
    kernel: Kernel,
    r: Rows,
    bindings: &[(u32, &wgpu::Buffer)],
) -> Result<Dispatch, GpuError> {
    if r.n == 0 || r.rows == 0 {
        return Err(GpuError::Shape(format!(
            "{kernel:?}: {} rows of {}",
            r.rows, r.n
        )));
    }
    let params = NormParams {
        n: r.n,
        rows: r.rows,
        eps: r.eps,
        _pad: 0,
    };
    let max = ctx.limits.max_compute_workgroups_per_dimension;
    let (gx, gy) = super::grid(r.rows, max);
    if gy > 1 {
        return Err(GpuError::Shape(format!(
            "{kernel:?}: {} rows exceed one grid row",
            r.rows
        )));
    }
    Dispatch::with_bindings(ctx, cache, kernel, &params, bindings, [gx, 1, 1])
}

/// `y = rms_norm(x) * w`.
pub fn rms_norm(
    ctx: &GpuContext,
    cache: &PipelineCache,
    r: Rows,
    x: &wgpu::Buffer,
    w: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<Dispatch, GpuError> {
    dispatch(ctx, cache, Kernel::RmsNorm, r, &[(SRC, x), (W, w), (Y, y)])
}

/// `stream += block_out; y = rms_norm(stream) * w`: the residual add fused into the next norm.
pub fn add_rms_norm(
    ctx: &GpuContext,
    cache: &PipelineCache,
    r: Rows,
    block_out: &wgpu::Buffer,
    w: &wgpu::Buffer,
    stream: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<Dispatch, GpuError> {
    dispatch(
        ctx,
        cache,
        Kernel::AddRmsNorm,
        r,
        &[(SRC, block_out), (W, w), (Y, y), (X, stream)],
    )
}

/// `out = rms_norm(y) * w * silu(z)` per head.
pub fn gated_rms_norm(
    ctx: &GpuContext,
    cache: &PipelineCache,
    r: Rows,
    y: &wgpu::Buffer,
    z: &wgpu::Buffer,
    w: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Result<Dispatch, GpuError> {
    dispatch(
        ctx,
        cache,
        Kernel::GatedRmsNorm,
        r,
        &[(SRC, y), (W, w), (Z, z), (Y, out)],
    )
}

/// `y = x / max(||x||, eps)` per row.
pub fn l2_norm(
    ctx: &GpuContext,
    cache: &PipelineCache,
    r: Rows,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<Dispatch, GpuError> {
    dispatch(ctx, cache, Kernel::L2Norm, r, &[(SRC, x), (Y, y)])
}
