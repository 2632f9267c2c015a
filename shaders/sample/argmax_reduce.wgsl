// What the two passes of the greedy pick share: the index of the largest logit (the lowest
// index among equals), so only the 4-byte token id leaves the GPU. WG and CHUNK come from
// Rust (ops/sample/argmax.rs).

struct Params {
    n: u32,
    n_partials: u32,
    _pad0: u32,
    _pad1: u32,
}

var<workgroup> best_v: array<f32, WG>;
var<workgroup> best_i: array<u32, WG>;

// Tree reduction of (value, index), larger value first, then lower index.
fn reduce_best(lid: u32, v: f32, i: u32) -> vec2<u32> {
    best_v[lid] = v;
    best_i[lid] = i;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            let ov = best_v[lid + s];
            let oi = best_i[lid + s];
            if (ov > best_v[lid] || (ov == best_v[lid] && oi < best_i[lid])) {
                best_v[lid] = ov;
                best_i[lid] = oi;
            }
        }
        workgroupBarrier();
    }
    return vec2<u32>(bitcast<u32>(best_v[0]), best_i[0]);
}
