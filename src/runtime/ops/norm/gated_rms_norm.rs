//! `shaders/norm/gated_rms_norm.wgsl`: `y = rms_norm(src) * w * silu(z)` per head.

use crate::error::GpuError;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, Declaration};
use crate::runtime::ops::norm::{dispatch, row_norm, Rows};
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};

kernel_io! {
    /// The buffers of [`gated_rms_norm`].
    pub struct GatedRmsNormIo {
        src: Read "[rows, n] f32",
        w: Read "[n] f32: one weight vector for all heads",
        z: Read "[rows, n] f32: the gate",
        y: ReadWrite "[rows, n] f32",
    }
}

pub fn declaration() -> Declaration {
    row_norm::<GatedRmsNormIo>("gated_rms_norm", "norm/gated_rms_norm.wgsl")
}

pub fn gated_rms_norm(
    ctx: &GpuContext,
    cache: &PipelineCache,
    r: Rows,
    io: GatedRmsNormIo<'_>,
) -> Result<Dispatch, GpuError> {
    dispatch(ctx, cache, Kernel::GatedRmsNorm, r, &io)
}
