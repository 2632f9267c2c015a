//! Quantizers for fixtures: Q8_0 and Q4_0 exactly as ggml's reference quantizers
//! (`quantize_row_q8_0_ref`, `quantize_row_q4_0_ref`), Q4_K and Q6_K with a direct
//! min/max fit (ggml's `make_qkx2_quants` search gives slightly lower error; any valid block
//! is an equally good test of a dequantizer). The float types (f32, f16, bf16) are written
//! as plain little-endian values by [`encode_floats`].

use half::{bf16, f16};

use crate::loader::dequant::{BlockQ4K, BlockQ4_0, BlockQ6K, BlockQ8_0, QK_K};
use crate::loader::quant::GgmlType;

/// Why values could not be quantized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantizeError {
    #[error("qwen-wgpu has no quantizer for {0} (it has q8_0, q4_0, q4_K, q6_K)")]
    Unsupported(GgmlType),
    #[error("{len} values are not a whole number of {ty} blocks of {block}")]
    Length {
        ty: GgmlType,
        len: usize,
        block: usize,
    },
    #[error("cannot quantize a non-finite value at index {0}")]
    NonFinite(usize),
}

fn f16_bytes(x: f32) -> [u8; 2] {
    f16::from_f32(x).to_le_bytes()
}

/// The element of largest magnitude (its sign kept), as ggml's reference quantizers pick it.
fn signed_absmax(x: &[f32]) -> f32 {
    let mut max = 0.0f32;
    for &v in x {
        if v.abs() > max.abs() {
            max = v;
        }
    }
    max
}

fn q8_0(x: &[f32]) -> BlockQ8_0 {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0u8; 32];
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = (v * id).round() as i8 as u8;
    }
    BlockQ8_0 {
        d: f16_bytes(d),
        qs,
    }
}

fn q4_0(x: &[f32]) -> BlockQ4_0 {
    let d = signed_absmax(x) / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let level = |v: f32| ((v * id + 8.5) as i8).min(15) as u8;
    let mut qs = [0u8; 16];
    for (j, q) in qs.iter_mut().enumerate() {
        *q = level(x[j]) | (level(x[j + 16]) << 4);
    }
    BlockQ4_0 {
        d: f16_bytes(d),
        qs,
    }
}

