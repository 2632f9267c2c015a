// block_q4_1 (20 bytes): f16 d, f16 m, 16 bytes of nibbles; y = d * q + m.
const BLOCK_BYTES: u32 = 20u;
const UNITS_PER_BLOCK: u32 = 1u;

fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    var qx = 0.0;
    var sx = 0.0;
    for (var j = 0u; j < 16u; j++) {
        let q = byte_at(block + 4u + j);
        let a = x[xb + j];
        let b = x[xb + j + 16u];
        qx += f32(q & 0xFu) * a + f32(q >> 4u) * b;
        sx += a + b;
    }
    return f16_at(block) * qx + f16_at(block + 2u) * sx;
}
