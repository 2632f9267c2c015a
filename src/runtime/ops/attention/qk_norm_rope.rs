//! `shaders/attention/qk_norm_rope.wgsl`: per-head RMSNorm and rotary of q and k, and the
//! append of k and v to the caches.

use crate::error::GpuError;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::attention::{AttentionStep, MAX_HEAD_DIM};
use crate::runtime::ops::step::STEP_WGSL;
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};

/// Invocations per head.
const WG: u32 = 64;

kernel_params! {
    /// `shaders/attention/qk_norm_rope.wgsl`'s `Params`.
    pub struct QkNormRopeParams {
        pub n_tokens: u32,
        pub n_head: u32,
        pub n_head_kv: u32,
        pub head_dim: u32,
        pub n_rot: u32,
        pub q_stride: u32,
        pub q_head_stride: u32,
        pub eps: f32,
        /// Row of token 0 in q_in, k_in and v_in.
        pub first_row: u32,
        pub _pad: [u32; 3],
    }
}

kernel_io! {
    /// The buffers of [`qk_norm_rope`].
    pub struct QkNormRopeIo {
        q_in: Read "[first_row + n_tokens, q_stride] f32: attn_q output",
        k_in: Read "[first_row + n_tokens, n_head_kv, head_dim] f32",
        v_in: Read "[first_row + n_tokens, n_head_kv, head_dim] f32",
        q_norm: Read "[head_dim] f32",
        k_norm: Read "[head_dim] f32",
        freqs: Read "[n_rot / 2] f32: rotary frequencies",
        q_out: ReadWrite "[n_tokens, n_head, head_dim] f32",
        k_cache: ReadWrite "[capacity, n_head_kv, head_dim] KV elements",
        v_cache: ReadWrite "[capacity, n_head_kv, head_dim] KV elements",
        step: Read "[2] u32: the step's position (common/step.wgsl)",
    }
}

pub fn declaration(kv_f16: bool) -> Declaration {
    Declaration::of::<QkNormRopeParams, QkNormRopeIo>("qk_norm_rope", "attention/qk_norm_rope.wgsl")
        .include([kv_file(kv_f16), STEP_WGSL])
        .constant("WG", WG)
        .constant("MAX_HEAD_DIM", MAX_HEAD_DIM)
}

/// The KV cache element code the kernels that touch the caches include.
pub(crate) fn kv_file(kv_f16: bool) -> &'static str {
    if kv_f16 {
        "attention/kv_f16.wgsl"
    } else {
        "attention/kv_f32.wgsl"
    }
}

/// The q/k preparation of one attention layer (rotary angles and cache rows follow the
/// position).
/// The q/k preparation of one layer (its position follows the step buffer).
pub type QkNormRope = Dispatch;

/// Norm + rotary of the q and k heads of the step's tokens, and the append of their k and
/// v rows to the caches.
pub fn qk_norm_rope(
    ctx: &GpuContext,
    cache: &PipelineCache,
    step: AttentionStep<'_>,
    eps: f32,
    io: QkNormRopeIo<'_>,
) -> Result<QkNormRope, GpuError> {
    step.check_geometry()?;
    let a = step.config;
    let (q_stride, q_head_stride) = step.q_strides();
    let params = QkNormRopeParams {
        n_tokens: step.n_tokens,
        n_head: a.n_head,
        n_head_kv: a.n_head_kv,
        head_dim: a.head_dim,
        n_rot: a.n_rot,
        q_stride,
        q_head_stride,
        eps,
        first_row: step.first_row,
        _pad: [0; 3],
    };
    let kernel = Kernel::QkNormRope {
        kv_f16: step.kv_f16,
    };
    let grid = [a.n_head + 2 * a.n_head_kv, step.n_tokens, 1];
    step.write(&ctx.queue);
    Dispatch::new(ctx, cache, kernel, &params, &io, grid)
}
