//! `shaders/common/copy_floats.wgsl`: a run of floats from one buffer to another, as a
//! dispatch (a copy command cannot sit inside a compute pass).

use crate::error::GpuError;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};

const WG: u32 = 256;

kernel_params! {
    /// `shaders/common/copy_floats.wgsl`'s `Params`.
    pub struct CopyFloatsParams {
        pub n: u32,
        pub src_offset: u32,
        pub dst_offset: u32,
        pub _pad: u32,
    }
}

kernel_io! {
    /// The buffers of [`copy_floats`].
    pub struct CopyFloatsIo {
        src: Read "[src_offset + n] f32",
        dst: ReadWrite "[dst_offset + n] f32",
    }
}

pub fn declaration() -> Declaration {
    Declaration::of::<CopyFloatsParams, CopyFloatsIo>("copy_floats", "common/copy_floats.wgsl")
        .constant("WG", WG)
}

/// `n` floats from `src` at `src_offset` to `dst` at `dst_offset` (offsets in floats).
pub fn copy_floats(
    ctx: &GpuContext,
    cache: &PipelineCache,
    n: u32,
    (src, src_offset): (&wgpu::Buffer, u32),
    (dst, dst_offset): (&wgpu::Buffer, u32),
) -> Result<Dispatch, GpuError> {
    let end = |offset: u32| 4 * (offset as u64 + n as u64);
    if end(src_offset) > src.size() || end(dst_offset) > dst.size() {
        return Err(GpuError::Shape(format!(
            "copy_floats: {n} floats from {src_offset} of a {}-byte buffer to {dst_offset} of a \
             {}-byte one",
            src.size(),
            dst.size()
        )));
    }
    let params = CopyFloatsParams {
        n,
        src_offset,
        dst_offset,
        _pad: 0,
    };
    let io = CopyFloatsIo { src, dst };
    Dispatch::line(ctx, cache, Kernel::CopyFloats, &params, &io, n.div_ceil(WG))
}
