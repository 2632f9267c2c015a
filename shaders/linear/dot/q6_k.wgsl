// unit_dot for q6_K without materialising the unit. A 128-element half h of a block holds
// its four units k = 0..3 interleaved: position l of unit k has its low nibble in ql byte
// 64h + 32(k % 2) + l (low for k < 2, high otherwise) and its top two bits in bits 2k of qh
// byte 128 + 32h + l. So step `sub` (0..8) is not unit `sub` but positions 8m..8m+8
// (m = sub % 4) of all four units of half h = sub / 4: two words of each ql row and two of
// qh, every byte used by the lane that loads it (any byte offset: blocks are 210 bytes).
// Those eight positions share one 16-element scale per unit. Same values as
// quant/q6_k.wgsl's decoder.
fn unit_dot(block: u32, sub: u32, xb: u32) -> f32 {
    let h = sub / 4u;
    let m = sub % 4u;
    let l = 8u * m;
    let ql = block + 64u * h + l;
    let qh = block + 128u + 32u * h + l;
    // Element l of unit 0 of the half.
    let x0 = xb - 32u * sub + 128u * h + l;
    var sums = vec4<f32>(0.0);
    for (var j = 0u; j < 8u; j += 4u) {
        let a = u32_at(ql + j);
        let b = u32_at(ql + 32u + j);
        let hb = u32_at(qh + j);
        let q0 = (a & 0x0F0F0F0Fu) | ((hb & 0x03030303u) << 4u);
        let q1 = (b & 0x0F0F0F0Fu) | (((hb >> 2u) & 0x03030303u) << 4u);
        let q2 = ((a >> 4u) & 0x0F0F0F0Fu) | (((hb >> 4u) & 0x03030303u) << 4u);
        let q3 = ((b >> 4u) & 0x0F0F0F0Fu) | (((hb >> 6u) & 0x03030303u) << 4u);
        let one = vec4<f32>(1.0);
        sums.x += dot((bytes_f32(q0) - 32.0) * x_at((x0 + j) >> 2u), one);
        sums.y += dot((bytes_f32(q1) - 32.0) * x_at((x0 + 32u + j) >> 2u), one);
        sums.z += dot((bytes_f32(q2) - 32.0) * x_at((x0 + 64u + j) >> 2u), one);
        sums.w += dot((bytes_f32(q3) - 32.0) * x_at((x0 + 96u + j) >> 2u), one);
    }
    // The 16-element scale of each unit's positions l..l+8.
    let sc = block + 192u + 8u * h + m / 2u;
    let scales = vec4<f32>(
        i8_of(byte_at(sc)),
        i8_of(byte_at(sc + 2u)),
        i8_of(byte_at(sc + 4u)),
        i8_of(byte_at(sc + 6u)),
    );
    return f16_at(block + 208u) * dot(scales, sums);
}
