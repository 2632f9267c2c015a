//! The tokenizer and chat template a GGUF carries, built as a `tokenizers::Tokenizer`
//! (byte-level BPE from `tokenizer.ggml.tokens` / `merges`, the pre-tokenizer regex that
//! `tokenizer.ggml.pre` names, special tokens by `token_type`) and a minijinja template.
//!
//! Like llama.cpp (and unlike HF's tokenizer.json for Qwen) no Unicode normalisation is
//! applied: the same text gives llama.cpp's ids.

use std::collections::HashMap;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::error::TokenizerError;
use crate::loader::gguf::{GgufFile, MetaValue};
use crate::loader::names::tokenizer as key;
use crate::loader::vocab::token_type;

/// Qwen3.5's pre-tokenizer (`LLAMA_VOCAB_PRE_TYPE_QWEN35`): Qwen2's with `\p{M}` (combining
/// marks) kept inside words.
pub const QWEN35_PRE_REGEX: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen2 / Qwen3's pre-tokenizer.
pub const QWEN2_PRE_REGEX: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The regex of a `tokenizer.ggml.pre` name.
pub fn pre_tokenizer_regex(pre: &str) -> Option<&'static str> {
    match pre {
        "qwen35" => Some(QWEN35_PRE_REGEX),
        "qwen2" => Some(QWEN2_PRE_REGEX),
        _ => None,
    }
}

/// A GGUF's tokenizer: text to ids and back, and which ids end a turn.
pub struct GgufTokenizer {
    inner: Tokenizer,
    pub bos: Option<u32>,
    pub eos: u32,
    /// Ids that end generation: eos, eot and the turn-ending control tokens.
    pub end_of_generation: Vec<u32>,
    pub add_bos: bool,
    pub chat_template: Option<String>,
}

fn string_array<'a>(file: &'a GgufFile, k: &str) -> Result<&'a [String], TokenizerError> {
    let v = file
        .get(k)
        .ok_or_else(|| TokenizerError::MissingKey(k.to_string()))?;
    v.as_array()
        .and_then(|a| a.as_strings())
        .ok_or_else(|| TokenizerError::WrongType(k.to_string(), "a string array"))
}

fn token_id(file: &GgufFile, k: &str, n_vocab: usize) -> Result<Option<u32>, TokenizerError> {
    let Some(v) = file.get(k) else {
        return Ok(None);
    };
    match v.as_int() {
        Some(id) if (0..n_vocab as i128).contains(&id) => Ok(Some(id as u32)),
        _ => Err(TokenizerError::BadTokenId {
            key: k.to_string(),
            value: v.to_string(),
            n_vocab,
        }),
    }
}

impl GgufTokenizer {
    pub fn from_gguf(file: &GgufFile) -> Result<GgufTokenizer, TokenizerError> {
        let model = file
            .get(key::MODEL)
            .and_then(MetaValue::as_str)
            .ok_or_else(|| TokenizerError::MissingKey(key::MODEL.into()))?;
        if model != "gpt2" {
            return Err(TokenizerError::UnsupportedModel(model.to_string()));
        }
        let pre = file
            .get(key::PRE)
            .and_then(MetaValue::as_str)
            .unwrap_or("qwen2");
        let regex = pre_tokenizer_regex(pre)
            .ok_or_else(|| TokenizerError::UnsupportedPre(pre.to_string()))?;
        let tokens = string_array(file, key::TOKENS)?;
        let merges = string_array(file, key::MERGES)?;
        let types: Vec<i128> = match file.get(key::TOKEN_TYPE) {
            Some(v) => v.as_array().and_then(|a| a.to_ints()).ok_or_else(|| {
                TokenizerError::WrongType(key::TOKEN_TYPE.into(), "an integer array")
            })?,
            None => vec![token_type::NORMAL as i128; tokens.len()],
        };
        if types.len() != tokens.len() {
            return Err(TokenizerError::Inconsistent(format!(
                "{} tokens but {} token types",
                tokens.len(),
                types.len()
            )));
        }
        let inner = build(tokens, &types, merges, regex)?;
        let n = tokens.len();
        let eos = token_id(file, key::EOS_ID, n)?
            .ok_or_else(|| TokenizerError::MissingKey(key::EOS_ID.into()))?;
        let mut end_of_generation = vec![eos];
        if let Some(eot) = token_id(file, key::EOT_ID, n)? {
            end_of_generation.push(eot);
        }
        for (id, (t, &ty)) in tokens.iter().zip(&types).enumerate() {
            let ends_turn = matches!(t.as_str(), "<|im_end|>" | "<|endoftext|>");
            if ends_turn
                && ty == token_type::CONTROL as i128
                && !end_of_generation.contains(&(id as u32))
            {
                end_of_generation.push(id as u32);
            }
        }
        Ok(GgufTokenizer {
            inner,
            bos: token_id(file, key::BOS_ID, n)?,
            eos,
            end_of_generation,
            add_bos: file
                .get(key::ADD_BOS)
                .and_then(MetaValue::as_bool)
                .unwrap_or(false),
            chat_template: file
                .get(key::CHAT_TEMPLATE)
                .and_then(MetaValue::as_str)
                .map(str::to_string),
        })
    }

