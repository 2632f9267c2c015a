// unit_vec4s for q4_1: the unit's quants in words (common/bytes.wgsl's nibbles4: blocks are
// 20 bytes), y = d * q + m, never as an array of 32 floats. Same values as
// quant/q4_1.wgsl's decoder.
fn unit_vec4s(block: u32, sub: u32) -> array<vec4<f32>, 8> {
    var w: array<vec4<f32>, 8>;
    let d = f16_at(block);
    let m = f16_at(block + 2u);
    for (var l = 0u; l < 8u; l++) {
        w[l] = d * bytes_f32(nibbles4(block + 4u, 4u * l)) + m;
    }
    return w;
}
