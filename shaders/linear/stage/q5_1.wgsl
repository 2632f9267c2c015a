// The tiled matmul's staging for q5_1: q5_0's quants (linear/stage/q5_0.wgsl) with
// y = d * q + m. The same values as the type's decoder gives.
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let d = f16_at(block);
    let m = f16_at(block + 2u);
    let qh = u32_at(block + 4u);
    let shift = 4u * (part / 2u);
    let at = block + 8u + 8u * (part % 2u);
    for (var j = 0u; j < 2u; j++) {
        let e = 8u * part + 4u * j;
        let q = ((u32_at(at + 4u * j) >> shift) & 0x0F0F0F0Fu) | fifth_bits4(qh >> e);
        stage4(r, e, d * bytes_f32(q) + m);
    }
}
