// Causal softmax attention with GQA for t queries at positions pos0..pos0+t (t = 1 when
// decoding: flash-decoding), split over the KV length, first pass: workgroup (query, KV
// head, group of HEADS of the query heads reading it; chunk of CHUNK positions) computes,
// for each of its heads and the positions it owns that the query may see, m = max score,
// l = sum exp(score - m) and acc = sum exp(score - m) v, scores scaled by 1 / sqrt(HD).
// flash_decode_combine adds the chunks up. Query head h reads KV head h / (n_head /
// n_head_kv); the HEADS heads of a workgroup share each K and V row it reads, so the cache
// is read once per KV head rather than once per query head.
//
// Split: invocation j scores position j of the chunk against every head of the group (its
// K row read once, the queries from workgroup memory), then the invocations walk the head
// dims, each V row read once, contiguously, and applied to every head.
// Mirrors model::reference::attention::flash_decode.
// CHUNK (= WG), HD, HEADS and DIMS_EACH come from Rust (ops/attention/flash_decode.rs).

@group(0) @binding(0) var<storage, read> params: Params;
// [n_tokens, n_head, HD] f32: normalised, rotated queries
@group(0) @binding(1) var<storage, read> q: array<f32>;
// [capacity, n_head_kv, HD] KV elements (read_write: the KV file's store shares it)
@group(0) @binding(2) var<storage, read_write> k_cache: array<KvWord>;
// [capacity, n_head_kv, HD] KV elements
@group(0) @binding(3) var<storage, read_write> v_cache: array<KvWord>;
// [n_tokens, n_head, n_chunks, HD + 2] f32: m, l, acc per chunk
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;
// The step's position and chunk count (common/step.wgsl)
@group(0) @binding(5) var<storage, read> step: Step;

var<workgroup> q_group: array<f32, HEADS * HD>;
// Scores, then their exponentials: [HEADS, CHUNK].
var<workgroup> probs: array<f32, HEADS * CHUNK>;
var<workgroup> stats: array<vec2<f32>, HEADS>;

@compute @workgroup_size(WG)
fn flash_decode(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let nh = params.n_head;
    let groups_per_kv = nh / params.n_head_kv / HEADS;
    let groups = params.n_head_kv * groups_per_kv;
    let t = wg.x / groups;
    let kvh = (wg.x % groups) / groups_per_kv;
    let h0 = kvh * (nh / params.n_head_kv) + (wg.x % groups_per_kv) * HEADS;
    let chunk = wg.y;
    let n_pos = step.pos0 + t + 1u;
    let p0 = chunk * CHUNK;
    // Partial of head h0 + i: (t n_head + h0 + i) n_chunks + chunk.
    let base = ((t * nh + h0) * step.n_chunks + chunk) * (HD + 2u);
    let head_step = step.n_chunks * (HD + 2u);
    if (p0 >= n_pos) {
        // Entirely in this query's future: empty partials.
        for (var i = 0u; i < HEADS; i++) {
            for (var d = lid; d < HD + 2u; d += WG) {
                partials[base + i * head_step + d] = select(0.0, NEG_BIG, d == 0u);
            }
        }
        return;
    }
    for (var e = lid; e < HEADS * HD; e += WG) {
        q_group[e] = q[(t * nh + h0) * HD + e];
    }
    workgroupBarrier();

    let row = params.n_head_kv * HD;
    let p = p0 + lid;
    let seen = min(CHUNK, n_pos - p0);
    var dots: array<f32, HEADS>;
    for (var i = 0u; i < HEADS; i++) {
        dots[i] = 0.0;
    }
    if (lid < seen) {
        let k_row = p * row + kvh * HD;
        for (var d = 0u; d < HD; d += 2u) {
            let k2 = load_k2(k_row + d);
            for (var i = 0u; i < HEADS; i++) {
                dots[i] += q_group[i * HD + d] * k2.x + q_group[i * HD + d + 1u] * k2.y;
            }
        }
    }
    let scale = 1.0 / sqrt(f32(HD));
    for (var i = 0u; i < HEADS; i++) {
        probs[i * CHUNK + lid] = select(NEG_BIG, dots[i] * scale, lid < seen);
    }
    workgroupBarrier();
    if (lid < HEADS) {
        var m = NEG_BIG;
        for (var j = 0u; j < seen; j++) {
            m = max(m, probs[lid * CHUNK + j]);
        }
        stats[lid].x = m;
    }
    workgroupBarrier();
    for (var i = 0u; i < HEADS; i++) {
        probs[i * CHUNK + lid] = select(0.0, exp(probs[i * CHUNK + lid] - stats[i].x), lid < seen);
    }
    workgroupBarrier();
    if (lid < HEADS) {
        var l = 0.0;
        for (var j = 0u; j < seen; j++) {
            l += probs[lid * CHUNK + j];
        }
        partials[base + lid * head_step] = stats[lid].x;
        partials[base + lid * head_step + 1u] = l;
    }

    // acc[i][k]: head h0 + i, dim lid + k WG.
    var acc: array<array<f32, DIMS_EACH>, HEADS>;
    for (var i = 0u; i < HEADS; i++) {
        for (var k = 0u; k < DIMS_EACH; k++) {
            acc[i][k] = 0.0;
        }
    }
    for (var j = 0u; j < seen; j++) {
        let v_row = (p0 + j) * row + kvh * HD;
        for (var k = 0u; k < DIMS_EACH; k++) {
            let d = lid + k * WG;
            if (d < HD) {
                let v = load_v(v_row + d);
                for (var i = 0u; i < HEADS; i++) {
                    acc[i][k] += probs[i * CHUNK + j] * v;
                }
            }
        }
    }
    for (var i = 0u; i < HEADS; i++) {
        for (var k = 0u; k < DIMS_EACH; k++) {
            let d = lid + k * WG;
            if (d < HD) {
                partials[base + i * head_step + 2u + d] = acc[i][k];
            }
        }
    }
}
