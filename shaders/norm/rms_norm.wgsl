// RMSNorm of each row: y = v / sqrt(mean(v^2) + eps) * w (the GGUF's weights already hold
// 1 + w). `rms_norm` normalises v = src; `add_rms_norm` first adds a block's output src into
// the residual stream, x += src, and normalises v = x: one pass where two kernels would
// read the stream twice.
//
// Split: one workgroup per row; WG invocations stride over the row, workgroup_sum adds the
// squares. Mirrors model::reference::norm::rms_norm.

struct Params {
    // Row length.
    n: u32,
    rows: u32,
    eps: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [rows, n] f32: the rows to normalise (rms_norm) or the block output to add (add_rms_norm)
@group(0) @binding(1) var<storage, read> src: array<f32>;
// [n] f32
@group(0) @binding(2) var<storage, read> w: array<f32>;
// [rows, n] f32
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
// [rows, n] f32: the residual stream, updated in place (add_rms_norm only)
@group(0) @binding(4) var<storage, read_write> x: array<f32>;

override WG: u32 = 64u;

var<workgroup> row_scale: f32;

// Every invocation passes its share of the sum of squares; returns 1 / rms to all of them.
fn inverse_rms(sum_sq: f32, lid: u32) -> f32 {
    let total = workgroup_sum(sum_sq, lid);
    if (lid == 0u) {
        row_scale = 1.0 / sqrt(total / f32(params.n) + params.eps);
    }
    workgroupBarrier();
    return row_scale;
}

@compute @workgroup_size(WG)
fn rms_norm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let base = wg.x * params.n;
    var sum_sq = 0.0;
    for (var i = lid; i < params.n; i += WG) {
        let v = src[base + i];
        sum_sq += v * v;
    }
    let s = inverse_rms(sum_sq, lid);
    for (var i = lid; i < params.n; i += WG) {
        y[base + i] = src[base + i] * s * w[i];
    }
}

@compute @workgroup_size(WG)
fn add_rms_norm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let base = wg.x * params.n;
    var sum_sq = 0.0;
    for (var i = lid; i < params.n; i += WG) {
        let v = x[base + i] + src[base + i];
        x[base + i] = v;
        sum_sq += v * v;
    }
    let s = inverse_rms(sum_sq, lid);
    for (var i = lid; i < params.n; i += WG) {
        y[base + i] = x[base + i] * s * w[i];
    }
}
