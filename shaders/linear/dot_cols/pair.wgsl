// The column loop of the k-quants whose words hold two units' nibbles (q4_K, q5_K): each
// row's 4 weights of unit 2p (lo) and of unit 2p + 1 (hi) at one word, times each column's
// x at floats xl and xh, added into every row and column.
fn add_pair_cols(
    lo: ptr<function, array<vec4<f32>, RPI>>,
    hi: ptr<function, array<vec4<f32>, RPI>>,
    xl: u32,
    xh: u32,
    acc: ptr<function, array<f32, RPI * COLS>>,
) {
    for (var c = 0u; c < COLS; c++) {
        if (c < n_cols()) {
            let vl = x_col(c, xl);
            let vh = x_col(c, xh);
            for (var r = 0u; r < RPI; r++) {
                (*acc)[r * COLS + c] += dot((*lo)[r], vl) + dot((*hi)[r], vh);
            }
        }
    }
}
