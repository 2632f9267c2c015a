// The chunk-local half of the chunked gated delta rule: per chunk of CHUNK tokens and value
// head, the WY factors that let gdn/delta_chunk_state.wgsl carry the state across chunks in
// matrix products instead of one token at a time. With G_i the chunk's running sum of the
// log decay g, q and k L2-normalised per key head, beta = sigmoid(b):
//   A_ij = beta_i exp(G_i - G_j) k_i . k_j  (j < i)
//   [u | w] = (I + A)^-1 [beta v | beta exp(G) k]       forward substitution
//   kd_j = exp(G_last - G_j) k_j;  qg_i = exp(G_i) q_i / sqrt(D_K)
//   mqk_ij = exp(G_i - G_j) q_i . k_j / sqrt(D_K) (j <= i);  decay = exp(G_last)
// Rows past the chunk's tokens are zero. Mirrors model::reference::gdn::delta_chunk_wy.
//
// Split: workgroup (value head, chunk), WG invocations. The CHUNK x CHUNK dot products of
// q and k take D_K in slices of TD dims staged in workgroup memory, each invocation
// accumulating PAIRS of them; A stays in workgroup memory (its strict lower triangle), and
// the substitution gives each invocation whole columns of [u | w], walking the rows in
// order and reading back the rows it wrote. D_K, CHUNK, TD, WG come from Rust
// (ops/gdn/delta_chunk_wy.rs).

// The same Params as gdn/delta_rule.wgsl (DeltaRuleParams).
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
// [n_chunks, n_v, CHUNK, D_K] f32
@group(0) @binding(6) var<storage, read_write> w: array<f32>;
// [n_chunks, n_v, CHUNK, d_v] f32
@group(0) @binding(7) var<storage, read_write> u: array<f32>;
// [n_chunks, n_v, CHUNK, D_K] f32
@group(0) @binding(8) var<storage, read_write> kd: array<f32>;
// [n_chunks, n_v, CHUNK, D_K] f32
@group(0) @binding(9) var<storage, read_write> qg: array<f32>;
// [n_chunks, n_v, CHUNK, CHUNK] f32
@group(0) @binding(10) var<storage, read_write> mqk: array<f32>;
// [n_chunks, n_v] f32
@group(0) @binding(11) var<storage, read_write> decay: array<f32>;

const PAIRS: u32 = CHUNK * CHUNK / WG;
// A row of a staged slice, padded so that neighbouring invocations (neighbouring keys)
// read different banks.
const TD_PAD: u32 = TD + 1u;

var<workgroup> g_step: array<f32, CHUNK>;
var<workgroup> g_cum: array<f32, CHUNK>;
var<workgroup> beta: array<f32, CHUNK>;
var<workgroup> inv_q: array<f32, CHUNK>;
var<workgroup> inv_k: array<f32, CHUNK>;
var<workgroup> q_tile: array<f32, CHUNK * TD_PAD>;
var<workgroup> k_tile: array<f32, CHUNK * TD_PAD>;
// Strict lower triangle of A, row i at i (i - 1) / 2.
var<workgroup> a_tri: array<f32, CHUNK * (CHUNK - 1u) / 2u>;

fn softplus(x: f32) -> f32 {
    return select(log(1.0 + exp(x)), x, x > 20.0);
}

fn q_index(t: u32, kh: u32) -> u32 {
    return t * params.channels + kh * D_K;
}

fn k_index(t: u32, kh: u32) -> u32 {
    return t * params.channels + (params.n_k_heads + kh) * D_K;
}

