// Normalisations of rows of n values, one workgroup per row (WG invocations stride over it,
// workgroup_sum adds the squares):
//   rms_norm:       y = src / sqrt(mean(src^2) + eps) * w   (the GGUF's weights hold 1 + w)
//   add_rms_norm:   x += src (a block's output into the residual stream), then
//                   y = x / sqrt(mean(x^2) + eps) * w: one pass where two would read x twice
//   gated_rms_norm: y = src / sqrt(mean(src^2) + eps) * w * silu(z), per head of n = d_v
//                   with one weight vector for all heads (the Gated DeltaNet output norm)
//   l2_norm:        y = src / max(||src||, eps)  (ggml's l2_norm, the GDN's q and k)
// Mirrors model::reference::norm (rms_norm, gated_rms_norm, l2_norm).

struct Params {
    // Row length.
    n: u32,
    rows: u32,
    eps: f32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
// [rows, n] f32: the rows to normalise, or the block output add_rms_norm adds
@group(0) @binding(1) var<storage, read> src: array<f32>;
// [n] f32 (not read by l2_norm)
@group(0) @binding(2) var<storage, read> w: array<f32>;
// [rows, n] f32: the gate (gated_rms_norm)
@group(0) @binding(3) var<storage, read> z: array<f32>;
// [rows, n] f32
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
// [rows, n] f32: the residual stream, updated in place (add_rms_norm)
@group(0) @binding(5) var<storage, read_write> x: array<f32>;

override WG: u32 = 64u;

var<workgroup> row_scale: f32;

// Every invocation passes its share of the sum of squares; all get the row's scale:
// 1 / rms (l2 = false) or 1 / max(norm, eps) (l2 = true).
fn scale_of(sum_sq: f32, lid: u32, l2: bool) -> f32 {
    let total = workgroup_sum(sum_sq, lid);
    if (lid == 0u) {
        if (l2) {
            row_scale = 1.0 / max(sqrt(total), params.eps);
        } else {
            row_scale = 1.0 / sqrt(total / f32(params.n) + params.eps);
        }
    }
    workgroupBarrier();
    return row_scale;
}

fn src_sum_sq(base: u32, lid: u32) -> f32 {
    var s = 0.0;
    for (var i = lid; i < params.n; i += WG) {
        let v = src[base + i];
        s += v * v;
    }
    return s;
}

@compute @workgroup_size(WG)
fn rms_norm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let base = wg.x * params.n;
    let s = scale_of(src_sum_sq(base, lid), lid, false);
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
    let s = scale_of(sum_sq, lid, false);
    for (var i = lid; i < params.n; i += WG) {
        y[base + i] = x[base + i] * s * w[i];
    }
}

@compute @workgroup_size(WG)
fn gated_rms_norm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let base = wg.x * params.n;
    let s = scale_of(src_sum_sq(base, lid), lid, false);
    for (var i = lid; i < params.n; i += WG) {
        let g = z[base + i];
        y[base + i] = src[base + i] * s * w[i] * (g / (1.0 + exp(-g)));
    }
}

@compute @workgroup_size(WG)
fn l2_norm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let base = wg.x * params.n;
    let s = scale_of(src_sum_sq(base, lid), lid, true);
    for (var i = lid; i < params.n; i += WG) {
        y[base + i] = src[base + i] * s;
    }
}
