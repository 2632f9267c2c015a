// unit_dot for f16 rows: two halves per aligned word (rows are whole 64-byte units).
// Same values as quant/f16.wgsl's decoder.
fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let w0 = (block >> 2u) + 16u * sub;
    var acc = vec4<f32>(0.0);
    for (var j = 0u; j < 16u; j += 2u) {
        let w = vec4<f32>(unpack2x16float(weights[w0 + j]), unpack2x16float(weights[w0 + j + 1u]));
        let b = xb + 2u * j;
        acc += w * x_at(b >> 2u);
    }
    return acc.x + acc.y + acc.z + acc.w;
}
