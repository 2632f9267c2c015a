// The tiled matmul's staging for q5_0: q4_0's nibbles (linear/stage/q4_0.wgsl) with the
// fifth bit of element e in bit e of the block's qh word. The same values as the type's
// decoder gives.
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let d = f16_at(block);
    let qh = u32_at(block + 2u);
    let shift = 4u * (part / 2u);
    let at = block + 6u + 8u * (part % 2u);
    for (var j = 0u; j < 2u; j++) {
        let e = 8u * part + 4u * j;
        let q = ((u32_at(at + 4u * j) >> shift) & 0x0F0F0F0Fu) | fifth_bits4(qh >> e);
        stage4(r, e, d * (bytes_f32(q) - 16.0));
    }
}
