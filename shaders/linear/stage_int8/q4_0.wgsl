// The 8-bit matmul tile's staging for q4_0: the nibbles q as bytes, w = d q - 8 d.
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let e = 8u * part;
    stage_quants(r, part, vec2<u32>(nibbles4(block + 2u, e), nibbles4(block + 2u, e + 4u)));
    if (part % 2u == 0u) {
        let d = f16_at(block);
        stage_factors(r, part / 2u, vec2<f32>(d, -8.0 * d));
    }
}
