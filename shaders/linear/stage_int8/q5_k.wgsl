// The 8-bit matmul tile's staging for q5_k: q4_k's nibbles (linear/stage_int8/q4_k.wgsl)
// with the fifth bit of element l of unit `sub` in bit `sub` of qh[l], four elements a word.
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let shift = 4u * (sub % 2u);
    let qs = ((block + 48u + 32u * (sub / 2u)) >> 2u) + 2u * part;
    let qh = ((block + 16u) >> 2u) + 2u * part;
    let lo = (vec2<u32>(weights[qs], weights[qs + 1u]) >> vec2<u32>(shift)) & vec2<u32>(0x0F0F0F0Fu);
    let hi = (vec2<u32>(weights[qh], weights[qh + 1u]) >> vec2<u32>(sub)) & vec2<u32>(0x01010101u);
    stage_quants(r, part, lo | (hi << vec2<u32>(4u)));
    if (part % 2u == 0u) {
        let f = k4_factors(block, sub);
        stage_factors(r, part / 2u, vec2<f32>(f.x, -f.y));
    }
}
