// The row dot products every matvec-shaped kernel shares: ROWS consecutive rows per
// workgroup, TPR = WG / ROWS invocations per row striding over its 32-element units
// (unit_dot, from the type's file in linear/dot/ or the generic linear/unit_dot.wgsl), their
// partials added per row by span_sum (subgroup sums where the adapter has them, a short
// tree otherwise: common/reduce_*.wgsl). WG and ROWS come from Rust (ops/linear/matvec.rs).
//
// Joined once per weight binding the kernel reads (a `Namespace`): the copy for
// `weights_g` is `rows_dot_g`. The kernel's file defines `x_at(i)`, the i-th vec4 of the
// input (normed on the fly where the kernel folds an RMSNorm in).

const TPR: u32 = WG / ROWS;

// The dot of row `first + lid / TPR` (of `rows`) with the input at vec4 `x_base / 4`:
// valid in the row's first invocation (lid % TPR == 0). Every invocation must call it.
fn rows_dot(first: u32, lid: u32, rows: u32, units: u32, row_bytes: u32, weight_base: u32, x_base: u32) -> f32 {
    let lane = lid % TPR;
    let row = first + lid / TPR;
    var acc = 0.0;
    if (row < rows) {
        let base = weight_base + row * row_bytes;
        for (var u = lane; u < units; u += TPR) {
            let block = base + (u / UNITS_PER_BLOCK) * BLOCK_BYTES;
            acc += unit_dot(block, u % UNITS_PER_BLOCK, x_base + 32u * u);
        }
    }
    return span_sum(acc, lid, TPR);
}
