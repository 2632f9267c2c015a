//! Launchers of `shaders/moe/` and of the expert-indexed matvec.

use crate::error::GpuError;
use crate::runtime::gpu::GpuContext;
use crate::runtime::ops::linear::MATMUL_TILE;
use crate::runtime::ops::Dispatch;
use crate::runtime::params::{
    CombineParams, GroupParams, MatmulParams, MatvecParams, RouterParams,
};
use crate::runtime::pipeline::{Kernel, PipelineCache};
use crate::runtime::tensor::QuantMatrix;

/// Limits of the router kernel's workgroup arrays.
pub const MAX_EXPERTS: u32 = 512;
pub const MAX_EXPERTS_USED: u32 = 16;

/// Softmax + top-k of `n_tokens` rows of router logits into `ids` and `weights`.
#[allow(clippy::too_many_arguments)]
pub fn moe_route(
    ctx: &GpuContext,
    cache: &PipelineCache,
    n_expert: u32,
    k: u32,
    n_tokens: u32,
    renormalise: bool,
    logits: &wgpu::Buffer,
    ids: &wgpu::Buffer,
    weights: &wgpu::Buffer,
) -> Result<Dispatch, GpuError> {
    if n_expert == 0 || n_expert > MAX_EXPERTS || k == 0 || k > MAX_EXPERTS_USED || k > n_expert {
        return Err(GpuError::Shape(format!(
            "moe_route: {k} of {n_expert} experts (the kernel takes up to {MAX_EXPERTS_USED} of {MAX_EXPERTS})"
        )));
    }
    let params = RouterParams {
        n_expert,
        k,
        n_tokens,
        renormalise: u32::from(renormalise),
    };
    Dispatch::new(
        ctx,
        cache,
        Kernel::MoeRoute,
        &params,
        &[logits, ids, weights],
        n_tokens,
    )
}

/// Slots from which [`expert_matvec`] takes the many-slot kernel.
pub const MANY_SLOTS: u32 = 64;

/// How the slots of [`expert_matvec`] find their inputs: x row `s / group` of `stride`
/// floats (group = k when a token's k experts share its input, 1 when each slot has its own).
#[derive(Debug, Clone, Copy)]
pub struct SlotInput {
    pub stride: u32,
    pub group: u32,
}

/// Where slot s of [`expert_matvec`] writes: `offset + s * stride`.
#[derive(Debug, Clone, Copy)]
pub struct SlotOutput {
    pub stride: u32,
    pub offset: u32,
}

/// For each of `slots` routed experts (ids read on the GPU): `y[s] = W_{ids[s]} x[s / group]`,
/// where `w` holds the experts' slabs of `rows_per_expert` rows (split on expert boundaries).
/// `slots = n_tokens * k` makes it the prefill form.
#[allow(clippy::too_many_arguments)]
pub fn expert_matvec(
    ctx: &GpuContext,
    cache: &PipelineCache,
    w: &QuantMatrix,
    rows_per_expert: u32,
    slots: u32,
    ids: &wgpu::Buffer,
    x: &wgpu::Buffer,
    input: SlotInput,
    y: &wgpu::Buffer,
    output: SlotOutput,
) -> Result<Vec<Dispatch>, GpuError> {
    if input.group == 0 {
        return Err(GpuError::Shape("expert_matvec: slot group 0".into()));
    }
    super::linear::check_vec4_input("expert_matvec", 0, input.stride)?;
    // A prompt chunk's many slots keep the device busy with fewer, longer workgroups.
    let kernel = if slots >= MANY_SLOTS {
        Kernel::MatvecSlots(w.ty)
    } else {
        Kernel::MatvecExperts(w.ty)
    };
    let groups = rows_per_expert.div_ceil(kernel.override_value("ROWS"));
    w.pieces
        .iter()
        .map(|piece| {
            let params = MatvecParams {
                rows: rows_per_expert,
                units: w.cols / 32,
                row_bytes: w.row_bytes,
                weight_offset: 0,
                x_offset: 0,
                y_offset: output.offset,
                first_expert: piece.first_row / rows_per_expert,
                n_experts: piece.rows / rows_per_expert,
                x_stride: input.stride,
                y_stride: output.stride,
                x_group: input.group,
                _pad: 0,
            };
            let max = ctx.limits.max_compute_workgroups_per_dimension;
            let (gx, gy) = super::grid(groups, max);
            Dispatch::with_bindings(
                ctx,
                cache,
                kernel,
                &params,
                &[(1, &piece.buffer), (2, x), (3, y), (4, ids)],
                [gx, gy, slots],
            )
        })
        .collect()
}

/// Groups `slots` routed slots by expert: `order` (slot ids by expert) and `offsets`
/// (`n_expert + 1` range starts), for [`expert_matmul`].
pub fn moe_group(
    ctx: &GpuContext,
    cache: &PipelineCache,
    n_expert: u32,
    slots: u32,
    ids: &wgpu::Buffer,
    order: &wgpu::Buffer,
    offsets: &wgpu::Buffer,
) -> Result<Dispatch, GpuError> {
    if n_expert == 0 || n_expert > MAX_EXPERTS {
        return Err(GpuError::Shape(format!(
            "moe_group: {n_expert} experts (1..={MAX_EXPERTS})"
        )));
    }
    let params = GroupParams {
        n_expert,
        slots,
        _pad: [0; 2],
    };
    Dispatch::new(
        ctx,
        cache,
        Kernel::MoeGroup,
        &params,
        &[ids, order, offsets],
        1,
    )
}

