//! Log probabilities of generated tokens, from the logits a step drew from (after the
//! penalties, before temperature): `log softmax(logits)[token]` and the most likely tokens.

use crate::loader::tokenizer::GgufTokenizer;
use crate::serve::job::{Logprobs, TokenLogprob};

/// `token`'s log probability under `logits` and the `top` most likely tokens, best first.
pub fn logprobs(logits: &[f32], token: u32, top: u32, tokenizer: &GgufTokenizer) -> Logprobs {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
    let log_z = max + sum.ln() as f32;
    let entry = |id: u32| TokenLogprob {
        bytes: tokenizer.token_bytes(id),
        logprob: logits
            .get(id as usize)
            .map_or(f32::NEG_INFINITY, |l| l - log_z),
    };
    let mut ids: Vec<u32> = (0..logits.len() as u32).collect();
    let n = (top as usize).min(ids.len());
    let by_logit = |a: &u32, b: &u32| logits[*b as usize].total_cmp(&logits[*a as usize]);
    if n > 0 && n < ids.len() {
        ids.select_nth_unstable_by(n - 1, by_logit);
    }
    ids.truncate(n);
    ids.sort_by(by_logit);
    Logprobs {
        token: entry(token),
        top: ids.into_iter().map(entry).collect(),
    }
}
