// The first half of a decode token's MoE block in one dispatch: the router's top-k from its
// logits (moe/route_top_k.wgsl), then for each slot s (the k routed experts, then the
// shared expert where the model has one)
//   h[s][i] = silu(gate_s . x^) * (up_s . x^),   x^ = rms_norm(x) * norm_w
// reading the residual stream x, so routing, the FFN's RMSNorm, the gate and up matvecs of
// every expert and their SwiGLU are one dispatch instead of seven. Each workgroup
// recomputes the top-k and 1 / rms(x) (a few hundred logits and a few thousand floats,
// cheaper than a dispatch and its barrier); workgroup 0 writes the picks for moe_down.
//
// A routed expert's gate and up come from its VRAM pool slot when the location table names
// one, else from the host copy (runtime/experts.rs; moe/expert_slab.wgsl's NOT_RESIDENT);
// workgroup 0 counts each pick, and the picks that missed the pool, for the re-planning.
//
// Split: workgroup (wg.x + wg.y * num_workgroups.x, slot wg.z) owns ROWS consecutive rows of
// the slot's gate and up (linear/matvec_rows.wgsl, one reader per weight binding). Mirrors
// reference::moe::moe_route, reference::norm::rms_norm, reference::linear::matvec per expert
// and reference::moe::swiglu.

struct Params {
    // 32-element units of x (n_embd / 32).
    units: u32,
    eps: f32,
    // Routed slots; slot k is the shared expert when slots = k + 1.
    k: u32,
    slots: u32,
    // Rows of a routed expert's gate (and up), and of the shared expert's.
    rows: u32,
    shared_rows: u32,
    // Floats per slot in h.
    h_stride: u32,
    gate_row_bytes: u32,
    // Bytes per expert slab in the gate and up bindings, and where the gate and up rows start
    // in an expert's slab (the up rows follow the gate rows in a fused gate_up tensor).
    gate_slab: u32,
    gate_offset: u32,
    up_row_bytes: u32,
    up_slab: u32,
    up_offset: u32,
    shared_gate_row_bytes: u32,
    shared_up_row_bytes: u32,
    n_expert: u32,
    renormalise: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
// [n_expert, rows, row_bytes] GGUF blocks as u32 words (gate and up may be one tensor)
@group(0) @binding(1) var<storage, read> weights_g: array<u32>;
@group(0) @binding(2) var<storage, read> weights_u: array<u32>;
// [shared_rows, row_bytes] GGUF blocks (the routed gate without a shared expert, unread)
@group(0) @binding(3) var<storage, read> weights_sg: array<u32>;
@group(0) @binding(4) var<storage, read> weights_su: array<u32>;
// [n_embd] f32: the residual stream, read four floats at a time
@group(0) @binding(5) var<storage, read> x: array<vec4<f32>>;
// [n_embd] f32: the FFN's RMSNorm weight
@group(0) @binding(6) var<storage, read> norm_w: array<vec4<f32>>;
// [n_expert] f32: the router's logits
@group(0) @binding(7) var<storage, read> logits: array<f32>;
// [slots, h_stride] f32
@group(0) @binding(8) var<storage, read_write> h: array<f32>;
// [k] u32 and [k] f32: the picks and their weights, for moe_down
@group(0) @binding(9) var<storage, read_write> ids: array<u32>;
@group(0) @binding(10) var<storage, read_write> route_w: array<f32>;
// The gates and ups of every expert in host memory (the pool's bindings when all resident)
@group(0) @binding(11) var<storage, read> weights_gh: array<u32>;
@group(0) @binding(12) var<storage, read> weights_uh: array<u32>;
// [n_expert] u32: each expert's pool slot; [n_expert + 1] u32: uses of each expert, misses
@group(0) @binding(13) var<storage, read> location: array<u32>;
@group(0) @binding(14) var<storage, read_write> counts: array<atomic<u32>>;

// The slot's pool slot, read once and made uniform: the branch on it holds barriers.
var<workgroup> slot_at: u32;

fn x_at(i: u32) -> vec4<f32> {
    return x[i] * norm_w[i];
}


@compute @workgroup_size(WG)
fn moe_gate_up(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let slot = wg.z;
    let first = (wg.x + wg.y * nwg.x) * ROWS;
    route_top_k(lid, 0u, params.n_expert, params.k, params.renormalise == 1u);
    if (wg.x == 0u && wg.y == 0u && slot == 0u && lid < params.k) {
        let e = route_ids[lid];
        ids[lid] = e;
        route_w[lid] = route_weights[lid];
        atomicAdd(&counts[e], 1u);
        if (location[e] == NOT_RESIDENT) {
            atomicAdd(&counts[params.n_expert], 1u);
        }
    }
    let scale = row_norm_scale(lid, 0u, params.units, params.eps);
    let u = params.units;
    var width = params.rows;
    var g = 0.0;
    var up = 0.0;
    if (slot < params.k) {
        let e = route_ids[slot];
        if (lid == 0u) {
            slot_at = location[e];
        }
        let at = workgroupUniformLoad(&slot_at);
        if (at != NOT_RESIDENT) {
            let gate_base = at * params.gate_slab + params.gate_offset;
            let up_base = at * params.up_slab + params.up_offset;
            g = rows_dot_g(first, lid, width, u, params.gate_row_bytes, gate_base, 0u);
            up = rows_dot_u(first, lid, width, u, params.up_row_bytes, up_base, 0u);
        } else {
            let gate_base = e * params.gate_slab + params.gate_offset;
            let up_base = e * params.up_slab + params.up_offset;
            g = rows_dot_gh(first, lid, width, u, params.gate_row_bytes, gate_base, 0u);
            up = rows_dot_uh(first, lid, width, u, params.up_row_bytes, up_base, 0u);
        }
    } else {
        width = params.shared_rows;
        g = rows_dot_sg(first, lid, width, u, params.shared_gate_row_bytes, 0u, 0u);
        up = rows_dot_su(first, lid, width, u, params.shared_up_row_bytes, 0u, 0u);
    }
    let row = first + lid / (WG / ROWS);
    if (lid % (WG / ROWS) == 0u && row < width) {
        let gs = g * scale;
        h[slot * params.h_stride + row] = gs / (1.0 + exp(-gs)) * (up * scale);
    }
}
