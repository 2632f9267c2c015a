// The column dots of the types whose step is one whole unit: each row's 32 weights as eight
// vec4 from the type's unit_vec4s (its file in this folder), then each column's x, read
// once, multiplied into every row. The kernel's file defines x_col(c, i), the vec4 of column
// c at float i of its row, and n_cols().
fn unit_dot_cols(
    blocks: ptr<function, array<u32, RPI>>,
    sub: u32,
    xi: u32,
    acc: ptr<function, array<f32, RPI * COLS>>,
) {
    var w: array<array<vec4<f32>, 8>, RPI>;
    for (var r = 0u; r < RPI; r++) {
        w[r] = unit_vec4s((*blocks)[r], sub);
    }
    add_unit_cols(&w, xi, acc);
}

// Each row's 32 weights (eight vec4) times each column's x from float xi, added into every
// row and column.
fn add_unit_cols(
    w: ptr<function, array<array<vec4<f32>, 8>, RPI>>,
    xi: u32,
    acc: ptr<function, array<f32, RPI * COLS>>,
) {
    for (var c = 0u; c < COLS; c++) {
        if (c < n_cols()) {
            var s: array<vec4<f32>, RPI>;
            for (var l = 0u; l < 8u; l++) {
                let xv = x_col(c, xi + 4u * l);
                for (var r = 0u; r < RPI; r++) {
                    s[r] += (*w)[r][l] * xv;
                }
            }
            for (var r = 0u; r < RPI; r++) {
                (*acc)[r * COLS + c] += (s[r].x + s[r].y) + (s[r].z + s[r].w);
            }
        }
    }
}
