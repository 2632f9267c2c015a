// The tiled matmul's staging for q5_1: q5_0's quants (linear/stage/q5_0.wgsl) with
// y = d * q + m. The same values as the type's decoder gives.
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let d = f16_at(block);
    let m = f16_at(block + 2u);
    let qh = u32_at(block + 4u);
    for (var e = 8u * part; e < 8u * part + 8u; e += 4u) {
        let q = nibbles4(block + 8u, e) | fifth_bits4(qh >> e);
        stage4(r, e, d * bytes_f32(q) + m);
    }
}
