// Top-k sampling, first pass: workgroup w finds the K best logits of its CHUNK, in order
// (sample/top_k_pick.wgsl). Mirrors model::reference::sample::sample_top_k_top_p.

@group(0) @binding(0) var<storage, read> params: Params;
// [n] f32
@group(0) @binding(1) var<storage, read> logits: array<f32>;
// [n_partials, k] (value, index as f32 bits), best first
@group(0) @binding(2) var<storage, read_write> partials: array<vec2<f32>>;

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
