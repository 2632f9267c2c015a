// block_q2_K (84 bytes): scales[16] (4-bit scale | 4-bit min << 4), qs[64], f16 d, f16 dmin.
// Unit s (32 elements): half h = s / 4, shift 2 (s % 4); element l is bits of qs[32h + l],
// in group 8h + 2(s % 4) + l / 16; y = d * scale * q - dmin * min (dequant.rs BlockQ2K).
const BLOCK_BYTES: u32 = 84u;
const UNITS_PER_BLOCK: u32 = 8u;

fn unit_values(block: u32, sub: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let h = sub / 4u;
    let shift = 2u * (sub % 4u);
    let d = f16_at(block + 80u);
    let dmin = f16_at(block + 82u);
    for (var l = 0u; l < 32u; l++) {
        let sc = byte_at(block + 8u * h + 2u * (sub % 4u) + l / 16u);
        let q = (byte_at(block + 16u + 32u * h + l) >> shift) & 3u;
        v[l] = d * f32(sc & 0xFu) * f32(q) - dmin * f32(sc >> 4u);
    }
    return v;
}
