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
/// Rows per matvec workgroup (each gets WG / ROWS invocations).
pub const ROWS: u32 = 16;

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

pub fn declaration(ty: GgmlType) -> Result<Declaration, GpuError> {
    Ok(
        Declaration::of::<MatvecParams, MatvecIo>("matvec", "linear/matvec.wgsl")
            .include(weight_includes(ty, WeightUse::Dot)?)
            .include(["linear/matvec_rows.wgsl"])
            .constant("WG", WG)
            .constant("ROWS", ROWS),
    )
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
                let workgroups = piece.rows.div_ceil(ROWS);
                Dispatch::line(ctx, cache, Kernel::Matvec(w.ty), &params, &io, workgroups)
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
