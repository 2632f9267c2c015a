//! `shaders/linear/matvec_batch_experts.wgsl`: the routed experts of a step over a few
//! tokens, grouped by expert, each expert's weight units decoded once for all its slots.

use crate::error::GpuError;
use crate::loader::quant::GgmlType;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::linear::matmul_experts::ExpertGroups;
use crate::runtime::ops::linear::matvec::WG;
use crate::runtime::ops::linear::matvec_batch::{rows_for, rows_per_invocation, COLS, ROW_CHOICES};
use crate::runtime::ops::linear::matvec_experts::{
    check_slots, ExpertWeights, SlotInput, SlotOutput,
};
use crate::runtime::ops::linear::{check_vec4_input, weight_includes, WeightUse};
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};

kernel_params! {
    /// `shaders/linear/matvec_batch_experts.wgsl`'s `Params`.
    pub struct MatvecBatchExpertsParams {
        pub rows: u32,
        /// 32-element units per row (cols / 32).
        pub units: u32,
        pub row_bytes: u32,
        pub x_stride: u32,
        /// Slots sharing one x row (k for gate/up, 1 for down).
        pub x_group: u32,
        pub y_stride: u32,
        pub y_offset: u32,
        /// The slabs this buffer holds.
        pub first_slab: u32,
        pub slabs: u32,
        /// 1: the slabs are the pool's, found through the location table; 0: the host copy's.
        pub from_pool: u32,
        pub _pad0: u32,
        pub _pad1: u32,
    }
}

kernel_io! {
    /// The buffers of one piece of [`matvec_batch_experts`].
    pub struct MatvecBatchExpertsIo {
        weights: Read "[slabs, rows, row_bytes] GGUF blocks as u32 words",
        x: Read "[slots / x_group, x_stride] f32, read as vec4",
        y: ReadWrite "[slots, y_stride] f32",
        order: Read "[slots] u32: slot indices grouped by expert",
        offsets: Read "[n_expert + 1] u32: each expert's range in order",
        location: Read "[n_expert] u32: each expert's pool slot",
    }
}

/// The kernel over experts of type `ty`, `rows` per workgroup (one of
/// `matvec_batch::ROW_CHOICES`: its split, a GPU's or a CPU device's).
pub fn declaration(ty: GgmlType, rows: u32) -> Result<Declaration, GpuError> {
    if !ROW_CHOICES.contains(&rows) {
        return Err(GpuError::Shape(format!(
            "matvec_batch_experts: {rows} rows per workgroup (one of {ROW_CHOICES:?})"
        )));
    }
    Ok(
        Declaration::of::<MatvecBatchExpertsParams, MatvecBatchExpertsIo>(
            "matvec_batch_experts",
            "linear/matvec_batch_experts.wgsl",
        )
        .include(weight_includes(ty, WeightUse::DotColumns)?)
        .include([
            "linear/dot_cols/sum.wgsl",
            "moe/expert_slab.wgsl",
            "moe/expert_group.wgsl",
        ])
        .constant("WG", WG)
        .constant("ROWS", rows)
        .constant("RPI", rows_per_invocation(rows))
        .constant("COLS", COLS),
    )
}

/// For each slot of a step of `n_tokens` tokens (grouped by expert in `groups`, ids read on
/// the GPU): `y[s] = W_{e(s)} x[s / group]`. An expert has at most `n_tokens` slots (a token
/// routes to it once), taken [`COLS`] at a time.
pub fn matvec_batch_experts(
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
    check_slots("matvec_batch_experts", w, x, y)?;
    check_vec4_input("matvec_batch_experts", 0, x.stride)?;
    let rows = rows_for(ctx);
    let kernel = Kernel::MatvecBatchExperts { ty: w.ty(), rows };
    // Every expert: a piece holds some of them, found through the table.
    let grid = [
        rows_per_expert.div_ceil(rows),
        w.n_expert(),
        n_tokens.div_ceil(COLS),
    ];
    if grid[0] > ctx.limits.max_compute_workgroups_per_dimension {
        return Err(GpuError::Shape(format!(
            "matvec_batch_experts: {rows_per_expert} rows an expert need {} workgroups (at most {})",
            grid[0], ctx.limits.max_compute_workgroups_per_dimension
        )));
    }
    w.pieces()
        .map(|piece| {
            let params = MatvecBatchExpertsParams {
                rows: rows_per_expert,
                units: w.cols() / 32,
                row_bytes: w.row_bytes,
                x_stride: x.stride,
                x_group: x.group,
                y_stride: y.stride,
                y_offset: y.offset,
                first_slab: piece.first_slab,
                slabs: piece.slabs,
                from_pool: piece.from_pool.into(),
                _pad0: 0,
                _pad1: 0,
            };
            let io = MatvecBatchExpertsIo {
                weights: piece.buffer,
                x: x.buffer,
                y: y.buffer,
                order: groups.order,
                offsets: groups.offsets,
                location: &w.table.location,
            };
            Dispatch::new(ctx, cache, kernel, &params, &io, grid)
        })
        .collect()
}
