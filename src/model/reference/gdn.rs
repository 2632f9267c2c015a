//! Gated DeltaNet pieces in plain f32.

/// Depthwise causal conv1d over `t` tokens of `c` channels with a `k`-tap kernel:
/// `out[t][c] = sum_i w[c][i] * in[t - k + 1 + i][c]`, where `in` is the `k - 1` previous
/// inputs held in `state` followed by `x`; `w[c][k - 1]` multiplies the current token (HF's
/// causal conv1d, and ggml's `ssm_conv1d {k, channels}` layout). Afterwards `state` holds the
/// last `k - 1` inputs, so a prompt processed at once or token by token gives the same output.
///
/// `x`: [t, c] row-major; `w`: [c, k]; `state`: [k - 1, c], oldest first. Returns [t, c].
pub fn causal_conv1d(x: &[f32], w: &[f32], state: &mut [f32], c: usize, k: usize) -> Vec<f32> {
    assert!(k >= 1, "causal_conv1d: kernel size 0");
    assert_eq!(x.len() % c, 0, "causal_conv1d: x is not [t, {c}]");
    assert_eq!(w.len(), c * k, "causal_conv1d: w is not [{c}, {k}]");
    assert_eq!(
        state.len(),
        (k - 1) * c,
        "causal_conv1d: state is not [{}, {c}]",
        k - 1
    );
    let t = x.len() / c;
    let mut padded = state.to_vec();
    padded.extend_from_slice(x);
    let mut out = vec![0.0f32; t * c];
    for tok in 0..t {
        for ch in 0..c {
            out[tok * c + ch] = (0..k)
                .map(|i| w[ch * k + i] * padded[(tok + i) * c + ch])
                .sum();
        }
    }
    state.copy_from_slice(&padded[t * c..]);
    out
}
