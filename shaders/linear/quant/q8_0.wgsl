// block_q8_0 (34 bytes): f16 d, 32 i8; y = d * q.
const BLOCK_BYTES: u32 = 34u;
const UNITS_PER_BLOCK: u32 = 1u;

fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    var acc = 0.0;
    for (var j = 0u; j < 32u; j += 4u) {
        let q = u32_at(block + 2u + j);
        acc += i8_of(q & 0xFFu) * x[xb + j] + i8_of((q >> 8u) & 0xFFu) * x[xb + j + 1u]
             + i8_of((q >> 16u) & 0xFFu) * x[xb + j + 2u] + i8_of(q >> 24u) * x[xb + j + 3u];
    }
    return f16_at(block) * acc;
}
