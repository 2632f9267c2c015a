// unit_dot for q4_K without materialising the unit: blocks are 144 bytes, so the quants
// are whole aligned words; sum(q x) and sum(x) give d * scale * sum(q x) - dmin * min * sum(x).
// Same values as quant/q4_k.wgsl's decoder.
fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let sm = k4_scale_min(block + 4u, sub);
    let dl = f16_at(block) * sm.x;
    let ml = f16_at(block + 2u) * sm.y;
    let shift = 4u * (sub % 2u);
    let qs = (block + 16u + 32u * (sub / 2u)) >> 2u;
    var qx = vec4<f32>(0.0);
    var sx = vec4<f32>(0.0);
    for (var j = 0u; j < 8u; j++) {
        let q = (weights[qs + j] >> shift) & 0x0F0F0F0Fu;
        let w = bytes_f32(q);
        let b = xb + 4u * j;
        let xv = x_at(b >> 2u);
        qx += w * xv;
        sx += xv;
    }
    return dl * (qx.x + qx.y + qx.z + qx.w) - ml * (sx.x + sx.y + sx.z + sx.w);
}
