// unit_vec4s for the nibble-table types (iq4_nl, mxfp4; see linear/dot/nibble_table.wgsl):
// the unit read as four words of nibbles, word i's low nibbles' levels elements 4i.. and its
// high nibbles' 16 + 4i.., times the scale, never as an array of 32 floats. Same values as
// the type's decoder.
fn unit_vec4s(block: u32, sub: u32) -> array<vec4<f32>, 8> {
    var w: array<vec4<f32>, 8>;
    let d = nibble_scale(block);
    for (var i = 0u; i < 4u; i++) {
        let q = u32_at(block + NIBBLES_AT + 4u * i);
        w[i] = d * nibble_levels4(q);
        w[4u + i] = d * nibble_levels4(q >> 4u);
    }
    return w;
}
