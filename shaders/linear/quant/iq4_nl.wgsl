// block_iq4_nl (18 bytes): f16 d, 16 bytes of nibbles indexing a non-uniform code book.
const BLOCK_BYTES: u32 = 18u;
const UNITS_PER_BLOCK: u32 = 1u;
const IQ4_LEVELS = array<f32, 16>(-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0,
                                  1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);

fn unit_values(block: u32, sub: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let d = f16_at(block);
    for (var j = 0u; j < 16u; j++) {
        let q = byte_at(block + 2u + j);
        v[j] = d * IQ4_LEVELS[q & 0xFu];
        v[j + 16u] = d * IQ4_LEVELS[q >> 4u];
    }
    return v;
}
