// Depthwise causal conv1d with SiLU, over t tokens (t = 1 when decoding), updating the
// conv state in place:
//   out[t][c] = silu(sum_i w[c][i] * in[t - K + 1 + i][c]),  in = [state (K - 1 rows) | x]
// w[c][K - 1] multiplies the current token; afterwards the state holds the last K - 1 inputs.
//
// Split: one invocation per channel, walking the tokens in order with the window in
// registers. Mirrors silu(model::reference::gdn::causal_conv1d).
// WG and MAX_TAPS come from Rust (ops/gdn/causal_conv1d.rs).

struct Params {
    channels: u32,
    n_tokens: u32,
    // Kernel taps K (at most MAX_TAPS).
    taps: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
// [n_tokens, channels] f32: the qkv projections
@group(0) @binding(1) var<storage, read> x: array<f32>;
// [channels, taps] f32: ssm_conv1d
@group(0) @binding(2) var<storage, read> w: array<f32>;
// [n_tokens, channels] f32
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
// [taps - 1, channels] f32, oldest first
@group(0) @binding(4) var<storage, read_write> state: array<f32>;

@compute @workgroup_size(WG)
fn causal_conv1d(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let C = params.channels;
    let K = params.taps;
    if (c >= C) {
        return;
    }
    // window[i] holds in[t - K + 1 + i]; the last slot is filled with the current token.
    var window: array<f32, MAX_TAPS>;
    var taps: array<f32, MAX_TAPS>;
    for (var i = 0u; i < K; i++) {
        taps[i] = w[c * K + i];
    }
    for (var i = 0u; i + 1u < K; i++) {
        window[i] = state[i * C + c];
    }
    for (var t = 0u; t < params.n_tokens; t++) {
        window[K - 1u] = x[t * C + c];
        var acc = 0.0;
        for (var i = 0u; i < K; i++) {
            acc += taps[i] * window[i];
        }
        out[t * C + c] = acc / (1.0 + exp(-acc));
        for (var i = 0u; i + 1u < K; i++) {
            window[i] = window[i + 1u];
        }
    }
    for (var i = 0u; i + 1u < K; i++) {
        state[i * C + c] = window[i];
    }
}
