// unit_dot for the types whose unit is one scale and 16 bytes of nibbles into a 16-level
// table (iq4_nl, mxfp4), without materialising the unit: the nibbles four bytes at a time
// (u32_at: their blocks are 18 and 17 bytes), the low nibbles' levels times x 0..16 and the
// high ones' times x 16..32, the scale applied to the sum. The type's decoder defines
// nibble_scale(block), NIBBLES_AT and nibble_levels4(q). Same values as its unit_values.
fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    var acc = vec4<f32>(0.0);
    for (var j = 0u; j < 16u; j += 4u) {
        let q = u32_at(block + NIBBLES_AT + j);
        acc += nibble_levels4(q) * x_at((xb + j) >> 2u);
        acc += nibble_levels4(q >> 4u) * x_at((xb + 16u + j) >> 2u);
    }
    return nibble_scale(block) * (acc.x + acc.y + acc.z + acc.w);
}
