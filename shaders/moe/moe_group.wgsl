// Groups a prefill chunk's routed slots by expert, so each expert's weights are read once
// per tile of its tokens (matmul_experts) instead of once per slot:
//   offsets[e] .. offsets[e + 1]: where expert e's slots sit in `order`
//   order: slot indices (token * k + j), by expert, in slot order within an expert.
// Split: one workgroup, every step parallel over its invocations:
//   counts: atomic adds in workgroup memory;
//   offsets: each invocation sums a run of experts' counts, an inclusive scan of those
//     sums over the workgroup (log2 WG steps), then each run's offsets from its base;
//   order: the slots in WG-slot blocks, in order; a slot's place is its expert's cursor
//     plus the slots of its expert before it in the block (a scan of the block's ids in
//     workgroup memory), so the order is stable without a serial pass.
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

// Slot counts, then each expert's write cursor.
var<workgroup> counts: array<atomic<u32>, MAX_EXPERTS>;
var<workgroup> run_sums: array<u32, WG>;
var<workgroup> block_ids: array<u32, WG>;

// A block lane past the last slot.
const NO_EXPERT: u32 = 0xffffffffu;

@compute @workgroup_size(WG)
fn moe_group(@builtin(local_invocation_index) lid: u32) {
    let n = params.n_expert;
    for (var e = lid; e < n; e += WG) {
        atomicStore(&counts[e], 0u);
    }
    workgroupBarrier();
    for (var s = lid; s < params.slots; s += WG) {
        atomicAdd(&counts[min(ids[s], MAX_EXPERTS - 1u)], 1u);
    }
    workgroupBarrier();

    // This invocation's run of experts, e0..e1.
    let per = (n + WG - 1u) / WG;
    let e0 = min(n, lid * per);
    let e1 = min(n, e0 + per);
    var run = 0u;
    for (var e = e0; e < e1; e++) {
        run += atomicLoad(&counts[e]);
    }
    run_sums[lid] = run;
    workgroupBarrier();
    for (var d = 1u; d < WG; d <<= 1u) {
        var before = 0u;
        if (lid >= d) {
            before = run_sums[lid - d];
        }
        workgroupBarrier();
        run_sums[lid] += before;
        workgroupBarrier();
    }
    var at = run_sums[lid] - run;
    for (var e = e0; e < e1; e++) {
        let c = atomicLoad(&counts[e]);
        offsets[e] = at;
        atomicStore(&counts[e], at);
        at += c;
    }
    if (lid == WG - 1u) {
        offsets[n] = run_sums[lid];
    }
    workgroupBarrier();

    for (var b0 = 0u; b0 < params.slots; b0 += WG) {
        let s = b0 + lid;
        let live = s < params.slots;
        var e = NO_EXPERT;
        if (live) {
            e = min(ids[s], MAX_EXPERTS - 1u);
        }
        block_ids[lid] = e;
        workgroupBarrier();
        var rank = 0u;
        var last = true;
        for (var j = 0u; j < WG; j++) {
            if (block_ids[j] == e) {
                if (j < lid) {
                    rank += 1u;
                } else if (j > lid) {
                    last = false;
                }
            }
        }
        if (live) {
            order[atomicLoad(&counts[e]) + rank] = s;
        }
        // Every slot of the block has read its cursor before the last of each expert moves it.
        workgroupBarrier();
        if (live && last) {
            atomicAdd(&counts[e], rank + 1u);
        }
        workgroupBarrier();
    }
}
