// unit_vec4s for mxfp4: the unit read as four words of nibbles (u32_at: blocks are 17 bytes),
// word i's low nibbles' levels elements 4i.. and its high nibbles' 16 + 4i.., times the
// block's power of two, never as an array of 32 floats. Same values as quant/mxfp4.wgsl's
// decoder.
fn unit_vec4s(block: u32, sub: u32) -> array<vec4<f32>, 8> {
    var w: array<vec4<f32>, 8>;
    let d = e8m0_half(byte_at(block));
    for (var i = 0u; i < 4u; i++) {
        let q = u32_at(block + 1u + 4u * i);
        w[i] = d * fp4_levels4(q);
        w[4u + i] = d * fp4_levels4(q >> 4u);
    }
    return w;
}
