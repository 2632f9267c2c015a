// The slots one expert of a grouped step owns (moe_group's `order` and `offsets`) and where
// its weights are in the bound piece (moe/expert_slab.wgsl), made uniform across the
// workgroup: the grouped expert kernels branch on it around their barriers. The including
// kernel binds `offsets` and `location` and has `params.from_pool`, `first_slab`, `slabs`.

var<workgroup> expert_range: vec3<u32>;

// (first slot in `order`, end, slab in this piece or NOT_RESIDENT) of expert e. Every
// invocation must call it.
fn expert_group(e: u32, lid: u32) -> vec3<u32> {
    if (lid == 0u) {
        let slab = expert_slab(e, params.from_pool, params.first_slab, params.slabs);
        expert_range = vec3<u32>(offsets[e], offsets[e + 1u], slab);
    }
    return workgroupUniformLoad(&expert_range);
}
