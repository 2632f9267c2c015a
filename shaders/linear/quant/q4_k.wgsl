// block_q4_K (144 bytes): f16 d, f16 dmin, scales[12], qs[128]. Unit s is group s: nibble
// s % 2 of qs[32(s / 2) + l]; y = d * scale * q - dmin * min (dequant.rs BlockQ4K).
const BLOCK_BYTES: u32 = 144u;
const UNITS_PER_BLOCK: u32 = 8u;

fn unit_values(block: u32, sub: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let f = k4_factors(block, sub);
    let shift = 4u * (sub % 2u);
    let qs = block + 16u + 32u * (sub / 2u);
    for (var l = 0u; l < 32u; l++) {
        v[l] = f.x * f32((byte_at(qs + l) >> shift) & 0xFu) - f.y;
    }
    return v;
}
