// unit_vec4s for iq4_xs: the unit read as four aligned words of nibbles (blocks are 136
// bytes), looked up in the IQ4_NL code book and scaled by the group's scale, never as an array
// of 32 floats; word i's low nibbles are elements 4i.. and its high nibbles 16 + 4i... Same
// values as quant/iq4_xs.wgsl's decoder.
fn unit_vec4s(block: u32, sub: u32) -> array<vec4<f32>, 8> {
    var w: array<vec4<f32>, 8>;
    let low = (byte_at(block + 4u + sub / 2u) >> (4u * (sub % 2u))) & 0xFu;
    let high = (u16_at(block + 2u) >> (2u * sub)) & 3u;
    let dl = f16_at(block) * f32(i32(low | (high << 4u)) - 32);
    let qs = (block + 8u + 16u * sub) >> 2u;
    for (var i = 0u; i < 4u; i++) {
        let q = weights[qs + i];
        w[i] = dl * iq4_levels4(q);
        w[4u + i] = dl * iq4_levels4(q >> 4u);
    }
    return w;
}
