// unit_dot for bf16 rows: two values per aligned word, each the high half of an f32 (rows
// are whole 64-byte units). Same values as quant/bf16.wgsl's decoder.
fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let w0 = (block >> 2u) + 16u * sub;
    var acc = vec4<f32>(0.0);
    for (var j = 0u; j < 16u; j += 2u) {
        let a = weights[w0 + j];
        let b = weights[w0 + j + 1u];
        let w = bitcast<vec4<f32>>(vec4<u32>(a << 16u, a & 0xFFFF0000u, b << 16u, b & 0xFFFF0000u));
        acc += w * x_at((xb + 2u * j) >> 2u);
    }
    return acc.x + acc.y + acc.z + acc.w;
}
