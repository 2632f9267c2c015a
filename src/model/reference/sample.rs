//! Token choice from logits.

/// The index of the largest logit, the lowest among equals.
pub fn argmax(logits: &[f32]) -> u32 {
    (0..logits.len()).fold(0, |b, i| if logits[i] > logits[b] { i } else { b }) as u32
}

/// One draw's settings: temperature (> 0), top-p in (0, 1], min-p in [0, 1] and the
/// uniform `u` in [0, 1) that picks the token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Draw {
    pub temperature: f32,
    pub top_p: f32,
    pub min_p: f32,
    pub u: f32,
}

/// Top-k, then top-p (nucleus) and min-p sampling at a temperature, driven by one uniform `u`:
///
/// ```text
/// candidates = the top_k logits, largest first (ties: lower index first)
/// w_i        = exp((l_i - l_max) / temperature)        (p_i / p_max)
/// keep       = the shortest prefix whose probability reaches top_p (at least one),
///              cut where w_i < min_p
/// token      = the first kept candidate whose cumulative weight reaches u * kept weight
/// ```
pub fn sample_top_k_top_p(logits: &[f32], top_k: usize, d: &Draw) -> u32 {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    order.truncate(top_k.max(1));
    let max = logits[order[0]];
    let weights: Vec<f32> = order
        .iter()
        .map(|&i| ((logits[i] - max) / d.temperature).exp())
        .collect();
    let total: f32 = weights.iter().sum();
    let mut kept = 0;
    let mut mass = 0.0;
    for &w in &weights {
        if kept > 0 && w < d.min_p {
            break;
        }
        kept += 1;
        mass += w / total;
        if mass >= d.top_p {
            break;
        }
    }
    let kept_mass: f32 = weights[..kept].iter().sum();
    let target = d.u * kept_mass;
    let mut acc = 0.0;
    for (j, w) in weights[..kept].iter().enumerate() {
        acc += w;
        if acc >= target {
            return order[j] as u32;
        }
    }
    order[kept - 1] as u32
}

/// Repetition penalty as llama.cpp applies it: each distinct recent token's logit is divided
/// by `penalty` when positive and multiplied by it otherwise.
pub fn apply_repetition_penalty(logits: &mut [f32], recent: &[u32], penalty: f32) {
    let mut seen = std::collections::HashSet::new();
    for &t in recent {
        if let Some(l) = logits.get_mut(t as usize).filter(|_| seen.insert(t)) {
            *l = if *l > 0.0 { *l / penalty } else { *l * penalty };
        }
    }
}
