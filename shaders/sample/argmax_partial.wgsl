// Greedy sampling, first pass: workgroup w scans logits[w * CHUNK ..] and writes its best
// (value, index) (sample/argmax_reduce.wgsl). Mirrors model::reference::sample::argmax.

@group(0) @binding(0) var<storage, read> params: Params;
// [n] f32
@group(0) @binding(1) var<storage, read> logits: array<f32>;
// [n_partials] (value, index as f32 bits)
@group(0) @binding(2) var<storage, read_write> partials: array<vec2<f32>>;

@compute @workgroup_size(WG)
fn argmax_partial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let start = wg.x * CHUNK;
    let end = min(start + CHUNK, params.n);
    var v = -3.4028235e38;
    var idx = 0xFFFFFFFFu;
    for (var i = start + lid; i < end; i += WG) {
        let x = logits[i];
        if (x > v) {
            v = x;
            idx = i;
        }
    }
    let best = reduce_best(lid, v, idx);
    if (lid == 0u) {
        partials[wg.x] = vec2<f32>(bitcast<f32>(best.x), bitcast<f32>(best.y));
    }
}
