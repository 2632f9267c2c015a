// block_q2_K (84 bytes): scales[16] (4-bit scale | 4-bit min << 4), qs[64], f16 d, f16 dmin.
// Unit s (32 elements): half h = s / 4, shift 2 (s % 4); element l is bits of qs[32h + l],
// in group 8h + 2(s % 4) + l / 16; y = d * scale * q - dmin * min (dequant.rs BlockQ2K).
const BLOCK_BYTES: u32 = 84u;
const UNITS_PER_BLOCK: u32 = 8u;

fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let h = sub / 4u;
    let shift = 2u * (sub % 4u);
    let d = f16_at(block + 80u);
    let dmin = f16_at(block + 82u);
    var acc = 0.0;
    for (var g = 0u; g < 2u; g++) {
        let sc = byte_at(block + 8u * h + 2u * (sub % 4u) + g);
        var qx = 0.0;
        var sx = 0.0;
        for (var l = 16u * g; l < 16u * g + 16u; l++) {
            let q = (byte_at(block + 16u + 32u * h + l) >> shift) & 3u;
            let a = x[xb + l];
            qx += f32(q) * a;
            sx += a;
        }
        acc += d * f32(sc & 0xFu) * qx - dmin * f32(sc >> 4u) * sx;
    }
    return acc;
}
