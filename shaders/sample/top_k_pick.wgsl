// Top-k + top-p sampling at a temperature over the whole vocabulary, on the GPU:
//   top_k_partial: workgroup w finds the K best logits of its CHUNK, in order, in K rounds:
//     each round every invocation scans its strided share for the best element ordered
//     after the last one chosen (larger value first, then lower index), and the workgroup
//     keeps the best of those.
//   top_k_sample: one workgroup merges the partials the same way, then invocation 0 applies
//     the temperature, the top-p and min-p cuts and the host's uniform draw u, and writes
//     the token.
// Mirrors model::reference::sample::sample_top_k_top_p.
// This file holds what both passes share; WG, CHUNK and MAX_K come from Rust
// (ops/sample/top_k.rs).

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

const NEG_BIG: f32 = -3.4028235e38;
const NO_INDEX: u32 = 0xFFFFFFFFu;

var<workgroup> red_v: array<f32, WG>;
var<workgroup> red_i: array<u32, WG>;
var<workgroup> chosen_v: array<f32, MAX_K>;
var<workgroup> chosen_i: array<u32, MAX_K>;

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
