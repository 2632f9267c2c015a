//! `shaders/linear/matvec_batch.wgsl`: the matvec of a step over a few tokens (a decode step
//! of several sequences, a short prompt chunk), each weight unit decoded once for all of
//! them.

use crate::error::GpuError;
use crate::loader::quant::GgmlType;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::linear::matmul::Strided;
use crate::runtime::ops::linear::matvec::WG;
use crate::runtime::ops::linear::{check_strided, check_vec4_input, weight_includes, WeightUse};
use crate::runtime::ops::{grid, Dispatch};
use crate::runtime::pipeline::{Kernel, PipelineCache};
use crate::runtime::tensor::QuantMatrix;

/// Columns (tokens) one dispatch multiplies: the kernel's accumulator count.
pub const COLS: u32 = 8;
/// Steps of at most this many tokens take [`matvec_batch`] rather than the tiled matmul,
/// whose 64-token tiles would be mostly empty (on lavapipe a 2048 x 2048 q4_K matmul of 1
/// to 16 tokens takes 30x the matvec's time).
pub const MAX_TOKENS: u32 = 16;
/// Rows per workgroup the kernel is built for: on a GPU 4 (16 lanes along each row, and
/// 512 workgroups for a 2048-row matrix), on a CPU device 128 (it pays per workgroup, as the
/// matvec does).
pub const ROW_CHOICES: [u32; 2] = [4, 128];

/// Rows an invocation multiplies with each x element it loads, for `rows` per workgroup: 1
/// on a GPU (lanes along K, 16 a row; x comes from cache), 8 on a CPU device, 4 lanes a
/// group of rows. On lavapipe an x load costs a loop over the SIMD lanes: at 1 row it was
/// 90% of the kernel's time, and 8 rows sharing it made 8 columns of a 2048 x 2048 q4_K
/// matrix 6x faster (`cargo bench --bench kernels -- matvec_batch`: 202 ms to 32 ms).
pub fn rows_per_invocation(rows: u32) -> u32 {
    if rows >= ROW_CHOICES[1] {
        CPU_ROWS_PER_INVOCATION
    } else {
        1
    }
}
const CPU_ROWS_PER_INVOCATION: u32 = 8;

/// Workgroup memory the CPU split's partial sums take (`linear/dot_cols/sum.wgsl`: every
/// invocation's 8 rows x [`COLS`] columns), plus room for a grouped kernel's expert range.
const CPU_SPLIT_WORKGROUP_BYTES: u32 = WG * CPU_ROWS_PER_INVOCATION * COLS * 4 + 16;

/// The rows per workgroup this device runs: a GPU's split, or a CPU device's where it
/// offers the workgroup memory the CPU split's sums need (WebGPU promises only 16 KiB; a
/// CPU device without more takes the GPU split, which needs 2 KiB).
pub fn rows_for(ctx: &GpuContext) -> u32 {
    let cpu = ctx.features.matvec_min_grid.is_none()
        && ctx.limits.max_compute_workgroup_storage_size >= CPU_SPLIT_WORKGROUP_BYTES;
    ROW_CHOICES[usize::from(cpu)]
}

kernel_params! {
    /// `shaders/linear/matvec_batch.wgsl`'s `Params`.
    pub struct MatvecBatchParams {
        pub rows: u32,
        /// 32-element units per row (cols / 32).
        pub units: u32,
        pub row_bytes: u32,
        pub n_cols: u32,
        pub x_stride: u32,
        pub x_offset: u32,
        pub y_stride: u32,
        pub y_offset: u32,
    }
}

kernel_io! {
    /// The buffers of one piece of [`matvec_batch`].
    pub struct MatvecBatchIo {
        weights: Read "[rows, row_bytes] GGUF blocks as u32 words",
        x: Read "[n_cols, x_stride] f32, read as vec4",
        y: ReadWrite "[n_cols, y_stride] f32",
    }
}

pub fn declaration(ty: GgmlType, rows: u32) -> Result<Declaration, GpuError> {
    let per_invocation = rows_per_invocation(rows);
    if !rows.is_power_of_two() || rows < per_invocation || rows > WG * per_invocation {
        return Err(GpuError::Shape(format!(
            "matvec_batch: {rows} rows per workgroup (a power of two from {per_invocation} to {})",
            WG * per_invocation
        )));
    }
    Ok(Declaration::of::<MatvecBatchParams, MatvecBatchIo>(
        "matvec_batch",
        "linear/matvec_batch.wgsl",
    )
    .include(weight_includes(ty, WeightUse::DotColumns)?)
    .include(["linear/dot_cols/sum.wgsl"])
    .constant("WG", WG)
    .constant("ROWS", rows)
    .constant("RPI", per_invocation)
    .constant("COLS", COLS))
}

/// `y[t] = W x[t]` for `n_tokens` rows of x: one dispatch per piece of W and per
/// [`COLS`] tokens.
pub fn matvec_batch(
    ctx: &GpuContext,
    cache: &PipelineCache,
    w: &QuantMatrix,
    n_tokens: u32,
    x: Strided<'_>,
    y: Strided<'_>,
) -> Result<Vec<Dispatch>, GpuError> {
    check_vec4_input("matvec_batch", x.offset, x.stride)?;
    check_strided("matvec_batch", w, x, y)?;
    let rows = rows_for(ctx);
    let mut dispatches = Vec::new();
    for first in (0..n_tokens).step_by(COLS as usize) {
        for piece in &w.pieces {
            let params = MatvecBatchParams {
                rows: piece.rows,
                units: w.cols / 32,
                row_bytes: w.row_bytes,
                n_cols: (n_tokens - first).min(COLS),
                x_stride: x.stride,
                x_offset: x.offset + first * x.stride,
                y_stride: y.stride,
                y_offset: y.offset + first * y.stride + piece.first_row,
            };
            let io = MatvecBatchIo {
                weights: &piece.buffer,
                x: x.buffer,
                y: y.buffer,
            };
            let groups = piece.rows.div_ceil(rows);
            let (gx, gy) = grid(groups, ctx.limits.max_compute_workgroups_per_dimension);
            let kernel = Kernel::MatvecBatch { ty: w.ty, rows };
            dispatches.push(Dispatch::new(
                ctx,
                cache,
                kernel,
                &params,
                &io,
                [gx, gy, 1],
            )?);
        }
    }
    Ok(dispatches)
}