    /// Token ids of `text`; special tokens written in the text (`<|im_start|>`) are parsed
    /// as such, as llama.cpp does for prompts rendered from a chat template.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| TokenizerError::Encode(e.to_string()))?;
        let mut ids = enc.get_ids().to_vec();
        if let (true, Some(bos)) = (self.add_bos, self.bos) {
            ids.insert(0, bos);
        }
        Ok(ids)
    }

    /// The text of `ids`, special tokens included.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.inner
            .decode(ids, false)
            .map_err(|e| TokenizerError::Encode(e.to_string()))
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The bytes a token stands for (its byte-level form mapped back; a token may hold part
    /// of a UTF-8 character); empty for an id outside the vocabulary.
    pub fn token_bytes(&self, id: u32) -> Vec<u8> {
        let Some(piece) = self.inner.id_to_token(id) else {
            return Vec::new();
        };
        let map = crate::loader::vocab::byte_to_unicode();
        let mut bytes = Vec::new();
        for c in piece.chars() {
            match map.iter().position(|&m| m == c) {
                Some(b) => bytes.push(b as u8),
                None => bytes.extend(c.to_string().as_bytes()),
            }
        }
        bytes
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn is_end_of_generation(&self, id: u32) -> bool {
        self.end_of_generation.contains(&id)
    }
}

fn build(
    tokens: &[String],
    types: &[i128],
    merges: &[String],
    regex: &str,
) -> Result<Tokenizer, TokenizerError> {
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(id, t)| (t.clone(), id as u32))
        .collect();
    if vocab.len() != tokens.len() {
        return Err(TokenizerError::Inconsistent(
            "the token list holds duplicate strings".into(),
        ));
    }
    let pairs = merges
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let (a, b) = m.split_once(' ').ok_or_else(|| TokenizerError::BadMerge {
                index: i,
                merge: m.clone(),
            })?;
            if !vocab.contains_key(a) || !vocab.contains_key(b) {
                return Err(TokenizerError::BadMerge {
                    index: i,
                    merge: m.clone(),
                });
            }
            Ok((a.to_string(), b.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, pairs)
        .build()
        .map_err(|e| TokenizerError::Build(e.to_string()))?;
    let mut tk = Tokenizer::new(bpe);
    let split = Split::new(
        SplitPattern::Regex(regex.to_string()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(|e| TokenizerError::Build(format!("pre-tokenizer regex: {e}")))?;
    tk.with_pre_tokenizer(Some(Sequence::new(vec![
        PreTokenizerWrapper::Split(split),
        PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, false, false)),
    ])));
    tk.with_decoder(Some(ByteLevelDecoder::default()));
    let added: Vec<AddedToken> = tokens
        .iter()
        .zip(types)
        .filter_map(|(t, &ty)| match ty as i32 {
            token_type::CONTROL => Some(AddedToken::from(t.clone(), true)),
            token_type::USER_DEFINED => Some(AddedToken::from(t.clone(), false).normalized(false)),
            _ => None,
        })
        .collect();
    let specials: Vec<AddedToken> = added.iter().filter(|t| t.special).cloned().collect();
    let user: Vec<AddedToken> = added.into_iter().filter(|t| !t.special).collect();
    tk.add_special_tokens(&specials);
    tk.add_tokens(&user);
    Ok(tk)
}

/// One turn of a conversation, with the fields chat templates read besides role and
/// content: an assistant turn's reasoning and tool calls, a tool turn's call id and name.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<TemplateToolCall>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ChatMessage {
    pub fn new(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.to_string(),
            content: content.to_string(),
            ..ChatMessage::default()
        }
    }
}

