// The element-wise ends of the FFN blocks:
//   swiglu:      h[s][i] = silu(gate[s][i]) * up[s][i] for each slot s (expert or dense)
//   moe_combine: y[t][d] = sum_j w[t][j] * e[t][j][d]
//                          + sigmoid(shared_logit[t]) * shared[t][d]   (qwen35moe)
// Split: one invocation per output element. Mirrors model::reference::moe (swiglu, and the
// weighted sum and shared expert of reference::forward's ffn).

struct Params {
    // swiglu: slots * width elements; moe_combine: n_tokens * width.
    n: u32,
    width: u32,
    // swiglu: floats per slot in gate_up; gate at g_offset, up at u_offset within a slot.
    slot_stride: u32,
    up_offset: u32,
    // moe_combine: experts per token, and 1 when a shared expert is added.
    k: u32,
    with_shared: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
// swiglu: [slots, slot_stride] f32 holding gate (at 0) and up (at up_offset)
@group(0) @binding(1) var<storage, read> gate_up: array<f32>;
// swiglu: [slots, width] f32
@group(0) @binding(2) var<storage, read_write> h: array<f32>;
// moe_combine: [n_tokens, k, width] f32, the experts' outputs
@group(0) @binding(3) var<storage, read> expert_out: array<f32>;
// moe_combine: [n_tokens, k] f32
@group(0) @binding(4) var<storage, read> expert_w: array<f32>;
// moe_combine: [n_tokens, width] f32 and [n_tokens] f32 (bound but unread without a shared expert)
@group(0) @binding(5) var<storage, read> shared_out: array<f32>;
@group(0) @binding(6) var<storage, read> shared_logit: array<f32>;
// moe_combine: [n_tokens, width] f32
@group(0) @binding(7) var<storage, read_write> y: array<f32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn swiglu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= params.n) {
        return;
    }
    let slot = i / params.width;
    let c = i % params.width;
    let g = gate_up[slot * params.slot_stride + c];
    let u = gate_up[slot * params.slot_stride + params.up_offset + c];
    h[i] = g / (1.0 + exp(-g)) * u;
}

@compute @workgroup_size(WG)
fn moe_combine(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= params.n) {
        return;
    }
    let t = i / params.width;
    let d = i % params.width;
    var acc = 0.0;
    for (var j = 0u; j < params.k; j++) {
        acc += expert_w[t * params.k + j] * expert_out[(t * params.k + j) * params.width + d];
    }
    if (params.with_shared == 1u) {
        acc += shared_out[i] / (1.0 + exp(-shared_logit[t]));
    }
    y[i] = acc;
}
