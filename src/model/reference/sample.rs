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

/// The penalties on recent tokens, as llama.cpp's `penalties` sampler applies them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Penalties {
    /// Divides a positive logit, multiplies a negative one (1: off).
    pub repeat: f32,
    /// Subtracted once from the logit of every token in the window (0: off).
    pub presence: f32,
    /// Subtracted from a token's logit once per time it is in the window (0: off).
    pub frequency: f32,
}

/// For each distinct recent token t seen c times:
/// `l_t = (l_t > 0 ? l_t / repeat : l_t * repeat) - c * frequency - presence`.
pub fn apply_penalties(logits: &mut [f32], recent: &[u32], p: Penalties) {
    let mut counts: Vec<(u32, u32)> = Vec::new();
    for &t in recent {
        match counts.iter_mut().find(|(id, _)| *id == t) {
            Some((_, c)) => *c += 1,
            None => counts.push((t, 1)),
        }
    }
    for (t, c) in counts {
        if let Some(l) = logits.get_mut(t as usize) {
            let r = if *l > 0.0 {
                *l / p.repeat
            } else {
                *l * p.repeat
            };
            *l = r - c as f32 * p.frequency - p.presence;
        }
    }
}
