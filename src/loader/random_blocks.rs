//! Random quantized blocks written directly, for synthetic models too large to quantize from
//! floats (Qwen3.5-35B-A3B at Q4_K_M is about 20 GB: 35 billion values through the
//! quantizer would take many minutes). Each block is valid (finite positive f16 scales,
//! every bit pattern of the quants meaningful) and its values spread over about
//! `[-scale, scale]`, the float path's range, so activations keep their size through a
//! model. The bytes depend only on the seed and the block index, so any split of a tensor
//! into pieces, generated on any number of threads, gives the same file.

use half::f16;

use crate::loader::quant::GgmlType;
use crate::rng::SplitMix64;

/// Blocks drawn from one generator: the unit of work of a thread, and of determinism.
pub const BLOCKS_PER_STREAM: u64 = 1024;

/// The types whose blocks [`fill_random_blocks`] writes.
pub fn writes_blocks(ty: GgmlType) -> bool {
    matches!(
        ty,
        GgmlType::Q4_0
            | GgmlType::Q8_0
            | GgmlType::Q4K
            | GgmlType::Q5K
            | GgmlType::Q6K
            | GgmlType::Iq4Xs
    )
}

/// The generator of the stream that holds block `stream * BLOCKS_PER_STREAM`.
fn stream_rng(seed: u64, stream: u64) -> SplitMix64 {
    // Seeds of neighbouring streams go through the mixer, so their sequences do not overlap.
    let mut mix = SplitMix64::new(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
    SplitMix64::new(mix.next_u64())
}

/// Fills `out` (whole blocks of `ty`) with random blocks from block `first_block` of the
/// tensor seeded by `seed`. `first_block` must start a stream (a multiple of
/// [`BLOCKS_PER_STREAM`]).
pub fn fill_random_blocks(ty: GgmlType, scale: f32, seed: u64, first_block: u64, out: &mut [u8]) {
    let block_bytes = ty.layout().type_size as usize;
    debug_assert!(writes_blocks(ty) && out.len() % block_bytes == 0);
    debug_assert_eq!(first_block % BLOCKS_PER_STREAM, 0);
    let stream_bytes = block_bytes * BLOCKS_PER_STREAM as usize;
    for (i, piece) in out.chunks_mut(stream_bytes).enumerate() {
        let mut rng = stream_rng(seed, first_block / BLOCKS_PER_STREAM + i as u64);
        for block in piece.chunks_exact_mut(block_bytes) {
            fill_block(ty, scale, &mut rng, block);
        }
    }
}

fn fill_block(ty: GgmlType, scale: f32, rng: &mut SplitMix64, b: &mut [u8]) {
    match ty {
        // d * (q - 8), q in 0..16: the values average -d / 2, so d's sign is drawn per
        // block to centre them on 0.
        GgmlType::Q4_0 => {
            let sign = if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
            put_f16(b, 0, sign * scale / 8.0);
            random_bytes(rng, &mut b[2..]);
        }
        // d * q, q an i8.
        GgmlType::Q8_0 => {
            put_f16(b, 0, scale / 127.0);
            random_bytes(rng, &mut b[2..]);
        }
        // d * sc * q - dmin * m per 32-element group, q in 0..16 (q4_K) or 0..32 (q5_K, a
        // fifth bit from qh): see put_k4_header.
        GgmlType::Q4K => {
            put_k4_header(rng, b, scale, 15.0);
            random_bytes(rng, &mut b[16..]);
        }
        GgmlType::Q5K => {
            put_k4_header(rng, b, scale, 31.0);
            random_bytes(rng, &mut b[16..]);
        }
        // d * (ls - 32) * level per 32 elements, level from IQ4_NL's code book (RMS about
        // 68, mean about -6), ls a 6-bit scale in 33..64: d's sign is drawn per block to
        // centre the values on 0.
        GgmlType::Iq4Xs => {
            let r = rng.next_u64();
            let sign = if r & 1 == 0 { 1.0 } else { -1.0 };
            let ls = 33 + ((r >> 1) % 31) as u16;
            // Every group gets ls: low nibbles in scales_l, the top two bits in scales_h.
            let high = (0..8).fold(0u16, |h, g| h | ((ls >> 4) << (2 * g)));
            let low = (ls & 0xF) as u8 | (((ls & 0xF) as u8) << 4);
            put_f16(b, 0, sign * scale / (68.0 * (ls - 32) as f32 * 3f32.sqrt()));
            b[2..4].copy_from_slice(&high.to_le_bytes());
            b[4..8].fill(low);
            random_bytes(rng, &mut b[8..]);
        }
        // d * sc * (q - 32) per 16 elements, q in 0..64 from ql and qh, sc an i8 in 16..128.
        GgmlType::Q6K => {
            random_bytes(rng, &mut b[..192]);
            let r = rng.next_u64().to_le_bytes();
            let r2 = rng.next_u64().to_le_bytes();
            for (s, &v) in b[192..208].iter_mut().zip(r.iter().chain(&r2)) {
                *s = 16 + (v % 112);
            }
            put_f16(b, 208, scale / (32.0 * 72.0));
        }
        _ => unreachable!("fill_block of {ty}: writes_blocks() is checked first"),
    }
}

/// d, dmin and the scales of a q4_K or q5_K block whose quants reach `q_max`: every group
/// gets the block's random 6-bit sc and m, with dmin * m = d * sc * q_max / 2 to centre the
/// values on 0 and d * sc * q_max = 2 * scale.
fn put_k4_header(rng: &mut SplitMix64, b: &mut [u8], scale: f32, q_max: f32) {
    let r = rng.next_u64();
    let sc = 32 + (r & 31) as u8;
    let m = 16 + ((r >> 8) & 31) as u8;
    let d = 2.0 * scale / (q_max * sc as f32);
    put_f16(b, 0, d);
    put_f16(b, 2, d * (q_max / 2.0) * sc as f32 / m as f32);
    // ggml's get_scale_min_k4 packing of eight equal (sc, m) pairs.
    for j in 0..4 {
        b[4 + j] = (sc & 63) | ((sc >> 4) << 6);
        b[8 + j] = (m & 63) | ((m >> 4) << 6);
        b[12 + j] = (sc & 0xF) | ((m & 0xF) << 4);
    }
}

fn put_f16(b: &mut [u8], at: usize, v: f32) {
    b[at..at + 2].copy_from_slice(&f16::from_f32(v).to_le_bytes());
}

fn random_bytes(rng: &mut SplitMix64, out: &mut [u8]) {
    let mut words = out.chunks_exact_mut(8);
    for w in &mut words {
        w.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    let rest = words.into_remainder();
    let last = rng.next_u64().to_le_bytes();
    let n = rest.len();
    rest.copy_from_slice(&last[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::dequant::dequantize;

    /// Random blocks dequantize to values centred on 0 and within about twice the scale,
    /// with a spread like the float path's uniform values (sd scale / sqrt 3), and the same
    /// bytes however the tensor is split.
    #[test]
    fn random_blocks_hold_values_of_the_asked_scale_whatever_the_split() {
        for ty in [
            GgmlType::Q4_0,
            GgmlType::Q8_0,
            GgmlType::Q4K,
            GgmlType::Q5K,
            GgmlType::Q6K,
            GgmlType::Iq4Xs,
        ] {
            let block_bytes = ty.layout().type_size as usize;
            let blocks = 3 * BLOCKS_PER_STREAM as usize;
            let mut whole = vec![0u8; blocks * block_bytes];
            fill_random_blocks(ty, 0.05, 9, 0, &mut whole);
            let mut split = vec![0u8; whole.len()];
            let at = BLOCKS_PER_STREAM as usize * block_bytes;
            fill_random_blocks(ty, 0.05, 9, 0, &mut split[..at]);
            fill_random_blocks(ty, 0.05, 9, BLOCKS_PER_STREAM, &mut split[at..]);
            assert!(whole == split, "{ty}: split generation differs");
            let n = blocks * ty.layout().block_size as usize;
            let v = dequantize(ty, &whole, n).unwrap();
            let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
            let sd =
                (v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
            let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
            assert!(v.iter().all(|x| x.is_finite()), "{ty}");
            assert!(mean.abs() < 0.003, "{ty}: mean {mean}");
            assert!(
                (0.01..0.045).contains(&sd),
                "{ty}: sd {sd} (uniform: 0.029)"
            );
            assert!(max <= 0.1, "{ty}: max {max}");
        }
    }
}
