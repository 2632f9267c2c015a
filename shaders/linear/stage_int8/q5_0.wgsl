// The 8-bit matmul tile's staging for q5_0: q4_0's nibbles with the fifth bit of element e
// in bit e of the block's qh word, as bytes; w = d q - 16 d.
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let e = 8u * part;
    let qh = u32_at(block + 2u);
    let q0 = nibbles4(block + 6u, e) | fifth_bits4(qh >> e);
    let q1 = nibbles4(block + 6u, e + 4u) | fifth_bits4(qh >> (e + 4u));
    stage_quants(r, part, vec2<u32>(q0, q1));
    if (part % 2u == 0u) {
        let d = f16_at(block);
        stage_factors(r, part / 2u, vec2<f32>(d, -16.0 * d));
    }
}
