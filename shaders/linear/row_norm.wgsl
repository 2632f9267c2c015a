// The scale of an RMSNorm folded into a matvec-shaped kernel: 1 / sqrt(mean(x^2) + eps)
// over the `units` 32-float units of the kernel's input `x` (vec4s) from vec4 `base`, computed
// by the whole workgroup and returned to every invocation (each workgroup recomputes it: a
// few thousand floats, cheaper than a dispatch). Shared by linear/matvec.wgsl and
// moe/moe_gate_up.wgsl; needs the reduction's workgroup_sum.

var<workgroup> x_scale: f32;

fn row_norm_scale(lid: u32, base: u32, units: u32, eps: f32) -> f32 {
    var sum_sq = 0.0;
    for (var i = lid; i < units * 8u; i += WG) {
        let v = x[base + i];
        sum_sq += dot(v, v);
    }
    let total = workgroup_sum(sum_sq, lid);
    if (lid == 0u) {
        x_scale = 1.0 / sqrt(total / f32(units * 32u) + eps);
    }
    workgroupBarrier();
    return x_scale;
}
