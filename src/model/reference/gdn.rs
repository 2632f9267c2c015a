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
#[derive(Clone, Copy)]
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

/// One chunk of one value head's tokens, as the chunked delta rule reads them: `n` tokens
/// with q and k already L2-normalised.
pub struct ChunkTokens<'a> {
    /// `[n, d_k]`.
    pub q: &'a [f32],
    /// `[n, d_k]`.
    pub k: &'a [f32],
    /// `[n, d_v]`.
    pub v: &'a [f32],
    /// `[n]`: the log decay `a * softplus(alpha + dt_bias)` (<= 0).
    pub g: &'a [f32],
    /// `[n]`: sigmoid of the beta projection.
    pub beta: &'a [f32],
}

/// The factors of one chunk of one value head in the WY form of the gated delta rule
/// ([`delta_chunk_wy`]); rows past the chunk's tokens are zero, so every chunk has
/// `chunk` rows. What `gdn/delta_chunk_wy.wgsl` writes per (chunk, value head).
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaChunk {
    /// Rows of every factor: the chunk length they were made for.
    pub chunk: usize,
    /// `[chunk, d_k]`: the part of each token's delta the incoming state cancels.
    pub w: Vec<f32>,
    /// `[chunk, d_v]`: each token's delta from a zero incoming state.
    pub u: Vec<f32>,
    /// `[chunk, d_k]`: each key decayed to the chunk's end, `exp(G_last - G_j) k_j`.
    pub kd: Vec<f32>,
    /// `[chunk, d_k]`: each query decayed from the chunk's start, `exp(G_i) q_i / sqrt(d_k)`.
    pub qg: Vec<f32>,
    /// `[chunk, chunk]`: `exp(G_i - G_j) q_i . k_j / sqrt(d_k)` for `j <= i`, else 0.
    pub mqk: Vec<f32>,
    /// `exp(G_last)`: the whole chunk's decay of the incoming state.
    pub decay: f32,
}

/// The chunk-local half of the chunked gated delta rule (the WY / UT form of Yang et al.,
/// "Gated Delta Networks", and llama.cpp's `build_delta_net_chunking`). With
/// `G_i = sum_{t <= i} g_t` and the chunk's incoming state `S_0`, the sequential rule
/// unrolls to
///
/// ```text
/// S_i     = exp(G_i) S_0 + sum_{j <= i} exp(G_i - G_j) k_j delta_j^T
/// delta_i + sum_{j < i} A_ij delta_j = beta_i v_i - beta_i exp(G_i) S_0^T k_i,
///           A_ij = beta_i exp(G_i - G_j) k_i . k_j
/// ```
///
/// so `delta = U - W S_0` with `[U | W] = (I + A)^-1 [beta v | beta exp(G) k]` (a forward
/// substitution), which needs no state: every chunk's factors can be made at once, and
/// [`delta_chunk_state`] then carries the state across chunks in a few matrix products.
pub fn delta_chunk_wy(x: ChunkTokens<'_>, chunk: usize) -> DeltaChunk {
    let n = x.g.len();
    let (dk, dv) = (x.k.len() / n.max(1), x.v.len() / n.max(1));
    assert!(
        n >= 1 && n <= chunk,
        "delta_chunk_wy: {n} tokens in a {chunk}-token chunk"
    );
    assert_eq!(x.q.len(), n * dk, "delta_chunk_wy: q is not [{n}, {dk}]");
    assert_eq!(x.beta.len(), n, "delta_chunk_wy: beta is not [{n}]");
    let cum: Vec<f32> =
        x.g.iter()
            .scan(0.0f32, |acc, &g| {
                *acc += g;
                Some(*acc)
            })
            .collect();
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let (q, k, v) = (
        |i: usize| &x.q[i * dk..(i + 1) * dk],
        |i: usize| &x.k[i * dk..(i + 1) * dk],
        |i: usize| &x.v[i * dv..(i + 1) * dv],
    );
    let scale = 1.0 / (dk as f32).sqrt();
    let mut c = DeltaChunk {
        chunk,
        w: vec![0.0; chunk * dk],
        u: vec![0.0; chunk * dv],
        kd: vec![0.0; chunk * dk],
        qg: vec![0.0; chunk * dk],
        mqk: vec![0.0; chunk * chunk],
        decay: cum[n - 1].exp(),
    };
    for i in 0..n {
        // Forward substitution, row i: x_i = r_i - sum_{j < i} A_ij x_j.
        let b = x.beta[i];
        let gamma = cum[i].exp();
        let mut u_i: Vec<f32> = v(i).iter().map(|&e| b * e).collect();
        let mut w_i: Vec<f32> = k(i).iter().map(|&e| b * gamma * e).collect();
        for j in 0..i {
            let a = b * (cum[i] - cum[j]).exp() * dot(k(i), k(j));
            u_i.iter_mut()
                .zip(&c.u[j * dv..(j + 1) * dv])
                .for_each(|(e, &p)| *e -= a * p);
            w_i.iter_mut()
                .zip(&c.w[j * dk..(j + 1) * dk])
                .for_each(|(e, &p)| *e -= a * p);
        }
        c.u[i * dv..(i + 1) * dv].copy_from_slice(&u_i);
        c.w[i * dk..(i + 1) * dk].copy_from_slice(&w_i);
        for j in 0..=i {
            c.mqk[i * chunk + j] = (cum[i] - cum[j]).exp() * dot(q(i), k(j)) * scale;
        }
        let to_end = (cum[n - 1] - cum[i]).exp();
        for d in 0..dk {
            c.kd[i * dk + d] = to_end * k(i)[d];
            c.qg[i * dk + d] = gamma * q(i)[d] * scale;
        }
    }
    c
}

