// The tiled matmul's staging for q5_k: values 8 * part .. + 8 of a unit into w_tile[r],
// the same values as the type's decoder gives: q4_k's nibbles, with the fifth bit of element
// l of unit `sub` in bit `sub` of qh[l], four elements a word.
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let f = k4_factors(block, sub);
    let shift = 4u * (sub % 2u);
    let qs = (block + 48u + 32u * (sub / 2u)) >> 2u;
    let qh = (block + 16u) >> 2u;
    for (var j = 0u; j < 2u; j++) {
        let l = 8u * part + 4u * j;
        let lo = (weights[qs + 2u * part + j] >> shift) & 0x0F0F0F0Fu;
        let hi = ((weights[qh + 2u * part + j] >> sub) & 0x01010101u) << 4u;
        stage4(r, l, f.x * bytes_f32(lo | hi) - f.y);
    }
}
