// The 8-bit matmul tile's staging for q5_0: q4_0's nibbles with the fifth bit of element e
// in bit e of the block's qh word, as bytes; w = d q - 16 d.
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    stage_quants(r, part, q5_quants8(block + 6u, u32_at(block + 2u), 8u * part));
    if (part % 2u == 0u) {
        let d = f16_at(block);
        stage_factors(r, part / 2u, vec2<f32>(d, -16.0 * d));
    }
}
