// unit_dot for iq4_xs without materialising the unit: blocks are 136 bytes, so a unit's 16
// bytes of nibbles are four aligned words; each word's low nibbles are elements 4i.. of the
// unit and its high nibbles elements 16 + 4i.., looked up in the IQ4_NL code book, and the
// group's scale multiplies the sum once. Same values as quant/iq4_xs.wgsl's decoder.
fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let low = (byte_at(block + 4u + sub / 2u) >> (4u * (sub % 2u))) & 0xFu;
    let high = (u16_at(block + 2u) >> (2u * sub)) & 3u;
    let dl = f16_at(block) * f32(i32(low | (high << 4u)) - 32);
    let qs = (block + 8u + 16u * sub) >> 2u;
    var acc = vec4<f32>(0.0);
    for (var i = 0u; i < 4u; i++) {
        let q = weights[qs + i];
        let lo = iq4_levels4(q);
        let hi = iq4_levels4(q >> 4u);
        acc += lo * x_at((xb + 4u * i) >> 2u) + hi * x_at((xb + 16u + 4u * i) >> 2u);
    }
    return dl * (acc.x + acc.y + acc.z + acc.w);
}
