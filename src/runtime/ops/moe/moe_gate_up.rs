//! `shaders/moe/moe_gate_up.wgsl`: a decode token's FFN norm, every expert's gate and up
//! (the routed ones and the shared one) and their SwiGLU, in one dispatch.

use crate::error::GpuError;
use crate::loader::quant::GgmlType;
use crate::runtime::experts::ExpertTensor;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::linear::matvec::{check_rows, rows_per_workgroup, WG};
use crate::runtime::ops::linear::row_reader;
use crate::runtime::ops::moe::moe_route::{with_router, RouteShape, MAX_EXPERTS, MAX_EXPERTS_USED};
use crate::runtime::ops::{grid, Dispatch};
use crate::runtime::pipeline::{Kernel, PipelineCache};
use crate::runtime::tensor::QuantMatrix;

kernel_params! {
    /// `shaders/moe/moe_gate_up.wgsl`'s `Params`.
    pub struct MoeGateUpParams {
        pub units: u32,
        pub eps: f32,
        pub k: u32,
        pub slots: u32,
        pub rows: u32,
        pub shared_rows: u32,
        pub h_stride: u32,
        pub gate_row_bytes: u32,
        pub gate_slab: u32,
        pub gate_offset: u32,
        pub up_row_bytes: u32,
        pub up_slab: u32,
        pub up_offset: u32,
        pub shared_gate_row_bytes: u32,
        pub shared_up_row_bytes: u32,
        pub n_expert: u32,
        pub renormalise: u32,
        pub _pad: [u32; 3],
    }
}

kernel_io! {
    /// The buffers of [`moe_gate_up`].
    pub struct MoeGateUpIo {
        weights_g: Read "[n_expert, rows, row_bytes] GGUF blocks as u32 words: the gates",
        weights_u: Read "[n_expert, rows, row_bytes] GGUF blocks: the ups (maybe the gates' tensor)",
        weights_sg: Read "[shared_rows, row_bytes] GGUF blocks: the shared expert's gate",
        weights_su: Read "[shared_rows, row_bytes] GGUF blocks: the shared expert's up",
        x: Read "[n_embd] f32: the residual stream, read as vec4",
        norm_w: Read "[n_embd] f32: the FFN's RMSNorm weight",
        logits: Read "[n_expert] f32: the router's logits",
        h: ReadWrite "[slots, h_stride] f32",
        ids: ReadWrite "[k] u32: the picks, for moe_down",
        route_w: ReadWrite "[k] f32: their weights",
        weights_gh: Read "[n_expert, rows, row_bytes] GGUF blocks: every gate in host memory",
        weights_uh: Read "[n_expert, rows, row_bytes] GGUF blocks: every up in host memory",
        location: Read "[n_expert] u32: each expert's pool slot",
        counts: ReadWrite "[n_expert + 1] u32: uses of each expert, then the misses",
    }
}

/// The reader suffixes of the gate, up, shared gate and shared up bindings, then of the
/// gate's and up's host copies.
const READERS: [&str; 6] = ["_g", "_u", "_sg", "_su", "_gh", "_uh"];

/// The kernel over gate, up, shared gate and shared up weights of `types`, `rows` rows per
/// workgroup.
pub fn declaration(types: [GgmlType; 4], rows: u32) -> Result<Declaration, GpuError> {
    check_rows(rows)?;
    let mut d =
        Declaration::of::<MoeGateUpParams, MoeGateUpIo>("moe_gate_up", "moe/moe_gate_up.wgsl")
            .include(["linear/row_norm.wgsl"]);
    let [gate, up, ..] = types;
    for (suffix, ty) in READERS.into_iter().zip(types.into_iter().chain([gate, up])) {
        d = d.namespace(suffix, row_reader(ty)?);
    }
    let d = d.include(["moe/expert_slab.wgsl"]);
    Ok(with_router(d).constant("WG", WG).constant("ROWS", rows))
}

/// One projection of every expert: expert e's rows are `first_row..first_row + rows` of its
/// slab in `w` (whose pool and host copy are one binding each).
#[derive(Clone, Copy)]
pub struct ExpertRows<'a> {
    pub w: &'a ExpertTensor,
    pub first_row: u32,
    pub rows: u32,
}

impl ExpertRows<'_> {
    /// The pool's and the host copy's bindings.
    fn buffers(&self) -> Result<(&wgpu::Buffer, &wgpu::Buffer), GpuError> {
        whole_experts(self.w)
    }

    fn slab_bytes(&self) -> u32 {
        self.w.rows_per_expert() * self.w.row_bytes
    }
}

/// An expert tensor the fused expert kernels bind: pool and host copy one binding each.
pub(crate) fn whole_experts(w: &ExpertTensor) -> Result<(&wgpu::Buffer, &wgpu::Buffer), GpuError> {
    w.whole().ok_or_else(|| {
        GpuError::Shape(format!(
            "fused expert kernels read each of {} experts' pool and host copy in one binding; one of them is split",
            w.n_expert()
        ))
    })
}

