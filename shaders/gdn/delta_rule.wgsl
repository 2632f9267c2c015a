// The gated delta rule of one Gated DeltaNet layer over t tokens (t = 1 when decoding),
// with the state read from VRAM once, kept in registers across the tokens, written once:
//   q, k = l2_norm per key head; beta = sigmoid(b); g = a * softplus(alpha + dt_bias)
//   S = exp(g) S;  delta = beta (v - S^T k);  S += k delta^T;  o = S^T q / sqrt(d_k)
// Value head j reads key head j % n_k (the GGUF's tiled order).
//
// Split: each S column evolves on its own (it needs only its own entries, q, k and the
// head's scalars), so workgroup (head, chunk) owns COLS columns of one value head; its
// COLS x SLICES invocations hold one column slice of D_K / SLICES entries each (D_K is
// fixed when the shader is assembled, so the register array has a compile-time size), and
// the S^T k and S^T q sums over a column add the slices through workgroup memory.
// Mirrors model::reference::gdn::delta_rule.
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

const RPT: u32 = D_K / SLICES;

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

@compute @workgroup_size(WG)
fn delta_rule(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let head = wg.x;
    let col = lid % COLS;
    let slice = lid / COLS;
    let c = wg.y * COLS + col;
    let in_head = c < params.d_v;
    let nk = params.n_k_heads;
    let nv = params.n_v_heads;
    let dv = params.d_v;
    let kh = head % nk;
    let row0 = slice * RPT;
    let state_base = head * D_K * dv;

    var s: array<f32, RPT>;
    for (var r = 0u; r < RPT; r++) {
        s[r] = select(0.0, state[state_base + (row0 + r) * dv + c], in_head);
    }
    let scale = 1.0 / sqrt(f32(D_K));
    for (var t = 0u; t < params.n_tokens; t++) {
        let tok = t * params.channels;
        var sq = vec2<f32>(0.0);
        for (var i = lid; i < D_K; i += WG) {
            let q = conv_out[tok + kh * D_K + i];
            let k = conv_out[tok + (nk + kh) * D_K + i];
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
            v = conv_out[tok + 2u * nk * D_K + head * dv + c];
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
