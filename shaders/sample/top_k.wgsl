// Top-k + top-p sampling at a temperature over the whole vocabulary, on the GPU:
//   top_k_partial: workgroup w finds the K best logits of its CHUNK, in order, in K rounds:
//     each round every invocation scans its strided share for the best element ordered
//     after the last one chosen (larger value first, then lower index), and the workgroup
//     keeps the best of those.
//   top_k_sample: one workgroup merges the partials the same way, then invocation 0 applies
//     the temperature, the top-p and min-p cuts and the host's uniform draw u, and writes
//     the token.
// Mirrors model::reference::sample::sample_top_k_top_p.

struct Params {
    n: u32,
    n_partials: u32,
    k: u32,
    _pad: u32,
    temperature: f32,
    top_p: f32,
    // Uniform in [0, 1) from the host's seeded generator.
    u: f32,
    // Candidates weighing less than min_p of the best are cut.
    min_p: f32,
}

// Each of the k rounds ends in a workgroup reduction, log2(WG) barriers; on a CPU device a
// barrier switches through every 8-lane batch of the workgroup, so a narrow workgroup is
// what pays (256 -> 64 took sampled decode of the demo from 10.6 to 14.4 tok/s on lavapipe).
const WG: u32 = 64u;
const CHUNK: u32 = 4096u;
const MAX_K: u32 = 64u;
const NEG_BIG: f32 = -3.4028235e38;
const NO_INDEX: u32 = 0xFFFFFFFFu;

@group(0) @binding(0) var<storage, read> params: Params;
// [n] f32
@group(0) @binding(1) var<storage, read> logits: array<f32>;
// [n_partials, k] (value, index as f32 bits), best first
@group(0) @binding(2) var<storage, read_write> partials: array<vec2<f32>>;
// [1] u32
@group(0) @binding(3) var<storage, read_write> token: array<u32>;

var<workgroup> red_v: array<f32, WG>;
var<workgroup> red_i: array<u32, WG>;
var<workgroup> chosen_v: array<f32, MAX_K>;
var<workgroup> chosen_i: array<u32, MAX_K>;

// a = (av, ai) ranks before b = (bv, bi)?
fn before(av: f32, ai: u32, bv: f32, bi: u32) -> bool {
    return av > bv || (av == bv && ai < bi);
}

// The workgroup's best candidate; the result is broadcast through chosen_*[round].
fn pick(lid: u32, round: u32, v: f32, i: u32) {
    red_v[lid] = v;
    red_i[lid] = i;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s && before(red_v[lid + s], red_i[lid + s], red_v[lid], red_i[lid])) {
            red_v[lid] = red_v[lid + s];
            red_i[lid] = red_i[lid + s];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        chosen_v[round] = red_v[0];
        chosen_i[round] = red_i[0];
    }
    workgroupBarrier();
}

@compute @workgroup_size(WG)
fn top_k_partial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let start = wg.x * CHUNK;
    let end = min(start + CHUNK, params.n);
    var last_v = 3.4028235e38;
    var last_i = NO_INDEX;
    for (var round = 0u; round < params.k; round++) {
        var bv = NEG_BIG;
        var bi = NO_INDEX;
        for (var i = start + lid; i < end; i += WG) {
            let v = logits[i];
            if (before(last_v, last_i, v, i) && before(v, i, bv, bi)) {
                bv = v;
                bi = i;
            }
        }
        pick(lid, round, bv, bi);
        last_v = chosen_v[round];
        last_i = chosen_i[round];
        if (lid == 0u) {
            partials[wg.x * params.k + round] = vec2<f32>(last_v, bitcast<f32>(last_i));
        }
    }
}

@compute @workgroup_size(WG)
fn top_k_sample(@builtin(local_invocation_index) lid: u32) {
    let m = params.n_partials * params.k;
    var last_v = 3.4028235e38;
    var last_i = NO_INDEX;
    for (var round = 0u; round < params.k; round++) {
        var bv = NEG_BIG;
        var bi = NO_INDEX;
        for (var j = lid; j < m; j += WG) {
            let c = partials[j];
            let ci = bitcast<u32>(c.y);
            if (ci != NO_INDEX && before(last_v, last_i, c.x, ci) && before(c.x, ci, bv, bi)) {
                bv = c.x;
                bi = ci;
            }
        }
        pick(lid, round, bv, bi);
        last_v = chosen_v[round];
        last_i = chosen_i[round];
    }
    if (lid != 0u) {
        return;
    }
    // Candidates are sorted; weights relative to the best, at the temperature.
    var k = params.k;
    for (var j = 0u; j < params.k; j++) {
        if (chosen_i[j] == NO_INDEX) {
            k = j;
            break;
        }
    }
    var total = 0.0;
    for (var j = 0u; j < k; j++) {
        total += exp((chosen_v[j] - chosen_v[0]) / params.temperature);
    }
    var kept = 0u;
    var mass = 0.0;
    var kept_mass = 0.0;
    for (var j = 0u; j < k; j++) {
        let w = exp((chosen_v[j] - chosen_v[0]) / params.temperature);
        if (j > 0u && w < params.min_p) {
            break;
        }
        kept += 1u;
        kept_mass += w;
        mass += w / total;
        if (mass >= params.top_p) {
            break;
        }
    }
    let threshold = params.u * kept_mass;
    var acc = 0.0;
    var pick_j = kept - 1u;
    for (var j = 0u; j < kept; j++) {
        acc += exp((chosen_v[j] - chosen_v[0]) / params.temperature);
        if (acc >= threshold) {
            pick_j = j;
            break;
        }
    }
    token[0] = chosen_i[pick_j];
}
