// unit_dot for mxfp4 without materialising the unit: the 16 bytes of nibbles four at a time
// (u32_at: blocks are 17 bytes), the low nibbles' levels times x 0..16 and the high ones'
// times x 16..32, the block's power of two applied to the sum. Same values as
// quant/mxfp4.wgsl's decoder.
fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    var acc = vec4<f32>(0.0);
    for (var j = 0u; j < 16u; j += 4u) {
        let q = u32_at(block + 1u + j);
        acc += fp4_levels4(q) * x_at((xb + j) >> 2u);
        acc += fp4_levels4(q >> 4u) * x_at((xb + 16u + j) >> 2u);
    }
    return e8m0_half(byte_at(block)) * (acc.x + acc.y + acc.z + acc.w);
}
