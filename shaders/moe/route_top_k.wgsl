// The router's choice for one token, shared by moe_route (a prompt's tokens, one workgroup
// each) and moe_gate_up (a decode token, where every workgroup chooses for itself rather
// than wait a dispatch for it): p = softmax(logits) over the experts, the k most probable
// (ties to the lower index), and their weights renormalised to sum to one when the model
// does so (the sum clamped from below at MIN_SUM).
//
// The softmax is shared by the workgroup, then the k picks come in k rounds, each a
// workgroup arg-max over the experts ranked after the previous pick (larger probability
// first, then lower index): O(k (n / WG + log WG)) steps rather than ranking every expert
// against all n. Mirrors model::reference::moe::moe_route.
// Reads the kernel's global `logits`; WG, MAX_EXPERTS and MAX_K come from Rust
// (ops/moe/moe_route.rs).

const MIN_SUM: f32 = 6.1035156e-5;
const NO_INDEX: u32 = 0xFFFFFFFFu;

var<workgroup> probs: array<f32, MAX_EXPERTS>;
var<workgroup> stat: f32;
// The k picks and their probabilities, by rank; after route_top_k, their weights.
var<workgroup> route_ids: array<u32, MAX_K>;
var<workgroup> route_weights: array<f32, MAX_K>;
// Each round's arg-max reduction of (probability, index).
var<workgroup> red_v: array<f32, WG>;
var<workgroup> red_i: array<u32, WG>;

// Routes the token whose n logits start at `base`: afterwards every invocation reads the
// picks from route_ids and route_weights. Every invocation must call it.
fn route_top_k(lid: u32, base: u32, n: u32, k: u32, renormalise: bool) {
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
    for (var r = 0u; r < k; r++) {
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
            route_ids[r] = last_i;
            route_weights[r] = last_v / total;
        }
    }
    workgroupBarrier();
    if (lid == 0u) {
        var sum = 0.0;
        for (var j = 0u; j < k; j++) {
            sum += route_weights[j];
        }
        let norm = select(1.0, 1.0 / max(sum, MIN_SUM), renormalise);
        for (var j = 0u; j < k; j++) {
            route_weights[j] *= norm;
        }
    }
    workgroupBarrier();
}
