// unit_dot for q5_1 without materialising the unit: q5_0's quants (linear/dot/q5_0.wgsl)
// with y = d * q + m, so the dot is d * sum(q x) + m * sum(x). Same values as
// quant/q5_1.wgsl's decoder.
fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let d = f16_at(block);
    let m = f16_at(block + 2u);
    let qh = u32_at(block + 4u);
    var qx = vec4<f32>(0.0);
    var sx = vec4<f32>(0.0);
    for (var j = 0u; j < 16u; j += 4u) {
        let q = u32_at(block + 8u + j);
        let lo = (q & 0x0F0F0F0Fu) | fifth_bits4(qh >> j);
        let hi = ((q >> 4u) & 0x0F0F0F0Fu) | fifth_bits4(qh >> (j + 16u));
        let x_lo = x_at((xb + j) >> 2u);
        let x_hi = x_at((xb + 16u + j) >> 2u);
        qx += bytes_f32(lo) * x_lo + bytes_f32(hi) * x_hi;
        sx += x_lo + x_hi;
    }
    return d * (qx.x + qx.y + qx.z + qx.w) + m * (sx.x + sx.y + sx.z + sx.w);
}
