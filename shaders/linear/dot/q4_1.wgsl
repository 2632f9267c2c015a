// unit_dot for q4_1 without materialising the unit: as q4_0 (linear/dot/q4_0.wgsl), with
// y = d * q + m, so the dot is d * sum(q x) + m * sum(x). Same values as quant/q4_1.wgsl's
// decoder.
fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let d = f16_at(block);
    let m = f16_at(block + 2u);
    var qx = vec4<f32>(0.0);
    var sx = vec4<f32>(0.0);
    for (var j = 0u; j < 16u; j += 4u) {
        let q = u32_at(block + 4u + j);
        let lo = x_at((xb + j) >> 2u);
        let hi = x_at((xb + 16u + j) >> 2u);
        qx += bytes_f32(q & 0x0F0F0F0Fu) * lo + bytes_f32((q >> 4u) & 0x0F0F0F0Fu) * hi;
        sx += lo + hi;
    }
    return d * (qx.x + qx.y + qx.z + qx.w) + m * (sx.x + sx.y + sx.z + sx.w);
}
