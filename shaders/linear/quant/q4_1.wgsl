// block_q4_1 (20 bytes): f16 d, f16 m, 16 bytes of nibbles; y = d * q + m.
const BLOCK_BYTES: u32 = 20u;
const UNITS_PER_BLOCK: u32 = 1u;

fn unit_values(block: u32, sub: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let d = f16_at(block);
    let m = f16_at(block + 2u);
    for (var j = 0u; j < 16u; j++) {
        let q = byte_at(block + 4u + j);
        v[j] = f32(q & 0xFu) * d + m;
        v[j + 16u] = f32(q >> 4u) * d + m;
    }
    return v;
}
