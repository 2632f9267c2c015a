// What the row norms share: one workgroup per row of n values, WG invocations striding over
// it (WG from Rust, ops/norm/mod.rs), workgroup_sum adding the squares. The kernel's file
// defines the globals `params` and `src`.

struct Params {
    // Row length.
    n: u32,
    rows: u32,
    eps: f32,
    _pad: u32,
}

var<workgroup> row_scale: f32;

// Every invocation passes its share of the sum of squares; all get the row's 1 / rms.
fn scale_of(sum_sq: f32, lid: u32) -> f32 {
    let total = workgroup_sum(sum_sq, lid);
    if (lid == 0u) {
        row_scale = 1.0 / sqrt(total / f32(params.n) + params.eps);
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
