// unit_vec4s for q8_0: the unit read as eight words of four quants (sign-extended by
// bytes_i8_f32) times d, never as an array of 32 floats. Same values as quant/q8_0.wgsl's
// decoder.
fn unit_vec4s(block: u32, sub: u32) -> array<vec4<f32>, 8> {
    var w: array<vec4<f32>, 8>;
    let d = f16_at(block);
    for (var l = 0u; l < 8u; l++) {
        w[l] = d * bytes_i8_f32(u32_at(block + 2u + 4u * l));
    }
    return w;
}
