//! Launchers of `shaders/gdn/`.

use crate::error::GpuError;
use crate::loader::config::GdnConfig;
use crate::runtime::gpu::GpuContext;
use crate::runtime::ops::Dispatch;
use crate::runtime::params::{ConvParams, DeltaRuleParams};
use crate::runtime::pipeline::{Kernel, PipelineCache};

/// Taps the conv kernel keeps in registers.
pub const MAX_CONV_TAPS: u32 = 8;
/// Columns of one value head per delta-rule workgroup, and column slices per column.
const DELTA_COLS: u32 = 32;
const DELTA_SLICES: u32 = 4;

/// `out = silu(causal_conv1d(x))` over `n_tokens` tokens, updating `state`.
#[allow(clippy::too_many_arguments)]
pub fn causal_conv1d(
    ctx: &GpuContext,
    cache: &PipelineCache,
    channels: u32,
    n_tokens: u32,
    taps: u32,
    x: &wgpu::Buffer,
    w: &wgpu::Buffer,
    out: &wgpu::Buffer,
    state: &wgpu::Buffer,
) -> Result<Dispatch, GpuError> {
    if taps == 0 || taps > MAX_CONV_TAPS {
        return Err(GpuError::Shape(format!(
            "causal_conv1d: {taps} taps (the kernel holds 1 to {MAX_CONV_TAPS})"
        )));
    }
    let params = ConvParams {
        channels,
        n_tokens,
        taps,
        _pad: 0,
    };
    let wg = Kernel::CausalConv1d.override_value("WG");
    Dispatch::new(
        ctx,
        cache,
        Kernel::CausalConv1d,
        &params,
        &[x, w, out, state],
        channels.div_ceil(wg),
    )
}

/// The gated delta rule over `n_tokens` tokens (q/k L2 norm, decay, delta update, readout),
/// state read and written once.
#[allow(clippy::too_many_arguments)]
pub fn delta_rule(
    ctx: &GpuContext,
    cache: &PipelineCache,
    g: &GdnConfig,
    n_tokens: u32,
    eps: f32,
    conv_out: &wgpu::Buffer,
    beta_raw: &wgpu::Buffer,
    alpha: &wgpu::Buffer,
    dt_bias: &wgpu::Buffer,
    a: &wgpu::Buffer,
    out: &wgpu::Buffer,
    state: &wgpu::Buffer,
) -> Result<Dispatch, GpuError> {
    if g.d_k % DELTA_SLICES != 0 || g.d_k > 512 {
        return Err(GpuError::Shape(format!(
            "delta_rule: key head dim {} must be a multiple of {DELTA_SLICES} and at most 512",
            g.d_k
        )));
    }
    let params = DeltaRuleParams {
        n_k_heads: g.n_k_heads,
        n_v_heads: g.n_v_heads,
        d_v: g.d_v,
        n_tokens,
        channels: g.conv_channels() as u32,
        eps,
        _pad: [0; 2],
    };
    Dispatch::new_2d(
        ctx,
        cache,
        Kernel::DeltaRule { d_k: g.d_k },
        &params,
        &[conv_out, beta_raw, alpha, dt_bias, a, out, state],
        (g.n_v_heads, g.d_v.div_ceil(DELTA_COLS)),
    )
}
