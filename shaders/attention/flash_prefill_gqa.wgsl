// Causal flash attention for a block of queries (prefill) with the sigmoid gate, for GPUs:
// the same equation as attention/flash_prefill.wgsl,
//   out[t][h] = softmax(q[t][h] . K[0..=pos0+t] / sqrt(HD)) V   (* sigmoid(gate)),
// with every K and V row read once for all GROUP query heads sharing its KV head, and the
// scores made on cooperative matrices.
//
// Split: workgroup (KV head, tile of QT = ROWS / GROUP queries). Its ROWS query rows (row
// r: query r / GROUP, head r % GROUP of the KV head) are staged once, scaled by
// 1/sqrt(HD), as f16 (a_half, the A operand). The keys are walked in tiles of KT
// positions with an online softmax:
//   1. the tile's K rows are staged as f16 (b_half: the B operand, column-major), coalesced;
//   2. the ROWS x KT scores are SIZE x SIZE blocks shared among the teams (subgroups),
//      HD / SIZE multiply-adds each, stored to c_tile;
//   3. one invocation a row masks them causally, takes the running max and sum and turns
//      them into probabilities in place, with the row's rescale factor;
//   4. each invocation, owning DPT head dims of every row's accumulator in registers,
//      rescales it and adds the probabilities times its dims of the tile's V rows, each V
//      element read once by the workgroup.
// The matrix operations and Lanes come from linear/coop/ (subgroup.wgsl on the adapter's
// matrices, emulated.wgsl in plain WGSL), as for the cooperative matmul. Mirrors
// model::reference::attention::flash_decode for each query (and the gate of
// reference::forward). HD, GROUP, ROWS, KT, WG, SIZE and TEAM_BLOCKS come from Rust
// (ops/attention/flash_prefill.rs); Params and the bindings from
// attention/flash_prefill_io.wgsl.

const QT: u32 = ROWS / GROUP;
const DPT: u32 = (HD + WG - 1u) / WG;
// f16 elements a staged query or key row takes: HD plus 16 bytes of padding, keeping each
// block's first element 16-byte aligned and neighbouring rows in other banks.
const A_STRIDE: u32 = HD + 8u;
const B_STRIDE: u32 = HD + 8u;
const C_STRIDE: u32 = KT + 4u;
const BLOCK_COLS: u32 = KT / SIZE;
const BLOCKS: u32 = (ROWS / SIZE) * BLOCK_COLS;

var<workgroup> a_half: array<f16, ROWS * A_STRIDE>;
var<workgroup> b_half: array<f16, KT * B_STRIDE>;
// Scores, then probabilities, of row r and tile position k at r * C_STRIDE + k.
var<workgroup> c_tile: array<f32, ROWS * C_STRIDE>;
var<workgroup> run_max: array<f32, ROWS>;
var<workgroup> run_sum: array<f32, ROWS>;
var<workgroup> rescale: array<f32, ROWS>;

@compute @workgroup_size(WG)
fn flash_prefill_gqa(@builtin(workgroup_id) wg: vec3<u32>, lanes: Lanes) {
    let lid = lanes.index;
    let team = team_of(lanes);
    let teams = teams_of(lanes);
    let kvh = wg.x;
    let t0 = wg.y * QT;
    let nh = params.n_head;
    let kv_row = params.n_head_kv * HD;
    let n_q = min(QT, params.n_tokens - t0);
    let scale = 1.0 / sqrt(f32(HD));

    for (var i = lid; i < ROWS * HD; i += WG) {
        let r = i / HD;
        let d = i % HD;
        var v = 0.0;
        if (r / GROUP < n_q) {
            v = q[((t0 + r / GROUP) * nh + kvh * GROUP + r % GROUP) * HD + d] * scale;
        }
        a_half[r * A_STRIDE + d] = f16(v);
    }
    if (lid < ROWS) {
        run_max[lid] = NEG_BIG;
        run_sum[lid] = 0.0;
    }
    var acc: array<f32, ROWS * DPT>;

    // The last position any query of the tile may see.
    let last = step.pos0 + t0 + n_q - 1u;
    for (var k0 = 0u; k0 <= last; k0 += KT) {
        // Two elements an invocation, neighbours along the row: coalesced.
        for (var i = 2u * lid; i < KT * HD; i += 2u * WG) {
            let p = k0 + i / HD;
            let d = i % HD;
            var k2 = vec2<f32>(0.0);
            if (p <= last) {
                k2 = load_k2(p * kv_row + kvh * HD + d);
            }
            let at = (i / HD) * B_STRIDE + d;
            b_half[at] = f16(k2.x);
            b_half[at + 1u] = f16(k2.y);
        }
        workgroupBarrier();
        for (var j = 0u; j < TEAM_BLOCKS; j++) {
            let b = team + j * teams;
            if (b < BLOCKS) {
                let a_at = (b / BLOCK_COLS) * SIZE * A_STRIDE;
                let b_at = (b % BLOCK_COLS) * SIZE * B_STRIDE;
                var s = acc_zero();
                for (var d = 0u; d < HD; d += SIZE) {
                    s = acc_mma(s, a_at + d, b_at + d, lanes);
                }
                acc_store(s, (b / BLOCK_COLS) * SIZE * C_STRIDE + (b % BLOCK_COLS) * SIZE, lanes);
            }
        }
        workgroupBarrier();
        if (lid < ROWS) {
            let r = lid;
            // Row r's query sees positions up to its own.
            let seen = step.pos0 + t0 + r / GROUP;
            let m_old = run_max[r];
            var m_new = m_old;
            for (var k = 0u; k < KT; k++) {
                if (k0 + k <= seen) {
                    m_new = max(m_new, c_tile[r * C_STRIDE + k]);
                }
            }
            var l = 0.0;
            for (var k = 0u; k < KT; k++) {
                var e = 0.0;
                if (k0 + k <= seen) {
                    e = exp(c_tile[r * C_STRIDE + k] - m_new);
                }
                c_tile[r * C_STRIDE + k] = e;
                l += e;
            }
            let alpha = select(0.0, exp(m_old - m_new), m_old > NEG_BIG);
            rescale[r] = alpha;
            run_sum[r] = run_sum[r] * alpha + l;
            run_max[r] = m_new;
        }
        workgroupBarrier();
        for (var j = 0u; j < DPT; j++) {
            let d = lid + j * WG;
            if (d < HD) {
                for (var r = 0u; r < ROWS; r++) {
                    acc[r * DPT + j] *= rescale[r];
                }
                for (var k = 0u; k < KT; k++) {
                    let p = k0 + k;
                    if (p > last) {
                        break;
                    }
                    let v = load_v(p * kv_row + kvh * HD + d);
                    for (var r = 0u; r < ROWS; r++) {
                        acc[r * DPT + j] += c_tile[r * C_STRIDE + k] * v;
                    }
                }
            }
        }
        workgroupBarrier();
    }
    for (var r = 0u; r < ROWS; r++) {
        let qi = r / GROUP;
        if (qi >= n_q) {
            break;
        }
        let t = t0 + qi;
        let h = kvh * GROUP + r % GROUP;
        for (var j = 0u; j < DPT; j++) {
            let d = lid + j * WG;
            if (d < HD) {
                var o = acc[r * DPT + j] / run_sum[r];
                if (params.gated == 1u) {
                    let g = q_in[t * params.q_stride + h * params.q_head_stride + HD + d];
                    o = o / (1.0 + exp(-g));
                }
                out[(t * nh + h) * HD + d] = o;
            }
        }
    }
}
