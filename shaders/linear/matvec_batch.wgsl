// y[c] = W x[c] for the n_cols columns of one step over a few tokens (c < COLS): a decode
// step of several sequences, or a short prompt chunk. Each piece of a weight row is
// decoded once and multiplied with every column (unit_dot_cols: word-wise for the common
// quantizations, linear/dot_cols/; over the decoder's unit_values otherwise), so the
// weights are read and decoded once for all of them.
//
// Split: workgroup (wg.x + wg.y * num_workgroups.x) owns ROWS consecutive rows; TPR = WG /
// ROWS invocations per row stride over its units; the partials of every row and column are
// added in one pass over workgroup memory. Mirrors model::reference::linear::matvec per column,
// over loader::dequant::dequantize.

struct Params {
    rows: u32,
    // 32-element units per row (cols / 32).
    units: u32,
    row_bytes: u32,
    n_cols: u32,
    // In floats; multiples of 4 (x is read four floats at a time).
    x_stride: u32,
    x_offset: u32,
    y_stride: u32,
    y_offset: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
// [rows, row_bytes] GGUF blocks, as u32 words
@group(0) @binding(1) var<storage, read> weights: array<u32>;
// [n_cols, x_stride] f32
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
// [n_cols, y_stride] f32
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const TPR: u32 = WG / ROWS;

// [WG, COLS]: each invocation's partial dot of each column.
var<workgroup> partials: array<f32, WG * COLS>;

fn n_cols() -> u32 {
    return params.n_cols;
}

// The vec4 of column c's x at float i of its row (i a multiple of 4).
fn x_col(c: u32, i: u32) -> vec4<f32> {
    return x[(params.x_offset + c * params.x_stride + i) >> 2u];
}

@compute @workgroup_size(WG)
fn matvec_batch(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = (wg.x + wg.y * nwg.x) * ROWS + lid / TPR;
    let lane = lid % TPR;
    var acc: array<f32, COLS>;
    if (row < params.rows) {
        let base = row * params.row_bytes;
        for (var u = lane; u < params.units; u += TPR) {
            let block = base + (u / UNITS_PER_BLOCK) * BLOCK_BYTES;
            unit_dot_cols(block, u % UNITS_PER_BLOCK, 32u * u, &acc);
        }
    }
    // Every column's partials at once, then one invocation per (row, column) adds its
    // row's TPR partials: one barrier whatever the column count.
    for (var c = 0u; c < COLS; c++) {
        partials[lid * COLS + c] = acc[c];
    }
    workgroupBarrier();
    let first = (wg.x + wg.y * nwg.x) * ROWS;
    for (var k = lid; k < ROWS * COLS; k += WG) {
        let r = k / COLS;
        let c = k % COLS;
        if (c < params.n_cols && first + r < params.rows) {
            var total = 0.0;
            for (var t = 0u; t < TPR; t++) {
                total += partials[(r * TPR + t) * COLS + c];
            }
            y[params.y_offset + c * params.y_stride + first + r] = total;
        }
    }
}
