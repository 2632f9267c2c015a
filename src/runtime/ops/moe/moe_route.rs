//! `shaders/moe/moe_route.wgsl`: softmax and top-k of the router logits, on the GPU.

use crate::error::GpuError;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};

/// Limits of the router kernel's workgroup arrays.
pub const MAX_EXPERTS: u32 = 512;
pub const MAX_EXPERTS_USED: u32 = 16;
/// Invocations per token's workgroup.
const WG: u32 = 64;

kernel_params! {
    /// `shaders/moe/moe_route.wgsl`'s `Params`.
    pub struct RouterParams {
        pub n_expert: u32,
        pub k: u32,
        pub n_tokens: u32,
        pub renormalise: u32,
    }
}

kernel_io! {
    /// The buffers of [`moe_route`].
    pub struct MoeRouteIo {
        logits: Read "[n_tokens, n_expert] f32: ffn_gate_inp x",
        ids: ReadWrite "[n_tokens, k] u32",
        weights: ReadWrite "[n_tokens, k] f32",
        location: Read "[n_expert] u32: each expert's pool slot",
        counts: ReadWrite "[n_expert + 1] u32: uses of each expert, then the misses",
    }
}

pub fn declaration() -> Declaration {
    with_router(Declaration::of::<RouterParams, MoeRouteIo>(
        "moe_route",
        "moe/moe_route.wgsl",
    ))
    .include(["moe/expert_slab.wgsl"])
    .constant("WG", WG)
}

/// `decl` with the router's choice (`route_top_k`, moe/route_top_k.wgsl) joined in; the
/// kernel binds `logits` and sets WG.
pub(crate) fn with_router(decl: Declaration) -> Declaration {
    decl.include(["common/rank.wgsl", "moe/route_top_k.wgsl"])
        .constant("MAX_EXPERTS", MAX_EXPERTS)
        .constant("MAX_K", MAX_EXPERTS_USED)
}

/// `k` of `n_expert` experts for each of `n_tokens` tokens, their weights renormalised to
/// sum to one when the model does so.
#[derive(Debug, Clone, Copy)]
pub struct RouteShape {
    pub n_expert: u32,
    pub k: u32,
    pub n_tokens: u32,
    pub renormalise: bool,
}

/// Softmax + top-k of the router logits into `ids` and `weights`.
pub fn moe_route(
    ctx: &GpuContext,
    cache: &PipelineCache,
    shape: RouteShape,
    io: MoeRouteIo<'_>,
) -> Result<Dispatch, GpuError> {
    let RouteShape {
        n_expert,
        k,
        n_tokens,
        renormalise,
    } = shape;
    if n_expert == 0 || n_expert > MAX_EXPERTS || k == 0 || k > MAX_EXPERTS_USED || k > n_expert {
        return Err(GpuError::Shape(format!(
            "moe_route: {k} of {n_expert} experts (the kernel takes up to {MAX_EXPERTS_USED} of {MAX_EXPERTS})"
        )));
    }
    let params = RouterParams {
        n_expert,
        k,
        n_tokens,
        renormalise: u32::from(renormalise),
    };
    Dispatch::line(ctx, cache, Kernel::MoeRoute, &params, &io, n_tokens)
}
