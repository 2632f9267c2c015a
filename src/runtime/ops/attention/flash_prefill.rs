//! `shaders/attention/flash_prefill.wgsl`: tiled causal flash attention for a block of
//! queries, gate included.

use crate::error::GpuError;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::attention::qk_norm_rope::kv_file;
use crate::runtime::ops::attention::AttentionStep;
use crate::runtime::ops::step::STEP_WGSL;
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};

/// Invocations per workgroup, and key positions per tile of the online softmax.
const WG: u32 = 64;
const KT: u32 = 16;

kernel_params! {
    /// `shaders/attention/flash_prefill.wgsl`'s `Params` (the head dim is the constant `HD`
    /// too).
    pub struct FlashPrefillParams {
        pub n_tokens: u32,
        pub n_head: u32,
        pub n_head_kv: u32,
        pub head_dim: u32,
        pub q_stride: u32,
        pub q_head_stride: u32,
        pub gated: u32,
        pub _pad: u32,
    }
}

kernel_io! {
    /// The buffers of [`flash_prefill`].
    pub struct FlashPrefillIo {
        q: Read "[n_tokens, n_head, head_dim] f32: normalised, rotated queries",
        k_cache: ReadWrite "[capacity, n_head_kv, head_dim] KV elements",
        v_cache: ReadWrite "[capacity, n_head_kv, head_dim] KV elements",
        q_in: Read "[n_tokens, q_stride] f32: attn_q output, for the gate",
        out: ReadWrite "[n_tokens, n_head, head_dim] f32",
        step: Read "[2] u32: the step's position (common/step.wgsl)",
    }
}

/// Queries per workgroup: as many as keep the staged query tile within 8 KiB of workgroup
/// memory, 1 to 16.
pub fn query_tile(head_dim: u32) -> u32 {
    (2048 / head_dim.max(1)).clamp(1, 16)
}

/// The kernel for heads of `head_dim` (register arrays' sizes, so constants).
pub fn declaration(head_dim: u32, kv_f16: bool) -> Declaration {
    Declaration::of::<FlashPrefillParams, FlashPrefillIo>(
        "flash_prefill",
        "attention/flash_prefill.wgsl",
    )
    .include([kv_file(kv_f16), STEP_WGSL])
    .constant("HD", head_dim)
    .constant("QT", query_tile(head_dim))
    .constant("KT", KT)
    .constant("WG", WG)
}

/// The tiled prefill attention of one layer (the causal mask follows the position).
pub type FlashPrefill = Dispatch;

/// Tiled causal flash attention for the step's queries, gate included.
pub fn flash_prefill(
    ctx: &GpuContext,
    cache: &PipelineCache,
    step: AttentionStep<'_>,
    io: FlashPrefillIo<'_>,
) -> Result<FlashPrefill, GpuError> {
    step.check_geometry()?;
    let a = step.config;
    let (q_stride, q_head_stride) = step.q_strides();
    let params = FlashPrefillParams {
        n_tokens: step.n_tokens,
        n_head: a.n_head,
        n_head_kv: a.n_head_kv,
        head_dim: a.head_dim,
        q_stride,
        q_head_stride,
        gated: u32::from(a.output_gate),
        _pad: 0,
    };
    let tiles = step.n_tokens.div_ceil(query_tile(a.head_dim));
    let kernel = Kernel::FlashPrefill {
        head_dim: a.head_dim,
        kv_f16: step.kv_f16,
    };
    step.write(&ctx.queue);
    Dispatch::new(ctx, cache, kernel, &params, &io, [a.n_head, tiles, 1])
}
