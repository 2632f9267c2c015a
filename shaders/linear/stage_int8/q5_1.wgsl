// The 8-bit matmul tile's staging for q5_1: q5_0's quants (linear/stage_int8/q5_0.wgsl)
// with w = d q + m.
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    stage_quants(r, part, q5_quants8(block + 8u, u32_at(block + 4u), 8u * part));
    if (part % 2u == 0u) {
        stage_factors(r, part / 2u, vec2<f32>(f16_at(block), f16_at(block + 2u)));
    }
}
