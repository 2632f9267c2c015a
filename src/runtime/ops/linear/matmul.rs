//! `shaders/linear/matmul.wgsl`: `Y = X W^T` for a block of tokens (prefill).

use crate::error::GpuError;
use crate::loader::quant::GgmlType;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::linear::{weight_includes, WeightUse};
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};
use crate::runtime::tensor::QuantMatrix;

/// Rows per matmul workgroup: each invocation owns 4 rows (16 apart) of the tile.
pub const TILE: u32 = 64;
/// Invocations per matmul workgroup: 16 row groups x 16 token groups.
pub const WG: u32 = 256;
/// Token tiles the kernels are built for: each invocation owns `tokens / 16` of a tile's
/// tokens. The dense matmul takes the largest; `matmul_experts` sizes its tile to the
/// tokens an expert gets.
pub const TOKEN_TILES: [u32; 3] = [16, 32, 64];
/// The dense matmul's token tile.
pub const TOKENS: u32 = 64;

kernel_params! {
    /// `shaders/linear/matmul_tile.wgsl`'s `Params`, shared by matmul and matmul_experts.
    pub struct MatmulParams {
        pub rows: u32,
        pub units: u32,
        pub row_bytes: u32,
        pub n_tokens: u32,
        pub x_stride: u32,
        pub y_stride: u32,
        pub x_offset: u32,
        pub y_offset: u32,
        /// `matmul_experts`: the first expert this buffer holds, and slots per x row.
        pub first_expert: u32,
        pub x_group: u32,
        pub _pad: [u32; 2],
    }
}

kernel_io! {
    /// The buffers of one piece of [`matmul`].
    pub struct MatmulIo {
        weights: Read "[rows, row_bytes] GGUF blocks as u32 words",
        x: Read "[n_tokens, x_stride] f32",
        y: ReadWrite "[n_tokens, y_stride] f32",
    }
}

/// The files and constants of both matmul kernels, with tiles of `tokens` tokens (one of
/// [`TOKEN_TILES`]).
pub(crate) fn tiled(decl: Declaration, ty: GgmlType, tokens: u32) -> Result<Declaration, GpuError> {
    if !TOKEN_TILES.contains(&tokens) {
        return Err(GpuError::Pipeline(format!(
            "{}: token tile {tokens}, not one of {TOKEN_TILES:?}",
            decl.entry
        )));
    }
    Ok(decl
        .include(weight_includes(ty, WeightUse::Stage)?)
        .include(["linear/matmul_tile.wgsl"])
        .constant("TILE", TILE)
        .constant("TOKENS", tokens)
        .constant("WG", WG))
}

pub fn declaration(ty: GgmlType) -> Result<Declaration, GpuError> {
    tiled(
        Declaration::of::<MatmulParams, MatmulIo>("matmul", "linear/matmul.wgsl"),
        ty,
        TOKENS,
    )
}

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
            let io = MatmulIo {
                weights: &piece.buffer,
                x: x.buffer,
                y: y.buffer,
            };
            let grid = [piece.rows.div_ceil(TILE), n_tokens.div_ceil(TOKENS), 1];
            Dispatch::new(ctx, cache, Kernel::Matmul(w.ty), &params, &io, grid)
        })
        .collect()
}
