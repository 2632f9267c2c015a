// unit_dot for q5_0 without materialising the unit: as q4_0 (linear/dot/q4_0.wgsl), with the
// fifth bit of element j in bit j of the block's qh word (fifth_bits4). Same values as
// quant/q5_0.wgsl's decoder.
fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let d = f16_at(block);
    let qh = u32_at(block + 2u);
    var acc = vec4<f32>(0.0);
    for (var j = 0u; j < 16u; j += 4u) {
        let q = u32_at(block + 6u + j);
        let lo = (q & 0x0F0F0F0Fu) | fifth_bits4(qh >> j);
        let hi = ((q >> 4u) & 0x0F0F0F0Fu) | fifth_bits4(qh >> (j + 16u));
        acc += (bytes_f32(lo) - 16.0) * x_at((xb + j) >> 2u);
        acc += (bytes_f32(hi) - 16.0) * x_at((xb + 16u + j) >> 2u);
    }
    return d * (acc.x + acc.y + acc.z + acc.w);
}
