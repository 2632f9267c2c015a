// block_q5_K (176 bytes): f16 d, f16 dmin, scales[12], qh[32], qs[128]. As q4_K, with the
// fifth bit of element l of group s in bit s of qh[l] (dequant.rs BlockQ5K).
const BLOCK_BYTES: u32 = 176u;
const UNITS_PER_BLOCK: u32 = 8u;

fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let sm = k4_scale_min(block + 4u, sub);
    let shift = 4u * (sub % 2u);
    let qs = block + 48u + 32u * (sub / 2u);
    var qx = 0.0;
    var sx = 0.0;
    for (var l = 0u; l < 32u; l++) {
        let a = x[xb + l];
        let q = ((byte_at(qs + l) >> shift) & 0xFu) | (((byte_at(block + 16u + l) >> sub) & 1u) << 4u);
        qx += f32(q) * a;
        sx += a;
    }
    return f16_at(block) * sm.x * qx - f16_at(block + 2u) * sm.y * sx;
}
