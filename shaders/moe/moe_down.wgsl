// The end of a decode token's MoE block in one dispatch: each routed expert's down
// projection weighted by the router, the shared expert's scaled by its sigmoid gate, added
// into the residual stream:
//   y[d] += sum_j w[j] * (down_{ids[j]} . h[j])[d] + sigmoid(shared_logit) * (down_s . h[k])[d]
// so the down matvecs, moe_combine and the residual add are one dispatch instead of four.
// A routed expert's down comes from its VRAM pool slot when the location table names one,
// else from the host copy (runtime/experts.rs).
//
// Split: workgroup (wg.x + wg.y * num_workgroups.x) owns ROWS consecutive rows of y and
// walks the slots (linear/matvec_rows.wgsl, one reader per weight binding). Mirrors
// reference::linear::matvec per expert and the weighted sum of reference::forward's ffn.

struct Params {
    // 32-element units of a routed and of the shared expert's hidden row.
    units: u32,
    shared_units: u32,
    k: u32,
    has_shared: u32,
    // n_embd.
    rows: u32,
    row_bytes: u32,
    // Bytes per expert slab in weights_d and weights_dh.
    slab: u32,
    shared_row_bytes: u32,
    // Floats per slot in h.
    h_stride: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
// [n_expert, n_embd, row_bytes] GGUF blocks as u32 words
@group(0) @binding(1) var<storage, read> weights_d: array<u32>;
// [n_embd, shared_row_bytes] GGUF blocks (the routed down without a shared expert, unread)
@group(0) @binding(2) var<storage, read> weights_sd: array<u32>;
// [slots, h_stride] f32, read four floats at a time
@group(0) @binding(3) var<storage, read> h: array<vec4<f32>>;
// [k] u32 and [k] f32: the routed experts and their weights
@group(0) @binding(4) var<storage, read> ids: array<u32>;
@group(0) @binding(5) var<storage, read> route_w: array<f32>;
// [1] f32: the shared expert's gate logit (unread without one)
@group(0) @binding(6) var<storage, read> shared_logit: array<f32>;
// [n_embd] f32: the residual stream, updated in place
@group(0) @binding(7) var<storage, read_write> y: array<f32>;
// [n_expert, n_embd, row_bytes] GGUF blocks: every down in host memory (the pool's binding
// when all are resident)
@group(0) @binding(8) var<storage, read> weights_dh: array<u32>;
// [n_expert] u32: each expert's pool slot
@group(0) @binding(9) var<storage, read> location: array<u32>;

fn x_at(i: u32) -> vec4<f32> {
    return h[i];
}

@compute @workgroup_size(WG)
fn moe_down(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let first = (wg.x + wg.y * nwg.x) * ROWS;
    let rows = params.rows;
    var acc = 0.0;
    for (var j = 0u; j < params.k; j++) {
        let e = ids[j];
        let at = location[e];
        var v = 0.0;
        if (at != NOT_RESIDENT) {
            v = rows_dot_d(first, lid, rows, params.units, params.row_bytes, at * params.slab, j * params.h_stride);
        } else {
            v = rows_dot_dh(first, lid, rows, params.units, params.row_bytes, e * params.slab, j * params.h_stride);
        }
        acc += route_w[j] * v;
    }
    if (params.has_shared == 1u) {
        let hb = params.k * params.h_stride;
        let v = rows_dot_sd(first, lid, rows, params.shared_units, params.shared_row_bytes, 0u, hb);
        acc += v / (1.0 + exp(-shared_logit[0]));
    }
    let row = first + lid / (WG / ROWS);
    if (lid % (WG / ROWS) == 0u && row < rows) {
        y[row] += acc;
    }
}
