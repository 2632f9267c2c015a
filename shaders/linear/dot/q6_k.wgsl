// unit_dot for q6_K without materialising the unit: four quants per word read from ql and
// qh (any byte offset: blocks are 210 bytes), each 16-element half with its own scale.
// Same values as quant/q6_k.wgsl's decoder.
fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let h = sub / 4u;
    let k = sub % 4u;
    let ql = block + 64u * h + 32u * (k % 2u);
    let qh = block + 128u + 32u * h;
    let lo_shift = 4u * (k / 2u);
    let hi_shift = 2u * k;
    var halves = vec2<f32>(0.0);
    for (var j = 0u; j < 32u; j += 4u) {
        let lo = (u32_at(ql + j) >> lo_shift) & 0x0F0F0F0Fu;
        let hi = ((u32_at(qh + j) >> hi_shift) & 0x03030303u) << 4u;
        let q = lo | hi;
        let w = bytes_f32(q) - 32.0;
        let xv = x_at((xb + j) >> 2u);
        let p = w * xv;
        halves[j / 16u] += p.x + p.y + p.z + p.w;
    }
    let sc = block + 192u + 8u * h + 2u * k;
    return f16_at(block + 208u) * (i8_of(byte_at(sc)) * halves.x + i8_of(byte_at(sc + 1u)) * halves.y);
}
