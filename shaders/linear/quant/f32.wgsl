// f32 rows, in 32-element units (128 bytes).
const BLOCK_BYTES: u32 = 128u;
const UNITS_PER_BLOCK: u32 = 1u;

fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let w0 = block >> 2u;
    var acc = 0.0;
    for (var i = 0u; i < 32u; i++) {
        acc += bitcast<f32>(weights[w0 + i]) * x[xb + i];
    }
    return acc;
}
