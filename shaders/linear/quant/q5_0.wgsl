// block_q5_0 (22 bytes): f16 d, u32 of fifth bits, 16 bytes of nibbles; y = d * (q - 16).
const BLOCK_BYTES: u32 = 22u;
const UNITS_PER_BLOCK: u32 = 1u;

fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let qh = u32_at(block + 2u);
    var acc = 0.0;
    for (var j = 0u; j < 16u; j++) {
        let q = byte_at(block + 6u + j);
        let lo = (q & 0xFu) | (((qh >> j) & 1u) << 4u);
        let hi = (q >> 4u) | (((qh >> (j + 16u)) & 1u) << 4u);
        acc += (f32(lo) - 16.0) * x[xb + j] + (f32(hi) - 16.0) * x[xb + j + 16u];
    }
    return f16_at(block) * acc;
}
