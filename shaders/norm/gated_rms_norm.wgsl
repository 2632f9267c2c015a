// y = src / sqrt(mean(src^2) + eps) * w * silu(z), per head of n = d_v with one weight
// vector for all heads (the Gated DeltaNet output norm).
// Split: one workgroup per row (norm/row_scale.wgsl). Mirrors
// model::reference::norm::gated_rms_norm.

@group(0) @binding(0) var<storage, read> params: Params;
// [rows, n] f32
@group(0) @binding(1) var<storage, read> src: array<f32>;
// [n] f32
@group(0) @binding(2) var<storage, read> w: array<f32>;
// [rows, n] f32: the gate
@group(0) @binding(3) var<storage, read> z: array<f32>;
// [rows, n] f32
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn gated_rms_norm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let base = wg.x * params.n;
    let s = scale_of(src_sum_sq(base, lid), lid);
    for (var i = lid; i < params.n; i += WG) {
        let g = z[base + i];
        y[base + i] = src[base + i] * s * w[i] * (g / (1.0 + exp(-g)));
    }
}
