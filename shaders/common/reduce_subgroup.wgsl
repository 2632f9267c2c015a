// Sum of one f32 per invocation across the workgroup: a subgroup sum, then invocation 0
// adds the subgroups' partials. Each subgroup's partial is stored at the lowest invocation
// index it contains, so no assumption is made about how invocations map to subgroups.
// The result is valid in invocation 0; every invocation must call it.

var<workgroup> reduce_scratch: array<f32, WG>;

fn workgroup_sum(v: f32, lid: u32) -> f32 {
    let partial = subgroupAdd(v);
    let leader = subgroupMin(lid);
    workgroupBarrier();
    reduce_scratch[lid] = select(0.0, partial, lid == leader);
    workgroupBarrier();
    var total = 0.0;
    if (lid == 0u) {
        for (var i = 0u; i < WG; i++) {
            total += reduce_scratch[i];
        }
    }
    return total;
}

// Maximum across the workgroup, valid in invocation 0.
fn workgroup_max(v: f32, lid: u32) -> f32 {
    let partial = subgroupMax(v);
    let leader = subgroupMin(lid);
    workgroupBarrier();
    reduce_scratch[lid] = select(-3.4028235e38, partial, lid == leader);
    workgroupBarrier();
    var m = -3.4028235e38;
    if (lid == 0u) {
        for (var i = 0u; i < WG; i++) {
            m = max(m, reduce_scratch[i]);
        }
    }
    return m;
}

var<workgroup> span_scratch: array<f32, WG>;

// Sum over each run of `span` consecutive invocations (span a power of two dividing WG):
// the rows of a matvec workgroup. Each subgroup adds the lanes of each run it holds
// (usually one or two), its first lane in that run keeps the sum, and the run's first
// invocation adds those few partials (one word per invocation, read four at a time): two
// barriers whatever the span, and no assumption on how invocations map to subgroups.
// Valid in the run's first invocation. Every invocation must call it.
fn span_sum(v: f32, lid: u32, span: u32) -> f32 {
    let run = lid / span;
    var mine = 0.0;
    let last = subgroupMax(run);
    for (var r = subgroupMin(run); r <= last; r++) {
        let inside = run == r;
        let s = subgroupAdd(select(0.0, v, inside));
        let first = subgroupMin(select(0xFFFFFFFFu, lid, inside));
        if (lid == first) {
            mine = s;
        }
    }
    workgroupBarrier();
    // One f32 per invocation: invocations writing components of one vec4 would race.
    span_scratch[lid] = mine;
    workgroupBarrier();
    var total = 0.0;
    if (lid % span == 0u) {
        var i = lid;
        for (; i + 4u <= lid + span; i += 4u) {
            total += (span_scratch[i] + span_scratch[i + 1u]) + (span_scratch[i + 2u] + span_scratch[i + 3u]);
        }
        for (; i < lid + span; i++) {
            total += span_scratch[i];
        }
    }
    return total;
}
