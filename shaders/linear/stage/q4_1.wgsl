// The tiled matmul's staging for q4_1: values 8 * part .. + 8 of a unit into w_tile[r],
// the same values as the type's decoder gives (y = d * q + m).
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let d = f16_at(block);
    let m = f16_at(block + 2u);
    for (var e = 8u * part; e < 8u * part + 8u; e += 4u) {
        stage4(r, e, d * bytes_f32(nibbles4(block + 4u, e)) + m);
    }
}
