// f16 rows, in 32-element units (64 bytes, two halves per word).
const BLOCK_BYTES: u32 = 64u;
const UNITS_PER_BLOCK: u32 = 1u;

fn unit_values(block: u32, sub: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let w0 = block >> 2u;
    for (var i = 0u; i < 16u; i++) {
        let h = unpack2x16float(weights[w0 + i]);
        v[2u * i] = h.x;
        v[2u * i + 1u] = h.y;
    }
    return v;
}
