// unit_dot for q5_K without materialising the unit: blocks are 176 bytes, so qh and the
// quants are whole aligned words; each word gives four elements, the low nibbles from qs
// and the fifth bit from bit `sub` of each qh byte. sum(q x) and sum(x) give
// d * scale * sum(q x) - dmin * min * sum(x). Same values as quant/q5_k.wgsl's decoder.
fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let sm = k4_scale_min(block + 4u, sub);
    let dl = f16_at(block) * sm.x;
    let ml = f16_at(block + 2u) * sm.y;
    let shift = 4u * (sub % 2u);
    let qh = (block + 16u) >> 2u;
    let qs = (block + 48u + 32u * (sub / 2u)) >> 2u;
    var qx = vec4<f32>(0.0);
    var sx = vec4<f32>(0.0);
    for (var j = 0u; j < 8u; j++) {
        let low = (weights[qs + j] >> shift) & 0x0F0F0F0Fu;
        let high = ((weights[qh + j] >> sub) & 0x01010101u) << 4u;
        let w = bytes_f32(low | high);
        let xv = x_at((xb + 4u * j) >> 2u);
        qx += w * xv;
        sx += xv;
    }
    return dl * (qx.x + qx.y + qx.z + qx.w) - ml * (sx.x + sx.y + sx.z + sx.w);
}
