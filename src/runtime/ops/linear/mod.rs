//! Launchers of `shaders/linear/`: the kernels that read a weight matrix kept in its GGUF
//! block format (matvec, matmul and their expert forms, embedding rows).

pub mod embed;
pub mod matmul;
pub mod matmul_experts;
pub mod matvec;
pub mod matvec_batch;
pub mod matvec_batch_experts;
pub mod matvec_experts;

pub use embed::embed;
pub use matmul::{matmul, Strided};
pub use matmul_experts::{matmul_experts, ExpertGroups};
pub use matvec::{GatedHeadNorm, InputNorm, Matvec, MatvecInput, Projection, RowNorm};
pub use matvec_batch::matvec_batch;
pub use matvec_batch_experts::matvec_batch_experts;
pub use matvec_experts::{matvec_experts, ExpertWeights, SlotInput, SlotOutput, MANY_SLOTS};

use crate::error::GpuError;
use crate::loader::quant::GgmlType;

/// How a kernel consumes the weight type's blocks, which picks the files it includes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WeightUse {
    /// A row dot product (`unit_dot`): the matvec kernels.
    Dot,
    /// Units staged into workgroup tiles (`stage_unit`): the matmul kernels.
    Stage,
    /// Units staged as integer quants and per-half factors: the 8-bit matmul tile, for the
    /// types [`stage_int8_file`] has.
    StageInt8,
    /// Units decoded to floats (`unit_values`): embedding rows.
    Decode,
    /// A unit's dot with several inputs (`unit_dot_cols`): the batched matvec.
    DotColumns,
}

/// The shared pieces a kernel over weights of type `ty` includes: byte helpers, the block
/// decoder (`linear/quant/<type>.wgsl`, after any helper it needs), then the dot or stage.
pub(crate) fn weight_includes(
    ty: GgmlType,
    weight_use: WeightUse,
) -> Result<Vec<&'static str>, GpuError> {
    let decoder = match ty {
        GgmlType::F32 => "linear/quant/f32.wgsl",
        GgmlType::F16 => "linear/quant/f16.wgsl",
        GgmlType::Bf16 => "linear/quant/bf16.wgsl",
        GgmlType::Q4_0 => "linear/quant/q4_0.wgsl",
        GgmlType::Q4_1 => "linear/quant/q4_1.wgsl",
        GgmlType::Q5_0 => "linear/quant/q5_0.wgsl",
        GgmlType::Q5_1 => "linear/quant/q5_1.wgsl",
        GgmlType::Q8_0 => "linear/quant/q8_0.wgsl",
        GgmlType::Q2K => "linear/quant/q2_k.wgsl",
        GgmlType::Q3K => "linear/quant/q3_k.wgsl",
        GgmlType::Q4K => "linear/quant/q4_k.wgsl",
        GgmlType::Q5K => "linear/quant/q5_k.wgsl",
        GgmlType::Q6K => "linear/quant/q6_k.wgsl",
        GgmlType::Q8K => "linear/quant/q8_k.wgsl",
        GgmlType::Iq4Nl => "linear/quant/iq4_nl.wgsl",
        GgmlType::Iq4Xs => "linear/quant/iq4_xs.wgsl",
        GgmlType::Mxfp4 => "linear/quant/mxfp4.wgsl",
        other => return Err(GpuError::UnsupportedType(other)),
    };
    let mut files = vec!["common/bytes.wgsl"];
    if matches!(ty, GgmlType::Q4K | GgmlType::Q5K) {
        files.push("linear/quant/k4_scales.wgsl");
    }
    if matches!(ty, GgmlType::Iq4Nl | GgmlType::Iq4Xs) {
        files.push("linear/quant/iq4_levels.wgsl");
    }
    files.push(decoder);
    match weight_use {
        WeightUse::Dot => files.push(dot_file(ty)),
        WeightUse::Stage => files.push(stage_file(ty)),
        WeightUse::StageInt8 => files.push(stage_int8_file(ty).ok_or_else(|| {
            GpuError::Pipeline(format!("no 8-bit matmul staging for {ty} weights"))
        })?),
        WeightUse::Decode => {}
        WeightUse::DotColumns => {
            files.extend_from_slice(dot_columns_files(ty));
            files.push("linear/dot_cols/group.wgsl");
        }
    }
    Ok(files)
}

