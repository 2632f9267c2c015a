// The params and bindings of both prefill attention kernels (flash_prefill,
// flash_prefill_gqa).

struct Params {
    n_tokens: u32,
    n_head: u32,
    n_head_kv: u32,
    head_dim: u32,
    q_stride: u32,
    q_head_stride: u32,
    gated: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
// [n_tokens, n_head, HD] f32: normalised, rotated queries
@group(0) @binding(1) var<storage, read> q: array<f32>;
// [capacity, n_head_kv, HD] KV elements
@group(0) @binding(2) var<storage, read_write> k_cache: array<KvWord>;
// [capacity, n_head_kv, HD] KV elements
@group(0) @binding(3) var<storage, read_write> v_cache: array<KvWord>;
// [n_tokens, q_stride] f32: attn_q output, for the gate
@group(0) @binding(4) var<storage, read> q_in: array<f32>;
// [n_tokens, n_head, HD] f32
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
// The step's position (common/step.wgsl)
@group(0) @binding(6) var<storage, read> step: Step;

const NEG_BIG: f32 = -3.4028235e38;
