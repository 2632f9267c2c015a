//! Mixture-of-experts routing and SwiGLU feed-forward blocks in plain f32.

use crate::model::reference::linear::matvec;
use crate::model::reference::norm::silu;

/// ggml clamps the sum of the selected probabilities from below before renormalising.
pub const MIN_TOP_K_SUM: f32 = 6.103_515_6e-5;

/// `p = softmax(logits)`; the `k` most probable experts (ties to the lower index) and their
/// weights, renormalised to sum to one when `renormalise` (sum clamped at [`MIN_TOP_K_SUM`]).
pub fn moe_route(logits: &[f32], k: usize, renormalise: bool) -> (Vec<usize>, Vec<f32>) {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let exps: Vec<f32> = logits.iter().map(|x| (x - max).exp()).collect();
    let total: f32 = exps.iter().sum();
    let probs: Vec<f32> = exps.iter().map(|e| e / total).collect();
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    order.truncate(k);
    let mut weights: Vec<f32> = order.iter().map(|&e| probs[e]).collect();
    if renormalise {
        let sum = weights.iter().sum::<f32>().max(MIN_TOP_K_SUM);
        weights.iter_mut().for_each(|w| *w /= sum);
    }
    (order, weights)
}

/// `down(silu(gate x) * up x)`: gate and up are [ffn, n_embd], down is [n_embd, ffn].
pub fn swiglu(x: &[f32], gate: &[f32], up: &[f32], down: &[f32], ffn: usize) -> Vec<f32> {
    let n = x.len();
    let g = matvec(gate, x, ffn, n);
    let u = matvec(up, x, ffn, n);
    let h: Vec<f32> = g.iter().zip(&u).map(|(g, u)| silu(*g) * u).collect();
    matvec(down, &h, n, ffn)
}
