// block_q5_1 (24 bytes): f16 d, f16 m, u32 of fifth bits, 16 bytes of nibbles; y = d * q + m.
const BLOCK_BYTES: u32 = 24u;
const UNITS_PER_BLOCK: u32 = 1u;

fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let qh = u32_at(block + 4u);
    var qx = 0.0;
    var sx = 0.0;
    for (var j = 0u; j < 16u; j++) {
        let q = byte_at(block + 8u + j);
        let lo = (q & 0xFu) | (((qh >> j) & 1u) << 4u);
        let hi = (q >> 4u) | (((qh >> (j + 16u)) & 1u) << 4u);
        let a = x[xb + j];
        let b = x[xb + j + 16u];
        qx += f32(lo) * a + f32(hi) * b;
        sx += a + b;
    }
    return f16_at(block) * qx + f16_at(block + 2u) * sx;
}
