//! Launchers of `shaders/attention/`.

use crate::error::GpuError;
use crate::loader::config::AttentionConfig;
use crate::runtime::gpu::GpuContext;
use crate::runtime::ops::{Dispatch, PositionParams, Positioned};
use crate::runtime::params::{FlashAttentionParams, FlashPrefillParams, QkNormRopeParams};
use crate::runtime::pipeline::{prefill_query_tile, Kernel, PipelineCache};

/// KV positions per flash-attention workgroup (the shader's CHUNK).
pub const FLASH_CHUNK: u32 = 64;
/// Largest head dim the attention kernels stage in workgroup memory.
pub const MAX_HEAD_DIM: u32 = 512;

/// Floats per token and per head of attn_q's output (doubled when it carries the gate).
fn q_strides(a: &AttentionConfig) -> (u32, u32) {
    let per_head = a.head_dim * if a.output_gate { 2 } else { 1 };
    (a.n_head * per_head, per_head)
}

fn check_geometry(a: &AttentionConfig) -> Result<(), GpuError> {
    if a.head_dim > MAX_HEAD_DIM || a.head_dim % 2 != 0 || a.n_rot > a.head_dim {
        return Err(GpuError::Shape(format!(
            "attention: head dim {} (even, at most {MAX_HEAD_DIM}) with {} rotary dims",
            a.head_dim, a.n_rot
        )));
    }
    Ok(())
}

impl PositionParams for QkNormRopeParams {
    fn set_pos0(&mut self, pos0: u32) {
        self.pos0 = pos0;
    }
}

impl PositionParams for FlashPrefillParams {
    fn set_pos0(&mut self, pos0: u32) {
        self.pos0 = pos0;
    }
}

/// The q/k preparation of one attention layer (rotary angles and cache rows follow the
/// position).
pub type QkNormRope = Positioned<QkNormRopeParams>;
/// The tiled prefill attention of one layer (the causal mask follows the position).
pub type FlashPrefill = Positioned<FlashPrefillParams>;

/// Norm + rotary of the q and k heads of `n_tokens` tokens at `pos0..`, and the append of
/// their k and v rows to the caches.
#[allow(clippy::too_many_arguments)]
pub fn qk_norm_rope(
    ctx: &GpuContext,
    cache: &PipelineCache,
    a: &AttentionConfig,
    kv_f16: bool,
    n_tokens: u32,
    pos0: u32,
    eps: f32,
    inputs: [&wgpu::Buffer; 6],
    q_out: &wgpu::Buffer,
    k_cache: &wgpu::Buffer,
    v_cache: &wgpu::Buffer,
) -> Result<QkNormRope, GpuError> {
    check_geometry(a)?;
    let (q_stride, q_head_stride) = q_strides(a);
    let params = QkNormRopeParams {
        n_tokens,
        n_head: a.n_head,
        n_head_kv: a.n_head_kv,
        head_dim: a.head_dim,
        n_rot: a.n_rot,
        pos0,
        q_stride,
        q_head_stride,
        eps,
        _pad: [0; 3],
    };
    let [q_in, k_in, v_in, q_norm, k_norm, freqs] = inputs;
    let dispatch = Dispatch::new_2d(
        ctx,
        cache,
        Kernel::QkNormRope { kv_f16 },
        &params,
        &[
            q_in, k_in, v_in, q_norm, k_norm, freqs, q_out, k_cache, v_cache,
        ],
        (a.n_head + 2 * a.n_head_kv, n_tokens),
    )?;
    Ok(Positioned::new(dispatch, params))
}

/// The two passes of causal flash attention for `n_tokens` queries at `pos0..`.
pub struct FlashAttention {
    pub partial: Dispatch,
    pub combine: Dispatch,
    params: FlashAttentionParams,
    /// Chunks the partials buffer has room for.
    max_chunks: u32,
}

