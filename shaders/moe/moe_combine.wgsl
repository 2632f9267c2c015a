// The end of a MoE block: the routed experts' outputs weighted by the router, plus the
// gated shared expert where the model has one (qwen35moe):
//   y[t][d] = sum_j w[t][j] * e[t][j][d] + sigmoid(shared_logit[t]) * shared[t][d]
// Split: one invocation per output element. WG comes from Rust (ops/moe/moe_combine.rs).
// Mirrors the weighted sum and shared expert of model::reference::forward's ffn.

struct Params {
    // n_tokens * width elements.
    n: u32,
    width: u32,
    // Experts per token, and 1 when a shared expert is added.
    k: u32,
    with_shared: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
// [n_tokens, k, width] f32, the experts' outputs
@group(0) @binding(1) var<storage, read> expert_out: array<f32>;
// [n_tokens, k] f32
@group(0) @binding(2) var<storage, read> expert_w: array<f32>;
// [n_tokens, width] f32 and [n_tokens] f32 (bound but unread without a shared expert)
@group(0) @binding(3) var<storage, read> shared_out: array<f32>;
@group(0) @binding(4) var<storage, read> shared_logit: array<f32>;
// [n_tokens, width] f32
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

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
