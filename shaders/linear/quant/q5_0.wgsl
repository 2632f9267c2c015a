// block_q5_0 (22 bytes): f16 d, u32 of fifth bits, 16 bytes of nibbles; y = d * (q - 16).
const BLOCK_BYTES: u32 = 22u;
const UNITS_PER_BLOCK: u32 = 1u;

fn unit_values(block: u32, sub: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let d = f16_at(block);
    let qh = u32_at(block + 2u);
    for (var j = 0u; j < 16u; j++) {
        let q = byte_at(block + 6u + j);
        let lo = (q & 0xFu) | (((qh >> j) & 1u) << 4u);
        let hi = (q >> 4u) | (((qh >> (j + 16u)) & 1u) << 4u);
        v[j] = (f32(lo) - 16.0) * d;
        v[j + 16u] = (f32(hi) - 16.0) * d;
    }
    return v;
}