/// Packs eight 6-bit scales and mins the way `get_scale_min_k4` unpacks them.
fn pack_k4_scales(sc: &[u8; 8], mn: &[u8; 8]) -> [u8; 12] {
    let mut q = [0u8; 12];
    for j in 0..4 {
        q[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
        q[j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6);
        q[j + 8] = (sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4);
    }
    q
}

/// Q4_K: each group of 32 is fitted as `scale * q - min` with q in 0..=15 over the group's
/// range (including 0); scales and mins are stored as 6-bit multiples of d and dmin.
fn q4_k(x: &[f32]) -> BlockQ4K {
    let mut scales = [0.0f32; 8];
    let mut mins = [0.0f32; 8];
    for (g, chunk) in x.chunks_exact(32).enumerate() {
        let lo = chunk.iter().fold(0.0f32, |m, &v| m.min(v));
        let hi = chunk.iter().fold(0.0f32, |m, &v| m.max(v));
        scales[g] = (hi - lo) / 15.0;
        mins[g] = -lo;
    }
    let max_scale = scales.iter().fold(0.0f32, |m, &v| m.max(v));
    let max_min = mins.iter().fold(0.0f32, |m, &v| m.max(v));
    // Round d and dmin through f16 first: the levels must be fitted to the stored values.
    let d = f16::from_f32(max_scale / 63.0).to_f32();
    let dmin = f16::from_f32(max_min / 63.0).to_f32();
    let level6 = |v: f32, unit: f32| {
        if unit > 0.0 {
            (v / unit).round().clamp(0.0, 63.0) as u8
        } else {
            0
        }
    };
    let sc: [u8; 8] = std::array::from_fn(|g| level6(scales[g], d));
    let mn: [u8; 8] = std::array::from_fn(|g| level6(mins[g], dmin));
    let mut qs = [0u8; 128];
    for c in 0..4 {
        for half in 0..2 {
            let g = 2 * c + half;
            let step = d * sc[g] as f32;
            let offset = dmin * mn[g] as f32;
            for l in 0..32 {
                let v = x[64 * c + 32 * half + l];
                let q = if step > 0.0 {
                    ((v + offset) / step).round().clamp(0.0, 15.0) as u8
                } else {
                    0
                };
                qs[32 * c + l] |= q << (4 * half);
            }
        }
    }
    BlockQ4K {
        d: f16_bytes(d),
        dmin: f16_bytes(dmin),
        scales: pack_k4_scales(&sc, &mn),
        qs,
    }
}

/// Q6_K: each group of 16 is fitted as `scale * (q - 32)` with q in 0..=63 around its
/// largest-magnitude element; scales are i8 multiples of d.
fn q6_k(x: &[f32]) -> BlockQ6K {
    let group_scales: [f32; 16] =
        std::array::from_fn(|g| signed_absmax(&x[16 * g..16 * g + 16]) / -32.0);
    let max = signed_absmax(&group_scales);
    let d = f16::from_f32(max / -127.0).to_f32();
    let sc: [i8; 16] = std::array::from_fn(|g| {
        if d != 0.0 {
            (group_scales[g] / d).round().clamp(-128.0, 127.0) as i8
        } else {
            0
        }
    });
    let mut ql = [0u8; 128];
    let mut qh = [0u8; 64];
    for h in 0..2 {
        for k in 0..4 {
            for l in 0..32 {
                let i = 128 * h + 32 * k + l;
                let step = d * sc[8 * h + 2 * k + l / 16] as f32;
                let q = if step != 0.0 {
                    ((x[i] / step).round() + 32.0).clamp(0.0, 63.0) as u8
                } else {
                    32
                };
                ql[64 * h + 32 * (k % 2) + l] |= (q & 0xF) << (4 * (k / 2));
                qh[32 * h + l] |= (q >> 4) << (2 * k);
            }
        }
    }
    BlockQ6K {
        ql,
        qh,
        scales: sc.map(|s| s as u8),
        d: f16_bytes(d),
    }
}

fn blocks<B: bytemuck::Pod>(x: &[f32], n: usize, f: fn(&[f32]) -> B) -> Vec<u8> {
    x.chunks_exact(n)
        .flat_map(|chunk| bytemuck::bytes_of(&f(chunk)).to_vec())
        .collect()
}

/// `values` (a whole number of blocks) in ggml block format.
pub fn quantize(ty: GgmlType, values: &[f32]) -> Result<Vec<u8>, QuantizeError> {
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(QuantizeError::NonFinite(i));
    }
    let block = ty.layout().block_size as usize;
    if values.len() % block != 0 {
        return Err(QuantizeError::Length {
            ty,
            len: values.len(),
            block,
        });
    }
    Ok(match ty {
        GgmlType::Q8_0 => blocks(values, 32, q8_0),
        GgmlType::Q4_0 => blocks(values, 32, q4_0),
        GgmlType::Q4K => blocks(values, QK_K, q4_k),
        GgmlType::Q6K => blocks(values, QK_K, q6_k),
        GgmlType::F32 | GgmlType::F16 | GgmlType::Bf16 => encode_floats(values, ty),
        _ => return Err(QuantizeError::Unsupported(ty)),
    })
}

/// f32 values in an unquantized ggml type.
pub fn encode_floats(values: &[f32], ty: GgmlType) -> Vec<u8> {
    match ty {
        GgmlType::F16 => values
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect(),
        GgmlType::Bf16 => values
            .iter()
            .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
            .collect(),
        _ => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}
