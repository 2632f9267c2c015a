// bf16 rows, in 32-element units: a bf16 is the high half of an f32.
const BLOCK_BYTES: u32 = 64u;
const UNITS_PER_BLOCK: u32 = 1u;

fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let w0 = block >> 2u;
    var acc = 0.0;
    for (var i = 0u; i < 16u; i++) {
        let w = weights[w0 + i];
        acc += bitcast<f32>(w << 16u) * x[xb + 2u * i] + bitcast<f32>(w & 0xFFFF0000u) * x[xb + 2u * i + 1u];
    }
    return acc;
}
