// block_q5_K (176 bytes): f16 d, f16 dmin, scales[12], qh[32], qs[128]. As q4_K, with the
// fifth bit of element l of group s in bit s of qh[l] (dequant.rs BlockQ5K).
const BLOCK_BYTES: u32 = 176u;
const UNITS_PER_BLOCK: u32 = 8u;

fn unit_values(block: u32, sub: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let f = k4_factors(block, sub);
    let shift = 4u * (sub % 2u);
    let qs = block + 48u + 32u * (sub / 2u);
    for (var l = 0u; l < 32u; l++) {
        let q = ((byte_at(qs + l) >> shift) & 0xFu) | (((byte_at(block + 16u + l) >> sub) & 1u) << 4u);
        v[l] = f.x * f32(q) - f.y;
    }
    return v;
}
