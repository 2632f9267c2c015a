//! `shaders/linear/matvec_experts.wgsl`: the matvec of each routed expert slot.

use crate::error::GpuError;
use crate::loader::quant::GgmlType;
use crate::runtime::experts::ExpertTensor;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::linear::matvec::{
    self, check_rows, rows_per_workgroup as matvec_rows, WG,
};
use crate::runtime::ops::linear::{check_vec4_input, rows_dots_reader};
use crate::runtime::ops::{grid, Dispatch};
use crate::runtime::pipeline::{Kernel, PipelineCache};

/// Slots from which [`matvec_experts`] takes the many-slot form.
pub const MANY_SLOTS: u32 = 64;

/// How a workgroup splits an expert's rows: `rows` per workgroup, in groups of
/// `per_invocation` rows that each invocation multiplies with every x element it loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExpertRows {
    pub rows: u32,
    pub per_invocation: u32,
}

impl ExpertRows {
    /// A GPU's split: one row per group of lanes along K (`matvec::ROW_CHOICES`).
    pub const fn lanes(rows: u32) -> Self {
        ExpertRows {
            rows,
            per_invocation: 1,
        }
    }

    /// Invocations per group of rows.
    pub fn lanes_per_group(self) -> u32 {
        WG * self.per_invocation / self.rows
    }
}

/// A CPU device's split for decode's few slots: 8 rows share each x load (on lavapipe an x
/// load costs a loop over the SIMD lanes), 4 invocations a group. `cargo bench --bench
/// kernels -- matvec_experts` on lavapipe, 8 slots of 512 x 2048 q4_K: 60 ms at one row an
/// invocation (16 a workgroup), 27 ms in this form; 1024 slots: 6.4 s, 3.0 s.
pub const CPU_FEW_SLOTS: ExpertRows = ExpertRows {
    rows: 128,
    per_invocation: 8,
};
/// A CPU device's split for a prompt chunk's many slots, which fill the device on their own:
/// fewer, longer workgroups, one invocation a group (a CPU device pays per workgroup).
pub const CPU_MANY_SLOTS: ExpertRows = ExpertRows {
    rows: 512,
    per_invocation: 8,
};

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

/// The splits the kernel is built for: a GPU's (rows as the matvec chooses them) and a CPU
/// device's.
pub fn splits() -> Vec<ExpertRows> {
    let mut all: Vec<ExpertRows> = matvec::ROW_CHOICES.map(ExpertRows::lanes).to_vec();
    all.extend([CPU_FEW_SLOTS, CPU_MANY_SLOTS]);
    all
}

/// The split for `slots` slots of experts of `rows` rows: with a minimum grid (a GPU), rows
/// as the matvec chooses them; else a CPU device's, by the slot count.
fn split_for(min_grid: Option<u32>, rows: u32, slots: u32) -> ExpertRows {
    match (min_grid, slots >= MANY_SLOTS) {
        (Some(_), _) => ExpertRows::lanes(matvec_rows(min_grid, rows, slots)),
        (None, true) => CPU_MANY_SLOTS,
        (None, false) => CPU_FEW_SLOTS,
    }
}

/// The expert matvec over weights of type `ty`, split as `split` says.
pub fn declaration(ty: GgmlType, split: ExpertRows) -> Result<Declaration, GpuError> {
    let ExpertRows {
        rows,
        per_invocation,
    } = split;
    let fits = per_invocation.is_power_of_two()
        && rows.is_power_of_two()
        && rows >= per_invocation
        && rows <= WG * per_invocation;
    if !fits || (per_invocation == 1 && check_rows(rows).is_err()) {
        return Err(GpuError::Shape(format!(
            "matvec_experts: {rows} rows per workgroup, {per_invocation} an invocation (powers \
             of two, rows from {per_invocation} to {})",
            WG * per_invocation
        )));
    }
    Ok(Declaration::of::<MatvecExpertsParams, MatvecExpertsIo>(
        "matvec_experts",
        "linear/matvec_experts.wgsl",
    )
    .namespace("_0", rows_dots_reader(ty, per_invocation)?)
    .include(["moe/expert_slab.wgsl"])
    .constant("WG", WG)
    .constant("ROWS", rows)
    .constant("RPI", per_invocation)
    .constant("COLS", 1))
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

/// The checks every expert kernel makes of its slots' inputs and outputs: a slot group,
/// input rows as long as the experts' columns and output rows as long as their rows.
pub(crate) fn check_slots(
    kernel: &str,
    w: &ExpertTensor,
    x: SlotInput<'_>,
    y: SlotOutput<'_>,
) -> Result<(), GpuError> {
    if x.group == 0 || x.stride < w.cols() || y.stride < w.rows_per_expert() {
        return Err(GpuError::Shape(format!(
            "{kernel}: slot group {}, x rows of {} for {} columns, y rows of {} for {} rows",
            x.group,
            x.stride,
            w.cols(),
            y.stride,
            w.rows_per_expert()
        )));
    }
    Ok(())
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
    let w = experts.w;
    check_slots("matvec_experts", w, x, y)?;
    check_vec4_input("matvec_experts", 0, x.stride)?;
    let rows_per_expert = w.rows_per_expert();
    let split = split_for(ctx.features.matvec_min_grid, rows_per_expert, slots);
    let kernel = Kernel::MatvecExperts { ty: w.ty(), split };
    let groups = rows_per_expert.div_ceil(split.rows);
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
