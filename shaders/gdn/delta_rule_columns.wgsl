// The gated delta rule every delta-rule kernel shares, over the step's tokens, with the
// state read from VRAM once, kept in registers across the tokens, written once:
//   q, k = l2_norm per key head; beta = sigmoid(b); g = a * softplus(alpha + dt_bias)
//   S = exp(g) S;  delta = beta (v - S^T k);  S += k delta^T;  o = S^T q / sqrt(d_k)
// Value head j reads key head j % n_k (the GGUF's tiled order).
//
// Split: each S column evolves on its own (it needs only its own entries, q, k and the
// head's scalars), so workgroup (head, chunk) owns COLS columns of one value head; its
// COLS x SLICES invocations hold one column slice of D_K / SLICES entries each (D_K is
// fixed when the shader is assembled, so the register array has a compile-time size), and
// the S^T k and S^T q sums over a column add the slices through workgroup memory. The q
// and k norms of NORM_BLOCK tokens are computed together ahead of them (block_norms), so a
// token waits on no workgroup reduction for its norms: five barriers a token, where the
// reductions made nine (with subgroups) or 23 (without).
//
// The kernel's file defines `params` (n_k_heads, n_v_heads, d_v, n_tokens, eps), the
// bindings beta_raw, alpha, dt_bias, a_neg, out and state, `token_row(t)` (the row of token t
// in beta_raw, alpha and out), and `conv_channel(t, ch, owner)`: conv channel ch (q | k | v)
// of token t after the conv and SiLU. Several workgroups read
// each q and k channel and the slices of a column read its v channel; `owner` is true in
// exactly one reader of each channel of the step. D_K, COLS, SLICES and WG come from Rust
// (ops/gdn/delta_rule.rs).

const RPT: u32 = D_K / SLICES;

var<workgroup> qn: array<f32, D_K>;
var<workgroup> kn: array<f32, D_K>;
var<workgroup> col_partial: array<f32, WG>;
// Tokens whose q and k norms one pass computes: a (token, q | k) pair per invocation at
// most.
const NORM_BLOCK: u32 = WG / 2u;
var<workgroup> norm_partial: array<f32, WG>;
var<workgroup> inv_q: array<f32, NORM_BLOCK>;
var<workgroup> inv_k: array<f32, NORM_BLOCK>;

fn softplus(x: f32) -> f32 {
    return select(log(1.0 + exp(x)), x, x > 20.0);
}

// Sum of the SLICES partials of this invocation's column.
fn column_sum(v: f32, lid: u32, col: u32) -> f32 {
    col_partial[lid] = v;
    workgroupBarrier();
    var total = 0.0;
    for (var sl = 0u; sl < SLICES; sl++) {
        total += col_partial[sl * COLS + col];
    }
    workgroupBarrier();
    return total;
}

// The inverse L2 norms of q and k of key head kh for the `nb` tokens from t0 (nb at most
// NORM_BLOCK), into inv_q and inv_k: the 2 nb norms split the workgroup, each summed by
// its lanes and then by its first lane. Ahead of the tokens, so that the walk over them
// waits on no reduction.
fn block_norms(t0: u32, nb: u32, kh: u32, lid: u32) {
    let pairs = 2u * nb;
    let lanes = 1u << firstLeadingBit(WG / pairs);
    let pair = lid / lanes;
    let part = lid % lanes;
    var sq = 0.0;
    if (pair < pairs) {
        let first = select(kh, params.n_k_heads + kh, pair % 2u == 1u) * D_K;
        for (var i = part; i < D_K; i += lanes) {
            let x = conv_channel(t0 + pair / 2u, first + i, false);
            sq += x * x;
        }
    }
    workgroupBarrier();
    norm_partial[lid] = sq;
    workgroupBarrier();
    if (part == 0u && pair < pairs) {
        var total = 0.0;
        for (var i = 0u; i < lanes; i++) {
            total += norm_partial[lid + i];
        }
        let inv = 1.0 / max(sqrt(total), params.eps);
        if (pair % 2u == 0u) {
            inv_q[pair / 2u] = inv;
        } else {
            inv_k[pair / 2u] = inv;
        }
    }
}

fn delta_rule_columns(head: u32, chunk: u32, lid: u32) {
    let col = lid % COLS;
    let slice = lid / COLS;
    let c = chunk * COLS + col;
    let in_head = c < params.d_v;
    let nk = params.n_k_heads;
    let nv = params.n_v_heads;
    let dv = params.d_v;
    let kh = head % nk;
    let row0 = slice * RPT;
    let state_base = head * D_K * dv;
    // The first value head of a key head, and its first chunk, own that head's q and k.
    let owns_qk = head < nk && chunk == 0u;

    var s: array<f32, RPT>;
    for (var r = 0u; r < RPT; r++) {
        s[r] = select(0.0, state[state_base + (row0 + r) * dv + c], in_head);
    }
    let scale = 1.0 / sqrt(f32(D_K));
    for (var t = 0u; t < params.n_tokens; t++) {
        let block = t % NORM_BLOCK;
        if (block == 0u) {
            block_norms(t, min(NORM_BLOCK, params.n_tokens - t), kh, lid);
        }
        for (var i = lid; i < D_K; i += WG) {
            qn[i] = conv_channel(t, kh * D_K + i, owns_qk);
            kn[i] = conv_channel(t, (nk + kh) * D_K + i, owns_qk);
        }
        workgroupBarrier();
        let inv = vec2<f32>(inv_q[block], inv_k[block]);

        let g = a_neg[head] * softplus(alpha[token_row(t) * nv + head] + dt_bias[head]);
        let decay = exp(g);
        let b = 1.0 / (1.0 + exp(-beta_raw[token_row(t) * nv + head]));

        var sk = 0.0;
        for (var r = 0u; r < RPT; r++) {
            s[r] *= decay;
            sk += s[r] * kn[row0 + r];
        }
        let kv = column_sum(sk * inv.y, lid, col);
        var v = 0.0;
        if (in_head) {
            v = conv_channel(t, 2u * nk * D_K + head * dv + c, slice == 0u);
        }
        let delta = b * (v - kv);
        var sq_o = 0.0;
        for (var r = 0u; r < RPT; r++) {
            s[r] += kn[row0 + r] * inv.y * delta;
            sq_o += s[r] * qn[row0 + r];
        }
        let o = column_sum(sq_o * inv.x, lid, col) * scale;
        if (in_head && slice == 0u) {
            out[(token_row(t) * nv + head) * dv + c] = o;
        }
    }
    if (in_head) {
        for (var r = 0u; r < RPT; r++) {
            state[state_base + (row0 + r) * dv + c] = s[r];
        }
    }
}
