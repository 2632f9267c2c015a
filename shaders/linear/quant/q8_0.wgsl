// block_q8_0 (34 bytes): f16 d, 32 i8; y = d * q.
const BLOCK_BYTES: u32 = 34u;
const UNITS_PER_BLOCK: u32 = 1u;

fn unit_values(block: u32, sub: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let d = f16_at(block);
    for (var j = 0u; j < 32u; j += 4u) {
        let q = u32_at(block + 2u + j);
        v[j] = i8_of(q & 0xFFu) * d;
        v[j + 1u] = i8_of((q >> 8u) & 0xFFu) * d;
        v[j + 2u] = i8_of((q >> 16u) & 0xFFu) * d;
        v[j + 3u] = i8_of(q >> 24u) * d;
    }
    return v;
}
