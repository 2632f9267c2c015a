//! Causal softmax attention for one query position, GQA-aware, in plain f32: the reference of
//! the `flash_decode` kernel, and of `flash_prefill` for each of its queries.

/// Attention of `q` ([n_head, head_dim]) over the cached keys and values of positions
/// `0..n_pos` (`keys`, `values`: [n_pos, n_kv, head_dim]). Query head `h` reads KV head
/// `h / (n_head / n_kv)`; scores are scaled by `1 / sqrt(head_dim)`. Returns [n_head, head_dim].
pub fn flash_decode(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    n_head: usize,
    n_kv: usize,
    head_dim: usize,
) -> Vec<f32> {
    assert_eq!(
        q.len(),
        n_head * head_dim,
        "flash_decode: q is not [{n_head}, {head_dim}]"
    );
    let row = n_kv * head_dim;
    assert_eq!(
        keys.len() % row,
        0,
        "flash_decode: keys are not [_, {n_kv}, {head_dim}]"
    );
    assert_eq!(
        keys.len(),
        values.len(),
        "flash_decode: keys and values differ in length"
    );
    let n_pos = keys.len() / row;
    let group = n_head / n_kv;
    let scale = 1.0 / (head_dim as f32).sqrt();
    let mut out = vec![0.0f32; n_head * head_dim];
    for h in 0..n_head {
        let kv = h / group;
        let qh = &q[h * head_dim..(h + 1) * head_dim];
        let scores: Vec<f32> = (0..n_pos)
            .map(|t| {
                let k = &keys[t * row + kv * head_dim..][..head_dim];
                scale * qh.iter().zip(k).map(|(a, b)| a * b).sum::<f32>()
            })
            .collect();
        let max = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
        let weights: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
        let total: f32 = weights.iter().sum();
        let oh = &mut out[h * head_dim..(h + 1) * head_dim];
        for (t, w) in weights.iter().enumerate() {
            let v = &values[t * row + kv * head_dim..][..head_dim];
            for (o, x) in oh.iter_mut().zip(v) {
                *o += w / total * x;
            }
        }
    }
    out
}
