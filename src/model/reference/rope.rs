//! Rotary position embedding, NeoX pairing, over the first `n_rot` dims of a head.

/// The angle multiplier of each rotary pair for text positions: pair `p` turns by
/// `pos * base^(-2p / n_rot)` when a text position stream drives it, else not at all.
///
/// Plain rope (`sections` all zero, qwen3moe) drives every pair. Qwen3.5's interleaved mRoPE
/// gives pair `p` (taken modulo the sections' sum) to stream t, h or w by `p % 3`, if
/// `p < 3 * sections[stream]`; the rest go to the fourth stream. For text, t, h and w all
/// carry the token position and the fourth stream is 0, so a pair the sections do not cover
/// is left unrotated (llama.cpp's `rope_multi` with `GGML_ROPE_TYPE_IMROPE`).
pub fn rope_frequencies(n_rot: usize, base: f32, sections: [u32; 4]) -> Vec<f32> {
    let half = n_rot / 2;
    let sect_dims: u32 = sections.iter().sum();
    (0..half)
        .map(|p| {
            let freq = base.powf(-2.0 * p as f32 / n_rot as f32);
            if sect_dims == 0 {
                return freq;
            }
            let sector = p as u32 % sect_dims;
            let text = (0..3).any(|s| sector % 3 == s && sector < 3 * sections[s as usize]);
            if text {
                freq
            } else {
                0.0
            }
        })
        .collect()
}

/// Rotates `head` in place at position `pos`: for each pair `(p, p + n_rot/2)`,
/// `(a, b) -> (a cos - b sin, a sin + b cos)` with angle `pos * freqs[p]`.
pub fn rope_neox(head: &mut [f32], pos: usize, freqs: &[f32]) {
    let half = freqs.len();
    assert!(
        2 * half <= head.len(),
        "rope_neox: {} rotary dims > head",
        2 * half
    );
    for (p, &f) in freqs.iter().enumerate() {
        let theta = pos as f32 * f;
        let (sin, cos) = theta.sin_cos();
        let (a, b) = (head[p], head[p + half]);
        head[p] = a * cos - b * sin;
        head[p + half] = a * sin + b * cos;
    }
}
