//! `shaders/gdn/delta_chunk_wy.wgsl`: the chunk-local half of the chunked gated delta rule
//! of a prompt step, every chunk and value head at once; [`super::delta_chunk_state`] then
//! carries the state across the chunks.

use crate::error::GpuError;
use crate::loader::config::GdnConfig;
use crate::model::activations::kernel_sizes::{DELTA_CHUNK, DELTA_CHUNK_MAX_D_K as MAX_D_K};
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, Declaration};
use crate::runtime::ops::gdn::delta_rule::DeltaRuleParams;
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};

/// Invocations per workgroup: three per token of a chunk for the per-token scalars, and
/// `DELTA_CHUNK^2 / WG` q.k and k.k pairs each.
const WG: u32 = 256;
/// Key dims staged in workgroup memory per slice of the dot products.
const TD: u32 = 8;

const _: () = assert!(WG >= 3 * DELTA_CHUNK && (DELTA_CHUNK * DELTA_CHUNK) % WG == 0);

kernel_io! {
    /// The buffers of [`delta_chunk_wy`]: the step's inputs and the factors it makes.
    pub struct DeltaChunkWyIo {
        conv_out: Read "[n_tokens, conv_channels] f32: q | k | v after the conv and SiLU",
        beta_raw: Read "[n_tokens, n_v_heads] f32: ssm_beta projection, before the sigmoid",
        alpha: Read "[n_tokens, n_v_heads] f32: ssm_alpha projection",
        dt_bias: Read "[n_v_heads] f32",
        a_neg: Read "[n_v_heads] f32: -exp(A_log)",
        w: ReadWrite "[n_chunks, n_v_heads, DELTA_CHUNK, d_k] f32",
        u: ReadWrite "[n_chunks, n_v_heads, DELTA_CHUNK, d_v] f32",
        kd: ReadWrite "[n_chunks, n_v_heads, DELTA_CHUNK, d_k] f32",
        qg: ReadWrite "[n_chunks, n_v_heads, DELTA_CHUNK, d_k] f32",
        mqk: ReadWrite "[n_chunks, n_v_heads, DELTA_CHUNK, DELTA_CHUNK] f32",
        decay: ReadWrite "[n_chunks, n_v_heads] f32",
    }
}

/// The kernel for key heads of `d_k` dims.
pub fn declaration(d_k: u32) -> Declaration {
    Declaration::of::<DeltaRuleParams, DeltaChunkWyIo>("delta_chunk_wy", "gdn/delta_chunk_wy.wgsl")
        .constant("D_K", d_k)
        .constant("CHUNK", DELTA_CHUNK)
        .constant("TD", TD)
        .constant("WG", WG)
}

/// Whether the chunked form takes key heads of `d_k` dims (else the sequential
/// [`super::delta_rule`] runs the prompt).
pub fn fits_key_dim(d_k: u32) -> bool {
    d_k % TD == 0 && d_k <= MAX_D_K
}

/// Refuses key heads the chunked form cannot hold, naming the kernel.
pub(crate) fn check_key_dim(entry: &str, d_k: u32) -> Result<(), GpuError> {
    if fits_key_dim(d_k) {
        return Ok(());
    }
    Err(GpuError::Shape(format!(
        "{entry}: key head dim {d_k} must be a multiple of {TD} and at most {MAX_D_K}"
    )))
}

/// The WY factors of every `DELTA_CHUNK`-token chunk of `n_tokens` tokens and every value
/// head.
pub fn delta_chunk_wy(
    ctx: &GpuContext,
    cache: &PipelineCache,
    g: &GdnConfig,
    n_tokens: u32,
    eps: f32,
    io: DeltaChunkWyIo<'_>,
) -> Result<Dispatch, GpuError> {
    check_key_dim("delta_chunk_wy", g.d_k)?;
    if n_tokens == 0 {
        return Err(GpuError::Shape("delta_chunk_wy: a step of 0 tokens".into()));
    }
    let params = DeltaRuleParams {
        n_k_heads: g.n_k_heads,
        n_v_heads: g.n_v_heads,
        d_v: g.d_v,
        n_tokens,
        channels: g.conv_channels() as u32,
        eps,
        _pad: [0; 2],
    };
    let kernel = Kernel::DeltaChunkWy { d_k: g.d_k };
    let grid = [g.n_v_heads, n_tokens.div_ceil(DELTA_CHUNK), 1];
    Dispatch::new(ctx, cache, kernel, &params, &io, grid)
}
