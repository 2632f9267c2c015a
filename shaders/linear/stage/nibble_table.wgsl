// The tiled matmul's staging for the nibble-table types (iq4_nl, mxfp4; see
// linear/dot/nibble_table.wgsl): values 8 * part .. + 8 of a unit into w_tile[r], the same
// values as the type's decoder gives (q4_0's nibble order, common/bytes.wgsl's nibbles4).
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let d = nibble_scale(block);
    for (var e = 8u * part; e < 8u * part + 8u; e += 4u) {
        stage4(r, e, d * nibble_levels4(nibbles4(block + NIBBLES_AT, e)));
    }
}
