// unit_dot_cols for q8_0, over the RPI rows whose blocks are given: each row's unit read as
// eight words of four quants (sign-extended by bytes_i8_f32) times d, never as an array of
// 32 floats; then each column's x, read once, multiplied into every row
// (dot_cols/units.wgsl). Same values as quant/q8_0.wgsl's decoder.
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
        for (var l = 0u; l < 8u; l++) {
            w[r][l] = d * bytes_i8_f32(u32_at(block + 2u + 4u * l));
        }
    }
    add_unit_cols(&w, xi, acc);
}
