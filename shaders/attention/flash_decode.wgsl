// Causal softmax attention with GQA for t queries at positions pos0..pos0+t (t = 1 when
// decoding: flash-decoding), split over the KV length, first pass: workgroup (query head,
// chunk of CHUNK positions) computes, for the positions it owns that the query may see,
// m = max score, l = sum exp(score - m) and acc = sum exp(score - m) v, scores scaled by
// 1 / sqrt(head_dim). flash_decode_combine adds the chunks up.
// Query head h reads KV head h / (n_head / n_head_kv).
// Mirrors model::reference::attention::flash_decode.
// CHUNK, WG and MAX_HEAD_DIM come from Rust (ops/attention/flash_decode.rs).

@group(0) @binding(0) var<storage, read> params: Params;
// [n_tokens, n_head, head_dim] f32: normalised, rotated queries
@group(0) @binding(1) var<storage, read> q: array<f32>;
// [capacity, n_head_kv, head_dim] KV elements (read_write: the KV file's store shares it)
@group(0) @binding(2) var<storage, read_write> k_cache: array<KvWord>;
// [capacity, n_head_kv, head_dim] KV elements
@group(0) @binding(3) var<storage, read_write> v_cache: array<KvWord>;
// [n_tokens, n_head, n_chunks, head_dim + 2] f32: m, l, acc per chunk
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;
// The step's position and chunk count (common/step.wgsl)
@group(0) @binding(5) var<storage, read> step: Step;

var<workgroup> q_head: array<f32, MAX_HEAD_DIM>;
var<workgroup> probs: array<f32, CHUNK>;
var<workgroup> stats: vec2<f32>;

@compute @workgroup_size(WG)
fn flash_decode(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let hd = params.head_dim;
    let nh = params.n_head;
    let th = wg.x;  // t * n_head + h
    let t = th / nh;
    let h = th % nh;
    let chunk = wg.y;
    let kvh = h / (nh / params.n_head_kv);
    let n_pos = step.pos0 + t + 1u;
    let p0 = chunk * CHUNK;
    let base = (th * step.n_chunks + chunk) * (hd + 2u);
    if (p0 >= n_pos) {
        // Entirely in this query's future: an empty partial.
        for (var d = lid; d < hd + 2u; d += WG) {
            partials[base + d] = select(0.0, NEG_BIG, d == 0u);
        }
        return;
    }
    for (var d = lid; d < hd; d += WG) {
        q_head[d] = q[th * hd + d];
    }
    workgroupBarrier();
    let p = p0 + lid;
    let row = params.n_head_kv * hd;
    var score = NEG_BIG;
    if (p < n_pos) {
        var dot = 0.0;
        for (var d = 0u; d < hd; d++) {
            dot += q_head[d] * load_k(p * row + kvh * hd + d);
        }
        score = dot / sqrt(f32(hd));
    }
    let m_total = workgroup_max(score, lid);
    if (lid == 0u) {
        stats.x = m_total;
    }
    workgroupBarrier();
    let m = stats.x;
    let e = select(0.0, exp(score - m), p < n_pos);
    probs[lid] = e;
    let l_total = workgroup_sum(e, lid);
    if (lid == 0u) {
        stats.y = l_total;
    }
    workgroupBarrier();
    let seen = min(CHUNK, n_pos - p0);
    for (var d = lid; d < hd; d += WG) {
        var acc = 0.0;
        for (var j = 0u; j < seen; j++) {
            acc += probs[j] * load_v((p0 + j) * row + kvh * hd + d);
        }
        partials[base + 2u + d] = acc;
    }
    if (lid == 0u) {
        partials[base] = m;
        partials[base + 1u] = stats.y;
    }
}
