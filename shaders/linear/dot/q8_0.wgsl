// unit_dot for q8_0 without materialising the unit: four quants per word, sign-extended
// by shifts (bytes_i8_f32), multiplied with x four at a time. Same values as quant/q8_0.wgsl's decoder.
fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let d = f16_at(block);
    var acc = vec4<f32>(0.0);
    for (var j = 0u; j < 32u; j += 4u) {
        let q = u32_at(block + 2u + j);
        acc += bytes_i8_f32(q) * x_at((xb + j) >> 2u);
    }
    return d * (acc.x + acc.y + acc.z + acc.w);
}
