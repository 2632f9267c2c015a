// The tiled matmul's staging for q4_0: values 8 * part .. + 8 of a unit into w_tile[r],
// the same values as the type's decoder gives. Element e < 16 is the low nibble of byte e,
// element e + 16 the high one, so parts 0 and 1 read low nibbles and parts 2 and 3 high
// ones, four a word (u32_at: blocks are 18 bytes).
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let d = f16_at(block);
    let shift = 4u * (part / 2u);
    let at = block + 2u + 8u * (part % 2u);
    for (var j = 0u; j < 2u; j++) {
        let q = (u32_at(at + 4u * j) >> shift) & 0x0F0F0F0Fu;
        stage4(r, 8u * part + 4u * j, d * (bytes_f32(q) - 8.0));
    }
}
