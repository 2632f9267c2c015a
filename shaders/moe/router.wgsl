// MoE routing on the GPU: p = softmax(logits) over the experts, the k most probable (ties to
// the lower index), and their weights renormalised to sum to one when the model does so
// (the sum clamped from below at MIN_SUM). Ids and weights stay in GPU buffers for the
// expert kernels; nothing is read back.
//
// Split: one workgroup per token; the softmax is shared by the workgroup, the k selections
// (k <= 16 rounds over at most 512 probabilities) are done by invocation 0.
// Mirrors model::reference::moe::moe_route.

struct Params {
    n_expert: u32,
    k: u32,
    n_tokens: u32,
    renormalise: u32,
}

const MAX_EXPERTS: u32 = 512u;
const MIN_SUM: f32 = 6.1035156e-5;

@group(0) @binding(0) var<uniform> params: Params;
// [n_tokens, n_expert] f32: ffn_gate_inp x
@group(0) @binding(1) var<storage, read> logits: array<f32>;
// [n_tokens, k] u32
@group(0) @binding(2) var<storage, read_write> ids: array<u32>;
// [n_tokens, k] f32
@group(0) @binding(3) var<storage, read_write> weights: array<f32>;

override WG: u32 = 64u;

var<workgroup> probs: array<f32, MAX_EXPERTS>;
var<workgroup> stat: f32;

@compute @workgroup_size(WG)
fn moe_route(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = wg.x;
    let n = params.n_expert;
    let base = t * n;
    var m = -3.4028235e38;
    for (var e = lid; e < n; e += WG) {
        m = max(m, logits[base + e]);
    }
    let m_all = workgroup_max(m, lid);
    if (lid == 0u) {
        stat = m_all;
    }
    workgroupBarrier();
    let mx = stat;
    var s = 0.0;
    for (var e = lid; e < n; e += WG) {
        let p = exp(logits[base + e] - mx);
        probs[e] = p;
        s += p;
    }
    let total = workgroup_sum(s, lid);
    workgroupBarrier();
    if (lid != 0u) {
        return;
    }
    // Picks are written straight to the outputs (no per-invocation arrays: a CPU device
    // spills those to memory), then rescaled once their sum is known.
    let out = t * params.k;
    var sum = 0.0;
    for (var j = 0u; j < params.k; j++) {
        var best = 0u;
        var best_p = -1.0;
        for (var e = 0u; e < n; e++) {
            if (probs[e] > best_p) {
                best = e;
                best_p = probs[e];
            }
        }
        ids[out + j] = best;
        weights[out + j] = best_p / total;
        sum += best_p / total;
        probs[best] = -2.0;
    }
    if (params.renormalise == 1u) {
        let norm = 1.0 / max(sum, MIN_SUM);
        for (var j = 0u; j < params.k; j++) {
            weights[out + j] *= norm;
        }
    }
}
