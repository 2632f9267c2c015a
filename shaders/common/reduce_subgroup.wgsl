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
