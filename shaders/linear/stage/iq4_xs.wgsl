// The tiled matmul's staging for iq4_xs: values 8 * part .. + 8 of a unit into w_tile[r],
// the same values as the type's decoder gives. Element e < 16 of a unit is the low nibble
// of its byte e, element e + 16 the high nibble, so parts 0 and 1 read the low nibbles of
// bytes 0..16 and parts 2 and 3 the high ones, four a word.
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let low = (byte_at(block + 4u + sub / 2u) >> (4u * (sub % 2u))) & 0xFu;
    let high = (u16_at(block + 2u) >> (2u * sub)) & 3u;
    let dl = f16_at(block) * f32(i32(low | (high << 4u)) - 32);
    let shift = 4u * (part / 2u);
    let qs = (block + 8u + 16u * sub + 8u * (part % 2u)) >> 2u;
    for (var j = 0u; j < 2u; j++) {
        let q = (weights[qs + j] >> shift) & 0x0F0F0F0Fu;
        let levels = iq4_levels4(q);
        stage4(r, 8u * part + 4u * j, dl * levels);
    }
}
