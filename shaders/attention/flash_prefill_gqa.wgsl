// Causal flash attention for a block of queries (prefill) with the sigmoid gate, for GPUs:
// the same equation as attention/flash_prefill.wgsl,
//   out[t][h] = softmax(q[t][h] . K[0..=pos0+t] / sqrt(HD)) V   (* sigmoid(gate)),
// with every K and V row read once for all GROUP query heads sharing its KV head, and both
// products (Q K^T and P V) on cooperative matrices.
//
// Split: workgroup (KV head, tile of QT = ROWS / GROUP queries). Its ROWS query rows (row
// r: query r / GROUP, head r % GROUP of the KV head) are staged once, scaled by
// 1/sqrt(HD), as f16 in a_half (the A operand of the scores). The keys are walked in tiles
// of KT positions, each tile's rows staged in kv_half as f16, coalesced; the ROWS x KT
// scores are SIZE x SIZE blocks shared among the teams (subgroups), stored to c_tile.
// Two passes over the keys, so that the output accumulators, which live in cooperative
// matrices whose rows cannot be rescaled one by one, never need the online softmax's
// rescale:
//   1. the scores of every tile give each row its maximum m (one invocation a row);
//   2. the scores again give p = exp(s - m) (masked causally), summed into the row's l and
//      stored as f16 beside the queries (the A operand of P V); the tile's V rows replace
//      its K rows in kv_half, read row-major as the B operand, and each team adds P V to
//      its blocks of the ROWS x HD output.
// At the end the output blocks go through c_tile, OUT_ROUND blocks at a time, to be divided
// by l, gated and written. Scores cost twice their multiply-adds on the matrix units; the
// second K read comes from cache (every query tile of the KV head reads the same rows).
// The matrix operations and Lanes come from linear/coop/ (subgroup.wgsl on the adapter's
// matrices, emulated.wgsl in plain WGSL), as for the cooperative matmul. Mirrors
// model::reference::attention::flash_decode for each query (and the gate of
// reference::forward). HD, GROUP, ROWS, KT, WG, SIZE, TEAM_BLOCKS (score blocks a team)
// and OUT_TEAM_BLOCKS (output blocks a team) come from Rust (ops/attention/flash_prefill.rs);
// Params and the bindings from attention/flash_prefill_io.wgsl.

const QT: u32 = ROWS / GROUP;
// f16 elements a staged query, key or value row takes: HD plus 16 bytes of padding,
// keeping each block's first element 16-byte aligned and neighbouring rows in other banks.
const Q_STRIDE: u32 = HD + 8u;
const KV_STRIDE: u32 = HD + 8u;
// The probabilities sit after the queries in a_half, KT + 8 f16 a row.
const P_AT: u32 = ROWS * Q_STRIDE;
const P_STRIDE: u32 = KT + 8u;
const S_STRIDE: u32 = KT + 4u;
const BLOCK_COLS: u32 = KT / SIZE;
const BLOCKS: u32 = (ROWS / SIZE) * BLOCK_COLS;
// Output block b covers rows (b % ROW_BLOCKS) * SIZE.. and dims (b / ROW_BLOCKS) * SIZE..
const ROW_BLOCKS: u32 = ROWS / SIZE;
const OUT_BLOCKS: u32 = ROW_BLOCKS * (HD / SIZE);
// Output blocks staged in c_tile at a time.
const OUT_ROUND: u32 = 4u;
const C_SIZE: u32 = max(ROWS * S_STRIDE, OUT_ROUND * SIZE * SIZE);

var<workgroup> a_half: array<f16, ROWS * (Q_STRIDE + P_STRIDE)>;
// The tile's K rows, then its V rows: position k's element d at k * KV_STRIDE + d.
var<workgroup> b_half: array<f16, KT * KV_STRIDE>;
// Scores of row r and tile position k at r * S_STRIDE + k; at the end, output blocks.
var<workgroup> c_tile: array<f32, C_SIZE>;
var<workgroup> row_max: array<f32, ROWS>;
var<workgroup> row_sum: array<f32, ROWS>;

// The K (or V) rows of positions k0.. into b_half, two elements an invocation, neighbours
// along the row; positions past `last` as zeros.
fn stage_kv(k0: u32, last: u32, kvh: u32, is_v: bool, lid: u32) {
    let kv_row = params.n_head_kv * HD;
    for (var i = 2u * lid; i < KT * HD; i += 2u * WG) {
        let p = k0 + i / HD;
        let d = i % HD;
        var v = vec2<f32>(0.0);
        if (p <= last) {
            if (is_v) {
                v = load_v2(p * kv_row + kvh * HD + d);
            } else {
                v = load_k2(p * kv_row + kvh * HD + d);
            }
        }
        let at = (i / HD) * KV_STRIDE + d;
        b_half[at] = f16(v.x);
        b_half[at + 1u] = f16(v.y);
    }
}

