// Depthwise causal conv1d with SiLU, over the t tokens of a step at positions pos0.. (t = 1
// when decoding), updating the ring of past inputs:
//   out[t][c] = silu(sum_i w[c][i] * in[p - K + 1 + i][c]),  p = pos0 + t
// w[c][K - 1] multiplies the current token. The state is a ring of K rows: the input at
// position p is row p % K (rows for positions before 0 stay zero). A step reads the K - 1
// inputs before pos0 and leaves the last K - 1 inputs in their rows.
//
// Split: one invocation per channel, walking the tokens in order with the window in
// registers; it alone reads and writes its channel's rows. Mirrors
// silu(model::reference::gdn::causal_conv1d), whose state is the same K - 1 inputs oldest
// first.
// WG and MAX_TAPS come from Rust (ops/gdn/causal_conv1d.rs); Step from common/step.wgsl.

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
// [taps, channels] f32: the ring of past inputs, position p in row p % taps
@group(0) @binding(4) var<storage, read_write> state: array<f32>;
// [2] u32: the step's first position (common/step.wgsl)
@group(0) @binding(5) var<storage, read> step: Step;

@compute @workgroup_size(WG)
fn causal_conv1d(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let C = params.channels;
    let K = params.taps;
    if (c >= C) {
        return;
    }
    let pos0 = step.pos0;
    // window[i] holds in[p - K + 1 + i]; the last slot is filled with the current token.
    var window: array<f32, MAX_TAPS>;
    var taps: array<f32, MAX_TAPS>;
    for (var i = 0u; i < K; i++) {
        taps[i] = w[c * K + i];
    }
    // Position pos0 - K + 1 + i, kept non-negative modulo K by adding K.
    for (var i = 0u; i + 1u < K; i++) {
        window[i] = state[((pos0 + 1u + i) % K) * C + c];
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
    let end = pos0 + params.n_tokens;
    for (var i = 0u; i + 1u < K; i++) {
        state[((end + 1u + i) % K) * C + c] = window[i];
    }
}