impl FlashAttention {
    /// `partials` must hold `n_tokens * n_head * n_chunks * (head_dim + 2)` floats, with
    /// `n_chunks = ceil((pos0 + n_tokens) / FLASH_CHUNK)`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ctx: &GpuContext,
        cache: &PipelineCache,
        a: &AttentionConfig,
        kv_f16: bool,
        n_tokens: u32,
        pos0: u32,
        q: &wgpu::Buffer,
        k_cache: &wgpu::Buffer,
        v_cache: &wgpu::Buffer,
        partials: &wgpu::Buffer,
        q_in: &wgpu::Buffer,
        out: &wgpu::Buffer,
    ) -> Result<FlashAttention, GpuError> {
        check_geometry(a)?;
        let (q_stride, q_head_stride) = q_strides(a);
        let n_chunks = (pos0 + n_tokens).div_ceil(FLASH_CHUNK);
        let per_chunk = 4 * (n_tokens * a.n_head) as u64 * (a.head_dim + 2) as u64;
        let max_chunks = (partials.size() / per_chunk).min(u32::MAX as u64) as u32;
        if n_chunks > max_chunks {
            return Err(GpuError::Shape(format!(
                "flash attention: {n_chunks} chunks of partials needed, room for {max_chunks}"
            )));
        }
        let params = FlashAttentionParams {
            n_tokens,
            n_head: a.n_head,
            n_head_kv: a.n_head_kv,
            head_dim: a.head_dim,
            pos0,
            n_chunks,
            q_stride,
            q_head_stride,
            gated: u32::from(a.output_gate),
            _pad: [0; 3],
        };
        let heads = n_tokens * a.n_head;
        let partial = Dispatch::with_bindings(
            ctx,
            cache,
            Kernel::FlashAttention { kv_f16 },
            &params,
            &[(1, q), (2, k_cache), (3, v_cache), (4, partials)],
            [heads, n_chunks, 1],
        )?;
        let combine = Dispatch::with_bindings(
            ctx,
            cache,
            Kernel::FlashCombine,
            &params,
            &[(4, partials), (5, q_in), (6, out)],
            [heads, 1, 1],
        )?;
        Ok(FlashAttention {
            partial,
            combine,
            params,
            max_chunks,
        })
    }

    /// Moves the queries to positions `pos0..`: the KV length, and with it the number of
    /// chunks (the grid's second dimension), follow.
    pub fn set_position(&mut self, queue: &wgpu::Queue, pos0: u32) -> Result<(), GpuError> {
        let n_chunks = (pos0 + self.params.n_tokens).div_ceil(FLASH_CHUNK);
        if n_chunks > self.max_chunks {
            return Err(GpuError::Shape(format!(
                "flash attention at position {pos0}: {n_chunks} chunks, room for {}",
                self.max_chunks
            )));
        }
        self.params.pos0 = pos0;
        self.params.n_chunks = n_chunks;
        self.partial.write_params(queue, &self.params);
        self.combine.write_params(queue, &self.params);
        let heads = self.params.n_tokens * self.params.n_head;
        self.partial.set_grid([heads, n_chunks, 1]);
        Ok(())
    }
}

/// Tiled causal flash attention for `n_tokens` queries at `pos0..` (prefill), gate included.
#[allow(clippy::too_many_arguments)]
pub fn flash_prefill(
    ctx: &GpuContext,
    cache: &PipelineCache,
    a: &AttentionConfig,
    kv_f16: bool,
    n_tokens: u32,
    pos0: u32,
    q: &wgpu::Buffer,
    k_cache: &wgpu::Buffer,
    v_cache: &wgpu::Buffer,
    q_in: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Result<FlashPrefill, GpuError> {
    check_geometry(a)?;
    let (q_stride, q_head_stride) = q_strides(a);
    let params = FlashPrefillParams {
        n_tokens,
        n_head: a.n_head,
        n_head_kv: a.n_head_kv,
        head_dim: a.head_dim,
        pos0,
        q_stride,
        q_head_stride,
        gated: u32::from(a.output_gate),
    };
    let tiles = n_tokens.div_ceil(prefill_query_tile(a.head_dim));
    let dispatch = Dispatch::new_2d(
        ctx,
        cache,
        Kernel::FlashPrefill {
            head_dim: a.head_dim,
            kv_f16,
        },
        &params,
        &[q, k_cache, v_cache, q_in, out],
        (a.n_head, tiles),
    )?;
    Ok(Positioned::new(dispatch, params))
}