/// The prefill form of [`expert_matvec`] with the slots grouped by expert ([`moe_group`]):
/// each expert's weights are read once per tile of its slots. Every token routes to an
/// expert at most once, so an expert has at most `n_tokens` slots.
#[allow(clippy::too_many_arguments)]
pub fn expert_matmul(
    ctx: &GpuContext,
    cache: &PipelineCache,
    w: &QuantMatrix,
    rows_per_expert: u32,
    n_tokens: u32,
    order: &wgpu::Buffer,
    offsets: &wgpu::Buffer,
    x: &wgpu::Buffer,
    input: SlotInput,
    y: &wgpu::Buffer,
    output: SlotOutput,
) -> Result<Vec<Dispatch>, GpuError> {
    if input.group == 0 || input.stride < w.cols || output.stride < rows_per_expert {
        return Err(GpuError::Shape(format!(
            "expert_matmul: slot group {}, x rows of {} for {} columns, y rows of {} for {} rows",
            input.group, input.stride, w.cols, output.stride, rows_per_expert
        )));
    }
    w.pieces
        .iter()
        .map(|piece| {
            let params = MatmulParams {
                rows: rows_per_expert,
                units: w.cols / 32,
                row_bytes: w.row_bytes,
                n_tokens,
                x_stride: input.stride,
                y_stride: output.stride,
                x_offset: 0,
                y_offset: output.offset,
                first_expert: piece.first_row / rows_per_expert,
                x_group: input.group,
                _pad: [0; 2],
            };
            Dispatch::with_bindings(
                ctx,
                cache,
                Kernel::MatmulExperts(w.ty),
                &params,
                &[(1, &piece.buffer), (2, x), (3, y), (4, order), (5, offsets)],
                [
                    rows_per_expert.div_ceil(MATMUL_TILE),
                    piece.rows / rows_per_expert,
                    n_tokens.div_ceil(MATMUL_TILE),
                ],
            )
        })
        .collect()
}

fn elementwise_grid(ctx: &GpuContext, n: u32, kernel: Kernel) -> [u32; 3] {
    let groups = n.div_ceil(kernel.override_value("WG"));
    let (x, y) = super::grid(groups, ctx.limits.max_compute_workgroups_per_dimension);
    [x, y, 1]
}

/// `h[s][i] = silu(g[s][i]) * u[s][i]` for `slots` rows of `width`, gate at 0 and up at
/// `up_offset` within each `slot_stride`-float slot of `gate_up`.
#[allow(clippy::too_many_arguments)]
pub fn swiglu(
    ctx: &GpuContext,
    cache: &PipelineCache,
    slots: u32,
    width: u32,
    slot_stride: u32,
    up_offset: u32,
    gate_up: &wgpu::Buffer,
    h: &wgpu::Buffer,
) -> Result<Dispatch, GpuError> {
    let n = slots * width;
    let params = CombineParams {
        n,
        width,
        slot_stride,
        up_offset,
        k: 0,
        with_shared: 0,
        _pad: [0; 2],
    };
    let grid = elementwise_grid(ctx, n, Kernel::Swiglu);
    Dispatch::with_bindings(
        ctx,
        cache,
        Kernel::Swiglu,
        &params,
        &[(1, gate_up), (2, h)],
        grid,
    )
}

/// `y = sum_j w_j e_j (+ sigmoid(shared_logit) shared)` for `n_tokens` tokens of `width`.
#[allow(clippy::too_many_arguments)]
pub fn moe_combine(
    ctx: &GpuContext,
    cache: &PipelineCache,
    n_tokens: u32,
    width: u32,
    k: u32,
    expert_out: &wgpu::Buffer,
    expert_w: &wgpu::Buffer,
    shared: Option<(&wgpu::Buffer, &wgpu::Buffer)>,
    y: &wgpu::Buffer,
) -> Result<Dispatch, GpuError> {
    let n = n_tokens * width;
    let params = CombineParams {
        n,
        width,
        slot_stride: 0,
        up_offset: 0,
        k,
        with_shared: u32::from(shared.is_some()),
        _pad: [0; 2],
    };
    // Without a shared expert the bindings still need buffers; the kernel never reads them.
    let (shared_out, shared_logit) = shared.unwrap_or((expert_out, expert_w));
    let grid = elementwise_grid(ctx, n, Kernel::MoeCombine);
    Dispatch::with_bindings(
        ctx,
        cache,
        Kernel::MoeCombine,
        &params,
        &[
            (3, expert_out),
            (4, expert_w),
            (5, shared_out),
            (6, shared_logit),
            (7, y),
        ],
        grid,
    )
}
