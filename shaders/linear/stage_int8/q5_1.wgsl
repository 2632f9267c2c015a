// The 8-bit matmul tile's staging for q5_1: q5_0's quants (linear/stage_int8/q5_0.wgsl)
// with w = d q + m.
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let e = 8u * part;
    let qh = u32_at(block + 4u);
    let q0 = nibbles4(block + 8u, e) | fifth_bits4(qh >> e);
    let q1 = nibbles4(block + 8u, e + 4u) | fifth_bits4(qh >> (e + 4u));
    stage_quants(r, part, vec2<u32>(q0, q1));
    if (part % 2u == 0u) {
        stage_factors(r, part / 2u, vec2<f32>(f16_at(block), f16_at(block + 2u)));
    }
}
