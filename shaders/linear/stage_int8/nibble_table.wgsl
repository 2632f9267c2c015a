// The 8-bit matmul tile's staging for the nibble-table types (iq4_nl, mxfp4; see
// linear/dot/nibble_table.wgsl): the levels (signed bytes) of values 8 * part .. + 8 of a
// unit in q4_0's nibble order, w = scale level.
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let e = 8u * part;
    let q0 = nibble_level_bytes4(nibbles4(block + NIBBLES_AT, e));
    let q1 = nibble_level_bytes4(nibbles4(block + NIBBLES_AT, e + 4u));
    stage_quants(r, part, vec2<u32>(q0, q1));
    if (part % 2u == 0u) {
        stage_factors(r, part / 2u, vec2<f32>(nibble_scale(block), 0.0));
    }
}
