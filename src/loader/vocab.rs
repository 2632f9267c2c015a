//! Byte-level BPE vocabularies as GGUF tokenizer metadata: the 263-token byte vocabulary of
//! the tiny test models, and the real Qwen3.5 vocabulary from tiktoken ranks.
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
use crate::loader::gguf_writer::GgufWriter;
use crate::loader::names::tokenizer as tok;

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

/// GPT-2's byte-to-unicode map: printable bytes stand for themselves, the rest are shifted
/// to code points from U+0100 so that every token is a printable string.
pub fn byte_to_unicode() -> [char; 256] {
    let printable = |b: u32| {
        (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b)
    };
    let mut out = ['\0'; 256];
    let mut next = 256u32;
    for (b, slot) in out.iter_mut().enumerate() {
        let b = b as u32;
        let cp = if printable(b) {
            b
        } else {
            next += 1;
            next - 1
        };
        *slot = char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER);
    }
    out
}

/// llama.cpp token types (`enum llama_token_type`).
pub mod token_type {
    pub const NORMAL: i32 = 1;
    pub const CONTROL: i32 = 3;
    pub const USER_DEFINED: i32 = 4;
    pub const UNUSED: i32 = 5;
}

/// ChatML as the Qwen3.5 family renders a conversation, tools included: signatures in the
/// system turn, calls as `<tool_call><function=..><parameter=..>` elements, results as
/// `<tool_response>` blocks; with thinking off, the assistant's turn opens with an empty
/// reasoning block so the model answers directly. Synthetic models carry it.
pub const CHATML_TEMPLATE: &str = include_str!("templates/chatml_tools.jinja");

/// Bytes as a GPT-2 byte-level string (`" the"` becomes `"Ġthe"`).
pub fn byte_level(bytes: &[u8]) -> String {
    let map = byte_to_unicode();
    bytes.iter().map(|&b| map[b as usize]).collect()
}

/// A byte-level BPE vocabulary ready to be written: tokens in id order with their types,
/// merges, and the ids of the begin and end tokens.
struct BpeVocabulary {
    tokens: Vec<String>,
    types: Vec<i32>,
    merges: Vec<String>,
    bos: u32,
    eos: u32,
}

impl BpeVocabulary {
    /// Pads with unused `[PADn]` tokens up to `n_vocab` (the embedding table's rows) and
    /// writes every tokenizer key llama.cpp reads for a qwen35 model, with the ChatML template.
    fn write(mut self, w: &mut GgufWriter, n_vocab: u32) -> Result<(), Error> {
        if self.tokens.len() > n_vocab as usize {
            return Err(Error::InvalidArgument(format!(
                "a vocabulary of {n_vocab} ids cannot hold {} tokens",
                self.tokens.len()
            )));
        }
        let mut pad = 0;
        while self.tokens.len() < n_vocab as usize {
            self.tokens.push(format!("[PAD{pad}]"));
            self.types.push(token_type::UNUSED);
            pad += 1;
        }
        let s = |v: &str| MetaValue::String(v.to_string());
        w.set(tok::MODEL, s("gpt2"));
        w.set(tok::PRE, s("qwen35"));
        w.set(
            tok::TOKENS,
            MetaValue::Array(MetaArray::String(self.tokens)),
        );
        w.set(
            tok::TOKEN_TYPE,
            MetaValue::Array(MetaArray::I32(self.types)),
        );
        w.set(
            tok::MERGES,
            MetaValue::Array(MetaArray::String(self.merges)),
        );
        w.set(tok::BOS_ID, MetaValue::U32(self.bos));
        w.set(tok::EOS_ID, MetaValue::U32(self.eos));
        w.set(tok::PADDING_ID, MetaValue::U32(self.bos));
        w.set(tok::ADD_BOS, MetaValue::Bool(false));
        w.set(tok::CHAT_TEMPLATE, s(CHATML_TEMPLATE));
        Ok(())
    }
}

/// The minimal byte-level vocabulary llama.cpp accepts for a qwen35 model: ids 0..=255 are
/// the bytes, four merges (" t", "he", " the", two spaces), then `<|endoftext|>`,
/// `<|im_start|>`, `<|im_end|>` (263 ids), padded up to `n_vocab`.
pub fn write_byte_vocabulary(w: &mut GgufWriter, n_vocab: u32) -> Result<(), Error> {
    let b2u = byte_to_unicode();
    let sp = b2u[b' ' as usize];
    let mut tokens: Vec<String> = b2u.iter().map(|c| c.to_string()).collect();
    let merges = vec![
        format!("{sp} t"),
        "h e".to_string(),
        format!("{sp}t he"),
        format!("{sp} {sp}"),
    ];
    tokens.extend(merges.iter().map(|m| m.replace(' ', "")));
    let mut types = vec![token_type::NORMAL; tokens.len()];
    for special in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] {
        tokens.push(special.to_string());
        types.push(token_type::CONTROL);
    }
    let eos = tokens.len() as u32 - 1;
    BpeVocabulary {
        tokens,
        types,
        merges,
        bos: eos - 2,
        eos,
    }
    .write(w, n_vocab)
}

/// Writes the Qwen3.5 vocabulary as llama.cpp expects it: ranked tokens, the 33 specials
/// (`<|...|>` CONTROL, the others USER_DEFINED, always matched whole), merges, bos = pad =
/// `<|endoftext|>`, eos = `<|im_end|>`, padded up to `n_vocab` (248,320 for the releases).
pub fn write_qwen35_vocabulary(
    w: &mut GgufWriter,
    ranks: &[Vec<u8>],
    n_vocab: u32,
) -> Result<(), Error> {
    let n_ranked = ranks.len();
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
    let merges = merges_from_ranks(ranks)
        .into_iter()
        .map(|(l, r)| format!("{} {}", tokens[l], tokens[r]))
        .collect();
    // <|endoftext|> and <|im_end|> are the first and third specials.
    BpeVocabulary {
        tokens,
        types,
        merges,
        bos: n_ranked as u32,
        eos: n_ranked as u32 + 2,
    }
    .write(w, n_vocab)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_map_is_a_bijection_onto_printable_chars() {
        let map = byte_to_unicode();
        let mut seen: Vec<char> = map.to_vec();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 256);
        assert_eq!(map[b'A' as usize], 'A');
        assert_eq!(map[b' ' as usize], '\u{120}'); // 'Ġ'
        assert_eq!(map[b'\n' as usize], '\u{10A}'); // 'Ċ'
    }
}
