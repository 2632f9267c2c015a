//! `shaders/moe/swiglu.wgsl`: `h = silu(gate) * up` per slot.

use crate::error::GpuError;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::moe::elementwise_workgroups;
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};

const WG: u32 = 64;

kernel_params! {
    /// `shaders/moe/swiglu.wgsl`'s `Params`.
    pub struct SwigluParams {
        pub n: u32,
        pub width: u32,
        pub slot_stride: u32,
        pub up_offset: u32,
    }
}

kernel_io! {
    /// The buffers of [`swiglu`].
    pub struct SwigluIo {
        gate_up: Read "[slots, slot_stride] f32: gate at 0, up at up_offset",
        h: ReadWrite "[slots, width] f32",
    }
}

pub fn declaration() -> Declaration {
    Declaration::of::<SwigluParams, SwigluIo>("swiglu", "moe/swiglu.wgsl").constant("WG", WG)
}

/// `slots` rows of `width`, gate at 0 and up at `up_offset` within each `slot_stride`-float
/// slot of `gate_up`.
#[derive(Debug, Clone, Copy)]
pub struct SwigluShape {
    pub slots: u32,
    pub width: u32,
    pub slot_stride: u32,
    pub up_offset: u32,
}

/// `h[s][i] = silu(g[s][i]) * u[s][i]`.
pub fn swiglu(
    ctx: &GpuContext,
    cache: &PipelineCache,
    shape: SwigluShape,
    io: SwigluIo<'_>,
) -> Result<Dispatch, GpuError> {
    let n = shape.slots * shape.width;
    let params = SwigluParams {
        n,
        width: shape.width,
        slot_stride: shape.slot_stride,
        up_offset: shape.up_offset,
    };
    let workgroups = elementwise_workgroups(n, WG);
    Dispatch::line(ctx, cache, Kernel::Swiglu, &params, &io, workgroups)
}
