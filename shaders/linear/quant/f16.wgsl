// f16 rows, in 32-element units (64 bytes, two halves per word).
const BLOCK_BYTES: u32 = 64u;
const UNITS_PER_BLOCK: u32 = 1u;

fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let w0 = block >> 2u;
    var acc = 0.0;
    for (var i = 0u; i < 16u; i++) {
        let h = unpack2x16float(weights[w0 + i]);
        acc += h.x * x[xb + 2u * i] + h.y * x[xb + 2u * i + 1u];
    }
    return acc;
}
