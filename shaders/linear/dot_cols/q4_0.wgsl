// unit_vec4s for q4_0: the unit read as four words of nibbles (u32_at: blocks are 18 bytes),
// word i's low nibbles elements 4i.. and its high nibbles 16 + 4i.., never as an array of 32
// floats. Same values as quant/q4_0.wgsl's decoder.
fn unit_vec4s(block: u32, sub: u32) -> array<vec4<f32>, 8> {
    var w: array<vec4<f32>, 8>;
    let d = f16_at(block);
    for (var i = 0u; i < 4u; i++) {
        let q = u32_at(block + 2u + 4u * i);
        w[i] = d * (bytes_f32(q & 0x0F0F0F0Fu) - 8.0);
        w[4u + i] = d * (bytes_f32((q >> 4u) & 0x0F0F0F0Fu) - 8.0);
    }
    return w;
}
