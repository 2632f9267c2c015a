// unit_dot for f32 rows: whole aligned words, four at a time. Same values as
// quant/f32.wgsl's decoder.
fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let w0 = (block >> 2u) + 32u * sub;
    var acc = vec4<f32>(0.0);
    for (var j = 0u; j < 32u; j += 4u) {
        let w = bitcast<vec4<f32>>(vec4<u32>(weights[w0 + j], weights[w0 + j + 1u], weights[w0 + j + 2u], weights[w0 + j + 3u]));
        acc += w * x_at((xb + j) >> 2u);
    }
    return acc.x + acc.y + acc.z + acc.w;
}
