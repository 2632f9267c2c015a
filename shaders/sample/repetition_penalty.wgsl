// The penalties on recent tokens, applied to the logits in place before sampling
// (llama.cpp's rule): the logit of each distinct recent token, seen c times, is divided by
// `penalty` when positive and multiplied by it otherwise, then lowered by
// c * frequency + presence. Invocation i handles a token only at its first slot of
// `recent`, counting the slots after that hold it too.
// Mirrors model::reference::sample::apply_penalties.
// WG comes from Rust (ops/sample/repetition_penalty.rs).

struct Params {
    n_recent: u32,
    n_vocab: u32,
    penalty: f32,
    presence: f32,
    frequency: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
// [n_vocab] f32
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
// [n_recent] u32 token ids, in any order (a token drawn on the GPU and not yet read goes
// first, the ones the host knows after it)
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
            var count = 1u;
            for (var j = i + 1u; j < params.n_recent; j++) {
                count += u32(recent[j] == t);
            }
            let l = logits[t];
            let r = select(l * params.penalty, l / params.penalty, l > 0.0);
            logits[t] = r - f32(count) * params.frequency - params.presence;
        }
    }
}
