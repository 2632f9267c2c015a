// f32 rows, in 32-element units (128 bytes).
const BLOCK_BYTES: u32 = 128u;
const UNITS_PER_BLOCK: u32 = 1u;

fn unit_values(block: u32, sub: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let w0 = block >> 2u;
    for (var i = 0u; i < 32u; i++) {
        v[i] = bitcast<f32>(weights[w0 + i]);
    }
    return v;
}
