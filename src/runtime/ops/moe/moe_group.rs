//! `shaders/moe/moe_group.wgsl`: a prefill chunk's routed slots grouped by expert.

use crate::error::GpuError;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::moe::MAX_EXPERTS;
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};

/// Invocations of the single workgroup.
const WG: u32 = 256;

kernel_params! {
    /// `shaders/moe/moe_group.wgsl`'s `Params`.
    pub struct GroupParams {
        pub n_expert: u32,
        pub slots: u32,
        pub _pad: [u32; 2],
    }
}

kernel_io! {
    /// The buffers of [`moe_group`].
    pub struct MoeGroupIo {
        ids: Read "[slots] u32: the routed expert of each slot",
        order: ReadWrite "[slots] u32: slot indices by expert",
        offsets: ReadWrite "[n_expert + 1] u32: each expert's range in order",
    }
}

pub fn declaration() -> Declaration {
    Declaration::of::<GroupParams, MoeGroupIo>("moe_group", "moe/moe_group.wgsl")
        .constant("WG", WG)
        .constant("MAX_EXPERTS", MAX_EXPERTS)
}

/// Groups `slots` routed slots by expert, for `matmul_experts`.
pub fn moe_group(
    ctx: &GpuContext,
    cache: &PipelineCache,
    n_expert: u32,
    slots: u32,
    io: MoeGroupIo<'_>,
) -> Result<Dispatch, GpuError> {
    if n_expert == 0 || n_expert > MAX_EXPERTS {
        return Err(GpuError::Shape(format!(
            "moe_group: {n_expert} experts (1..={MAX_EXPERTS})"
        )));
    }
    let params = GroupParams {
        n_expert,
        slots,
        _pad: [0; 2],
    };
    Dispatch::line(ctx, cache, Kernel::MoeGroup, &params, &io, 1)
}
