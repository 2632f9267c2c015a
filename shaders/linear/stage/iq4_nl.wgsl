// The tiled matmul's staging for iq4_nl: values 8 * part .. + 8 of a unit into w_tile[r],
// the same values as the type's decoder gives (q4_0's nibble order, common/bytes.wgsl's
// nibbles4, into the IQ4_NL code book).
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let d = f16_at(block);
    for (var e = 8u * part; e < 8u * part + 8u; e += 4u) {
        stage4(r, e, d * iq4_levels4(nibbles4(block + 2u, e)));
    }
}
