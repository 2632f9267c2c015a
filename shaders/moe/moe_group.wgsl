// Groups a prefill chunk's routed slots by expert, so each expert's weights are read once
// per tile of its tokens (matmul_experts) instead of once per slot:
//   offsets[e] .. offsets[e + 1]: where expert e's slots sit in `order`
//   order: slot indices (token * k + j), by expert, in slot order within an expert.
// Split: one workgroup; the counts are atomic in workgroup memory, the prefix sum and the
// scatter (a few thousand steps at most) are done by invocation 0, so the order is stable.
// WG and MAX_EXPERTS come from Rust (ops/moe/moe_group.rs).

struct Params {
    n_expert: u32,
    slots: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
// [slots] u32: the routed expert of each slot (moe_route's ids)
@group(0) @binding(1) var<storage, read> ids: array<u32>;
// [slots] u32
@group(0) @binding(2) var<storage, read_write> order: array<u32>;
// [n_expert + 1] u32
@group(0) @binding(3) var<storage, read_write> offsets: array<u32>;

var<workgroup> counts: array<atomic<u32>, MAX_EXPERTS>;

@compute @workgroup_size(WG)
fn moe_group(@builtin(local_invocation_index) lid: u32) {
    for (var e = lid; e < params.n_expert; e += WG) {
        atomicStore(&counts[e], 0u);
    }
    workgroupBarrier();
    for (var s = lid; s < params.slots; s += WG) {
        atomicAdd(&counts[min(ids[s], MAX_EXPERTS - 1u)], 1u);
    }
    workgroupBarrier();
    if (lid != 0u) {
        return;
    }
    var acc = 0u;
    for (var e = 0u; e < params.n_expert; e++) {
        offsets[e] = acc;
        acc += atomicLoad(&counts[e]);
        // From here on counts[e] is expert e's write cursor.
        atomicStore(&counts[e], offsets[e]);
    }
    offsets[params.n_expert] = acc;
    for (var s = 0u; s < params.slots; s++) {
        let e = min(ids[s], MAX_EXPERTS - 1u);
        order[atomicAdd(&counts[e], 1u)] = s;
    }
}
