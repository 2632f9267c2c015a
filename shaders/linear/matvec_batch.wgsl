// y[c] = W x[c] for the n_cols columns of one step over a few tokens (c < COLS): a decode
// step of several sequences, or a short prompt chunk. Each piece of a weight row is
// decoded once and multiplied with every column (unit_dot_cols: word-wise for the common
// quantizations, linear/dot_cols/; over the decoder's unit_values otherwise), so the
// weights are read and decoded once for all of them.
//
// Split: workgroup (wg.x + wg.y * num_workgroups.x) owns ROWS consecutive rows, in groups
// of RPI consecutive rows; TPR = WG * RPI / ROWS invocations per group stride over its
// units, each decoding the unit of all RPI rows and reading each x element once for them;
// the partials of every row and column (linear/dot_cols/group.wgsl) are added in one pass
// over workgroup memory (linear/dot_cols/sum.wgsl).
// GPUs run RPI = 1 (lanes along K, 16 a row). CPU devices run RPI = 4: there every x
// element an invocation loads costs a loop over the SIMD lanes (lavapipe), which is most
// of the kernel's time, and 4 rows share each load. Mirrors
// model::reference::linear::matvec per column, over loader::dequant::dequantize.

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

const TPR: u32 = WG * RPI / ROWS;

// The params the inner loops read, copied once per invocation: a storage read in the loop
// would be repeated for every element where the compiler cannot hoist it (lavapipe).
var<private> cols: u32;
var<private> x_offset: u32;
var<private> x_stride: u32;

fn n_cols() -> u32 {
    return cols;
}

// The vec4 of column c's x at float i of its row (i a multiple of 4).
fn x_col(c: u32, i: u32) -> vec4<f32> {
    return x[(x_offset + c * x_stride + i) >> 2u];
}

@compute @workgroup_size(WG)
fn matvec_batch(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let first = (wg.x + wg.y * nwg.x) * ROWS;
    let group_row = first + (lid / TPR) * RPI;
    let lane = lid % TPR;
    cols = params.n_cols;
    x_offset = params.x_offset;
    x_stride = params.x_stride;
    var acc: array<f32, RPI * COLS>;
    if (group_row < params.rows) {
        group_partials(group_row, lane, TPR, params.rows, params.units, params.row_bytes, 0u, &acc);
    }
    store_partials(lid, &acc);
    for (var k = lid; k < ROWS * COLS; k += WG) {
        let r = k / COLS;
        let c = k % COLS;
        if (c < params.n_cols && first + r < params.rows) {
            y[params.y_offset + c * params.y_stride + first + r] = column_total(r, c);
        }
    }
}
