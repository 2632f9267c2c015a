// bf16 rows, in 32-element units: a bf16 is the high half of an f32.
const BLOCK_BYTES: u32 = 64u;
const UNITS_PER_BLOCK: u32 = 1u;

fn unit_values(block: u32, sub: u32) -> array<f32, 32> {
    var v: array<f32, 32>;
    let w0 = block >> 2u;
    for (var i = 0u; i < 16u; i++) {
        let w = weights[w0 + i];
        v[2u * i] = bitcast<f32>(w << 16u);
        v[2u * i + 1u] = bitcast<f32>(w & 0xFFFF0000u);
    }
    return v;
}
