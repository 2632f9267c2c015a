// unit_vec4s for q5_1: q5_0's quants (dot_cols/q5_0.wgsl; blocks are 24 bytes) with
// y = d * q + m, never as an array of 32 floats. Same values as quant/q5_1.wgsl's decoder.
fn unit_vec4s(block: u32, sub: u32) -> array<vec4<f32>, 8> {
    var w: array<vec4<f32>, 8>;
    let d = f16_at(block);
    let m = f16_at(block + 2u);
    let qh = u32_at(block + 4u);
    for (var l = 0u; l < 8u; l++) {
        let q = nibbles4(block + 8u, 4u * l) | fifth_bits4(qh >> (4u * l));
        w[l] = d * bytes_f32(q) + m;
    }
    return w;
}
