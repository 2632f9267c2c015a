//! `shaders/norm/rms_norm.wgsl`: `y = rms_norm(src) * w`.

use crate::error::GpuError;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, Declaration};
use crate::runtime::ops::norm::{dispatch, row_norm, Rows};
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};

kernel_io! {
    /// The buffers of [`rms_norm`].
    pub struct RmsNormIo {
        src: Read "[rows, n] f32",
        w: Read "[n] f32",
        y: ReadWrite "[rows, n] f32",
    }
}

pub fn declaration() -> Declaration {
    row_norm::<RmsNormIo>("rms_norm", "norm/rms_norm.wgsl")
}

pub fn rms_norm(
    ctx: &GpuContext,
    cache: &PipelineCache,
    r: Rows,
    io: RmsNormIo<'_>,
) -> Result<Dispatch, GpuError> {
    dispatch(ctx, cache, Kernel::RmsNorm, r, &io)
}
