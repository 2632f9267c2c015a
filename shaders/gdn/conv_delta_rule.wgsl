// One decode step of a Gated DeltaNet layer's recurrence in one dispatch: the causal conv
// with SiLU (gdn/causal_conv1d.wgsl's ring of past inputs), then the gated delta rule with
// its q/k L2 norms (gdn/delta_rule_columns.wgsl), for the one token at position pos0.
//
// Each workgroup convolves the channels it reads itself (its key head's q and k, its
// columns' v): a few taps per channel, cheaper than a dispatch and a round trip of the
// conv output through memory. The token's input goes into ring row pos0 % K, which holds
// position pos0 - K and which no reader of this step touches, so the one owner of each
// channel writes it while the other workgroups still read the rows before it.
// Mirrors model::reference::gdn::delta_rule over silu(model::reference::gdn::causal_conv1d).
// D_K, COLS, SLICES and WG come from Rust (ops/gdn/conv_delta_rule.rs); Step from
// common/step.wgsl.

struct Params {
    n_k_heads: u32,
    n_v_heads: u32,
    d_v: u32,
    // Always 1: the shared rule walks the step's tokens.
    n_tokens: u32,
    // Conv channels: 2 n_k D_K + n_v d_v.
    channels: u32,
    eps: f32,
    // Conv taps K (at most MAX_TAPS).
    taps: u32,
    // The token's row in qkv, beta_raw, alpha and out (a batched step's sequence).
    row: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
// [row + 1, channels] f32: the qkv projections of the token, q | k | v
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
// [channels, taps] f32: ssm_conv1d
@group(0) @binding(2) var<storage, read> conv_w: array<f32>;
// [taps, channels] f32: the conv's ring of past inputs, position p in row p % taps
@group(0) @binding(3) var<storage, read_write> conv_state: array<f32>;
// [2] u32: the step's position (common/step.wgsl)
@group(0) @binding(4) var<storage, read> step: Step;
// [row + 1, n_v] f32: ssm_beta projection (before the sigmoid)
@group(0) @binding(5) var<storage, read> beta_raw: array<f32>;
// [row + 1, n_v] f32: ssm_alpha projection
@group(0) @binding(6) var<storage, read> alpha: array<f32>;
// [n_v] f32
@group(0) @binding(7) var<storage, read> dt_bias: array<f32>;
// [n_v] f32: -exp(A_log)
@group(0) @binding(8) var<storage, read> a_neg: array<f32>;
// [row + 1, n_v, d_v] f32
@group(0) @binding(9) var<storage, read_write> out: array<f32>;
// [n_v, D_K, d_v] f32
@group(0) @binding(10) var<storage, read_write> state: array<f32>;

fn token_row(t: u32) -> u32 {
    return params.row + t;
}

fn conv_channel(t: u32, ch: u32, owner: bool) -> f32 {
    let C = params.channels;
    let K = params.taps;
    let pos = step.pos0;
    let x = qkv[params.row * C + ch];
    var acc = conv_w[ch * K + K - 1u] * x;
    // Tap i multiplies position pos - K + 1 + i, in ring row (pos + 1 + i) % K.
    for (var i = 0u; i + 1u < K; i++) {
        acc += conv_w[ch * K + i] * conv_state[((pos + 1u + i) % K) * C + ch];
    }
    if (owner) {
        conv_state[(pos % K) * C + ch] = x;
    }
    return acc / (1.0 + exp(-acc));
}

@compute @workgroup_size(WG)
fn conv_delta_rule(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    delta_rule_columns(wg.x, wg.y, lid);
}
