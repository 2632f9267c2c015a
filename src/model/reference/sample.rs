//! Token choice from logits.

/// The index of the largest logit, the lowest among equals.
pub fn argmax(logits: &[f32]) -> u32 {
    (0..logits.len()).fold(0, |b, i| if logits[i] > logits[b] { i } else { b }) as u32
}

/// Top-k then top-p (nucleus) sampling at `temperature`, driven by one uniform `u` in [0, 1):
///
/// ```text
/// candidates = the top_k logits, largest first (ties: lower index first)
/// p_i        = exp((l_i - l_max) / temperature), normalised over the candidates
/// keep       = the shortest prefix whose probability reaches top_p (at least one)
/// token      = the first kept candidate whose cumulative mass reaches u * kept mass
/// ```
pub fn sample_top_k_top_p(
    logits: &[f32],
    top_k: usize,
    top_p: f32,
    temperature: f32,
    u: f32,
) -> u32 {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    order.truncate(top_k.max(1));
    let max = logits[order[0]];
    let weights: Vec<f32> = order
        .iter()
        .map(|&i| ((logits[i] - max) / temperature).exp())
        .collect();
    let total: f32 = weights.iter().sum();
    let mut kept = 0;
    let mut mass = 0.0;
    for w in &weights {
        kept += 1;
        mass += w / total;
        if mass >= top_p {
            break;
        }
    }
    let kept_mass: f32 = weights[..kept].iter().sum();
    let target = u * kept_mass;
    let mut acc = 0.0;
    for (j, w) in weights[..kept].iter().enumerate() {
        acc += w;
        if acc >= target {
            return order[j] as u32;
        }
    }
    order[kept - 1] as u32
}
