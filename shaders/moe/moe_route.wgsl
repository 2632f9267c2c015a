// MoE routing on the GPU: p = softmax(logits) over the experts, the k most probable (ties to
// the lower index), and their weights renormalised to sum to one when the model does so
// (the sum clamped from below at MIN_SUM). Ids and weights stay in GPU buffers for the
// expert kernels; nothing is read back.
//
// Split: one workgroup per token; the softmax is shared by the workgroup, then the k picks
// come in k rounds, each a workgroup arg-max over the experts ranked after the previous
// pick (larger probability first, then lower index): O(k (n / WG + log WG)) steps rather
// than ranking every expert against all n. Invocation 0 normalises the picks.
// Mirrors model::reference::moe::moe_route.
// WG, MAX_EXPERTS and MAX_K come from Rust (ops/moe/moe_route.rs).

struct Params {
    n_expert: u32,
    k: u32,
    n_tokens: u32,
    renormalise: u32,
}

const MIN_SUM: f32 = 6.1035156e-5;
const NO_INDEX: u32 = 0xFFFFFFFFu;

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
// Each round's arg-max reduction of (probability, index).
var<workgroup> red_v: array<f32, WG>;
var<workgroup> red_i: array<u32, WG>;

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
    // Round r picks the best expert ranked after pick r - 1; probabilities are >= 0, so
    // (-1, NO_INDEX) ranks after every expert.
    var last_v = 0.0;
    var last_i = NO_INDEX;
    for (var r = 0u; r < params.k; r++) {
        var bv = -1.0;
        var bi = NO_INDEX;
        for (var e = lid; e < n; e += WG) {
            let p = probs[e];
            let eligible = r == 0u || before(last_v, last_i, p, e);
            if (eligible && before(p, e, bv, bi)) {
                bv = p;
                bi = e;
            }
        }
        red_v[lid] = bv;
        red_i[lid] = bi;
        workgroupBarrier();
        for (var s = WG / 2u; s > 0u; s >>= 1u) {
            if (lid < s && before(red_v[lid + s], red_i[lid + s], red_v[lid], red_i[lid])) {
                red_v[lid] = red_v[lid + s];
                red_i[lid] = red_i[lid + s];
            }
            workgroupBarrier();
        }
        last_v = red_v[0];
        last_i = red_i[0];
        // Everyone has read the pick before the next round overwrites the reduction.
        workgroupBarrier();
        if (lid == 0u) {
            ids[t * params.k + r] = last_i;
            picked[r] = last_v / total;
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
