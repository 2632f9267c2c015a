//! `shaders/moe/moe_down.wgsl`: a decode token's expert down projections, their weighted
//! sum with the gated shared expert, and the residual add, in one dispatch.

use crate::error::GpuError;
use crate::loader::quant::GgmlType;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::linear::matvec::{check_rows, rows_per_workgroup, WG};
use crate::runtime::ops::linear::{row_reader, ExpertWeights};
use crate::runtime::ops::moe::moe_gate_up::{single_piece, whole_experts};
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};
use crate::runtime::tensor::QuantMatrix;

kernel_params! {
    /// `shaders/moe/moe_down.wgsl`'s `Params`.
    pub struct MoeDownParams {
        pub units: u32,
        pub shared_units: u32,
        pub k: u32,
        pub has_shared: u32,
        pub rows: u32,
        pub row_bytes: u32,
        pub slab: u32,
        pub shared_row_bytes: u32,
        pub h_stride: u32,
        pub _pad: [u32; 3],
    }
}

kernel_io! {
    /// The buffers of [`moe_down`].
    pub struct MoeDownIo {
        weights_d: Read "[pool slots, n_embd, row_bytes] GGUF blocks as u32 words",
        weights_sd: Read "[n_embd, row_bytes] GGUF blocks: the shared expert's down",
        h: Read "[slots, h_stride] f32, read as vec4",
        ids: Read "[k] u32: the routed experts",
        route_w: Read "[k] f32: their weights",
        shared_logit: Read "[1] f32: the shared expert's gate logit",
        y: ReadWrite "[n_embd] f32: the residual stream, added into",
        weights_dh: Read "[n_expert, n_embd, row_bytes] GGUF blocks: every down in host memory",
        location: Read "[n_expert] u32: each expert's pool slot",
    }
}

/// The kernel over routed and shared down weights of `types`, `rows` rows per workgroup.
pub fn declaration(types: [GgmlType; 2], rows: u32) -> Result<Declaration, GpuError> {
    check_rows(rows)?;
    Ok(
        Declaration::of::<MoeDownParams, MoeDownIo>("moe_down", "moe/moe_down.wgsl")
            .namespace("_d", row_reader(types[0])?)
            .namespace("_sd", row_reader(types[1])?)
            .namespace("_dh", row_reader(types[0])?)
            .include(["moe/expert_slab.wgsl"])
            .constant("WG", WG)
            .constant("ROWS", rows),
    )
}

/// The shared expert's down projection and its gate's logit.
#[derive(Clone, Copy)]
pub struct SharedDown<'a> {
    pub down: &'a QuantMatrix,
    pub logit: &'a wgpu::Buffer,
}

/// The router's choice and the experts' hidden rows.
#[derive(Clone, Copy)]
pub struct DownBuffers<'a> {
    pub h: &'a wgpu::Buffer,
    /// Floats per slot in `h`.
    pub h_stride: u32,
    pub ids: &'a wgpu::Buffer,
    pub route_w: &'a wgpu::Buffer,
    /// The residual stream.
    pub y: &'a wgpu::Buffer,
}

/// `y += sum_j w_j down_{ids[j]} h[j] + sigmoid(logit) down_s h[k]`.
pub fn moe_down(
    ctx: &GpuContext,
    cache: &PipelineCache,
    k: u32,
    experts: ExpertWeights<'_>,
    shared: Option<SharedDown<'_>>,
    b: DownBuffers<'_>,
) -> Result<Dispatch, GpuError> {
    let down = experts.w;
    let n_embd = down.rows_per_expert();
    let (pool, host) = whole_experts(down)?;
    // Without a shared expert its binding repeats the routed pool, never read.
    let (weights_sd, sd_cols, sd_row_bytes, sd_ty) = match shared {
        Some(s) => (
            single_piece(s.down)?,
            s.down.cols,
            s.down.row_bytes,
            s.down.ty,
        ),
        None => (pool, down.cols(), down.row_bytes, down.ty()),
    };
    let rows = rows_per_workgroup(ctx.features.matvec_min_grid, n_embd, 1);
    let params = MoeDownParams {
        units: down.cols() / 32,
        shared_units: sd_cols / 32,
        k,
        has_shared: u32::from(shared.is_some()),
        rows: n_embd,
        row_bytes: down.row_bytes,
        slab: n_embd * down.row_bytes,
        shared_row_bytes: sd_row_bytes,
        h_stride: b.h_stride,
        _pad: [0; 3],
    };
    let io = MoeDownIo {
        weights_d: pool,
        weights_sd,
        h: b.h,
        ids: b.ids,
        route_w: b.route_w,
        shared_logit: shared.map_or(b.route_w, |s| s.logit),
        y: b.y,
        weights_dh: host,
        location: &down.table.location,
    };
    let kernel = Kernel::MoeDown {
        types: [down.ty(), sd_ty],
        rows,
    };
    Dispatch::line(ctx, cache, kernel, &params, &io, n_embd.div_ceil(rows))
}
