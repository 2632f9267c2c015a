//! `shaders/moe/moe_combine.wgsl`: the routed experts' weighted sum plus the gated shared
//! expert.

use crate::error::GpuError;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::moe::elementwise_workgroups;
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};

const WG: u32 = 64;

kernel_params! {
    /// `shaders/moe/moe_combine.wgsl`'s `Params`.
    pub struct CombineParams {
        pub n: u32,
        pub width: u32,
        pub k: u32,
        pub with_shared: u32,
    }
}

kernel_io! {
    /// The buffers of [`moe_combine`].
    pub struct MoeCombineIo {
        expert_out: Read "[n_tokens, k, width] f32: the experts' outputs",
        expert_w: Read "[n_tokens, k] f32",
        shared_out: Read "[n_tokens, width] f32 (unread without a shared expert)",
        shared_logit: Read "[n_tokens] f32 (unread without a shared expert)",
        y: ReadWrite "[n_tokens, width] f32",
    }
}

pub fn declaration() -> Declaration {
    Declaration::of::<CombineParams, MoeCombineIo>("moe_combine", "moe/moe_combine.wgsl")
        .constant("WG", WG)
}

/// `n_tokens` tokens of `width`, `k` experts each.
#[derive(Debug, Clone, Copy)]
pub struct CombineShape {
    pub n_tokens: u32,
    pub width: u32,
    pub k: u32,
}

/// The routed experts' outputs and their router weights.
#[derive(Clone, Copy)]
pub struct RoutedOutputs<'a> {
    pub expert_out: &'a wgpu::Buffer,
    pub expert_w: &'a wgpu::Buffer,
}

/// The shared expert's output and its gate logit.
#[derive(Clone, Copy)]
pub struct SharedOutput<'a> {
    pub out: &'a wgpu::Buffer,
    pub logit: &'a wgpu::Buffer,
}

/// `y = sum_j w_j e_j (+ sigmoid(shared_logit) shared)`.
pub fn moe_combine(
    ctx: &GpuContext,
    cache: &PipelineCache,
    shape: CombineShape,
    routed: RoutedOutputs<'_>,
    shared: Option<SharedOutput<'_>>,
    y: &wgpu::Buffer,
) -> Result<Dispatch, GpuError> {
    let n = shape.n_tokens * shape.width;
    let params = CombineParams {
        n,
        width: shape.width,
        k: shape.k,
        with_shared: u32::from(shared.is_some()),
    };
    // Without a shared expert the bindings still need buffers; the kernel never reads them.
    let stand_in = SharedOutput {
        out: routed.expert_out,
        logit: routed.expert_w,
    };
    let shared = shared.unwrap_or(stand_in);
    let io = MoeCombineIo {
        expert_out: routed.expert_out,
        expert_w: routed.expert_w,
        shared_out: shared.out,
        shared_logit: shared.logit,
        y,
    };
    let workgroups = elementwise_workgroups(n, WG);
    Dispatch::line(ctx, cache, Kernel::MoeCombine, &params, &io, workgroups)
}
