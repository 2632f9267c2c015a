// The Gated DeltaNet output norm, per head: out = y / sqrt(mean(y^2) + eps) * w * silu(z),
// with one weight vector shared by all heads (ssm_norm, stored as is).
//
// Split: one workgroup per (token, head) row of n = d_v values. Mirrors
// model::reference::norm::gated_rms_norm.

struct Params {
    // Head dim (row length).
    n: u32,
    rows: u32,
    eps: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [rows, n] f32: the delta rule's readout
@group(0) @binding(1) var<storage, read> y: array<f32>;
// [rows, n] f32: the gate projection
@group(0) @binding(2) var<storage, read> z: array<f32>;
// [n] f32
@group(0) @binding(3) var<storage, read> w: array<f32>;
// [rows, n] f32
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

override WG: u32 = 64u;

var<workgroup> row_scale: f32;

@compute @workgroup_size(WG)
fn gated_rms_norm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let base = wg.x * params.n;
    var sum_sq = 0.0;
    for (var i = lid; i < params.n; i += WG) {
        let v = y[base + i];
        sum_sq += v * v;
    }
    let total = workgroup_sum(sum_sq, lid);
    if (lid == 0u) {
        row_scale = 1.0 / sqrt(total / f32(params.n) + params.eps);
    }
    workgroupBarrier();
    let s = row_scale;
    for (var i = lid; i < params.n; i += WG) {
        let g = z[base + i];
        out[base + i] = y[base + i] * s * w[i] * (g / (1.0 + exp(-g)));
    }
}
