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
// the S^T k and S^T q sums over a column add the slices through workgroup memory.
//
// The kernel's file defines `params` (n_k_heads, n_v_heads, d_v, n_tokens, eps), the
// bindings beta_raw, alpha, dt_bias, a_neg, out and state, and `conv_channel(t, ch, owner)`:
// conv channel ch (q | k | v) of token t after the conv and SiLU. Several workgroups read
// each q and k channel and the slices of a column read its v channel; `owner` is true in
// exactly one reader of each channel of the step. D_K, COLS, SLICES and WG come from Rust
// (ops/gdn/delta_rule.rs).

const RPT: u32 = D_K / SLICES;

var<workgroup> qn: array<f32, D_K>;
var<workgroup> kn: array<f32, D_K>;
var<workgroup> col_partial: array<f32, WG>;
var<workgroup> norms: vec2<f32>;

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
        var sq = vec2<f32>(0.0);
        for (var i = lid; i < D_K; i += WG) {
            let q = conv_channel(t, kh * D_K + i, owns_qk);
            let k = conv_channel(t, (nk + kh) * D_K + i, owns_qk);
            qn[i] = q;
            kn[i] = k;
            sq += vec2<f32>(q * q, k * k);
        }
        let sum_q = workgroup_sum(sq.x, lid);
        let sum_k = workgroup_sum(sq.y, lid);
        if (lid == 0u) {
            norms = 1.0 / max(sqrt(vec2<f32>(sum_q, sum_k)), vec2<f32>(params.eps));
        }
        workgroupBarrier();
        let inv = norms;

        let g = a_neg[head] * softplus(alpha[t * nv + head] + dt_bias[head]);
        let decay = exp(g);
        let b = 1.0 / (1.0 + exp(-beta_raw[t * nv + head]));

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
            out[(t * nv + head) * dv + c] = o;
        }
    }
    if (in_head) {
        for (var r = 0u; r < RPT; r++) {
            state[state_base + (row0 + r) * dv + c] = s[r];
        }
    }
}
