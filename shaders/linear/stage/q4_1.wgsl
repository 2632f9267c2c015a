// The tiled matmul's staging for q4_1: q4_0's nibbles (linear/stage/q4_0.wgsl) with
// y = d * q + m. The same values as the type's decoder gives.
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let d = f16_at(block);
    let m = f16_at(block + 2u);
    let shift = 4u * (part / 2u);
    let at = block + 4u + 8u * (part % 2u);
    for (var j = 0u; j < 2u; j++) {
        let q = (u32_at(at + 4u * j) >> shift) & 0x0F0F0F0Fu;
        stage4(r, 8u * part + 4u * j, d * bytes_f32(q) + m);
    }
}
