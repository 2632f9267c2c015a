//! Launchers of `shaders/linear/`.

use crate::error::GpuError;
use crate::runtime::gpu::GpuContext;
use crate::runtime::ops::Dispatch;
use crate::runtime::params::{EmbedParams, MatmulParams, MatvecParams};
use crate::runtime::pipeline::{Kernel, PipelineCache};
use crate::runtime::tensor::QuantMatrix;

/// The matvec kernels read x four floats at a time, so its offset and row stride must be
/// multiples of 4 floats.
pub(crate) fn check_vec4_input(kernel: &str, offset: u32, stride: u32) -> Result<(), GpuError> {
    if offset % 4 != 0 || stride % 4 != 0 {
        return Err(GpuError::Shape(format!(
            "{kernel}: input offset {offset} and stride {stride} must be multiples of 4 floats"
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
        let kernel = Kernel::Matvec(w.ty);
        let rows_per_group = kernel.override_value("ROWS");
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
                Dispatch::new(
                    ctx,
                    cache,
                    kernel,
                    &params,
                    &[&piece.buffer, x, y],
                    piece.rows.div_ceil(rows_per_group),
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(Matvec { pieces })
    }

    pub fn dispatch_count(&self) -> usize {
        self.pieces.len()
    }

    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        for d in &self.pieces {
            d.encode(pass);
        }
    }
}

/// `out[t] = table[tokens[t]]` dequantized, one dispatch per piece of the table.
pub fn embed(
    ctx: &GpuContext,
    cache: &PipelineCache,
    table: &QuantMatrix,
    n_tokens: u32,
    tokens: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Result<Vec<Dispatch>, GpuError> {
    let kernel = Kernel::Embed(table.ty);
    let units = table.cols / 32;
    let workgroups = (n_tokens * units).div_ceil(kernel.override_value("WG"));
    table
        .pieces
        .iter()
        .map(|piece| {
            let params = EmbedParams {
                n_tokens,
                units,
                row_bytes: table.row_bytes,
                first_row: piece.first_row,
                rows: piece.rows,
                _pad: [0; 3],
            };
            Dispatch::new(
                ctx,
                cache,
                kernel,
                &params,
                &[&piece.buffer, tokens, out],
                workgroups,
            )
        })
        .collect()
}

/// Tokens and rows per matmul workgroup (the shader's TILE).
pub const MATMUL_TILE: u32 = 64;

/// Rows of f32 in a buffer: row t starts at `offset + t * stride`.
#[derive(Clone, Copy)]
pub struct Strided<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub stride: u32,
    pub offset: u32,
}

impl<'a> Strided<'a> {
    /// Packed rows of `stride` floats from the start of `buffer`.
    pub fn rows(buffer: &'a wgpu::Buffer, stride: u32) -> Strided<'a> {
        Strided {
            buffer,
            stride,
            offset: 0,
        }
    }

    pub fn at(self, offset: u32) -> Strided<'a> {
        Strided { offset, ..self }
    }
}

/// `y[t][r] = W x[t]` for `n_tokens` rows of x (the first `W.cols` floats of each used),
/// one dispatch per piece of W.
pub fn matmul(
    ctx: &GpuContext,
    cache: &PipelineCache,
    w: &QuantMatrix,
    n_tokens: u32,
    x: Strided<'_>,
    y: Strided<'_>,
) -> Result<Vec<Dispatch>, GpuError> {
    if x.stride < w.cols || y.stride < w.rows {
        return Err(GpuError::Shape(format!(
            "matmul: x rows of {} for {} columns, y rows of {} for {} rows",
            x.stride, w.cols, y.stride, w.rows
        )));
    }
    w.pieces
        .iter()
        .map(|piece| {
            let params = MatmulParams {
                rows: piece.rows,
                units: w.cols / 32,
                row_bytes: w.row_bytes,
                n_tokens,
                x_stride: x.stride,
                y_stride: y.stride,
                x_offset: x.offset,
                y_offset: y.offset + piece.first_row,
                first_expert: 0,
                x_group: 1,
                _pad: [0; 2],
            };
            // The tile code shared with matmul_experts names its slot order (binding 4),
            // which this entry point never reads: x stands in for it.
            Dispatch::with_bindings(
                ctx,
                cache,
                Kernel::Matmul(w.ty),
                &params,
                &[
                    (1, &piece.buffer),
                    (2, x.buffer),
                    (3, y.buffer),
                    (4, x.buffer),
                ],
                [
                    piece.rows.div_ceil(MATMUL_TILE),
                    n_tokens.div_ceil(MATMUL_TILE),
                    1,
                ],
            )
        })
        .collect()
}
