// The partial dots of one invocation's RPI consecutive rows, from `group_row` (of `rows`),
// with each of the COLS columns: units lane, lane + stride, ... of each row, each unit
// decoded once per row and each x element read once for all RPI rows (unit_dot_cols).
// Rows past the matrix read its last row, so their sums are to be dropped. The caller adds
// the partials of the invocations sharing a group, and checks group_row < rows.
fn group_partials(
    group_row: u32,
    lane: u32,
    stride: u32,
    rows: u32,
    units: u32,
    row_bytes: u32,
    weight_base: u32,
    acc: ptr<function, array<f32, RPI * COLS>>,
) {
    var bases: array<u32, RPI>;
    for (var r = 0u; r < RPI; r++) {
        bases[r] = weight_base + min(group_row + r, rows - 1u) * row_bytes;
    }
    for (var u = lane; u < units; u += stride) {
        let offset = (u / UNITS_PER_BLOCK) * BLOCK_BYTES;
        var blocks: array<u32, RPI>;
        for (var r = 0u; r < RPI; r++) {
            blocks[r] = bases[r] + offset;
        }
        unit_dot_cols(&blocks, u % UNITS_PER_BLOCK, 32u * u, acc);
    }
}
