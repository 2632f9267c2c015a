// unit_dot_cols for q4_0, over the RPI rows whose blocks are given: each row's unit read as
// four words of nibbles (u32_at: blocks are 18 bytes), word i's low nibbles elements 4i..
// and its high nibbles 16 + 4i.., never through the decoder's array of 32 floats; then each
// column's x, read once, multiplied into every row (dot_cols/units.wgsl). Same values as
// quant/q4_0.wgsl's decoder.
fn unit_dot_cols(
    blocks: ptr<function, array<u32, RPI>>,
    sub: u32,
    xi: u32,
    acc: ptr<function, array<f32, RPI * COLS>>,
) {
    var w: array<array<vec4<f32>, 8>, RPI>;
    for (var r = 0u; r < RPI; r++) {
        let block = (*blocks)[r];
        let d = f16_at(block);
        for (var i = 0u; i < 4u; i++) {
            let q = u32_at(block + 2u + 4u * i);
            w[r][i] = d * (bytes_f32(q & 0x0F0F0F0Fu) - 8.0);
            w[r][4u + i] = d * (bytes_f32((q >> 4u) & 0x0F0F0F0Fu) - 8.0);
        }
    }
    add_unit_cols(&w, xi, acc);
}
