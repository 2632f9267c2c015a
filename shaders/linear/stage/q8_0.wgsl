// The tiled matmul's staging for q8_0: values 8 * part .. + 8 of a unit into w_tile[r],
// the same values as the type's decoder gives.
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let d = f16_at(block);
    for (var j = 0u; j < 8u; j += 4u) {
        let l = 8u * part + j;
        let q = u32_at(block + 2u + l);
        stage4(r, l, d * bytes_i8_f32(q));
    }
}
