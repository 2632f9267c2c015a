// MoE routing of a prompt's tokens on the GPU (moe/route_top_k.wgsl: softmax, top-k,
// renormalisation); ids and weights stay in GPU buffers for the expert kernels; nothing is
// read back. Each pick is counted, and so are the picks whose expert is not in the VRAM
// pool (runtime/experts.rs re-plans the resident experts from these counts).
//
// Split: one workgroup per token. Mirrors model::reference::moe::moe_route.

struct Params {
    n_expert: u32,
    k: u32,
    n_tokens: u32,
    renormalise: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
// [n_tokens, n_expert] f32: ffn_gate_inp x
@group(0) @binding(1) var<storage, read> logits: array<f32>;
// [n_tokens, k] u32
@group(0) @binding(2) var<storage, read_write> ids: array<u32>;
// [n_tokens, k] f32
@group(0) @binding(3) var<storage, read_write> weights: array<f32>;
// [n_expert] u32: each expert's pool slot; [n_expert + 1] u32: uses of each expert, misses
@group(0) @binding(4) var<storage, read> location: array<u32>;
@group(0) @binding(5) var<storage, read_write> counts: array<atomic<u32>>;

@compute @workgroup_size(WG)
fn moe_route(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = wg.x;
    let k = params.k;
    route_top_k(lid, t * params.n_expert, params.n_expert, k, params.renormalise == 1u);
    if (lid < k) {
        let e = route_ids[lid];
        ids[t * k + lid] = e;
        weights[t * k + lid] = route_weights[lid];
        atomicAdd(&counts[e], 1u);
        if (location[e] == NOT_RESIDENT) {
            atomicAdd(&counts[params.n_expert], 1u);
        }
    }
}
