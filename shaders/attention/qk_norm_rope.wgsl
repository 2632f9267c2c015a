// Prepares attention inputs for t tokens at positions pos0..pos0+t in one dispatch:
//   q head:  RMSNorm(q) * q_norm, then NeoX rotary over the first n_rot dims -> q_out
//   k head:  RMSNorm(k) * k_norm, rotary -> K cache row pos
//   v head:  copied -> V cache row pos
// attn_q's rows per head are [query | gate] when the model gates its attention output (the
// gate is read later, by flash_decode_combine or flash_prefill). Rotary pair
// p = (i, i + n_rot/2) turns by pos * freqs[p] (freqs carry the mRoPE sections: 0 for pairs
// no text stream drives).
//
// Split: workgroup (slot, token); slot < n_head is a q head, then n_head_kv k heads, then
// n_head_kv v heads. The normalised head is staged in workgroup memory so every invocation
// can write two adjacent outputs (packed when the cache is f16).
// Mirrors the q/k path of model::reference::forward (rms_norm, rope::rope_neox).
// WG and MAX_HEAD_DIM come from Rust (ops/attention/).

struct Params {
    n_tokens: u32,
    n_head: u32,
    n_head_kv: u32,
    head_dim: u32,
    n_rot: u32,
    // Floats per token in q_in (n_head * head_dim, doubled when gated).
    q_stride: u32,
    // Floats per head in q_in (head_dim, doubled when gated).
    q_head_stride: u32,
    eps: f32,
    // Row of token 0 in q_in, k_in and v_in (a batched step's sequence).
    first_row: u32,
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
// [first_row + n_tokens, q_stride] f32: attn_q output
@group(0) @binding(1) var<storage, read> q_in: array<f32>;
// [first_row + n_tokens, n_head_kv, head_dim] f32
@group(0) @binding(2) var<storage, read> k_in: array<f32>;
// [first_row + n_tokens, n_head_kv, head_dim] f32
@group(0) @binding(3) var<storage, read> v_in: array<f32>;
// [head_dim] f32
@group(0) @binding(4) var<storage, read> q_norm: array<f32>;
// [head_dim] f32
@group(0) @binding(5) var<storage, read> k_norm: array<f32>;
// [n_rot / 2] f32
@group(0) @binding(6) var<storage, read> freqs: array<f32>;
// [n_tokens, n_head, head_dim] f32
@group(0) @binding(7) var<storage, read_write> q_out: array<f32>;
// [capacity, n_head_kv, head_dim] KV elements
@group(0) @binding(8) var<storage, read_write> k_cache: array<KvWord>;
// [capacity, n_head_kv, head_dim] KV elements
@group(0) @binding(9) var<storage, read_write> v_cache: array<KvWord>;
// The step's position (common/step.wgsl)
@group(0) @binding(10) var<storage, read> step: Step;

var<workgroup> staged: array<f32, MAX_HEAD_DIM>;
var<workgroup> inv_rms: f32;

// The rotated value of element i of the staged head.
fn rotated(i: u32, pos: u32) -> f32 {
    let half = params.n_rot / 2u;
    if (i >= params.n_rot) {
        return staged[i];
    }
    let p = i % half;
    let theta = f32(pos) * freqs[p];
    let c = cos(theta);
    let s = sin(theta);
    if (i < half) {
        return staged[i] * c - staged[i + half] * s;
    }
    return staged[i - half] * s + staged[i] * c;
}

@compute @workgroup_size(WG)
fn qk_norm_rope(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let slot = wg.x;
    let t = wg.y;
    let hd = params.head_dim;
    let nh = params.n_head;
    let nkv = params.n_head_kv;
    let pos = step.pos0 + t;
    let kv_row = (pos * nkv) * hd;

    if (slot >= nh + nkv) {
        // A v head: straight into the cache.
        let vh = slot - nh - nkv;
        for (var i = 2u * lid; i < hd; i += 2u * WG) {
            let src = ((params.first_row + t) * nkv + vh) * hd + i;
            store_kv2(false, kv_row + vh * hd + i, v_in[src], v_in[src + 1u]);
        }
        return;
    }
    let is_q = slot < nh;
    var sum_sq = 0.0;
    for (var i = lid; i < hd; i += WG) {
        var v: f32;
        if (is_q) {
            v = q_in[(params.first_row + t) * params.q_stride + slot * params.q_head_stride + i];
        } else {
            v = k_in[((params.first_row + t) * nkv + slot - nh) * hd + i];
        }
        staged[i] = v;
        sum_sq += v * v;
    }
    let total = workgroup_sum(sum_sq, lid);
    if (lid == 0u) {
        inv_rms = 1.0 / sqrt(total / f32(hd) + params.eps);
    }
    workgroupBarrier();
    let s = inv_rms;
    for (var i = lid; i < hd; i += WG) {
        if (is_q) {
            staged[i] = staged[i] * s * q_norm[i];
        } else {
            staged[i] = staged[i] * s * k_norm[i];
        }
    }
    workgroupBarrier();
    for (var i = 2u * lid; i < hd; i += 2u * WG) {
        let a = rotated(i, pos);
        let b = rotated(i + 1u, pos);
        if (is_q) {
            let dst = (t * nh + slot) * hd + i;
            q_out[dst] = a;
            q_out[dst + 1u] = b;
        } else {
            store_kv2(true, kv_row + (slot - nh) * hd + i, a, b);
        }
    }
}
