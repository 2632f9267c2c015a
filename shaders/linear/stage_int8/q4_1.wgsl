// The 8-bit matmul tile's staging for q4_1: the nibbles q as bytes, w = d q + m.
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let e = 8u * part;
    stage_quants(r, part, vec2<u32>(nibbles4(block + 4u, e), nibbles4(block + 4u, e + 4u)));
    if (part % 2u == 0u) {
        stage_factors(r, part / 2u, vec2<f32>(f16_at(block), f16_at(block + 2u)));
    }
}
