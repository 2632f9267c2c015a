// y = src / sqrt(mean(src^2) + eps) * w per row of n (the GGUF's weights hold 1 + w).
// Split: one workgroup per row (norm/row_scale.wgsl). Mirrors model::reference::norm::rms_norm.

@group(0) @binding(0) var<storage, read> params: Params;
// [rows, n] f32
@group(0) @binding(1) var<storage, read> src: array<f32>;
// [n] f32
@group(0) @binding(2) var<storage, read> w: array<f32>;
// [rows, n] f32
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn rms_norm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let base = wg.x * params.n;
    let s = scale_of(src_sum_sq(base, lid), lid);
    for (var i = lid; i < params.n; i += WG) {
        y[base + i] = src[base + i] * s * w[i];
    }
}
