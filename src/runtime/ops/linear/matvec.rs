//! `shaders/linear/matvec.wgsl`: `y = W x` for one token.

use crate::error::GpuError;
use crate::loader::quant::GgmlType;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::linear::{check_vec4_input, weight_includes, WeightUse};
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};
use crate::runtime::tensor::QuantMatrix;

/// Invocations per matvec workgroup.
pub const WG: u32 = 64;
/// Rows per matvec workgroup on a CPU device (each gets WG / ROWS invocations): each
/// workgroup costs a switch there, so few long ones.
pub const ROWS: u32 = 16;
/// The rows per workgroup the kernel is built for (WG / rows invocations per row).
pub const ROW_CHOICES: [u32; 5] = [1, 2, 4, 8, 16];
/// Workgroups a matvec launches at least on a GPU, where its rows allow: several for each
/// SM of a large GPU (132 on an H200), so the loads of many rows are in flight at once.
pub const MIN_GRID: u32 = 512;

/// Rows per workgroup for `slots` matvecs of `rows` rows: [`ROWS`] on a CPU device
/// (`min_grid` None); else the most rows (of [`ROW_CHOICES`]) that still launch `min_grid`
/// workgroups, down to one row per workgroup with all its lanes along the row.
pub fn rows_per_workgroup(min_grid: Option<u32>, rows: u32, slots: u32) -> u32 {
    let Some(min_grid) = min_grid else {
        return ROWS;
    };
    let fills = |r: u32| rows.div_ceil(r) as u64 * slots as u64 >= min_grid as u64;
    ROW_CHOICES
        .iter()
        .rev()
        .copied()
        .find(|&r| fills(r))
        .unwrap_or(1)
}

kernel_params! {
    /// `shaders/linear/matvec_rows.wgsl`'s `Params`, shared by matvec and matvec_experts.
    pub struct MatvecParams {
        pub rows: u32,
        /// 32-element units per row (cols / 32).
        pub units: u32,
        pub row_bytes: u32,
        /// Byte offset of row 0 in the weight buffer.
        pub weight_offset: u32,
        pub x_offset: u32,
        pub y_offset: u32,
        /// `matvec_experts`: the experts this buffer holds, and each slot's x and y strides.
        pub first_expert: u32,
        pub n_experts: u32,
        pub x_stride: u32,
        pub y_stride: u32,
        /// Slots sharing one x row (k for gate/up, 1 for down).
        pub x_group: u32,
        pub _pad: u32,
    }
}

kernel_io! {
    /// The buffers of one piece of a [`Matvec`].
    pub struct MatvecIo {
        weights: Read "[rows, row_bytes] GGUF blocks as u32 words",
        x: Read "[cols] f32, read as vec4",
        y: ReadWrite "[rows] f32",
    }
}

/// The matvec over weights of type `ty`, `rows` rows per workgroup.
pub fn declaration(ty: GgmlType, rows: u32) -> Result<Declaration, GpuError> {
    check_rows(rows)?;
    Ok(
        Declaration::of::<MatvecParams, MatvecIo>("matvec", "linear/matvec.wgsl")
            .include(weight_includes(ty, WeightUse::Dot)?)
            .include(["linear/matvec_rows.wgsl"])
            .constant("WG", WG)
            .constant("ROWS", rows),
    )
}

/// The lanes of a row add their partials in a tree, so rows divide WG in powers of two.
pub(crate) fn check_rows(rows: u32) -> Result<(), GpuError> {
    if rows == 0 || !rows.is_power_of_two() || rows > WG {
        return Err(GpuError::Shape(format!(
            "matvec: {rows} rows per workgroup (a power of two up to {WG})"
        )));
    }
    Ok(())
}

/// `y[y_offset..] = W x[x_offset..]`, one dispatch per piece of W.
pub struct Matvec {
    pieces: Vec<Dispatch>,
}

impl Matvec {
    pub fn new(
        ctx: &GpuContext,
        cache: &PipelineCache,
        w: &QuantMatrix,
        x: &wgpu::Buffer,
        x_offset: u32,
        y: &wgpu::Buffer,
        y_offset: u32,
    ) -> Result<Matvec, GpuError> {
        check_vec4_input("matvec", x_offset, 0)?;
        let pieces = w
            .pieces
            .iter()
            .map(|piece| {
                let params = MatvecParams {
                    rows: piece.rows,
                    units: w.cols / 32,
                    row_bytes: w.row_bytes,
                    weight_offset: 0,
                    x_offset,
                    y_offset: y_offset + piece.first_row,
                    first_expert: 0,
                    n_experts: 0,
                    x_stride: 0,
                    y_stride: 0,
                    x_group: 1,
                    _pad: 0,
                };
                let io = MatvecIo {
                    weights: &piece.buffer,
                    x,
                    y,
                };
                let rows = rows_per_workgroup(ctx.features.matvec_min_grid, piece.rows, 1);
                let kernel = Kernel::Matvec { ty: w.ty, rows };
                let workgroups = piece.rows.div_ceil(rows);
                Dispatch::line(ctx, cache, kernel, &params, &io, workgroups)
            })
            .collect::<Result<_, _>>()?;
        Ok(Matvec { pieces })
    }

    pub fn dispatch_count(&self) -> usize {
        self.pieces.len()
    }

    /// The workgroups of the smallest piece.
    pub fn min_workgroups(&self) -> Option<u64> {
        self.pieces.iter().map(Dispatch::workgroups).min()
    }

    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        for d in &self.pieces {
            d.encode(pass);
        }
    }
}