@compute @workgroup_size(WG)
fn delta_chunk_wy(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let head = wg.x;
    let chunk = wg.y;
    let nv = params.n_v_heads;
    let dv = params.d_v;
    let kh = head % params.n_k_heads;
    let t0 = chunk * CHUNK;
    let n = min(CHUNK, params.n_tokens - t0);
    let rows = (chunk * nv + head) * CHUNK;
    let scale = 1.0 / sqrt(f32(D_K));

    // Per token: the decay step, beta, and the inverse norms of q and k.
    if (lid < CHUNK) {
        var g = 0.0;
        var b = 0.0;
        if (lid < n) {
            let t = t0 + lid;
            g = a_neg[head] * softplus(alpha[t * nv + head] + dt_bias[head]);
            b = 1.0 / (1.0 + exp(-beta_raw[t * nv + head]));
        }
        g_step[lid] = g;
        beta[lid] = b;
    } else if (lid < 3u * CHUNK) {
        let i = lid % CHUNK;
        let is_k = lid >= 2u * CHUNK;
        var sq = 0.0;
        if (i < n) {
            let base = select(q_index(t0 + i, kh), k_index(t0 + i, kh), is_k);
            for (var d = 0u; d < D_K; d++) {
                let x = conv_out[base + d];
                sq += x * x;
            }
        }
        let inv = 1.0 / max(sqrt(sq), params.eps);
        if (is_k) {
            inv_k[i] = inv;
        } else {
            inv_q[i] = inv;
        }
    }
    workgroupBarrier();
    if (lid < CHUNK) {
        var acc = 0.0;
        for (var t = 0u; t <= lid; t++) {
            acc += g_step[t];
        }
        g_cum[lid] = acc;
    }

    // q_i . k_j and k_i . k_j for the pairs lid + p WG (i = pair / CHUNK, j = pair % CHUNK).
    var qk: array<f32, PAIRS>;
    var kk: array<f32, PAIRS>;
    for (var p = 0u; p < PAIRS; p++) {
        qk[p] = 0.0;
        kk[p] = 0.0;
    }
    for (var d0 = 0u; d0 < D_K; d0 += TD) {
        workgroupBarrier();
        for (var e = lid; e < CHUNK * TD; e += WG) {
            let i = e / TD;
            let d = e % TD;
            var qv = 0.0;
            var kv = 0.0;
            if (i < n) {
                qv = conv_out[q_index(t0 + i, kh) + d0 + d];
                kv = conv_out[k_index(t0 + i, kh) + d0 + d];
            }
            q_tile[i * TD_PAD + d] = qv;
            k_tile[i * TD_PAD + d] = kv;
        }
        workgroupBarrier();
        for (var p = 0u; p < PAIRS; p++) {
            let pair = lid + p * WG;
            let i = pair / CHUNK;
            let j = pair % CHUNK;
            for (var d = 0u; d < TD; d++) {
                let kj = k_tile[j * TD_PAD + d];
                qk[p] += q_tile[i * TD_PAD + d] * kj;
                kk[p] += k_tile[i * TD_PAD + d] * kj;
            }
        }
    }
    for (var p = 0u; p < PAIRS; p++) {
        let pair = lid + p * WG;
        let i = pair / CHUNK;
        let j = pair % CHUNK;
        var m = 0.0;
        if (j <= i && i < n) {
            let diff = exp(g_cum[i] - g_cum[j]);
            m = diff * qk[p] * inv_q[i] * inv_k[j] * scale;
            if (j < i) {
                a_tri[i * (i - 1u) / 2u + j] = beta[i] * diff * kk[p] * inv_k[i] * inv_k[j];
            }
        }
        mqk[rows * CHUNK + pair] = m;
    }
    workgroupBarrier();

    // Forward substitution, a column of [u | w] per invocation: x_i = r_i - sum_j A_ij x_j.
    for (var col = lid; col < dv + D_K; col += WG) {
        let is_w = col >= dv;
        let c = select(col, col - dv, is_w);
        for (var i = 0u; i < CHUNK; i++) {
            var x = 0.0;
            if (i < n) {
                let t = t0 + i;
                if (is_w) {
                    x = beta[i] * exp(g_cum[i]) * conv_out[k_index(t, kh) + c] * inv_k[i];
                } else {
                    x = beta[i] * conv_out[t * params.channels + 2u * params.n_k_heads * D_K + head * dv + c];
                }
                let tri = i * (i - 1u) / 2u;
                for (var j = 0u; j < i; j++) {
                    var xj: f32;
                    if (is_w) {
                        xj = w[(rows + j) * D_K + c];
                    } else {
                        xj = u[(rows + j) * dv + c];
                    }
                    x -= a_tri[tri + j] * xj;
                }
            }
            if (is_w) {
                w[(rows + i) * D_K + c] = x;
            } else {
                u[(rows + i) * dv + c] = x;
            }
        }
    }

    // Keys decayed to the chunk's end, queries decayed from its start.
    let last = g_cum[n - 1u];
    for (var e = lid; e < CHUNK * D_K; e += WG) {
        let i = e / D_K;
        let d = e % D_K;
        var kv = 0.0;
        var qv = 0.0;
        if (i < n) {
            kv = exp(last - g_cum[i]) * conv_out[k_index(t0 + i, kh) + d] * inv_k[i];
            qv = exp(g_cum[i]) * conv_out[q_index(t0 + i, kh) + d] * inv_q[i] * scale;
        }
        kd[rows * D_K + e] = kv;
        qg[rows * D_K + e] = qv;
    }
    if (lid == 0u) {
        decay[chunk * nv + head] = exp(last);
    }
}
