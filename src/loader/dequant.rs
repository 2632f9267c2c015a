//! GGML block formats as Rust structs (field for field the bytes of `ggml-common.h`'s
//! `block_*`, every field byte-aligned so a block can be viewed at any file offset) and their
//! CPU dequantization, mirroring `dequantize_row_*` in ggml's `ggml-quants.c`.
//!
//! This is the reference the GPU's in-register dequantization is tested against, and it is
//! itself checked against the Python `gguf` package's independent implementation
//! (`tools/quant_goldens.py`, goldens in `tests/data/quant/`).

use bytemuck::{Pod, Zeroable};
use half::{bf16, f16};

use crate::loader::quant::GgmlType;

/// Elements per K-quant super-block.
pub const QK_K: usize = 256;

/// The 16 signed levels of IQ4_NL / IQ4_XS (`kvalues_iq4nl`), a non-uniform 4-bit code book.
pub const IQ4_NL_LEVELS: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// The FP4 (E2M1) values of MXFP4, doubled so they are integers (`kvalues_mxfp4`); the
/// block's E8M0 scale is halved to compensate.
pub const MXFP4_LEVELS: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

fn f16le(b: [u8; 2]) -> f32 {
    f16::from_le_bytes(b).to_f32()
}

/// A ggml block: its byte layout and how to expand it into `ELEMENTS` floats.
pub trait Block: Pod {
    const TYPE: GgmlType;
    const ELEMENTS: usize;
    fn dequantize(&self, out: &mut [f32]);
}

