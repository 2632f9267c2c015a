// The tiled matmul's staging for q6_k: values 8 * part .. + 8 of a unit into w_tile[r],
// the same values as the type's decoder gives.
fn stage_unit(block: u32, sub: u32, r: u32, part: u32) {
    let h = sub / 4u;
    let k = sub % 4u;
    let ql = block + 64u * h + 32u * (k % 2u);
    let qh = block + 128u + 32u * h;
    // The 8 values share one scale (16-element groups).
    let ds = f16_at(block + 208u) * i8_of(byte_at(block + 192u + 8u * h + 2u * k + part / 2u));
    for (var j = 0u; j < 8u; j += 4u) {
        let l = 8u * part + j;
        let lo = (u32_at(ql + l) >> (4u * (k / 2u))) & 0x0F0F0F0Fu;
        let hi = ((u32_at(qh + l) >> (2u * k)) & 0x03030303u) << 4u;
        let q = lo | hi;
        stage4(r, l, ds * (bytes_f32(q) - 32.0));
    }
}
