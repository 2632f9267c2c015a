// The 8-bit matmul tile's staging for q4_k: the nibbles of values 8 * part .. + 8 of a unit
// as bytes, and w = s q - m with the unit's scale and min (linear/quant/k4_scales.wgsl).
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let shift = 4u * (sub % 2u);
    let qs = ((block + 16u + 32u * (sub / 2u)) >> 2u) + 2u * part;
    let q = vec2<u32>(weights[qs], weights[qs + 1u]) >> vec2<u32>(shift);
    stage_quants(r, part, q & vec2<u32>(0x0F0F0F0Fu));
    if (part % 2u == 0u) {
        let f = k4_factors(block, sub);
        stage_factors(r, part / 2u, vec2<f32>(f.x, -f.y));
    }
}
