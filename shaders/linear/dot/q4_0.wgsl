// unit_dot for q4_0 without materialising the unit: the 16 bytes of nibbles four at a time
// (u32_at: blocks are 18 bytes, so at any alignment), the low nibbles times x 0..16 and the
// high ones times x 16..32. Same values as quant/q4_0.wgsl's decoder.
fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let d = f16_at(block);
    var acc = vec4<f32>(0.0);
    for (var j = 0u; j < 16u; j += 4u) {
        let q = u32_at(block + 2u + j);
        acc += (bytes_f32(q & 0x0F0F0F0Fu) - 8.0) * x_at((xb + j) >> 2u);
        acc += (bytes_f32((q >> 4u) & 0x0F0F0F0Fu) - 8.0) * x_at((xb + 16u + j) >> 2u);
    }
    return d * (acc.x + acc.y + acc.z + acc.w);
}
