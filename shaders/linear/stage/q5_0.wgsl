// The tiled matmul's staging for q5_0: values 8 * part .. + 8 of a unit into w_tile[r],
// the same values as the type's decoder gives: q4_0's nibbles with the fifth bit of element
// e in bit e of the block's qh word.
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let d = f16_at(block);
    let qh = u32_at(block + 2u);
    for (var e = 8u * part; e < 8u * part + 8u; e += 4u) {
        let q = nibbles4(block + 6u, e) | fifth_bits4(qh >> e);
        stage4(r, e, d * (bytes_f32(q) - 16.0));
    }
}
