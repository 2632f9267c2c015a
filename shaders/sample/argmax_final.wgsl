// Greedy sampling, second pass: one workgroup reduces the partials into token[0]
// (sample/argmax_reduce.wgsl). Mirrors model::reference::sample::argmax.

@group(0) @binding(0) var<storage, read> params: Params;
// [n_partials] (value, index as f32 bits)
@group(0) @binding(1) var<storage, read> partials: array<vec2<f32>>;
// [1] u32
@group(0) @binding(2) var<storage, read_write> token: array<u32>;

@compute @workgroup_size(WG)
fn argmax_final(@builtin(local_invocation_index) lid: u32) {
    var v = -3.4028235e38;
    var idx = 0xFFFFFFFFu;
    for (var p = lid; p < params.n_partials; p += WG) {
        let c = partials[p];
        let ci = bitcast<u32>(c.y);
        if (c.x > v || (c.x == v && ci < idx)) {
            v = c.x;
            idx = ci;
        }
    }
    let best = reduce_best(lid, v, idx);
    if (lid == 0u) {
        token[0] = best.y;
    }
}
