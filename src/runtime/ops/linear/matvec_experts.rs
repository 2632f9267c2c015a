//! `shaders/linear/matvec_experts.wgsl`: the matvec of each routed expert slot.

use crate::error::GpuError;
use crate::loader::quant::GgmlType;
use crate::runtime::experts::ExpertTensor;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::linear::matvec::{
    check_rows, rows_per_workgroup as matvec_rows, ROWS, WG,
};
use crate::runtime::ops::linear::{check_vec4_input, row_reader};
use crate::runtime::ops::{grid, Dispatch};
use crate::runtime::pipeline::{Kernel, PipelineCache};

/// Slots from which [`matvec_experts`] takes the many-slot form.
pub const MANY_SLOTS: u32 = 64;
/// Rows per workgroup of the many-slot form: a prompt chunk's many slots fill the device on
/// their own, so fewer, longer workgroups (a CPU device pays per workgroup; pp128 of
/// bench-qwen35moe on lavapipe 5.9 -> 6.2 tok/s, while decode's few slots want ROWS).
pub const MANY_SLOT_ROWS: u32 = 64;

kernel_params! {
    /// `shaders/linear/matvec_experts.wgsl`'s `Params`.
    pub struct MatvecExpertsParams {
        pub rows: u32,
        /// 32-element units per row (cols / 32).
        pub units: u32,
        pub row_bytes: u32,
        /// Byte offset of row 0 in the weight buffer.
        pub weight_offset: u32,
        pub x_offset: u32,
        pub y_offset: u32,
        /// The slabs this buffer holds, and each slot's x and y strides.
        pub first_slab: u32,
        pub slabs: u32,
        pub x_stride: u32,
        pub y_stride: u32,
        /// Slots sharing one x row (k for gate/up, 1 for down).
        pub x_group: u32,
        /// 1: the slabs are the pool's, found through the location table; 0: the host copy's.
        pub from_pool: u32,
    }
}

kernel_io! {
    /// The buffers of one piece of [`matvec_experts`].
    pub struct MatvecExpertsIo {
        weights_0: Read "[slabs, rows, row_bytes] GGUF blocks as u32 words",
        x: Read "[slots / x_group, x_stride] f32, read as vec4",
        y: ReadWrite "[slots, y_stride] f32",
        ids: Read "[slots] u32: the routed experts",
        location: Read "[n_expert] u32: each expert's pool slot",
    }
}

/// The rows per workgroup the kernel is built for.
pub const ROW_CHOICES: [u32; 6] = [1, 2, 4, 8, 16, MANY_SLOT_ROWS];

/// Rows per workgroup for `slots` slots of experts of `rows` rows: on a CPU device 16, or
/// 64 for a prompt chunk's many slots; with a minimum grid, as the matvec chooses.
fn rows_per_workgroup(min_grid: Option<u32>, rows: u32, slots: u32) -> u32 {
    match (min_grid, slots >= MANY_SLOTS) {
        (Some(_), _) => matvec_rows(min_grid, rows, slots),
        (None, true) => MANY_SLOT_ROWS,
        (None, false) => ROWS,
    }
}

/// The expert matvec over weights of type `ty`, `rows` rows per workgroup.
pub fn declaration(ty: GgmlType, rows: u32) -> Result<Declaration, GpuError> {
    check_rows(rows)?;
    Ok(Declaration::of::<MatvecExpertsParams, MatvecExpertsIo>(
        "matvec_experts",
        "linear/matvec_experts.wgsl",
    )
    .namespace("_0", row_reader(ty)?)
    .include(["moe/expert_slab.wgsl"])
    .constant("WG", WG)
    .constant("ROWS", rows))
}

/// The routed experts' weights: wherever the placement put them, with their location table.
#[derive(Clone, Copy)]
pub struct ExpertWeights<'a> {
    pub w: &'a ExpertTensor,
}

/// How the slots find their inputs: x row `s / group` of `stride` floats (group = k when a
/// token's k experts share its input, 1 when each slot has its own).
#[derive(Clone, Copy)]
pub struct SlotInput<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub stride: u32,
    pub group: u32,
}

/// Where slot s writes: `offset + s * stride`.
#[derive(Clone, Copy)]
pub struct SlotOutput<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub stride: u32,
    pub offset: u32,
}

/// For each of `slots` routed experts (ids read on the GPU): `y[s] = W_{ids[s]} x[s / group]`.
/// `slots = n_tokens * k` makes it the prefill form.
pub fn matvec_experts(
    ctx: &GpuContext,
    cache: &PipelineCache,
    experts: ExpertWeights<'_>,
    slots: u32,
    ids: &wgpu::Buffer,
    x: SlotInput<'_>,
    y: SlotOutput<'_>,
) -> Result<Vec<Dispatch>, GpuError> {
    if x.group == 0 {
        return Err(GpuError::Shape("matvec_experts: slot group 0".into()));
    }
    check_vec4_input("matvec_experts", 0, x.stride)?;
    let w = experts.w;
    let rows_per_expert = w.rows_per_expert();
    let rows = rows_per_workgroup(ctx.features.matvec_min_grid, rows_per_expert, slots);
    let kernel = Kernel::MatvecExperts { ty: w.ty(), rows };
    let groups = rows_per_expert.div_ceil(rows);
    let (gx, gy) = grid(groups, ctx.limits.max_compute_workgroups_per_dimension);
    w.pieces()
        .map(|piece| {
            let params = MatvecExpertsParams {
                rows: rows_per_expert,
                units: w.cols() / 32,
                row_bytes: w.row_bytes,
                weight_offset: 0,
                x_offset: 0,
                y_offset: y.offset,
                first_slab: piece.first_slab,
                slabs: piece.slabs,
                x_stride: x.stride,
                y_stride: y.stride,
                x_group: x.group,
                from_pool: piece.from_pool.into(),
            };
            let io = MatvecExpertsIo {
                weights_0: piece.buffer,
                x: x.buffer,
                y: y.buffer,
                ids,
                location: &w.table.location,
            };
            Dispatch::new(ctx, cache, kernel, &params, &io, [gx, gy, slots])
        })
        .collect()
}
