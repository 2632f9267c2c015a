// block_q5_1 (24 bytes): f16 d, f16 m, u32 of fifth bits, 16 bytes of nibbles; y = d * q + m.
const BLOCK_BYTES: u32 = 24u;
const UNITS_PER_BLOCK: u32 = 1u;

fn unit_values(block: u32, sub: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let d = f16_at(block);
    let m = f16_at(block + 2u);
    let qh = u32_at(block + 4u);
    for (var j = 0u; j < 16u; j++) {
        let q = byte_at(block + 8u + j);
        let lo = (q & 0xFu) | (((qh >> j) & 1u) << 4u);
        let hi = (q >> 4u) | (((qh >> (j + 16u)) & 1u) << 4u);
        v[j] = f32(lo) * d + m;
        v[j + 16u] = f32(hi) * d + m;
    }
    return v;
}
