// Repetition penalty, applied to the logits in place before sampling: the logit of each
// distinct recent token is divided by `penalty` when positive and multiplied by it
// otherwise (llama.cpp's rule). A token listed twice is penalised once: invocation i skips
// a token that an earlier slot of `recent` already holds.
// Mirrors model::reference::sample::apply_repetition_penalty.
// WG comes from Rust (ops/sample/repetition_penalty.rs).

struct Params {
    n_recent: u32,
    n_vocab: u32,
    penalty: f32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
// [n_vocab] f32
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
// [n_recent] u32 token ids, oldest first
@group(0) @binding(2) var<storage, read> recent: array<u32>;

@compute @workgroup_size(WG)
fn repetition_penalty(@builtin(local_invocation_index) lid: u32) {
    for (var i = lid; i < params.n_recent; i += WG) {
        let t = recent[i];
        var first = t < params.n_vocab;
        for (var j = 0u; j < i && first; j++) {
            first = recent[j] != t;
        }
        if (first) {
            let l = logits[t];
            logits[t] = select(l * params.penalty, l / params.penalty, l > 0.0);
        }
    }
}
