//! `shaders/attention/flash_decode.wgsl` and `flash_decode_combine.wgsl`: causal attention
//! split over the KV length (flash-decoding), partials first, then their combination.

use crate::error::GpuError;
use crate::model::activations::kernel_sizes;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::attention::qk_norm_rope::kv_file;
use crate::runtime::ops::attention::AttentionStep;
use crate::runtime::ops::step::STEP_WGSL;
use crate::runtime::ops::{Dispatch, Record};
use crate::runtime::pipeline::{Kernel, PipelineCache};

/// KV positions per flash_decode workgroup (the activation list sizes the partials by it).
pub const FLASH_CHUNK: u32 = kernel_sizes::ATTENTION_CHUNK;
/// Invocations per workgroup of both passes: one per position of a chunk in the first.
const WG: u32 = FLASH_CHUNK;
/// Query floats a flash_decode workgroup stages (8 KiB): the heads sharing its KV head
/// times the head dim.
const QUERY_FLOATS: u32 = 2048;
/// Most query heads one workgroup serves (a register each for the scores).
const MAX_HEADS: u32 = 16;

/// Query heads per flash_decode workgroup: the most of a KV head's `n_head / n_head_kv`
/// that divide them and fit [`QUERY_FLOATS`] and [`MAX_HEADS`] (8 for Qwen3.5's 8 heads
/// of 256 per KV head; 8 of its 16 for the 122B and 397B).
pub fn heads_per_workgroup(n_head: u32, n_head_kv: u32, head_dim: u32) -> u32 {
    let group = (n_head / n_head_kv.max(1)).max(1);
    let cap = (QUERY_FLOATS / head_dim.max(1)).clamp(1, MAX_HEADS);
    (1..=cap.min(group))
        .rev()
        .find(|h| group % h == 0)
        .unwrap_or(1)
}

kernel_params! {
    /// `shaders/attention/flash_decode_params.wgsl`'s `Params`, shared by both passes.
    pub struct FlashDecodeParams {
        pub n_tokens: u32,
        pub n_head: u32,
        pub n_head_kv: u32,
        pub head_dim: u32,
        pub q_stride: u32,
        pub q_head_stride: u32,
        pub gated: u32,
        /// Row of token 0 in q_in (the gate) and out.
        pub first_row: u32,
        pub _pad: [u32; 4],
    }
}

kernel_io! {
    /// The buffers of the first pass.
    pub struct FlashDecodeIo {
        q: Read "[n_tokens, n_head, head_dim] f32: normalised, rotated queries",
        k_cache: ReadWrite "[capacity, n_head_kv, head_dim] KV elements",
        v_cache: ReadWrite "[capacity, n_head_kv, head_dim] KV elements",
        partials: ReadWrite "[n_tokens, n_head, n_chunks, head_dim + 2] f32: m, l, acc",
        step: Read "[2] u32: the step's position and chunk count (common/step.wgsl)",
    }
}

kernel_io! {
    /// The buffers of the combining pass.
    pub struct FlashDecodeCombineIo {
        partials: Read "[n_tokens, n_head, n_chunks, head_dim + 2] f32: m, l, acc",
        q_in: Read "[first_row + n_tokens, q_stride] f32: attn_q output, for the gate",
        out: ReadWrite "[first_row + n_tokens, n_head, head_dim] f32",
        step: Read "[2] u32: the step's chunk count (common/step.wgsl)",
    }
}

/// The first pass for heads of `head_dim`, `heads` query heads a workgroup
/// ([`heads_per_workgroup`]).
pub fn declaration(kv_f16: bool, head_dim: u32, heads: u32) -> Declaration {
    Declaration::of::<FlashDecodeParams, FlashDecodeIo>(
        "flash_decode",
        "attention/flash_decode.wgsl",
    )
    .include([
        kv_file(kv_f16),
        "attention/flash_decode_params.wgsl",
        STEP_WGSL,
    ])
    .constant("CHUNK", FLASH_CHUNK)
    .constant("WG", WG)
    .constant("HD", head_dim)
    .constant("HEADS", heads)
    .constant("DIMS_EACH", head_dim.div_ceil(WG))
}

pub fn combine_declaration() -> Declaration {
    Declaration::of::<FlashDecodeParams, FlashDecodeCombineIo>(
        "flash_decode_combine",
        "attention/flash_decode_combine.wgsl",
    )
    .include(["attention/flash_decode_params.wgsl", STEP_WGSL])
    .constant("WG", WG)
}

