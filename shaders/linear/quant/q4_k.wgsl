// block_q4_K (144 bytes): f16 d, f16 dmin, scales[12], qs[128]. Unit s is group s: nibble
// s % 2 of qs[32(s / 2) + l]; y = d * scale * q - dmin * min (dequant.rs BlockQ4K).
const BLOCK_BYTES: u32 = 144u;
const UNITS_PER_BLOCK: u32 = 8u;

fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let sm = k4_scale_min(block + 4u, sub);
    let shift = 4u * (sub % 2u);
    let qs = block + 16u + 32u * (sub / 2u);
    var qx = 0.0;
    var sx = 0.0;
    for (var l = 0u; l < 32u; l++) {
        let a = x[xb + l];
        qx += f32((byte_at(qs + l) >> shift) & 0xFu) * a;
        sx += a;
    }
    return f16_at(block) * sm.x * qx - f16_at(block + 2u) * sm.y * sx;
}
