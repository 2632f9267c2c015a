// The sums of the batched matvecs' partials: each invocation's RPI rows x COLS columns
// (group_partials) go to workgroup memory at once, then one invocation per (row, column)
// adds its group's TPR partials: one barrier whatever the column count. The kernel's file
// defines TPR.

// [WG, RPI, COLS]: each invocation's partial dot of each of its rows and columns.
var<workgroup> partials: array<f32, WG * RPI * COLS>;

// Every invocation must call it (it holds the barrier).
fn store_partials(lid: u32, acc: ptr<function, array<f32, RPI * COLS>>) {
    for (var k = 0u; k < RPI * COLS; k++) {
        partials[lid * RPI * COLS + k] = (*acc)[k];
    }
    workgroupBarrier();
}

// The dot of the workgroup's row r (0..ROWS) with column c, after store_partials.
fn column_total(r: u32, c: u32) -> f32 {
    let group = r / RPI;
    var total = 0.0;
    for (var t = 0u; t < TPR; t++) {
        total += partials[((group * TPR + t) * RPI + r % RPI) * COLS + c];
    }
    return total;
}
