// The 8-bit matmul tile's staging for iq4_xs: the code-book levels (signed bytes) of values
// 8 * part .. + 8 of a unit, w = dl level. Element e < 16 of a unit is the low nibble of
// its byte e, element e + 16 the high nibble (linear/stage/iq4_xs.wgsl).
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let shift = 4u * (part / 2u);
    let qs = (block + 8u + 16u * sub + 8u * (part % 2u)) >> 2u;
    let q = (vec2<u32>(weights[qs], weights[qs + 1u]) >> vec2<u32>(shift)) & vec2<u32>(0x0F0F0F0Fu);
    stage_quants(r, part, vec2<u32>(iq4_level_bytes4(q.x), iq4_level_bytes4(q.y)));
    if (part % 2u == 0u) {
        let low = (byte_at(block + 4u + sub / 2u) >> (4u * (sub % 2u))) & 0xFu;
        let high = (u16_at(block + 2u) >> (2u * sub)) & 3u;
        let dl = f16_at(block) * f32(i32(low | (high << 4u)) - 32);
        stage_factors(r, part / 2u, vec2<f32>(dl, 0.0));
    }
}
