// Sum of one f32 per invocation across the workgroup, through workgroup memory (for
// adapters without subgroup operations). WG must be a power of two. The result is valid in
// invocation 0; every invocation must call it (it contains barriers).

var<workgroup> reduce_scratch: array<f32, WG>;

fn workgroup_sum(v: f32, lid: u32) -> f32 {
    workgroupBarrier();
    reduce_scratch[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            reduce_scratch[lid] += reduce_scratch[lid + s];
        }
        workgroupBarrier();
    }
    return reduce_scratch[0];
}

// Maximum across the workgroup, valid in invocation 0.
fn workgroup_max(v: f32, lid: u32) -> f32 {
    workgroupBarrier();
    reduce_scratch[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            reduce_scratch[lid] = max(reduce_scratch[lid], reduce_scratch[lid + s]);
        }
        workgroupBarrier();
    }
    return reduce_scratch[0];
}

// Sum over each run of `span` consecutive invocations (span a power of two dividing WG):
// the rows of a matvec workgroup. A tree of log2(span) barriers; valid in the run's first
// invocation. Every invocation must call it.
fn span_sum(v: f32, lid: u32, span: u32) -> f32 {
    workgroupBarrier();
    reduce_scratch[lid] = v;
    workgroupBarrier();
    for (var s = span / 2u; s > 0u; s >>= 1u) {
        if (lid % span < s) {
            reduce_scratch[lid] += reduce_scratch[lid + s];
        }
        workgroupBarrier();
    }
    return reduce_scratch[lid];
}
