//! `shaders/gdn/causal_conv1d.wgsl`: `out = silu(causal_conv1d(x))`, updating the ring of
//! past inputs (`GdnConfig::conv_ring_len`).

use crate::error::GpuError;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::step::STEP_WGSL;
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};

/// Taps the conv kernel keeps in registers.
pub const MAX_CONV_TAPS: u32 = 8;
/// Invocations per workgroup, one per channel.
const WG: u32 = 64;

kernel_params! {
    /// `shaders/gdn/causal_conv1d.wgsl`'s `Params`.
    pub struct ConvParams {
        pub channels: u32,
        pub n_tokens: u32,
        pub taps: u32,
        pub _pad: u32,
    }
}

kernel_io! {
    /// The buffers of [`causal_conv1d`].
    pub struct CausalConv1dIo {
        x: Read "[n_tokens, channels] f32: the qkv projections",
        w: Read "[channels, taps] f32: ssm_conv1d",
        out: ReadWrite "[n_tokens, channels] f32",
        state: ReadWrite "[taps, channels] f32: the ring of past inputs, position p in row p % taps",
        step: Read "[2] u32: the step's first position (common/step.wgsl)",
    }
}

pub fn declaration() -> Declaration {
    Declaration::of::<ConvParams, CausalConv1dIo>("causal_conv1d", "gdn/causal_conv1d.wgsl")
        .constant("WG", WG)
        .constant("MAX_TAPS", MAX_CONV_TAPS)
        .include([STEP_WGSL])
}

/// The conv's extent: `channels` channels of `n_tokens` tokens through `taps` taps.
#[derive(Debug, Clone, Copy)]
pub struct ConvShape {
    pub channels: u32,
    pub n_tokens: u32,
    pub taps: u32,
}

/// `out = silu(causal_conv1d(x))` over the step's tokens, at the position `step` holds,
/// updating the ring `state`.
pub fn causal_conv1d(
    ctx: &GpuContext,
    cache: &PipelineCache,
    shape: ConvShape,
    io: CausalConv1dIo<'_>,
) -> Result<Dispatch, GpuError> {
    let ConvShape {
        channels,
        n_tokens,
        taps,
    } = shape;
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
    let kernel = Kernel::CausalConv1d;
    Dispatch::line(ctx, cache, kernel, &params, &io, channels.div_ceil(WG))
}
