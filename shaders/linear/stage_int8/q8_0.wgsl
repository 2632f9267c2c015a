// The 8-bit matmul tile's staging for q8_0: its signed byte quants as they are, w = d q.
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let qs = block + 2u + 8u * part;
    stage_quants(r, part, vec2<u32>(u32_at(qs), u32_at(qs + 4u)));
    if (part % 2u == 0u) {
        stage_factors(r, part / 2u, vec2<f32>(f16_at(block), 0.0));
    }
}