/// A matrix the fused expert kernels bind whole: they cannot follow a split matrix.
pub(crate) fn single_piece(w: &QuantMatrix) -> Result<&wgpu::Buffer, GpuError> {
    match w.pieces.as_slice() {
        [piece] => Ok(&piece.buffer),
        _ => Err(GpuError::Shape(format!(
            "fused expert kernels read a {}-row matrix in one binding; it is split in {}",
            w.rows,
            w.pieces.len()
        ))),
    }
}

/// The shared expert's gate and up.
#[derive(Clone, Copy)]
pub struct SharedGateUp<'a> {
    pub gate: &'a QuantMatrix,
    pub up: &'a QuantMatrix,
}

/// The buffers [`moe_gate_up`] reads and writes besides the weights.
#[derive(Clone, Copy)]
pub struct GateUpBuffers<'a> {
    pub x: &'a wgpu::Buffer,
    pub norm_w: &'a wgpu::Buffer,
    pub eps: f32,
    /// The router's logits in, the picks and their weights out.
    pub logits: &'a wgpu::Buffer,
    pub ids: &'a wgpu::Buffer,
    pub route_w: &'a wgpu::Buffer,
    pub h: &'a wgpu::Buffer,
    /// Floats per slot in `h`.
    pub h_stride: u32,
}

/// The router's top-k of one token (`route`, its `n_tokens` 1), then `h[s] = silu(gate_s x^) *
/// (up_s x^)` for the `k` routed slots and the shared expert.
pub fn moe_gate_up(
    ctx: &GpuContext,
    cache: &PipelineCache,
    route: RouteShape,
    (gate, up): (ExpertRows<'_>, ExpertRows<'_>),
    shared: Option<SharedGateUp<'_>>,
    b: GateUpBuffers<'_>,
) -> Result<Dispatch, GpuError> {
    if gate.rows != up.rows {
        return Err(GpuError::Shape(format!(
            "moe_gate_up: gates of {} rows and ups of {}",
            gate.rows, up.rows
        )));
    }
    let width = gate.rows;
    let k = route.k;
    let table = &gate.w.table;
    if route.n_tokens != 1
        || route.n_expert > MAX_EXPERTS
        || k == 0
        || k > MAX_EXPERTS_USED.min(route.n_expert)
    {
        return Err(GpuError::Shape(format!(
            "moe_gate_up: one token's {k} of {} experts (at most {MAX_EXPERTS_USED} of {MAX_EXPERTS}), {} tokens given",
            route.n_expert, route.n_tokens
        )));
    }
    let (gate_pool, gate_host) = gate.buffers()?;
    let (up_pool, up_host) = up.buffers()?;
    // Without a shared expert its bindings repeat the routed gate, never read.
    let (weights_sg, weights_su, sg_row_bytes, su_row_bytes, shared_rows) = match shared {
        Some(s) => (
            single_piece(s.gate)?,
            single_piece(s.up)?,
            s.gate.row_bytes,
            s.up.row_bytes,
            s.gate.rows,
        ),
        None => (gate_pool, gate_pool, gate.w.row_bytes, gate.w.row_bytes, 0),
    };
    let shared_types = shared.map_or([gate.w.ty(); 2], |s| [s.gate.ty, s.up.ty]);
    let slots = k + u32::from(shared.is_some());
    let rows = rows_per_workgroup(ctx.features.matvec_min_grid, width.max(shared_rows), slots);
    let params = MoeGateUpParams {
        units: gate.w.cols() / 32,
        eps: b.eps,
        k,
        slots,
        rows: width,
        shared_rows,
        h_stride: b.h_stride,
        gate_row_bytes: gate.w.row_bytes,
        gate_slab: gate.slab_bytes(),
        gate_offset: gate.first_row * gate.w.row_bytes,
        up_row_bytes: up.w.row_bytes,
        up_slab: up.slab_bytes(),
        up_offset: up.first_row * up.w.row_bytes,
        shared_gate_row_bytes: sg_row_bytes,
        shared_up_row_bytes: su_row_bytes,
        n_expert: route.n_expert,
        renormalise: route.renormalise.into(),
        _pad: [0; 3],
    };
    let io = MoeGateUpIo {
        weights_g: gate_pool,
        weights_u: up_pool,
        weights_sg,
        weights_su,
        x: b.x,
        norm_w: b.norm_w,
        logits: b.logits,
        h: b.h,
        ids: b.ids,
        route_w: b.route_w,
        weights_gh: gate_host,
        weights_uh: up_host,
        location: &table.location,
        counts: &table.counts,
    };
    let kernel = Kernel::MoeGateUp {
        types: [gate.w.ty(), up.w.ty(), shared_types[0], shared_types[1]],
        rows,
    };
    let groups = width.max(shared_rows).div_ceil(rows);
    let (gx, gy) = grid(groups, ctx.limits.max_compute_workgroups_per_dimension);
    Dispatch::new(ctx, cache, kernel, &params, &io, [gx, gy, slots])
}
