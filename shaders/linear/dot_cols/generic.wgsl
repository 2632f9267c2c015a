// unit_dot_cols for any type, over the RPI rows whose blocks are given: each row's unit of
// 32 values from the type's decoder (linear/quant/<type>.wgsl, unit_values), then each
// column's x, read once, multiplied into every row (dot_cols/units.wgsl). The kernel's file
// defines x_col(c, i), the vec4 of column c at float i of its row, and n_cols().
fn unit_dot_cols(
    blocks: ptr<function, array<u32, RPI>>,
    sub: u32,
    xi: u32,
    acc: ptr<function, array<f32, RPI * COLS>>,
) {
    var w: array<array<vec4<f32>, 8>, RPI>;
    for (var r = 0u; r < RPI; r++) {
        let v = unit_values((*blocks)[r], sub);
        for (var l = 0u; l < 8u; l++) {
            w[r][l] = vec4<f32>(v[4u * l], v[4u * l + 1u], v[4u * l + 2u], v[4u * l + 3u]);
        }
    }
    add_unit_cols(&w, xi, acc);
}
