// rows_dots for CPU devices: each invocation takes RPI consecutive rows and reads each x
// element once for all of them (linear/dot_cols/, one column). On lavapipe an x load costs
// a loop over the SIMD lanes and was most of the matvec's time at one row per load. TPR =
// WG * RPI / ROWS invocations per group stride over its units; span_sum adds their partials.
// The kernel's file defines x_at(i), the i-th vec4 of its input.

const TPR: u32 = WG * RPI / ROWS;

// The float where the current input row starts (unit_dot_cols reads x_col(0, i)).
var<private> x_row: u32;

fn n_cols() -> u32 {
    return 1u;
}

fn x_col(c: u32, i: u32) -> vec4<f32> {
    return x_at((x_row + i) >> 2u);
}

// The dots of rows first + (lid / TPR) * RPI + r (of `rows`), r < RPI, with the input at
// float x_base: valid in the group's first invocation (lid % TPR == 0). Every invocation
// must call it.
fn rows_dots(first: u32, lid: u32, rows: u32, units: u32, row_bytes: u32, weight_base: u32, x_base: u32) -> array<f32, RPI> {
    let group_row = first + (lid / TPR) * RPI;
    x_row = x_base;
    var acc: array<f32, RPI * COLS>;
    if (group_row < rows) {
        group_partials(group_row, lid % TPR, TPR, rows, units, row_bytes, weight_base, &acc);
    }
    var sums: array<f32, RPI>;
    for (var r = 0u; r < RPI; r++) {
        sums[r] = span_sum(acc[r], lid, TPR);
    }
    return sums;
}
