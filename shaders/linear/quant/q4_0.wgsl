// block_q4_0 (18 bytes): f16 d, 16 bytes of nibbles; y = d * (q - 8),
// low nibbles are elements 0..16, high nibbles 16..32 (dequant.rs BlockQ4_0).
const BLOCK_BYTES: u32 = 18u;
const UNITS_PER_BLOCK: u32 = 1u;

fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    var acc = 0.0;
    for (var j = 0u; j < 16u; j++) {
        let q = byte_at(block + 2u + j);
        acc += (f32(q & 0xFu) - 8.0) * x[xb + j] + (f32(q >> 4u) - 8.0) * x[xb + j + 16u];
    }
    return f16_at(block) * acc;
}
