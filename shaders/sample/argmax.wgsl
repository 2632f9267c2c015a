// Greedy sampling: the index of the largest logit (the lowest index among equals), so only
// the 4-byte token id leaves the GPU.
//   argmax_partial: workgroup w scans logits[w * CHUNK ..] and writes its best (value, index);
//   argmax_final:   one workgroup reduces the partials into token[0].
// Mirrors the argmax of model::reference (greedy decoding in the parity tests).

struct Params {
    n: u32,
    n_partials: u32,
    _pad0: u32,
    _pad1: u32,
}

const WG: u32 = 256u;
// Logits per partial workgroup.
const CHUNK: u32 = 4096u;

@group(0) @binding(0) var<storage, read> params: Params;
// [n] f32
@group(0) @binding(1) var<storage, read> logits: array<f32>;
// [n_partials] (value, index as f32 bits)
@group(0) @binding(2) var<storage, read_write> partials: array<vec2<f32>>;
// [1] u32
@group(0) @binding(3) var<storage, read_write> token: array<u32>;

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
