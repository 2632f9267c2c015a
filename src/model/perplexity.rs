//! Perplexity as llama.cpp's `llama-perplexity` computes it: the text is cut into chunks of
//! `ctx` tokens, each evaluated from an empty state, and the second half of each chunk is
//! scored (every scored token has at least `ctx / 2` tokens of context).

use crate::error::Error;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Perplexity {
    /// Perplexity over all chunks so far, after each chunk.
    pub running: Vec<f64>,
    pub perplexity: f64,
    /// Mean negative log-likelihood per scored token (nats) and its standard error.
    pub nll: f64,
    pub nll_stderr: f64,
    pub scored_tokens: usize,
}

/// `-ln softmax(logits)[target]`, computed stably in f64.
pub fn negative_log_likelihood(logits: &[f32], target: usize) -> f64 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
    let sum: f64 = logits.iter().map(|&x| (x as f64 - max).exp()).sum();
    max + sum.ln() - logits[target] as f64
}

/// Perplexity of `tokens`; `eval` runs one chunk from an empty state and returns the logits
/// of every position.
pub fn perplexity(
    tokens: &[u32],
    ctx: usize,
    mut eval: impl FnMut(&[u32]) -> Result<Vec<Vec<f32>>, Error>,
) -> Result<Perplexity, Error> {
    if ctx < 4 {
        return Err(Error::InvalidArgument(format!(
            "perplexity: a context of {ctx} tokens is too short (at least 4)"
        )));
    }
    let n_chunks = tokens.len() / ctx;
    if n_chunks == 0 {
        return Err(Error::InvalidArgument(format!(
            "perplexity: the text has {} tokens, fewer than one chunk of {ctx}; use a longer file or a smaller --ctx",
            tokens.len()
        )));
    }
    let (mut sum, mut sum_sq, mut count) = (0.0f64, 0.0f64, 0usize);
    let mut running = Vec::with_capacity(n_chunks);
    for chunk in tokens.chunks_exact(ctx).take(n_chunks) {
        let logits = eval(chunk)?;
        for j in ctx / 2..ctx - 1 {
            let nll = negative_log_likelihood(&logits[j], chunk[j + 1] as usize);
            sum += nll;
            sum_sq += nll * nll;
            count += 1;
        }
        running.push((sum / count as f64).exp());
    }
    let mean = sum / count as f64;
    let var = (sum_sq / count as f64 - mean * mean).max(0.0);
    Ok(Perplexity {
        running,
        perplexity: mean.exp(),
        nll: mean,
        nll_stderr: (var / (count.max(2) - 1) as f64).sqrt(),
        scored_tokens: count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_logits_give_the_vocabulary_size() {
        let tokens: Vec<u32> = (0..64).map(|i| i % 10).collect();
        let p = perplexity(&tokens, 16, |chunk| Ok(vec![vec![0.0; 10]; chunk.len()])).unwrap();
        assert!((p.perplexity - 10.0).abs() < 1e-9);
        assert_eq!(p.scored_tokens, 4 * 7);
        assert_eq!(p.running.len(), 4);
        assert!(perplexity(&tokens[..10], 16, |_| unreachable!()).is_err());
    }

    #[test]
    fn nll_is_stable_for_large_logits() {
        let nll = negative_log_likelihood(&[1000.0, 0.0], 0);
        assert!(nll.abs() < 1e-12);
        assert!((negative_log_likelihood(&[0.0, 0.0], 1) - 2f64.ln()).abs() < 1e-12);
    }
}
