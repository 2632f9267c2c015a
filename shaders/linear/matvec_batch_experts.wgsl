// The routed experts of a step over a few tokens (a batched decode step, a short chunk),
// grouped by expert (moe_group): workgroup (row block wg.x, expert wg.y, chunk wg.z of COLS
// of that expert's slots) decodes each unit of its rows once for all the chunk's slots, as
// matvec_batch does for one matrix (linear/dot_cols/), so an expert that several sequences
// picked is read once a step rather than once a slot. Slot s reads its token's x row
// s / x_group and writes y row s. The expert's slab is found in this dispatch's piece of the
// pool or of the host copy (moe/expert_group.wgsl); other pieces' experts leave at once.
// Mirrors model::reference::linear::matvec applied per routed slot.
//
// Split as matvec_batch's: ROWS rows a workgroup in groups of RPI, TPR = WG * RPI / ROWS
// invocations a group along K (RPI 1 and lanes along K on a GPU, 8 rows sharing each x load
// on a CPU device).

struct Params {
    rows: u32,
    // 32-element units per row (cols / 32).
    units: u32,
    row_bytes: u32,
    x_stride: u32,
    x_group: u32,
    y_stride: u32,
    y_offset: u32,
    // This buffer holds slabs first_slab.. (+ slabs) of the pool (from_pool 1) or of the
    // host copy (moe/expert_slab.wgsl), each `rows` rows.
    first_slab: u32,
    slabs: u32,
    from_pool: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
// [slabs, rows, row_bytes] GGUF blocks, as u32 words
@group(0) @binding(1) var<storage, read> weights: array<u32>;
// [slots / x_group, x_stride] f32, read as vec4 (x_stride a multiple of 4)
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
// [slots, y_stride] f32
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
// [slots] u32: slot indices grouped by expert (moe_group)
@group(0) @binding(4) var<storage, read> order: array<u32>;
// [n_expert + 1] u32: each expert's range in `order`
@group(0) @binding(5) var<storage, read> offsets: array<u32>;
// [n_expert] u32: each expert's pool slot
@group(0) @binding(6) var<storage, read> location: array<u32>;

const TPR: u32 = WG * RPI / ROWS;

// The chunk's slot count, and the float where each column's x row starts.
var<private> cols: u32;
var<private> col_x: array<u32, COLS>;

fn n_cols() -> u32 {
    return cols;
}

fn x_col(c: u32, i: u32) -> vec4<f32> {
    return x[(col_x[c] + i) >> 2u];
}

@compute @workgroup_size(WG)
fn matvec_batch_experts(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let range = expert_group(wg.y, lid);
    let first_slot = range.x + wg.z * COLS;
    if (range.z == NOT_RESIDENT || first_slot >= range.y) {
        return;
    }
    cols = min(COLS, range.y - first_slot);
    for (var c = 0u; c < COLS; c++) {
        let slot = order[first_slot + min(c, cols - 1u)];
        col_x[c] = (slot / params.x_group) * params.x_stride;
    }
    let first = wg.x * ROWS;
    let group_row = first + (lid / TPR) * RPI;
    let slab = range.z * params.rows * params.row_bytes;
    var acc: array<f32, RPI * COLS>;
    if (group_row < params.rows) {
        group_partials(group_row, lid % TPR, TPR, params.rows, params.units, params.row_bytes, slab, &acc);
    }
    store_partials(lid, &acc);
    for (var k = lid; k < ROWS * COLS; k += WG) {
        let r = k / COLS;
        let c = k % COLS;
        if (c < cols && first + r < params.rows) {
            let slot = order[first_slot + c];
            y[params.y_offset + slot * params.y_stride + first + r] = column_total(r, c);
        }
    }
}