macro_rules! block {
    ($(#[$doc:meta])* $name:ident, $bytes:expr, { $($field:ident: $fty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Pod, Zeroable)]
        pub struct $name { $(pub $field: $fty),* }
        const _: () = assert!(std::mem::size_of::<$name>() == $bytes);
        const _: () = assert!(std::mem::align_of::<$name>() == 1);
    };
}

block!(
    /// `block_q4_0`: y = d * (q - 8), q a nibble; low nibbles are elements 0..16, high 16..32.
    BlockQ4_0, 18, { d: [u8; 2], qs: [u8; 16] }
);
block!(
    /// `block_q4_1`: y = d * q + m.
    BlockQ4_1, 20, { d: [u8; 2], m: [u8; 2], qs: [u8; 16] }
);
block!(
    /// `block_q5_0`: y = d * (q - 16), the fifth bits of the 32 elements in `qh`.
    BlockQ5_0, 22, { d: [u8; 2], qh: [u8; 4], qs: [u8; 16] }
);
block!(
    /// `block_q5_1`: y = d * q + m with 5-bit q.
    BlockQ5_1, 24, { d: [u8; 2], m: [u8; 2], qh: [u8; 4], qs: [u8; 16] }
);
block!(
    /// `block_q8_0`: y = d * q, q an i8.
    BlockQ8_0, 34, { d: [u8; 2], qs: [u8; 32] }
);
block!(
    /// `block_q2_K`: 16 groups of 16 with 4-bit scale and 4-bit min each, 2-bit q.
    BlockQ2K, 84, { scales: [u8; 16], qs: [u8; 64], d: [u8; 2], dmin: [u8; 2] }
);
block!(
    /// `block_q3_K`: 16 groups of 16 with 6-bit scales, 2 low bits in `qs` + 1 high bit in `hmask`.
    BlockQ3K, 110, { hmask: [u8; 32], qs: [u8; 64], scales: [u8; 12], d: [u8; 2] }
);
block!(
    /// `block_q4_K`: 8 groups of 32 with 6-bit scale and min, 4-bit q.
    BlockQ4K, 144, { d: [u8; 2], dmin: [u8; 2], scales: [u8; 12], qs: [u8; 128] }
);
block!(
    /// `block_q5_K`: as q4_K with a fifth bit per element in `qh`.
    BlockQ5K, 176, { d: [u8; 2], dmin: [u8; 2], scales: [u8; 12], qh: [u8; 32], qs: [u8; 128] }
);
block!(
    /// `block_q6_K`: 16 groups of 16 with i8 scales, 6-bit q (4 low bits in `ql`, 2 in `qh`).
    BlockQ6K, 210, { ql: [u8; 128], qh: [u8; 64], scales: [u8; 16], d: [u8; 2] }
);
block!(
    /// `block_q8_K`: f32 scale, i8 q, and per-16 sums used by ggml's dot products.
    BlockQ8K, 292, { d: [u8; 4], qs: [u8; 256], bsums: [u8; 32] }
);
block!(
    /// `block_iq4_nl`: y = d * IQ4_NL_LEVELS[q].
    BlockIq4Nl, 18, { d: [u8; 2], qs: [u8; 16] }
);
block!(
    /// `block_iq4_xs`: 8 groups of 32 with 6-bit scales (4 low bits in `scales_l`, 2 in `scales_h`).
    BlockIq4Xs, 136, { d: [u8; 2], scales_h: [u8; 2], scales_l: [u8; 4], qs: [u8; 128] }
);
block!(
    /// `block_mxfp4`: OCP microscaling FP4, an E8M0 shared exponent and 32 E2M1 values.
    BlockMxfp4, 17, { e: u8, qs: [u8; 16] }
);

/// Expands 16 bytes of nibbles the way every 32-element ggml format lays them out:
/// element `j` is the low nibble of byte `j`, element `j + 16` its high nibble.
fn split_nibbles(qs: &[u8; 16], out: &mut [f32], level: impl Fn(u8) -> f32) {
    for (j, &b) in qs.iter().enumerate() {
        out[j] = level(b & 0xF);
        out[j + 16] = level(b >> 4);
    }
}

impl Block for BlockQ4_0 {
    const TYPE: GgmlType = GgmlType::Q4_0;
    const ELEMENTS: usize = 32;
    fn dequantize(&self, out: &mut [f32]) {
        let d = f16le(self.d);
        split_nibbles(&self.qs, out, |q| (q as i32 - 8) as f32 * d);
    }
}

impl Block for BlockQ4_1 {
    const TYPE: GgmlType = GgmlType::Q4_1;
    const ELEMENTS: usize = 32;
    fn dequantize(&self, out: &mut [f32]) {
        let (d, m) = (f16le(self.d), f16le(self.m));
        split_nibbles(&self.qs, out, |q| q as f32 * d + m);
    }
}

/// The 5-bit values of a q5 block before scaling: low nibble plus bit `j` (or `j + 16`) of `qh`.
fn q5_values(qh: [u8; 4], qs: &[u8; 16]) -> [u8; 32] {
    let qh = u32::from_le_bytes(qh);
    let mut v = [0u8; 32];
    for (j, &b) in qs.iter().enumerate() {
        v[j] = (b & 0xF) | (((qh >> j) & 1) << 4) as u8;
        v[j + 16] = (b >> 4) | (((qh >> (j + 16)) & 1) << 4) as u8;
    }
    v
}

impl Block for BlockQ5_0 {
    const TYPE: GgmlType = GgmlType::Q5_0;
    const ELEMENTS: usize = 32;
    fn dequantize(&self, out: &mut [f32]) {
        let d = f16le(self.d);
        for (o, q) in out.iter_mut().zip(q5_values(self.qh, &self.qs)) {
            *o = (q as i32 - 16) as f32 * d;
        }
    }
}

impl Block for BlockQ5_1 {
    const TYPE: GgmlType = GgmlType::Q5_1;
    const ELEMENTS: usize = 32;
    fn dequantize(&self, out: &mut [f32]) {
        let (d, m) = (f16le(self.d), f16le(self.m));
        for (o, q) in out.iter_mut().zip(q5_values(self.qh, &self.qs)) {
            *o = q as f32 * d + m;
        }
    }
}

impl Block for BlockQ8_0 {
    const TYPE: GgmlType = GgmlType::Q8_0;
    const ELEMENTS: usize = 32;
    fn dequantize(&self, out: &mut [f32]) {
        let d = f16le(self.d);
        for (o, &q) in out.iter_mut().zip(&self.qs) {
            *o = q as i8 as f32 * d;
        }
    }
}

impl Block for BlockQ2K {
    const TYPE: GgmlType = GgmlType::Q2K;
    const ELEMENTS: usize = QK_K;
    /// Element `128 h + 32 s + l` (half h, shift s, lane l < 32) is bits `2s..2s+2` of
    /// `qs[32 h + l]`, in group `8 h + 2 s + l / 16`: y = d * scale * q - dmin * min.
    fn dequantize(&self, out: &mut [f32]) {
        let (d, dmin) = (f16le(self.d), f16le(self.dmin));
        for h in 0..2 {
            for s in 0..4 {
                for l in 0..32 {
                    let group = self.scales[8 * h + 2 * s + l / 16];
                    let q = (self.qs[32 * h + l] >> (2 * s)) & 3;
                    out[128 * h + 32 * s + l] =
                        d * (group & 0xF) as f32 * q as f32 - dmin * (group >> 4) as f32;
                }
            }
        }
    }
}

/// Unpacks q3_K's twelve scale bytes into sixteen 6-bit scales (low 4 bits from bytes 0..8,
/// high 2 bits from bytes 8..12), as `dequantize_row_q3_K`'s kmask shuffle does.
fn q3k_scales(packed: &[u8; 12]) -> [i8; 16] {
    let mut s = [0i8; 16];
    for (j, out) in s.iter_mut().enumerate() {
        let low = if j < 8 {
            packed[j] & 0xF
        } else {
            packed[j - 8] >> 4
        };
        let high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
        *out = ((low | (high << 4)) as i8).wrapping_sub(32);
    }
    s
}

impl Block for BlockQ3K {
    const TYPE: GgmlType = GgmlType::Q3K;
    const ELEMENTS: usize = QK_K;
    /// Like q2_K's layout; the third bit is `hmask[l]` bit `4 h + s`, and a clear bit
    /// subtracts 4: y = d * (scale - 32) * (q - (bit ? 0 : 4)).
    fn dequantize(&self, out: &mut [f32]) {
        let d = f16le(self.d);
        let scales = q3k_scales(&self.scales);
        for h in 0..2 {
            for s in 0..4 {
                for l in 0..32 {
                    let sc = scales[8 * h + 2 * s + l / 16] as f32;
                    let low = ((self.qs[32 * h + l] >> (2 * s)) & 3) as i32;
                    let high_set = self.hmask[l] & (1 << (4 * h + s)) != 0;
                    let q = low - if high_set { 0 } else { 4 };
                    out[128 * h + 32 * s + l] = d * sc * q as f32;
                }
            }
        }
    }
}

/// Scale and min of group `j` (0..8) from the 12 packed bytes of q4_K / q5_K
/// (`get_scale_min_k4`).
pub fn k4_scale_min(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// The q4_K / q5_K layout: chunk c (64 elements) uses bytes `qs[32c..32c+32]`, low nibbles
/// in group 2c and high nibbles in group 2c+1; q5_K adds the fifth bit of element `64c + l`
/// from `qh[l]` bit 2c (and of `64c + 32 + l` from bit 2c + 1). y = d * scale * q - dmin * min.
fn k4_dequantize(
    d: f32,
    dmin: f32,
    scales: &[u8; 12],
    qs: &[u8; 128],
    qh: Option<&[u8; 32]>,
    out: &mut [f32],
) {
    for c in 0..4 {
        let (s1, m1) = k4_scale_min(2 * c, scales);
        let (s2, m2) = k4_scale_min(2 * c + 1, scales);
        for l in 0..32 {
            let b = qs[32 * c + l];
            let high = |bit: usize| qh.map_or(0, |h| if h[l] & (1 << bit) != 0 { 16 } else { 0 });
            let lo = (b & 0xF) + high(2 * c);
            let hi = (b >> 4) + high(2 * c + 1);
            out[64 * c + l] = d * s1 as f32 * lo as f32 - dmin * m1 as f32;
            out[64 * c + 32 + l] = d * s2 as f32 * hi as f32 - dmin * m2 as f32;
        }
    }
}

impl Block for BlockQ4K {
    const TYPE: GgmlType = GgmlType::Q4K;
    const ELEMENTS: usize = QK_K;
    fn dequantize(&self, out: &mut [f32]) {
        let (d, dmin) = (f16le(self.d), f16le(self.dmin));
        k4_dequantize(d, dmin, &self.scales, &self.qs, None, out);
    }
}

impl Block for BlockQ5K {
    const TYPE: GgmlType = GgmlType::Q5K;
    const ELEMENTS: usize = QK_K;
    fn dequantize(&self, out: &mut [f32]) {
        let (d, dmin) = (f16le(self.d), f16le(self.dmin));
        k4_dequantize(d, dmin, &self.scales, &self.qs, Some(&self.qh), out);
    }
}

impl Block for BlockQ6K {
    const TYPE: GgmlType = GgmlType::Q6K;
    const ELEMENTS: usize = QK_K;
    /// Half h (128 elements) uses `ql[64h..]`, `qh[32h..]`, `scales[8h..]`; element
    /// `128h + 32k + l` takes nibble `k / 2` of `ql[64h + 32(k % 2) + l]` and bits `2k..2k+2`
    /// of `qh[32h + l]`: y = d * scale * (q - 32).
    fn dequantize(&self, out: &mut [f32]) {
        let d = f16le(self.d);
        for h in 0..2 {
            for k in 0..4 {
                for l in 0..32 {
                    let ql = self.ql[64 * h + 32 * (k % 2) + l];
                    let low = if k < 2 { ql & 0xF } else { ql >> 4 };
                    let high = (self.qh[32 * h + l] >> (2 * k)) & 3;
                    let q = (low | (high << 4)) as i32 - 32;
                    let sc = self.scales[8 * h + 2 * k + l / 16] as i8 as f32;
                    out[128 * h + 32 * k + l] = d * sc * q as f32;
                }
            }
        }
    }
}

impl Block for BlockQ8K {
    const TYPE: GgmlType = GgmlType::Q8K;
    const ELEMENTS: usize = QK_K;
    fn dequantize(&self, out: &mut [f32]) {
        let d = f32::from_le_bytes(self.d);
        for (o, &q) in out.iter_mut().zip(&self.qs) {
            *o = d * q as i8 as f32;
        }
    }
}

impl Block for BlockIq4Nl {
    const TYPE: GgmlType = GgmlType::Iq4Nl;
    const ELEMENTS: usize = 32;
    fn dequantize(&self, out: &mut [f32]) {
        let d = f16le(self.d);
        split_nibbles(&self.qs, out, |q| d * IQ4_NL_LEVELS[q as usize] as f32);
    }
}

impl Block for BlockIq4Xs {
    const TYPE: GgmlType = GgmlType::Iq4Xs;
    const ELEMENTS: usize = QK_K;
    /// Group g's 6-bit scale: nibble `g % 2` of `scales_l[g / 2]` plus bits `2g..2g+2` of
    /// `scales_h`; y = d * (scale - 32) * IQ4_NL_LEVELS[q].
    fn dequantize(&self, out: &mut [f32]) {
        let d = f16le(self.d);
        let scales_h = u16::from_le_bytes(self.scales_h);
        for g in 0..8 {
            let low = (self.scales_l[g / 2] >> (4 * (g % 2))) & 0xF;
            let high = ((scales_h >> (2 * g)) & 3) as u8;
            let dl = d * ((low | (high << 4)) as i32 - 32) as f32;
            let mut qs = [0u8; 16];
            qs.copy_from_slice(&self.qs[16 * g..16 * g + 16]);
            split_nibbles(&qs, &mut out[32 * g..32 * g + 32], |q| {
                dl * IQ4_NL_LEVELS[q as usize] as f32
            });
        }
    }
}

/// Half of 2^(e - 127), the E8M0 scale with MXFP4_LEVELS' doubling undone
/// (`GGML_E8M0_TO_FP32_HALF`); exact, subnormal for the two smallest exponents.
pub fn e8m0_half(e: u8) -> f32 {
    let bits = if e < 2 {
        0x0020_0000u32 << e
    } else {
        ((e as u32) - 1) << 23
    };
    f32::from_bits(bits)
}

impl Block for BlockMxfp4 {
    const TYPE: GgmlType = GgmlType::Mxfp4;
    const ELEMENTS: usize = 32;
    fn dequantize(&self, out: &mut [f32]) {
        let d = e8m0_half(self.e);
        split_nibbles(&self.qs, out, |q| MXFP4_LEVELS[q as usize] as f32 * d);
    }
}

/// Why a byte buffer could not be dequantized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DequantError {
    #[error("{ty} cannot be dequantized by qwen-wgpu")]
    Unsupported { ty: GgmlType },
    #[error("{len} bytes are not a whole number of {ty} rows for {elements} elements")]
    Length {
        ty: GgmlType,
        len: usize,
        elements: usize,
    },
}

fn blocks<B: Block>(bytes: &[u8], out: &mut [f32]) {
    let blocks: &[B] = bytemuck::cast_slice(bytes);
    for (b, chunk) in blocks.iter().zip(out.chunks_exact_mut(B::ELEMENTS)) {
        b.dequantize(chunk);
    }
}

/// Expands `bytes` of type `ty` into `out` (whose length is the element count).
pub fn dequantize_into(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<(), DequantError> {
    let layout = ty.layout();
    let ok = out.len() as u64 % layout.block_size == 0
        && bytes.len() as u64 == out.len() as u64 / layout.block_size * layout.type_size;
    if !ok && ty.is_supported() {
        return Err(DequantError::Length {
            ty,
            len: bytes.len(),
            elements: out.len(),
        });
    }
    match ty {
        GgmlType::F32 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        GgmlType::F16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
        GgmlType::Bf16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = bf16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
        GgmlType::Q4_0 => blocks::<BlockQ4_0>(bytes, out),
        GgmlType::Q4_1 => blocks::<BlockQ4_1>(bytes, out),
        GgmlType::Q5_0 => blocks::<BlockQ5_0>(bytes, out),
        GgmlType::Q5_1 => blocks::<BlockQ5_1>(bytes, out),
        GgmlType::Q8_0 => blocks::<BlockQ8_0>(bytes, out),
        GgmlType::Q2K => blocks::<BlockQ2K>(bytes, out),
        GgmlType::Q3K => blocks::<BlockQ3K>(bytes, out),
        GgmlType::Q4K => blocks::<BlockQ4K>(bytes, out),
        GgmlType::Q5K => blocks::<BlockQ5K>(bytes, out),
        GgmlType::Q6K => blocks::<BlockQ6K>(bytes, out),
        GgmlType::Q8K => blocks::<BlockQ8K>(bytes, out),
        GgmlType::Iq4Nl => blocks::<BlockIq4Nl>(bytes, out),
        GgmlType::Iq4Xs => blocks::<BlockIq4Xs>(bytes, out),
        GgmlType::Mxfp4 => blocks::<BlockMxfp4>(bytes, out),
        _ => return Err(DequantError::Unsupported { ty }),
    }
    Ok(())
}

/// `bytes` of type `ty` holding `n` elements, as f32.
pub fn dequantize(ty: GgmlType, bytes: &[u8], n: usize) -> Result<Vec<f32>, DequantError> {
    let mut out = vec![0.0; n];
    dequantize_into(ty, bytes, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_block_struct_matches_the_type_table() {
        fn check<B: Block>() {
            let l = B::TYPE.layout();
            assert_eq!(std::mem::size_of::<B>() as u64, l.type_size, "{}", B::TYPE);
            assert_eq!(B::ELEMENTS as u64, l.block_size, "{}", B::TYPE);
        }
        check::<BlockQ4_0>();
        check::<BlockQ4_1>();
        check::<BlockQ5_0>();
        check::<BlockQ5_1>();
        check::<BlockQ8_0>();
        check::<BlockQ2K>();
        check::<BlockQ3K>();
        check::<BlockQ4K>();
        check::<BlockQ5K>();
        check::<BlockQ6K>();
        check::<BlockQ8K>();
        check::<BlockIq4Nl>();
        check::<BlockIq4Xs>();
        check::<BlockMxfp4>();
    }

    #[test]
    fn e8m0_half_is_half_a_power_of_two() {
        assert_eq!(e8m0_half(127), 0.5);
        assert_eq!(e8m0_half(128), 1.0);
        assert_eq!(e8m0_half(1), 2f32.powi(-127));
        assert_eq!(e8m0_half(0), 2f32.powi(-128));
    }

    #[test]
    fn wrong_lengths_are_errors() {
        assert!(dequantize(GgmlType::Q4K, &[0; 143], 256).is_err());
        assert!(dequantize(GgmlType::Q8_0, &[0; 34], 31).is_err());
        assert!(dequantize(GgmlType::Iq2Xxs, &[0; 66], 256).is_err());
    }
}