/// The files of one weight reader of the matvec kernels (`rows_dot` over `unit_dot`), for a
/// [`Namespace`](crate::runtime::kernel::Namespace).
pub(crate) fn row_reader(ty: GgmlType) -> Result<Vec<&'static str>, GpuError> {
    let mut files = weight_includes(ty, WeightUse::Dot)?;
    files.push("linear/matvec_rows.wgsl");
    Ok(files)
}

/// The files of one weight reader of `rows_dots` (the dots of `per_invocation` rows an
/// invocation), for a [`Namespace`](crate::runtime::kernel::Namespace): at 1, lanes along K
/// over [`row_reader`] (GPUs); past it, each x element read once for all the rows, over the
/// column dots (CPU devices).
pub(crate) fn rows_dots_reader(
    ty: GgmlType,
    per_invocation: u32,
) -> Result<Vec<&'static str>, GpuError> {
    let mut files = if per_invocation == 1 {
        row_reader(ty)?
    } else {
        weight_includes(ty, WeightUse::DotColumns)?
    };
    files.push(match per_invocation {
        1 => "linear/rows_dots/lanes.wgsl",
        _ => "linear/rows_dots/shared_x.wgsl",
    });
    Ok(files)
}

/// The matvec's `unit_dot` for `ty`: a word-wise dot for the common quantizations, else
/// the generic one over the decoder's `unit_values` (q4_0 and q5_0 that way took 1.26x and
/// 1.23x the time of their word-wise dots: `cargo bench --bench kernels -- "2048 x 2048"`,
/// lavapipe).
fn dot_file(ty: GgmlType) -> &'static str {
    match ty {
        GgmlType::F32 => "linear/dot/f32.wgsl",
        GgmlType::F16 => "linear/dot/f16.wgsl",
        GgmlType::Q4_0 => "linear/dot/q4_0.wgsl",
        GgmlType::Q4_1 => "linear/dot/q4_1.wgsl",
        GgmlType::Q5_0 => "linear/dot/q5_0.wgsl",
        GgmlType::Q5_1 => "linear/dot/q5_1.wgsl",
        GgmlType::Q8_0 => "linear/dot/q8_0.wgsl",
        GgmlType::Q4K => "linear/dot/q4_k.wgsl",
        GgmlType::Q6K => "linear/dot/q6_k.wgsl",
        GgmlType::Q5K => "linear/dot/q5_k.wgsl",
        GgmlType::Bf16 => "linear/dot/bf16.wgsl",
        GgmlType::Iq4Xs => "linear/dot/iq4_xs.wgsl",
        GgmlType::Iq4Nl | GgmlType::Mxfp4 => "linear/dot/nibble_table.wgsl",
        _ => "linear/unit_dot.wgsl",
    }
}

/// The batched matvec's `unit_dot_cols` for `ty`, after the column loop it calls: word-wise
/// for every type but the rarely shipped q2_K, q3_K, q8_K and the float ones, else over the
/// decoder's `unit_values`.
fn dot_columns_files(ty: GgmlType) -> &'static [&'static str] {
    match ty {
        GgmlType::Q4K => &["linear/dot_cols/pair.wgsl", "linear/dot_cols/q4_k.wgsl"],
        GgmlType::Q5K => &["linear/dot_cols/pair.wgsl", "linear/dot_cols/q5_k.wgsl"],
        GgmlType::Q6K => &["linear/dot_cols/q6_k.wgsl"],
        GgmlType::Q8_0 => &["linear/dot_cols/units.wgsl", "linear/dot_cols/q8_0.wgsl"],
        GgmlType::Q4_0 => &["linear/dot_cols/units.wgsl", "linear/dot_cols/q4_0.wgsl"],
        GgmlType::Iq4Xs => &["linear/dot_cols/units.wgsl", "linear/dot_cols/iq4_xs.wgsl"],
        GgmlType::Iq4Nl | GgmlType::Mxfp4 => &[
            "linear/dot_cols/units.wgsl",
            "linear/dot_cols/nibble_table.wgsl",
        ],
        GgmlType::Q4_1 => &["linear/dot_cols/units.wgsl", "linear/dot_cols/q4_1.wgsl"],
        GgmlType::Q5_0 => &["linear/dot_cols/units.wgsl", "linear/dot_cols/q5_0.wgsl"],
        GgmlType::Q5_1 => &["linear/dot_cols/units.wgsl", "linear/dot_cols/q5_1.wgsl"],
        _ => &["linear/dot_cols/units.wgsl", "linear/dot_cols/generic.wgsl"],
    }
}

