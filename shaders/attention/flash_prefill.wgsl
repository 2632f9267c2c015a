// Tiled causal flash attention for a block of queries (prefill), GQA-aware, with the
// sigmoid gate: for t queries at positions pos0..pos0+t over the KV cache,
//   out[t][h] = softmax(q[t][h] . K[0..=pos0+t] / sqrt(HD)) V   (* sigmoid(gate))
//
// Split: workgroup (query head h, tile of QT queries). The tile's queries are staged in
// workgroup memory; the keys are walked in tiles of KT positions with an online softmax
// (running max m and sum l per query, rescaled by exp(m_old - m_new)), the KT x QT scores
// shared through workgroup memory, and each V row read once per tile and applied to all
// QT queries. Each invocation holds DPT head dims of every query's accumulator in
// registers; HD and QT are fixed when the shader is assembled.
// Mirrors model::reference::attention::flash_decode for each query (and the gate of
// reference::forward).
// HD, QT, KT and WG come from Rust (ops/attention/flash_prefill.rs); Params and the
// bindings from attention/flash_prefill_io.wgsl.

const DPT: u32 = (HD + WG - 1u) / WG;

var<workgroup> q_tile: array<f32, QT * HD>;
var<workgroup> probs: array<f32, QT * KT>;
var<workgroup> run_max: array<f32, QT>;
var<workgroup> run_sum: array<f32, QT>;
var<workgroup> rescale: array<f32, QT>;

@compute @workgroup_size(WG)
fn flash_prefill(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let h = wg.x;
    let t0 = wg.y * QT;
    let nh = params.n_head;
    let kvh = h / (nh / params.n_head_kv);
    let row = params.n_head_kv * HD;
    let n_q = min(QT, params.n_tokens - t0);
    let scale = 1.0 / sqrt(f32(HD));

    for (var i = lid; i < QT * HD; i += WG) {
        let qi = i / HD;
        var v = 0.0;
        if (qi < n_q) {
            v = q[((t0 + qi) * nh + h) * HD + i % HD];
        }
        q_tile[i] = v;
    }
    if (lid < QT) {
        run_max[lid] = NEG_BIG;
        run_sum[lid] = 0.0;
    }
    var acc: array<f32, QT * DPT>;
    workgroupBarrier();

    // The last position any query of the tile may see.
    let last = step.pos0 + t0 + n_q - 1u;
    for (var k0 = 0u; k0 <= last; k0 += KT) {
        for (var pair = lid; pair < QT * KT; pair += WG) {
            let qi = pair / KT;
            let p = k0 + pair % KT;
            var s = NEG_BIG;
            if (qi < n_q && p <= step.pos0 + t0 + qi) {
                var dot = 0.0;
                for (var d = 0u; d < HD; d++) {
                    dot += q_tile[qi * HD + d] * load_k(p * row + kvh * HD + d);
                }
                s = dot * scale;
            }
            probs[pair] = s;
        }
        workgroupBarrier();
        if (lid < QT) {
            let m_old = run_max[lid];
            var m_new = m_old;
            for (var k = 0u; k < KT; k++) {
                m_new = max(m_new, probs[lid * KT + k]);
            }
            var l = 0.0;
            for (var k = 0u; k < KT; k++) {
                let s = probs[lid * KT + k];
                let e = select(0.0, exp(s - m_new), s > NEG_BIG);
                probs[lid * KT + k] = e;
                l += e;
            }
            let alpha = select(0.0, exp(m_old - m_new), m_old > NEG_BIG);
            rescale[lid] = alpha;
            run_sum[lid] = run_sum[lid] * alpha + l;
            run_max[lid] = m_new;
        }
        workgroupBarrier();
        for (var j = 0u; j < DPT; j++) {
            let d = lid + j * WG;
            if (d < HD) {
                for (var qi = 0u; qi < QT; qi++) {
                    acc[qi * DPT + j] *= rescale[qi];
                }
                for (var k = 0u; k < KT; k++) {
                    let p = k0 + k;
                    if (p > last) {
                        break;
                    }
                    let v = load_v(p * row + kvh * HD + d);
                    for (var qi = 0u; qi < QT; qi++) {
                        acc[qi * DPT + j] += probs[qi * KT + k] * v;
                    }
                }
            }
        }
        workgroupBarrier();
    }
    for (var qi = 0u; qi < n_q; qi++) {
        let t = t0 + qi;
        for (var j = 0u; j < DPT; j++) {
            let d = lid + j * WG;
            if (d < HD) {
                var o = acc[qi * DPT + j] / run_sum[qi];
                if (params.gated == 1u) {
                    let g = q_in[t * params.q_stride + h * params.q_head_stride + HD + d];
                    o = o / (1.0 + exp(-g));
                }
                out[(t * nh + h) * HD + d] = o;
            }
        }
    }
}
