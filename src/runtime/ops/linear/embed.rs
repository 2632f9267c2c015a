//! `shaders/linear/embed.wgsl`: rows of an embedding table, dequantized.

use crate::error::GpuError;
use crate::loader::quant::GgmlType;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::linear::{weight_includes, WeightUse};
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};
use crate::runtime::tensor::QuantMatrix;

/// Invocations per embed workgroup, one per (token, 32-element unit).
pub const WG: u32 = 64;

kernel_params! {
    /// `shaders/linear/embed.wgsl`'s `Params`.
    pub struct EmbedParams {
        pub n_tokens: u32,
        pub units: u32,
        pub row_bytes: u32,
        pub first_row: u32,
        pub rows: u32,
        pub _pad: [u32; 3],
    }
}

kernel_io! {
    /// The buffers of one piece of [`embed`].
    pub struct EmbedIo {
        weights: Read "[rows, row_bytes] GGUF blocks as u32 words",
        tokens: Read "[n_tokens] u32",
        out: ReadWrite "[n_tokens, units * 32] f32",
    }
}

pub fn declaration(ty: GgmlType) -> Result<Declaration, GpuError> {
    Ok(
        Declaration::of::<EmbedParams, EmbedIo>("embed", "linear/embed.wgsl")
            .include(weight_includes(ty, WeightUse::Decode)?)
            .constant("WG", WG),
    )
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
    let units = table.cols / 32;
    let workgroups = (n_tokens * units).div_ceil(WG);
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
            let io = EmbedIo {
                weights: &piece.buffer,
                tokens,
                out,
            };
            Dispatch::line(
                ctx,
                cache,
                Kernel::Embed(table.ty),
                &params,
                &io,
                workgroups,
            )
        })
        .collect()
}
