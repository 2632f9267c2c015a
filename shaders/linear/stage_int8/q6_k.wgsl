// The 8-bit matmul tile's staging for q6_k: the 6-bit quants q (0 .. 63) of values
// 8 * part .. + 8 of a unit as bytes, and w = s q - 32 s with the scale of their 16-element
// group (one a half).
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let h = sub / 4u;
    let k = sub % 4u;
    let ql = block + 64u * h + 32u * (k % 2u) + 8u * part;
    let qh = block + 128u + 32u * h + 8u * part;
    let lo = (vec2<u32>(u32_at(ql), u32_at(ql + 4u)) >> vec2<u32>(4u * (k / 2u))) & vec2<u32>(0x0F0F0F0Fu);
    let hi = (vec2<u32>(u32_at(qh), u32_at(qh + 4u)) >> vec2<u32>(2u * k)) & vec2<u32>(0x03030303u);
    stage_quants(r, part, lo | (hi << vec2<u32>(4u)));
    if (part % 2u == 0u) {
        let s = f16_at(block + 208u) * i8_of(byte_at(block + 192u + 8u * h + 2u * k + part / 2u));
        stage_factors(r, part / 2u, vec2<f32>(s, -32.0 * s));
    }
}
