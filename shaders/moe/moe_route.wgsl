// MoE routing on the GPU: p = softmax(logits) over the experts, the k most probable (ties to
// the lower index), and their weights renormalised to sum to one when the model does so
// (the sum clamped from below at MIN_SUM). Ids and weights stay in GPU buffers for the
// expert kernels; nothing is read back.
//
// Split: one workgroup per token; the softmax and the ranking are shared by the workgroup
// (each invocation ranks its experts against all), invocation 0 normalises the k picks.
// Mirrors model::reference::moe::moe_route.
// WG, MAX_EXPERTS and MAX_K come from Rust (ops/moe/moe_route.rs).

struct Params {
    n_expert: u32,
    k: u32,
    n_tokens: u32,
    renormalise: u32,
}

const MIN_SUM: f32 = 6.1035156e-5;

@group(0) @binding(0) var<storage, read> params: Params;
// [n_tokens, n_expert] f32: ffn_gate_inp x
@group(0) @binding(1) var<storage, read> logits: array<f32>;
// [n_tokens, k] u32
@group(0) @binding(2) var<storage, read_write> ids: array<u32>;
// [n_tokens, k] f32
@group(0) @binding(3) var<storage, read_write> weights: array<f32>;

var<workgroup> probs: array<f32, MAX_EXPERTS>;
var<workgroup> stat: f32;
// The k picks' probabilities, by rank.
var<workgroup> picked: array<f32, MAX_K>;

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
    // The reductions' results are valid in invocation 0: it shares the sum.
    let sum_all = workgroup_sum(s, lid);
    if (lid == 0u) {
        stat = sum_all;
    }
    workgroupBarrier();
    let total = stat;
    // Expert e's rank: how many experts come before it (more probable, or as probable
    // with a lower index). The k of rank < k are the picks, in order.
    for (var e = lid; e < n; e += WG) {
        let p = probs[e];
        var rank = 0u;
        for (var o = 0u; o < n; o++) {
            let q = probs[o];
            rank += select(0u, 1u, q > p || (q == p && o < e));
        }
        if (rank < params.k) {
            ids[t * params.k + rank] = e;
            picked[rank] = p / total;
        }
    }
    workgroupBarrier();
    if (lid != 0u) {
        return;
    }
    var sum = 0.0;
    for (var j = 0u; j < params.k; j++) {
        sum += picked[j];
    }
    let norm = select(1.0, 1.0 / max(sum, MIN_SUM), params.renormalise == 1u);
    for (var j = 0u; j < params.k; j++) {
        weights[t * params.k + j] = picked[j] * norm;
    }
}
