//! The Qwen3.5 byte-level BPE vocabulary as GGUF tokenizer metadata, from tiktoken ranks.
//!
//! A `.tiktoken` file lists each token's bytes (base64) with its rank; the rank is the token
//! id. GGUF (and HF's BPE) want GPT-2 byte-level strings and a merge list instead: merges are
//! recovered by byte-pair merging each token's bytes with only lower-ranked tokens, the last
//! two parts forming the merge (a few tokens cannot be built that way and get no merge, as
//! BPE could never produce them from their own bytes).

use std::collections::HashMap;

use base64::Engine;

use crate::error::Error;
use crate::loader::gguf::{MetaArray, MetaValue};
use crate::loader::names::tokenizer as tok;
use crate::loader::writer::{byte_to_unicode, token_type, GgufWriter};

/// The Qwen3.5 / Qwen3.6 ranks, embedded so a fresh machine can build a real tokenizer.
pub const QWEN35_TIKTOKEN: &str = include_str!("../../data/qwen35.tiktoken");

/// Qwen3.5's special tokens in id order, from id 248044 on.
pub const QWEN35_SPECIALS: [&str; 33] = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
    "<|audio_start|>",
    "<|audio_end|>",
    "<tts_pad>",
    "<tts_text_bos>",
    "<tts_text_eod>",
    "<tts_text_bos_single>",
    "<|audio_pad|>",
];

/// The released embedding table's rows: the vocabulary is padded with unused tokens up to it.
pub const QWEN35_VOCAB_SIZE: u32 = 248_320;

/// Token bytes by rank from a `.tiktoken` file (`base64 rank` per line, ranks 0..n in order).
pub fn parse_tiktoken(text: &str) -> Result<Vec<Vec<u8>>, Error> {
    let mut out = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let bad =
            |why: &str| Error::InvalidArgument(format!("tiktoken line {}: {why}", line_no + 1));
        let (b64, rank) = line
            .split_once(' ')
            .ok_or_else(|| bad("expected 'base64 rank'"))?;
        let rank: usize = rank
            .trim()
            .parse()
            .map_err(|_| bad("rank is not a number"))?;
        if rank != out.len() {
            return Err(bad(&format!(
                "rank {rank} out of order (expected {})",
                out.len()
            )));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| bad(&format!("bad base64: {e}")))?;
        out.push(bytes);
    }
    Ok(out)
}

/// Merges the bytes of `token` pair by pair, always the pair whose concatenation has the
/// lowest rank below `max_rank`, leftmost on ties (tiktoken's `_byte_pair_merge`); returns
/// the boundaries of the parts left (part i is `bounds[i]..bounds[i + 1]`).
fn byte_pair_bounds(token: &[u8], ranks: &HashMap<&[u8], usize>, max_rank: usize) -> Vec<usize> {
    let mut bounds: Vec<usize> = (0..=token.len()).collect();
    loop {
        let best = (0..bounds.len().saturating_sub(2))
            .filter_map(|i| {
                let rank = *ranks.get(&token[bounds[i]..bounds[i + 2]])?;
                (rank < max_rank).then_some((rank, i))
            })
            .min();
        let Some((_, i)) = best else { break };
        bounds.remove(i + 1);
    }
    bounds
}

/// Each mergeable token's merge as (left rank, right rank), in rank order.
pub fn merges_from_ranks(tokens: &[Vec<u8>]) -> Vec<(usize, usize)> {
    let ranks: HashMap<&[u8], usize> = tokens
        .iter()
        .enumerate()
        .map(|(r, t)| (t.as_slice(), r))
        .collect();
    let mut merges = Vec::new();
    for (rank, token) in tokens.iter().enumerate() {
        if token.len() < 2 {
            continue;
        }
        if let [start, mid, end] = byte_pair_bounds(token, &ranks, rank)[..] {
            merges.push((ranks[&token[start..mid]], ranks[&token[mid..end]]));
        }
    }
    merges
}

/// Bytes as a GPT-2 byte-level string (`" the"` becomes `"Ġthe"`).
pub fn byte_level(bytes: &[u8]) -> String {
    let map = byte_to_unicode();
    bytes.iter().map(|&b| map[b as usize]).collect()
}

/// Writes the Qwen3.5 vocabulary as llama.cpp expects it: ranked tokens, the 33 specials
/// (`<|...|>` CONTROL, the others USER_DEFINED), `[PADn]` UNUSED tokens up to `n_vocab`,
/// merges, bos = pad = `<|endoftext|>`, eos = `<|im_end|>`, no BOS added, and `template`.
pub fn write_qwen35_vocabulary(
    w: &mut GgufWriter,
    ranks: &[Vec<u8>],
    n_vocab: u32,
    template: &str,
) -> Result<(), Error> {
    let n_ranked = ranks.len();
    if n_ranked + QWEN35_SPECIALS.len() > n_vocab as usize {
        return Err(Error::InvalidArgument(format!(
            "a vocabulary of {n_vocab} cannot hold {n_ranked} tokens and {} specials",
            QWEN35_SPECIALS.len()
        )));
    }
    let mut tokens: Vec<String> = ranks.iter().map(|b| byte_level(b)).collect();
    let mut types = vec![token_type::NORMAL; n_ranked];
    for s in QWEN35_SPECIALS {
        tokens.push(s.to_string());
        types.push(if s.starts_with("<|") {
            token_type::CONTROL
        } else {
            token_type::USER_DEFINED
        });
    }
    let mut pad = 0;
    while tokens.len() < n_vocab as usize {
        tokens.push(format!("[PAD{pad}]"));
        types.push(token_type::UNUSED);
        pad += 1;
    }
    let merges = merges_from_ranks(ranks)
        .into_iter()
        .map(|(l, r)| format!("{} {}", tokens[l], tokens[r]))
        .collect();
    let id = |name: &str| {
        (n_ranked + QWEN35_SPECIALS.iter().position(|s| *s == name).unwrap_or(0)) as u32
    };
    let s = |v: &str| MetaValue::String(v.to_string());
    w.set(tok::MODEL, s("gpt2"));
    w.set(tok::PRE, s("qwen35"));
    w.set(tok::TOKENS, MetaValue::Array(MetaArray::String(tokens)));
    w.set(tok::TOKEN_TYPE, MetaValue::Array(MetaArray::I32(types)));
    w.set(tok::MERGES, MetaValue::Array(MetaArray::String(merges)));
    w.set(tok::BOS_ID, MetaValue::U32(id("<|endoftext|>")));
    w.set(tok::EOS_ID, MetaValue::U32(id("<|im_end|>")));
    w.set(tok::PADDING_ID, MetaValue::U32(id("<|endoftext|>")));
    w.set(tok::ADD_BOS, MetaValue::Bool(false));
    w.set(tok::CHAT_TEMPLATE, s(template));
    Ok(())
}