/// The state half of the chunked gated delta rule, for one chunk of `n` tokens of one
/// value head, in place on its state `s` ([d_k, d_v]):
///
/// ```text
/// delta = U - W S                         every token's delta at once
/// o_i   = qg_i^T S + sum_{j <= i} mqk_ij delta_j
/// S     = decay S + kd^T delta
/// ```
///
/// Returns o, `[n, d_v]`: [`delta_rule`]'s output for these tokens.
pub fn delta_chunk_state(s: &mut [f32], c: &DeltaChunk, n: usize) -> Vec<f32> {
    let chunk = c.chunk;
    let (dk, dv) = (c.w.len() / chunk, c.u.len() / chunk);
    assert_eq!(
        s.len(),
        dk * dv,
        "delta_chunk_state: state is not [{dk}, {dv}]"
    );
    let read = |m: &[f32], i: usize, col: usize| {
        (0..dk)
            .map(|d| m[i * dk + d] * s[d * dv + col])
            .sum::<f32>()
    };
    let delta: Vec<f32> = (0..chunk * dv)
        .map(|e| c.u[e] - read(&c.w, e / dv, e % dv))
        .collect();
    let out = (0..n * dv)
        .map(|e| {
            let (i, col) = (e / dv, e % dv);
            read(&c.qg, i, col)
                + (0..=i)
                    .map(|j| c.mqk[i * chunk + j] * delta[j * dv + col])
                    .sum::<f32>()
        })
        .collect();
    for d in 0..dk {
        for col in 0..dv {
            let update: f32 = (0..chunk)
                .map(|j| c.kd[j * dk + d] * delta[j * dv + col])
                .sum();
            s[d * dv + col] = c.decay * s[d * dv + col] + update;
        }
    }
    out
}

/// The factors of value head `head` for the `n` tokens from `t0`, a chunk of `chunk` rows:
/// q and k of its key head L2-normalised, the log decay and beta per token, then
/// [`delta_chunk_wy`].
pub fn delta_chunk_factors(
    g: &GdnConfig,
    x: DeltaRuleInputs<'_>,
    eps: f32,
    (t0, n, chunk): (usize, usize, usize),
    head: usize,
) -> DeltaChunk {
    let (nk, nv) = (g.n_k_heads as usize, g.n_v_heads as usize);
    let (dk, dv) = (g.d_k as usize, g.d_v as usize);
    let channels = g.conv_channels() as usize;
    let rows = &x.conv_out[t0 * channels..(t0 + n) * channels];
    let head_rows = |offset: usize, width: usize| -> Vec<f32> {
        rows.chunks_exact(channels)
            .flat_map(|r| r[offset..offset + width].to_vec())
            .collect()
    };
    let normed = |offset: usize| -> Vec<f32> {
        head_rows(offset, dk)
            .chunks_exact(dk)
            .flat_map(|r| l2_norm(r, eps))
            .collect()
    };
    let kh = head % nk;
    let (q, k) = (normed(kh * dk), normed((nk + kh) * dk));
    let v = head_rows(2 * nk * dk + head * dv, dv);
    let gs: Vec<f32> = (t0..t0 + n)
        .map(|t| x.a[head] * softplus(x.alpha[t * nv + head] + x.dt_bias[head]))
        .collect();
    let beta: Vec<f32> = (t0..t0 + n)
        .map(|t| sigmoid(x.beta_raw[t * nv + head]))
        .collect();
    let tokens = ChunkTokens {
        q: &q,
        k: &k,
        v: &v,
        g: &gs,
        beta: &beta,
    };
    delta_chunk_wy(tokens, chunk)
}

/// [`delta_rule`] in chunks of `chunk` tokens: per chunk and value head,
/// [`delta_chunk_factors`] then [`delta_chunk_state`]. The same function of the inputs, with
/// the sums grouped by chunk; what the prompt steps of the GPU run.
pub fn delta_rule_chunked(
    g: &GdnConfig,
    x: DeltaRuleInputs<'_>,
    eps: f32,
    state: &mut [f32],
    chunk: usize,
) -> Vec<f32> {
    let nv = g.n_v_heads as usize;
    let (dk, dv) = (g.d_k as usize, g.d_v as usize);
    let t = x.conv_out.len() / g.conv_channels() as usize;
    assert!(chunk >= 1, "delta_rule_chunked: chunks of 0 tokens");
    assert_eq!(
        state.len(),
        nv * dk * dv,
        "delta_rule_chunked: state is not [{nv}, {dk}, {dv}]"
    );
    let mut out = vec![0.0f32; t * nv * dv];
    for t0 in (0..t).step_by(chunk) {
        let n = chunk.min(t - t0);
        for j in 0..nv {
            let factors = delta_chunk_factors(g, x, eps, (t0, n, chunk), j);
            let o = delta_chunk_state(&mut state[j * dk * dv..(j + 1) * dk * dv], &factors, n);
            for (i, row) in o.chunks_exact(dv).enumerate() {
                let at = ((t0 + i) * nv + j) * dv;
                out[at..at + dv].copy_from_slice(row);
            }
        }
    }
    out
}
