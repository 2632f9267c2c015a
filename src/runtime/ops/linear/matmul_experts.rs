//! `shaders/linear/matmul_experts.wgsl`: the prefill form of matvec_experts with the slots
//! grouped by expert (moe_group), in token tiles sized to the slots an expert gets.

use crate::error::GpuError;
use crate::loader::quant::GgmlType;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, Declaration};
use crate::runtime::ops::linear::matmul::{tiled, MatmulForm, MatmulParams, TOKEN_TILES};
use crate::runtime::ops::linear::matvec_experts::check_slots;
use crate::runtime::ops::linear::{ExpertWeights, SlotInput, SlotOutput};
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};

kernel_io! {
    /// The buffers of one piece of [`matmul_experts`].
    pub struct MatmulExpertsIo {
        weights: Read "[slabs, rows, row_bytes] GGUF blocks as u32 words",
        x: Read "[slots / x_group, x_stride] f32",
        y: ReadWrite "[slots, y_stride] f32",
        order: Read "[slots] u32: slot indices grouped by expert",
        offsets: Read "[n_expert + 1] u32: each expert's range in order",
        location: Read "[n_expert] u32: each expert's pool slot",
    }
}

/// The kernel for `ty` weights in tiles of `tokens` slots, in `form`.
pub fn declaration(ty: GgmlType, tokens: u32, form: MatmulForm) -> Result<Declaration, GpuError> {
    tiled(
        Declaration::of::<MatmulParams, MatmulExpertsIo>(
            "matmul_experts",
            "linear/matmul_experts.wgsl",
        )
        .include(["moe/expert_slab.wgsl", "moe/expert_group.wgsl"]),
        ty,
        tokens,
        form,
    )
}

/// The token tile for a step of `n_tokens` tokens routed to `used` of `n_expert` experts:
/// the smallest of [`TOKEN_TILES`] that holds an expert's average share of the slots. A
/// fixed 64-token tile spends 4x its useful arithmetic on an expert with 16 slots (512
/// tokens x 8 of 256 experts); an expert with more slots than the tile takes several tiles,
/// each reading its weights again (from cache, mostly).
pub fn token_tile(n_tokens: u32, used: u32, n_expert: u32) -> u32 {
    let share = (n_tokens as u64 * used as u64).div_ceil(n_expert.max(1) as u64);
    TOKEN_TILES
        .into_iter()
        .find(|&t| share <= t as u64)
        .unwrap_or(TOKEN_TILES[TOKEN_TILES.len() - 1])
}

/// The slots grouped by expert, as `moe_group` writes them.
#[derive(Clone, Copy)]
pub struct ExpertGroups<'a> {
    /// `[slots]` u32: slot ids by expert.
    pub order: &'a wgpu::Buffer,
    /// `[n_expert + 1]` u32: range starts in `order`.
    pub offsets: &'a wgpu::Buffer,
    /// Slots per tile ([`token_tile`]).
    pub token_tile: u32,
}

/// Each expert's weights are read once per tile of its slots. Every token routes to an
/// expert at most once, so an expert has at most `n_tokens` slots.
pub fn matmul_experts(
    ctx: &GpuContext,
    cache: &PipelineCache,
    experts: ExpertWeights<'_>,
    n_tokens: u32,
    groups: ExpertGroups<'_>,
    x: SlotInput<'_>,
    y: SlotOutput<'_>,
) -> Result<Vec<Dispatch>, GpuError> {
    let w = experts.w;
    let rows_per_expert = w.rows_per_expert();
    let tokens = groups.token_tile;
    check_slots("matmul_experts", w, x, y)?;
    w.pieces()
        .map(|piece| {
            let params = MatmulParams {
                rows: rows_per_expert,
                units: w.cols() / 32,
                row_bytes: w.row_bytes,
                n_tokens,
                x_stride: x.stride,
                y_stride: y.stride,
                x_offset: 0,
                y_offset: y.offset,
                first_slab: piece.first_slab,
                x_group: x.group,
                slabs: piece.slabs,
                from_pool: piece.from_pool.into(),
            };
            let io = MatmulExpertsIo {
                weights: piece.buffer,
                x: x.buffer,
                y: y.buffer,
                order: groups.order,
                offsets: groups.offsets,
                location: &w.table.location,
            };
            // Every expert: a piece holds some of them, found through the table.
            let form = ctx.features.matmul.for_weights(w.ty());
            let grid = [
                rows_per_expert.div_ceil(form.tile_rows()),
                w.n_expert(),
                n_tokens.div_ceil(tokens),
            ];
            let kernel = Kernel::MatmulExperts {
                ty: w.ty(),
                tokens,
                form,
            };
            Dispatch::new(ctx, cache, kernel, &params, &io, grid)
        })
        .collect()
}
