// L2 normalisation of each row (the Gated DeltaNet's q and k heads): y = x / max(||x||, eps),
// ggml's l2_norm, with the model's RMS epsilon.
//
// Split: one workgroup per row. Mirrors model::reference::norm::l2_norm.

struct Params {
    n: u32,
    rows: u32,
    eps: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [rows, n] f32
@group(0) @binding(1) var<storage, read> x: array<f32>;
// [rows, n] f32
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

override WG: u32 = 64u;

var<workgroup> row_scale: f32;

@compute @workgroup_size(WG)
fn l2_norm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let base = wg.x * params.n;
    var sum_sq = 0.0;
    for (var i = lid; i < params.n; i += WG) {
        let v = x[base + i];
        sum_sq += v * v;
    }
    let total = workgroup_sum(sum_sq, lid);
    if (lid == 0u) {
        row_scale = 1.0 / max(sqrt(total), params.eps);
    }
    workgroupBarrier();
    let s = row_scale;
    for (var i = lid; i < params.n; i += WG) {
        y[base + i] = x[base + i] * s;
    }
}
