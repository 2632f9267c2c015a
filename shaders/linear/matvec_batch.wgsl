// y[c] = W x[c] for the n_cols columns of one step over a few tokens (c < COLS): a decode
// step of several sequences, or a short prompt chunk. Each 32-element unit of a weight row
// is decoded once (unit_values, the type's decoder) and multiplied with every column, so
// the weights are read once for all of them.
//
// Split: workgroup (wg.x + wg.y * num_workgroups.x) owns ROWS consecutive rows; TPR = WG /
// ROWS invocations per row stride over its units; each column's partials are added per row
// by span_sum (common/reduce_*.wgsl). Mirrors model::reference::linear::matvec per column,
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
            let v = unit_values(base + (u / UNITS_PER_BLOCK) * BLOCK_BYTES, u % UNITS_PER_BLOCK);
            for (var c = 0u; c < params.n_cols; c++) {
                let xb = (params.x_offset + c * params.x_stride + 32u * u) >> 2u;
                var s = vec4<f32>(0.0);
                for (var l = 0u; l < 8u; l++) {
                    s += vec4<f32>(v[4u * l], v[4u * l + 1u], v[4u * l + 2u], v[4u * l + 3u]) * x[xb + l];
                }
                acc[c] += (s.x + s.y) + (s.z + s.w);
            }
        }
    }
    // Every invocation takes part in every column's sum: span_sum has barriers.
    for (var c = 0u; c < COLS; c++) {
        let total = span_sum(acc[c], lid, TPR);
        if (c < params.n_cols && lane == 0u && row < params.rows) {
            y[params.y_offset + c * params.y_stride + row] = total;
        }
    }
}