/// The matmul's `stage_unit` for `ty`: word-wise for the types of BF16, Q4_0, Q4_1, Q5_0,
/// Q5_1, Q4_K_M, Q5_K_M, Q6_K, Q8_0, IQ4_NL, IQ4_XS and MXFP4_MOE files, else through the decoder's whole `unit_values` for each quarter
/// of a unit (q5_K and iq4_xs that way took 1.65x and 1.69x the time of their word-wise
/// staging: `cargo bench --bench kernels -- "matmul "`, lavapipe, f32 tiles).
fn stage_file(ty: GgmlType) -> &'static str {
    match ty {
        GgmlType::F32 => "linear/stage/f32.wgsl",
        GgmlType::F16 => "linear/stage/f16.wgsl",
        GgmlType::Bf16 => "linear/stage/bf16.wgsl",
        GgmlType::Q4_0 => "linear/stage/q4_0.wgsl",
        GgmlType::Q4_1 => "linear/stage/q4_1.wgsl",
        GgmlType::Q5_0 => "linear/stage/q5_0.wgsl",
        GgmlType::Q5_1 => "linear/stage/q5_1.wgsl",
        GgmlType::Q8_0 => "linear/stage/q8_0.wgsl",
        GgmlType::Q4K => "linear/stage/q4_k.wgsl",
        GgmlType::Q5K => "linear/stage/q5_k.wgsl",
        GgmlType::Q6K => "linear/stage/q6_k.wgsl",
        GgmlType::Iq4Xs => "linear/stage/iq4_xs.wgsl",
        GgmlType::Iq4Nl | GgmlType::Mxfp4 => "linear/stage/nibble_table.wgsl",
        _ => "linear/stage/generic.wgsl",
    }
}

/// The 8-bit matmul tile's `stage_unit` for `ty`: every type whose values are a byte
/// quant times a scale plus an offset, per 16 elements. The float types and the rarely
/// shipped q2_K, q3_K, q8_K have none and take the f32 tiles in that form
/// (`MatmulForm::for_weights`).
pub(crate) fn stage_int8_file(ty: GgmlType) -> Option<&'static str> {
    Some(match ty {
        GgmlType::Q4_0 => "linear/stage_int8/q4_0.wgsl",
        GgmlType::Q4_1 => "linear/stage_int8/q4_1.wgsl",
        GgmlType::Q5_0 => "linear/stage_int8/q5_0.wgsl",
        GgmlType::Q5_1 => "linear/stage_int8/q5_1.wgsl",
        GgmlType::Q8_0 => "linear/stage_int8/q8_0.wgsl",
        GgmlType::Q4K => "linear/stage_int8/q4_k.wgsl",
        GgmlType::Q5K => "linear/stage_int8/q5_k.wgsl",
        GgmlType::Q6K => "linear/stage_int8/q6_k.wgsl",
        GgmlType::Iq4Xs => "linear/stage_int8/iq4_xs.wgsl",
        GgmlType::Iq4Nl | GgmlType::Mxfp4 => "linear/stage_int8/nibble_table.wgsl",
        _ => return None,
    })
}

/// Refuses rows of x too short for W's columns or rows of y too short for its rows.
pub(crate) fn check_strided(
    kernel: &str,
    w: &crate::runtime::tensor::QuantMatrix,
    x: Strided<'_>,
    y: Strided<'_>,
) -> Result<(), GpuError> {
    if x.stride < w.cols || y.stride < w.rows {
        return Err(GpuError::Shape(format!(
            "{kernel}: x rows of {} for {} columns, y rows of {} for {} rows",
            x.stride, w.cols, y.stride, w.rows
        )));
    }
    Ok(())
}

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
