// unit_dot_cols for iq4_xs, over the RPI rows whose blocks are given: each row's unit read
// as four aligned words of nibbles (blocks are 136 bytes), looked up in the IQ4_NL code book
// and scaled by the group's scale, never through the decoder's array of 32 floats; word i's
// low nibbles are elements 4i.. and its high nibbles 16 + 4i... Then each column's x, read
// once, multiplied into every row (dot_cols/units.wgsl). Same values as quant/iq4_xs.wgsl's
// decoder.
fn unit_dot_cols(
    blocks: ptr<function, array<u32, RPI>>,
    sub: u32,
    xi: u32,
    acc: ptr<function, array<f32, RPI * COLS>>,
) {
    var w: array<array<vec4<f32>, 8>, RPI>;
    for (var r = 0u; r < RPI; r++) {
        let block = (*blocks)[r];
        let low = (byte_at(block + 4u + sub / 2u) >> (4u * (sub % 2u))) & 0xFu;
        let high = (u16_at(block + 2u) >> (2u * sub)) & 3u;
        let dl = f16_at(block) * f32(i32(low | (high << 4u)) - 32);
        let qs = (block + 8u + 16u * sub) >> 2u;
        for (var i = 0u; i < 4u; i++) {
            let q = weights[qs + i];
            w[r][i] = dl * iq4_levels4(q);
            w[r][4u + i] = dl * iq4_levels4(q >> 4u);
        }
    }
    add_unit_cols(&w, xi, acc);
}