/// Every buffer of the two passes, by role.
#[derive(Clone, Copy)]
pub struct FlashDecodeBuffers<'a> {
    pub q: &'a wgpu::Buffer,
    pub k_cache: &'a wgpu::Buffer,
    pub v_cache: &'a wgpu::Buffer,
    /// Room for `n_tokens * n_head * n_chunks * (head_dim + 2)` floats, with `n_chunks =
    /// ceil((pos0 + n_tokens) / FLASH_CHUNK)` at the furthest position.
    pub partials: &'a wgpu::Buffer,
    pub q_in: &'a wgpu::Buffer,
    pub out: &'a wgpu::Buffer,
}

/// The two passes of causal flash attention for a step's queries.
pub struct FlashDecode {
    pub partial: Dispatch,
    pub combine: Dispatch,
    params: FlashDecodeParams,
    /// Chunks the partials buffer has room for.
    max_chunks: u32,
}

impl FlashDecode {
    pub fn new(
        ctx: &GpuContext,
        cache: &PipelineCache,
        step: AttentionStep<'_>,
        b: FlashDecodeBuffers<'_>,
    ) -> Result<FlashDecode, GpuError> {
        step.check_geometry()?;
        let a = step.config;
        let (n_tokens, pos0) = (step.n_tokens, step.pos0);
        let (q_stride, q_head_stride) = step.q_strides();
        let n_chunks = (pos0 + n_tokens).div_ceil(FLASH_CHUNK);
        let per_chunk = 4 * (n_tokens * a.n_head) as u64 * (a.head_dim + 2) as u64;
        let max_chunks = (b.partials.size() / per_chunk).min(u32::MAX as u64) as u32;
        if n_chunks > max_chunks {
            return Err(GpuError::Shape(format!(
                "flash_decode: {n_chunks} chunks of partials needed, room for {max_chunks}"
            )));
        }
        let params = FlashDecodeParams {
            n_tokens,
            n_head: a.n_head,
            n_head_kv: a.n_head_kv,
            head_dim: a.head_dim,
            q_stride,
            q_head_stride,
            gated: u32::from(a.output_gate),
            first_row: step.first_row,
            _pad: [0; 4],
        };
        let heads = n_tokens * a.n_head;
        let per_workgroup = heads_per_workgroup(a.n_head, a.n_head_kv, a.head_dim);
        let partial_io = FlashDecodeIo {
            q: b.q,
            k_cache: b.k_cache,
            v_cache: b.v_cache,
            partials: b.partials,
            step: step.step,
        };
        let kernel = Kernel::FlashDecode {
            kv_f16: step.kv_f16,
            head_dim: a.head_dim,
            heads: per_workgroup,
        };
        step.write(&ctx.queue);
        let groups = heads / per_workgroup;
        let partial = Dispatch::new(
            ctx,
            cache,
            kernel,
            &params,
            &partial_io,
            [groups, n_chunks, 1],
        )?;
        let combine_io = FlashDecodeCombineIo {
            partials: b.partials,
            q_in: b.q_in,
            out: b.out,
            step: step.step,
        };
        let kernel = Kernel::FlashDecodeCombine;
        let combine = Dispatch::new(ctx, cache, kernel, &params, &combine_io, [heads, 1, 1])?;
        Ok(FlashDecode {
            partial,
            combine,
            params,
            max_chunks,
        })
    }

    /// Moves the queries to positions `pos0..` (the step buffer holds the position): the
    /// number of chunks, the grid's second dimension, follows.
    pub fn set_position(&mut self, pos0: u32) -> Result<(), GpuError> {
        let n_chunks = (pos0 + self.params.n_tokens).div_ceil(FLASH_CHUNK);
        if n_chunks > self.max_chunks {
            return Err(GpuError::Shape(format!(
                "flash_decode at position {pos0}: {n_chunks} chunks, room for {}",
                self.max_chunks
            )));
        }
        let p = &self.params;
        let per_workgroup = heads_per_workgroup(p.n_head, p.n_head_kv, p.head_dim);
        let groups = p.n_tokens * p.n_head / per_workgroup;
        self.partial.set_grid([groups, n_chunks, 1]);
        Ok(())
    }

    pub fn bind_direct(&mut self, ctx: &GpuContext) -> Result<(), GpuError> {
        self.partial.bind_direct(ctx)?;
        self.combine.bind_direct(ctx)
    }

    pub fn encode<R: Record>(&self, pass: &mut R) {
        self.partial.encode(pass);
        self.combine.encode(pass);
    }
}
