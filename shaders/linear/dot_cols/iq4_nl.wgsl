// unit_vec4s for iq4_nl: the unit read as four words of nibbles (u32_at: blocks are 18
// bytes) into the IQ4_NL code book, word i's low nibbles elements 4i.. and its high nibbles
// 16 + 4i.., never as an array of 32 floats. Same values as quant/iq4_nl.wgsl's decoder.
fn unit_vec4s(block: u32, sub: u32) -> array<vec4<f32>, 8> {
    var w: array<vec4<f32>, 8>;
    let d = f16_at(block);
    for (var i = 0u; i < 4u; i++) {
        let q = u32_at(block + 2u + 4u * i);
        w[i] = d * iq4_levels4(q);
        w[4u + i] = d * iq4_levels4(q >> 4u);
    }
    return w;
}
