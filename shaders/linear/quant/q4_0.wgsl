// block_q4_0 (18 bytes): f16 d, 16 bytes of nibbles; y = d * (q - 8),
// low nibbles are elements 0..16, high nibbles 16..32 (dequant.rs BlockQ4_0).
const BLOCK_BYTES: u32 = 18u;
const UNITS_PER_BLOCK: u32 = 1u;

fn unit_values(block: u32, sub: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let d = f16_at(block);
    for (var j = 0u; j < 16u; j++) {
        let q = byte_at(block + 2u + j);
        v[j] = (f32(q & 0xFu) - 8.0) * d;
        v[j + 16u] = (f32(q >> 4u) - 8.0) * d;
    }
    return v;
}
