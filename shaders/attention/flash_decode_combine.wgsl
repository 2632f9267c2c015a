// The second pass of split-KV attention: one workgroup per query head rescales the chunks'
// partials (attention/flash_decode.wgsl) to the global max, out = sum acc / sum l, times
// sigmoid(gate) when the model gates.
// Mirrors model::reference::attention::flash_decode (and the gate of reference::forward).
// WG comes from Rust (ops/attention/flash_decode.rs).

@group(0) @binding(0) var<storage, read> params: Params;
// [n_tokens, n_head, n_chunks, head_dim + 2] f32: m, l, acc per chunk
@group(0) @binding(1) var<storage, read> partials: array<f32>;
// [first_row + n_tokens, q_stride] f32: attn_q output, for the gate
@group(0) @binding(2) var<storage, read> q_in: array<f32>;
// [first_row + n_tokens, n_head, head_dim] f32
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
// The step's position and chunk count (common/step.wgsl)
@group(0) @binding(4) var<storage, read> step: Step;

@compute @workgroup_size(WG)
fn flash_decode_combine(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let hd = params.head_dim;
    let th = wg.x;
    let t = th / params.n_head;
    let h = th % params.n_head;
    let stride = hd + 2u;
    let first = th * step.n_chunks * stride;
    var m = NEG_BIG;
    for (var c = 0u; c < step.n_chunks; c++) {
        m = max(m, partials[first + c * stride]);
    }
    var l = 0.0;
    for (var c = 0u; c < step.n_chunks; c++) {
        l += exp(partials[first + c * stride] - m) * partials[first + c * stride + 1u];
    }
    for (var d = lid; d < hd; d += WG) {
        var acc = 0.0;
        for (var c = 0u; c < step.n_chunks; c++) {
            acc += exp(partials[first + c * stride] - m) * partials[first + c * stride + 2u + d];
        }
        var o = acc / l;
        if (params.gated == 1u) {
            let g = q_in[(params.first_row + t) * params.q_stride + h * params.q_head_stride + hd + d];
            o = o / (1.0 + exp(-g));
        }
        out[(params.first_row * params.n_head + th) * hd + d] = o;
    }
}
