// unit_vec4s for q5_0: q4_0's nibbles (common/bytes.wgsl's nibbles4: blocks are 22 bytes)
// with the fifth bit of element e in bit e of the block's qh word, never as an array of 32
// floats. Same values as quant/q5_0.wgsl's decoder.
fn unit_vec4s(block: u32, sub: u32) -> array<vec4<f32>, 8> {
    var w: array<vec4<f32>, 8>;
    let d = f16_at(block);
    let qh = u32_at(block + 2u);
    for (var l = 0u; l < 8u; l++) {
        let q = nibbles4(block + 6u, 4u * l) | fifth_bits4(qh >> (4u * l));
        w[l] = d * (bytes_f32(q) - 16.0);
    }
    return w;
}
