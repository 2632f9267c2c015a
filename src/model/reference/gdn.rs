//! Gated DeltaNet pieces in plain f32.

use crate::loader::config::GdnConfig;
use crate::model::reference::norm::{l2_norm, sigmoid, softplus};

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

/// One step of the gated delta rule for one value head, in place on its state `s`
/// ([d_k, d_v] row-major, `s[i][j]` pairs key dim i with value dim j):
///
/// ```text
/// S     = exp(g) * S                      decay (g <= 0)
/// delta = beta * (v - S^T k)              what the memory gets wrong about v
/// S     = S + k delta^T                   rank-1 correction
/// o     = S^T q / sqrt(d_k)               readout
/// ```
///
/// `q` and `k` are already L2-normalised. Returns `o` ([d_v]).
pub fn delta_step(s: &mut [f32], q: &[f32], k: &[f32], v: &[f32], g: f32, beta: f32) -> Vec<f32> {
    let (d_k, d_v) = (k.len(), v.len());
    assert_eq!(
        s.len(),
        d_k * d_v,
        "delta_step: state is not [{d_k}, {d_v}]"
    );
    assert_eq!(
        q.len(),
        d_k,
        "delta_step: q has {} values, k {d_k}",
        q.len()
    );
    let decay = g.exp();
    s.iter_mut().for_each(|x| *x *= decay);
    let mut delta = v.to_vec();
    for (i, &ki) in k.iter().enumerate() {
        for (j, d) in delta.iter_mut().enumerate() {
            *d -= s[i * d_v + j] * ki;
        }
    }
    delta.iter_mut().for_each(|d| *d *= beta);
    for (i, &ki) in k.iter().enumerate() {
        for (j, d) in delta.iter().enumerate() {
            s[i * d_v + j] += ki * d;
        }
    }
    let scale = 1.0 / (d_k as f32).sqrt();
    (0..d_v)
        .map(|j| scale * (0..d_k).map(|i| s[i * d_v + j] * q[i]).sum::<f32>())
        .collect()
}

/// What [`delta_rule`] reads for `t` tokens of one layer, besides its state.
pub struct DeltaRuleInputs<'a> {
    /// The conv output after SiLU: [t, conv_channels] = q | k | v.
    pub conv_out: &'a [f32],
    /// The raw beta projection: [t, n_v].
    pub beta_raw: &'a [f32],
    /// The raw alpha projection: [t, n_v].
    pub alpha: &'a [f32],
    /// The bias of the decay's time step, one per value head.
    pub dt_bias: &'a [f32],
    /// -exp(A_log), one per value head.
    pub a: &'a [f32],
}

/// The gated delta rule of one Gated DeltaNet layer over `t` tokens, every value head,
/// from [`DeltaRuleInputs`]:
///
/// ```text
/// q, k  = l2_norm per key head (eps = the RMS epsilon)
/// beta  = sigmoid(beta_raw)
/// g     = a * softplus(alpha + dt_bias)            (<= 0)
/// o_j   = delta_step(S_j, q[j % n_k], k[j % n_k], v_j, g_j, beta_j)
/// ```
///
/// Value head j reads key head `j % n_k` (the GGUF's tiled V-head order). `state` is
/// [n_v, d_k, d_v]. Returns o, [t, n_v * d_v].
pub fn delta_rule(g: &GdnConfig, x: DeltaRuleInputs<'_>, eps: f32, state: &mut [f32]) -> Vec<f32> {
    let DeltaRuleInputs {
        conv_out,
        beta_raw,
        alpha,
        dt_bias,
        a,
    } = x;
    let (nk, nv) = (g.n_k_heads as usize, g.n_v_heads as usize);
    let (dk, dv) = (g.d_k as usize, g.d_v as usize);
    let channels = g.conv_channels() as usize;
    assert_eq!(
        conv_out.len() % channels,
        0,
        "delta_rule: conv output is not [t, {channels}]"
    );
    assert_eq!(
        state.len(),
        nv * dk * dv,
        "delta_rule: state is not [{nv}, {dk}, {dv}]"
    );
    let mut out = Vec::with_capacity(conv_out.len() / channels * nv * dv);
    for (t, mixed) in conv_out.chunks_exact(channels).enumerate() {
        let (q, rest) = mixed.split_at(nk * dk);
        let (k, v) = rest.split_at(nk * dk);
        let q: Vec<Vec<f32>> = q.chunks_exact(dk).map(|h| l2_norm(h, eps)).collect();
        let k: Vec<Vec<f32>> = k.chunks_exact(dk).map(|h| l2_norm(h, eps)).collect();
        for j in 0..nv {
            let decay = a[j] * softplus(alpha[t * nv + j] + dt_bias[j]);
            out.extend(delta_step(
                &mut state[j * dk * dv..(j + 1) * dk * dv],
                &q[j % nk],
                &k[j % nk],
                &v[j * dv..(j + 1) * dv],
                decay,
                sigmoid(beta_raw[t * nv + j]),
            ));
        }
    }
    out
}
