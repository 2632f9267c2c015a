// unit_dot for iq4_nl without materialising the unit: q4_0's nibble order (u32_at: blocks are
// 18 bytes) into the IQ4_NL code book, d applied to the sum. Same values as
// quant/iq4_nl.wgsl's decoder.
fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    var acc = vec4<f32>(0.0);
    for (var j = 0u; j < 16u; j += 4u) {
        let q = u32_at(block + 2u + j);
        acc += iq4_levels4(q) * x_at((xb + j) >> 2u);
        acc += iq4_levels4(q >> 4u) * x_at((xb + 16u + j) >> 2u);
    }
    return f16_at(block) * (acc.x + acc.y + acc.z + acc.w);
}