// The scores of the staged K tile into c_tile, each team its blocks.
fn scores(lanes: Lanes) {
    let team = team_of(lanes);
    let teams = teams_of(lanes);
    for (var j = 0u; j < TEAM_BLOCKS; j++) {
        let b = team + j * teams;
        if (b < BLOCKS) {
            let q_at = (b / BLOCK_COLS) * SIZE * Q_STRIDE;
            let k_at = (b % BLOCK_COLS) * SIZE * KV_STRIDE;
            var s = acc_zero();
            for (var d = 0u; d < HD; d += SIZE) {
                s = acc_mma(s, q_at + d, Q_STRIDE, k_at + d, KV_STRIDE, lanes);
            }
            let at = (b / BLOCK_COLS) * SIZE * S_STRIDE + (b % BLOCK_COLS) * SIZE;
            acc_store(s, at, S_STRIDE, lanes);
        }
    }
}

@compute @workgroup_size(WG)
fn flash_prefill_gqa(@builtin(workgroup_id) wg: vec3<u32>, lanes: Lanes) {
    let lid = lanes.index;
    let team = team_of(lanes);
    let teams = teams_of(lanes);
    let kvh = wg.x;
    let t0 = wg.y * QT;
    let nh = params.n_head;
    let n_q = min(QT, params.n_tokens - t0);
    let scale = 1.0 / sqrt(f32(HD));

    for (var i = lid; i < ROWS * HD; i += WG) {
        let r = i / HD;
        let d = i % HD;
        var v = 0.0;
        if (r / GROUP < n_q) {
            v = q[((t0 + r / GROUP) * nh + kvh * GROUP + r % GROUP) * HD + d] * scale;
        }
        a_half[r * Q_STRIDE + d] = f16(v);
    }
    if (lid < ROWS) {
        row_max[lid] = NEG_BIG;
        row_sum[lid] = 0.0;
    }
    // The last position any query of the tile sees; row r's query sees up to `seen`.
    let last = step.pos0 + t0 + n_q - 1u;

    // Pass 1: each row's maximum score. A row's own invocation reads c_tile before it
    // reaches the next tile's first barrier, so the next scores cannot overwrite it early.
    for (var k0 = 0u; k0 <= last; k0 += KT) {
        stage_kv(k0, last, kvh, false, lid);
        workgroupBarrier();
        scores(lanes);
        workgroupBarrier();
        if (lid < ROWS) {
            let seen = step.pos0 + t0 + lid / GROUP;
            var m = row_max[lid];
            for (var k = 0u; k < KT; k++) {
                if (k0 + k <= seen) {
                    m = max(m, c_tile[lid * S_STRIDE + k]);
                }
            }
            row_max[lid] = m;
        }
    }

    // Pass 2: probabilities and P V.
    var o: array<Acc, OUT_TEAM_BLOCKS>;
    for (var j = 0u; j < OUT_TEAM_BLOCKS; j++) {
        o[j] = acc_zero();
    }
    for (var k0 = 0u; k0 <= last; k0 += KT) {
        workgroupBarrier();
        stage_kv(k0, last, kvh, false, lid);
        workgroupBarrier();
        scores(lanes);
        workgroupBarrier();
        if (lid < ROWS) {
            let seen = step.pos0 + t0 + lid / GROUP;
            let m = row_max[lid];
            var l = 0.0;
            for (var k = 0u; k < KT; k++) {
                var e = 0.0;
                if (k0 + k <= seen) {
                    e = exp(c_tile[lid * S_STRIDE + k] - m);
                }
                a_half[P_AT + lid * P_STRIDE + k] = f16(e);
                l += e;
            }
            row_sum[lid] += l;
        }
        // The scores are made, so the K rows can give way to the V rows.
        stage_kv(k0, last, kvh, true, lid);
        workgroupBarrier();
        for (var j = 0u; j < OUT_TEAM_BLOCKS; j++) {
            let b = team + j * teams;
            if (b < OUT_BLOCKS) {
                let p_at = P_AT + (b % ROW_BLOCKS) * SIZE * P_STRIDE;
                let v_at = (b / ROW_BLOCKS) * SIZE;
                for (var k = 0u; k < KT; k += SIZE) {
                    o[j] = acc_mma_rows(o[j], p_at + k, P_STRIDE, v_at + k * KV_STRIDE, KV_STRIDE, lanes);
                }
            }
        }
    }

    for (var round = 0u; round < OUT_BLOCKS; round += OUT_ROUND) {
        workgroupBarrier();
        for (var j = 0u; j < OUT_TEAM_BLOCKS; j++) {
            let b = team + j * teams;
            if (b < OUT_BLOCKS && b >= round && b < round + OUT_ROUND) {
                acc_store(o[j], (b - round) * SIZE * SIZE, SIZE, lanes);
            }
        }
        workgroupBarrier();
        for (var i = lid; i < OUT_ROUND * SIZE * SIZE; i += WG) {
            let b = round + i / (SIZE * SIZE);
            let e = i % (SIZE * SIZE);
            let r = (b % ROW_BLOCKS) * SIZE + e / SIZE;
            let d = (b / ROW_BLOCKS) * SIZE + e % SIZE;
            let qi = r / GROUP;
            if (b < OUT_BLOCKS && qi < n_q) {
                let t = t0 + qi;
                let h = kvh * GROUP + r % GROUP;
                var v = c_tile[i] / row_sum[r];
                if (params.gated == 1u) {
                    let g = q_in[t * params.q_stride + h * params.q_head_stride + HD + d];
                    v = v / (1.0 + exp(-g));
                }
                out[(t * nh + h) * HD + d] = v;
            }
        }
    }
}
