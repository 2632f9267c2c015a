// The gated delta rule of one Gated DeltaNet layer over t tokens, reading q, k and v from
// the conv's output (gdn/causal_conv1d.wgsl ran before): the prefill form, and decode on
// adapters that keep the conv apart. The rule and its split are
// gdn/delta_rule_columns.wgsl's. Mirrors model::reference::gdn::delta_rule.
// D_K, COLS, SLICES and WG come from Rust (ops/gdn/delta_rule.rs).

struct Params {
    n_k_heads: u32,
    n_v_heads: u32,
    d_v: u32,
    n_tokens: u32,
    // Conv channels: 2 n_k D_K + n_v d_v.
    channels: u32,
    eps: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
// [n_tokens, channels] f32: conv output after SiLU, q | k | v
@group(0) @binding(1) var<storage, read> conv_out: array<f32>;
// [n_tokens, n_v] f32: ssm_beta projection (before the sigmoid)
@group(0) @binding(2) var<storage, read> beta_raw: array<f32>;
// [n_tokens, n_v] f32: ssm_alpha projection
@group(0) @binding(3) var<storage, read> alpha: array<f32>;
// [n_v] f32
@group(0) @binding(4) var<storage, read> dt_bias: array<f32>;
// [n_v] f32: -exp(A_log)
@group(0) @binding(5) var<storage, read> a_neg: array<f32>;
// [n_tokens, n_v, d_v] f32
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
// [n_v, D_K, d_v] f32
@group(0) @binding(7) var<storage, read_write> state: array<f32>;

fn token_row(t: u32) -> u32 {
    return t;
}

fn conv_channel(t: u32, ch: u32, owner: bool) -> f32 {
    return conv_out[t * params.channels + ch];
}

@compute @workgroup_size(WG)
fn delta_rule(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    delta_rule_columns(wg.x, wg.y, lid);
}
