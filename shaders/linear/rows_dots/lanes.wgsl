// rows_dots for GPUs (RPI = 1): linear/matvec_rows.wgsl's rows_dot, lanes along K, one row
// per group of TPR invocations. The kernel adds it as its only element.
fn rows_dots(first: u32, lid: u32, rows: u32, units: u32, row_bytes: u32, weight_base: u32, x_base: u32) -> array<f32, RPI> {
    return array<f32, RPI>(rows_dot(first, lid, rows, units, row_bytes, weight_base, x_base));
}
