// unit_dot_cols for any type: the unit's 32 values from the type's decoder
// (linear/quant/<type>.wgsl, unit_values), then their dot with each column's x. The
// kernel's file defines x_col(c, i), the vec4 of column c at float i of its row, and
// n_cols().
fn unit_dot_cols(block: u32, sub: u32, xi: u32, acc: ptr<function, array<f32, COLS>>) {
    let v = unit_values(block, sub);
    var w: array<vec4<f32>, 8>;
    for (var l = 0u; l < 8u; l++) {
        w[l] = vec4<f32>(v[4u * l], v[4u * l + 1u], v[4u * l + 2u], v[4u * l + 3u]);
    }
    for (var c = 0u; c < COLS; c++) {
        if (c < n_cols()) {
            var s = vec4<f32>(0.0);
            for (var l = 0u; l < 8u; l++) {
                s += w[l] * x_col(c, xi + 4u * l);
            }
            (*acc)[c] += (s.x + s.y) + (s.z + s.w);
        }
    }
}