/// A tool call of an assistant turn as templates read it (OpenAI's shape, with the
/// arguments as an object: Qwen's templates iterate over them).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TemplateToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: TemplateFunction,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TemplateFunction {
    pub name: String,
    pub arguments: serde_json::Value,
}

/// Python's `json.dumps` (what Hugging Face's `tojson` calls): `", "` and `": "` between
/// items, non-ASCII kept, `indent` spaces when asked. minijinja's own filter writes compact
/// JSON with HTML escapes, which would give other tokens than the template's authors saw.
fn python_json(value: &serde_json::Value, indent: Option<usize>, depth: usize, out: &mut String) {
    use serde_json::Value;
    let newline = |out: &mut String, depth: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * depth));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    match value {
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                python_json(v, indent, depth + 1, out);
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                python_json(v, indent, depth + 1, out);
            }
            newline(out, depth);
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn tojson(
    value: minijinja::Value,
    kwargs: minijinja::value::Kwargs,
) -> Result<minijinja::Value, minijinja::Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    kwargs.assert_all_used()?;
    let json = serde_json::to_value(&value).map_err(|e| {
        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
    })?;
    let mut out = String::new();
    python_json(&json, indent, 0, &mut out);
    Ok(minijinja::Value::from_safe_string(out))
}

/// A chat template (Jinja, as `tokenizer.chat_template` holds it) rendered with minijinja
/// and Python-compatible string methods (Qwen's templates call `.startswith`, `.split` ...).
pub struct ChatTemplate {
    env: minijinja::Environment<'static>,
}

impl ChatTemplate {
    pub fn new(source: &str) -> Result<ChatTemplate, TokenizerError> {
        let mut env = minijinja::Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        env.add_filter("tojson", tojson);
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| TokenizerError::Template(e.to_string()))?;
        Ok(ChatTemplate { env })
    }

    /// The template `tokenizer`'s GGUF carries, or ChatML with tools when it has none.
    pub fn of_tokenizer(tokenizer: &GgufTokenizer) -> Result<ChatTemplate, TokenizerError> {
        let source = tokenizer.chat_template.as_deref();
        ChatTemplate::new(source.unwrap_or(crate::loader::vocab::CHATML_TEMPLATE))
    }

    /// The prompt for `messages`; `add_generation_prompt` opens the assistant's turn;
    /// `enable_thinking` (Qwen3.5) chooses whether the reply starts with a reasoning block.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
        enable_thinking: bool,
    ) -> Result<String, TokenizerError> {
        self.render_with_tools(messages, &[], add_generation_prompt, enable_thinking)
    }

    /// [`ChatTemplate::render`] offering `tools` (OpenAI's `{"type": "function", "function":
    /// {..}}` objects, as templates expect them); none offered when empty.
    pub fn render_with_tools(
        &self,
        messages: &[ChatMessage],
        tools: &[serde_json::Value],
        add_generation_prompt: bool,
        enable_thinking: bool,
    ) -> Result<String, TokenizerError> {
        let template = self
            .env
            .get_template("chat")
            .map_err(|e| TokenizerError::Template(e.to_string()))?;
        let mut ctx: HashMap<&str, minijinja::Value> = HashMap::from([
            ("messages", minijinja::Value::from_serialize(messages)),
            ("add_generation_prompt", add_generation_prompt.into()),
            ("enable_thinking", enable_thinking.into()),
        ]);
        if !tools.is_empty() {
            ctx.insert("tools", minijinja::Value::from_serialize(tools));
        }
        template
            .render(ctx)
            .map_err(|e| TokenizerError::Template(e.to_string()))
    }
}
