// The tiled matmul's staging for q4_k: values 8 * part .. + 8 of a unit into w_tile[r],
// the same values as the type's decoder gives.
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let f = k4_factors(block, sub);
    let shift = 4u * (sub % 2u);
    let qs = (block + 16u + 32u * (sub / 2u)) >> 2u;
    for (var j = 0u; j < 2u; j++) {
        let l = 8u * part + 4u * j;
        let q = (weights[qs + 2u * part + j] >> shift) & 0x0F0F0F0Fu;
        stage4(r, l, f.x * bytes_f32(q) - f.y);
    }
}
