//! `shaders/norm/add_rms_norm.wgsl`: `x += src; y = rms_norm(x) * w`, the residual add
//! fused into the next norm.

use crate::error::GpuError;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, Declaration};
use crate::runtime::ops::norm::{dispatch, row_norm, Rows};
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};

kernel_io! {
    /// The buffers of [`add_rms_norm`].
    pub struct AddRmsNormIo {
        src: Read "[rows, n] f32: the block output",
        w: Read "[n] f32",
        y: ReadWrite "[rows, n] f32",
        x: ReadWrite "[rows, n] f32: the residual stream, updated in place",
    }
}

pub fn declaration() -> Declaration {
    row_norm::<AddRmsNormIo>("add_rms_norm", "norm/add_rms_norm.wgsl")
}

pub fn add_rms_norm(
    ctx: &GpuContext,
    cache: &PipelineCache,
    r: Rows,
    io: AddRmsNormIo<'_>,
) -> Result<Dispatch, GpuError> {
    dispatch(ctx, cache, Kernel::AddRmsNorm, r, &io)
}
