// x += src (a block's output into the residual stream), then y = x / sqrt(mean(x^2) + eps)
// * w: one pass where two would read x twice.
// Split: one workgroup per row (norm/row_scale.wgsl). Mirrors model::reference::norm::rms_norm
// after the residual add of reference::forward.

@group(0) @binding(0) var<storage, read> params: Params;
// [rows, n] f32: the block output
@group(0) @binding(1) var<storage, read> src: array<f32>;
// [n] f32
@group(0) @binding(2) var<storage, read> w: array<f32>;
// [rows, n] f32
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
// [rows, n] f32: the residual stream, updated in place
@group(0) @binding(4) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(WG)
fn add_rms_norm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let base = wg.x * params.n;
    var sum_sq = 0.0;
    for (var i = lid; i < params.n; i += WG) {
        let v = x[base + i] + src[base + i];
        x[base + i] = v;
        sum_sq += v * v;
    }
    let s = scale_of(sum_sq, lid);
    for (var i = lid; i < params.n; i += WG) {
        y[base + i] = x[base + i] * s * w[i];
    }
}
