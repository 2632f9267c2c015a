// The state half of the chunked gated delta rule: one value head's state carried across a
// prompt step's chunks with the factors gdn/delta_chunk_wy.wgsl made, per chunk
//   delta = u - w S;  o_i = qg_i^T S + sum_{j <= i} mqk_ij delta_j;  S = decay S + kd^T delta
// Mirrors model::reference::gdn::delta_chunk_state.
//
// Split: each S column evolves on its own, so workgroup (value head, block) owns COLS
// columns; its state block [D_K, COLS] and the chunk's deltas [CHUNK, COLS] live in
// workgroup memory. Invocation (row r, column) computes the deltas and outputs of rows
// r, r + ROWS, .. and the state entries of dims r, r + ROWS, ..: two barriers a chunk, the
// factors' rows read by every column of a row group at once. D_K, CHUNK, COLS, WG come
// from Rust (ops/gdn/delta_chunk_state.rs).

struct Params {
    n_v_heads: u32,
    d_v: u32,
    n_tokens: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
// [n_chunks, n_v, CHUNK, D_K] f32
@group(0) @binding(1) var<storage, read> w: array<f32>;
// [n_chunks, n_v, CHUNK, d_v] f32
@group(0) @binding(2) var<storage, read> u: array<f32>;
// [n_chunks, n_v, CHUNK, D_K] f32
@group(0) @binding(3) var<storage, read> kd: array<f32>;
// [n_chunks, n_v, CHUNK, D_K] f32
@group(0) @binding(4) var<storage, read> qg: array<f32>;
// [n_chunks, n_v, CHUNK, CHUNK] f32
@group(0) @binding(5) var<storage, read> mqk: array<f32>;
// [n_chunks, n_v] f32
@group(0) @binding(6) var<storage, read> decay: array<f32>;
// [n_tokens, n_v, d_v] f32
@group(0) @binding(7) var<storage, read_write> out: array<f32>;
// [n_v, D_K, d_v] f32
@group(0) @binding(8) var<storage, read_write> state: array<f32>;

const ROWS: u32 = WG / COLS;
const ROWS_EACH: u32 = CHUNK / ROWS;

var<workgroup> s: array<f32, D_K * COLS>;
var<workgroup> delta: array<f32, CHUNK * COLS>;

@compute @workgroup_size(WG)
fn delta_chunk_state(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let head = wg.x;
    let nv = params.n_v_heads;
    let dv = params.d_v;
    let col = lid % COLS;
    let r = lid / COLS;
    let c = wg.y * COLS + col;
    let in_head = c < dv;
    let state_base = head * D_K * dv;

    for (var d = r; d < D_K; d += ROWS) {
        s[d * COLS + col] = select(0.0, state[state_base + d * dv + c], in_head);
    }
    let n_chunks = (params.n_tokens + CHUNK - 1u) / CHUNK;
    for (var chunk = 0u; chunk < n_chunks; chunk++) {
        let rows = (chunk * nv + head) * CHUNK;
        let t0 = chunk * CHUNK;
        let n = min(CHUNK, params.n_tokens - t0);
        workgroupBarrier();
        // This invocation's rows: delta = u - w S, and the incoming state's readout.
        var readout: array<f32, ROWS_EACH>;
        for (var m = 0u; m < ROWS_EACH; m++) {
            let i = r + m * ROWS;
            var ws = 0.0;
            var qs = 0.0;
            for (var d = 0u; d < D_K; d++) {
                let sd = s[d * COLS + col];
                ws += w[(rows + i) * D_K + d] * sd;
                qs += qg[(rows + i) * D_K + d] * sd;
            }
            var ui = 0.0;
            if (in_head) {
                ui = u[(rows + i) * dv + c];
            }
            delta[i * COLS + col] = ui - ws;
            readout[m] = qs;
        }
        workgroupBarrier();
        for (var m = 0u; m < ROWS_EACH; m++) {
            let i = r + m * ROWS;
            if (i < n && in_head) {
                var o = readout[m];
                for (var j = 0u; j <= i; j++) {
                    o += mqk[(rows + i) * CHUNK + j] * delta[j * COLS + col];
                }
                out[((t0 + i) * nv + head) * dv + c] = o;
            }
        }
        let dec = decay[chunk * nv + head];
        for (var d = r; d < D_K; d += ROWS) {
            var acc = dec * s[d * COLS + col];
            for (var j = 0u; j < CHUNK; j++) {
                acc += kd[(rows + j) * D_K + d] * delta[j * COLS + col];
            }
            s[d * COLS + col] = acc;
        }
    }
    if (in_head) {
        for (var d = r; d < D_K; d += ROWS) {
            state[state_base + d * dv + c] = s[d * COLS + col];
        }
    }
}
