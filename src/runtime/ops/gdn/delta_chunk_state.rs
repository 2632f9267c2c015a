//! `shaders/gdn/delta_chunk_state.wgsl`: the state half of the chunked gated delta rule,
//! carrying each value head's state across a prompt step's chunks with the factors of
//! [`super::delta_chunk_wy`].

use crate::error::GpuError;
use crate::loader::config::GdnConfig;
use crate::model::activations::kernel_sizes::DELTA_CHUNK;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::gdn::delta_chunk_wy::check_key_dim;
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};

/// State columns per workgroup, and invocations: `WG / COLS` row groups of `COLS`.
const COLS: u32 = 16;
const WG: u32 = 256;

const _: () = assert!(WG % COLS == 0 && DELTA_CHUNK % (WG / COLS) == 0);

kernel_params! {
    /// `shaders/gdn/delta_chunk_state.wgsl`'s `Params` (the key head dim is the constant
    /// `D_K`).
    pub struct DeltaChunkStateParams {
        pub n_v_heads: u32,
        pub d_v: u32,
        pub n_tokens: u32,
        pub _pad: u32,
    }
}

kernel_io! {
    /// The buffers of [`delta_chunk_state`]: the factors, the output and the state.
    pub struct DeltaChunkStateIo {
        w: Read "[n_chunks, n_v_heads, DELTA_CHUNK, d_k] f32",
        u: Read "[n_chunks, n_v_heads, DELTA_CHUNK, d_v] f32",
        kd: Read "[n_chunks, n_v_heads, DELTA_CHUNK, d_k] f32",
        qg: Read "[n_chunks, n_v_heads, DELTA_CHUNK, d_k] f32",
        mqk: Read "[n_chunks, n_v_heads, DELTA_CHUNK, DELTA_CHUNK] f32",
        decay: Read "[n_chunks, n_v_heads] f32",
        out: ReadWrite "[n_tokens, n_v_heads, d_v] f32",
        state: ReadWrite "[n_v_heads, d_k, d_v] f32",
    }
}

/// The kernel for key heads of `d_k` dims.
pub fn declaration(d_k: u32) -> Declaration {
    Declaration::of::<DeltaChunkStateParams, DeltaChunkStateIo>(
        "delta_chunk_state",
        "gdn/delta_chunk_state.wgsl",
    )
    .constant("D_K", d_k)
    .constant("CHUNK", DELTA_CHUNK)
    .constant("COLS", COLS)
    .constant("WG", WG)
}

/// The delta rule's output for `n_tokens` tokens and the state after them, from the
/// chunks' factors: a workgroup per value head and [`COLS`] of its columns.
pub fn delta_chunk_state(
    ctx: &GpuContext,
    cache: &PipelineCache,
    g: &GdnConfig,
    n_tokens: u32,
    io: DeltaChunkStateIo<'_>,
) -> Result<Dispatch, GpuError> {
    check_key_dim("delta_chunk_state", g.d_k)?;
    let params = DeltaChunkStateParams {
        n_v_heads: g.n_v_heads,
        d_v: g.d_v,
        n_tokens,
        _pad: 0,
    };
    let kernel = Kernel::DeltaChunkState { d_k: g.d_k };
    let grid = [g.n_v_heads, g.d_v.div_ceil(COLS), 1];
    Dispatch::new(ctx, cache, kernel, &params, &io, grid)
}
