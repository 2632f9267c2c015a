//! Generation and conversations on a [`Session`]: streaming text out of sampled tokens, and
//! multi-turn chat that keeps the KV cache and recurrent state across turns so each turn
//! prefills only its new tokens.

use std::time::Instant;

use crate::error::Error;
use crate::loader::tokenizer::{ChatMessage, ChatTemplate, GgufTokenizer};
use crate::runtime::Session;

/// Why a reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The model emitted an end token (not printed).
    EndToken,
    /// The token limit.
    Limit,
    ContextFull,
    Interrupted,
}

/// One reply and how fast it came.
pub struct Reply {
    pub text: String,
    /// Generated tokens, the end token included when there was one.
    pub tokens: Vec<u32>,
    pub end: End,
    /// The last sampled token when it was not fed to the model (the next turn feeds it).
    pub pending: Option<u32>,
    pub prompt_tokens: usize,
    pub prompt_seconds: f64,
    pub decode_tokens: usize,
    pub decode_seconds: f64,
}

impl Reply {
    pub fn speeds(&self) -> String {
        let rate = |n: usize, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
        format!(
            "prompt {} tokens in {:.2} s ({:.2} tok/s), generated {} tokens in {:.2} s ({:.2} tok/s)",
            self.prompt_tokens,
            self.prompt_seconds,
            rate(self.prompt_tokens, self.prompt_seconds),
            self.decode_tokens,
            self.decode_seconds,
            rate(self.decode_tokens, self.decode_seconds)
        )
    }
}

/// Decodes tokens to text as they come, holding back bytes of an unfinished UTF-8
/// character (a token can end in the middle of one).
#[derive(Default)]
pub struct TextStream {
    pending: Vec<u32>,
}

impl TextStream {
    pub fn push(&mut self, tokenizer: &GgufTokenizer, token: u32) -> Result<String, Error> {
        self.pending.push(token);
        let text = tokenizer.decode(&self.pending)?;
        if text.ends_with('\u{FFFD}') && self.pending.len() < 8 {
            return Ok(String::new());
        }
        self.pending.clear();
        Ok(text)
    }
}

/// What the caller says after each piece of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Prefills `prompt`, then samples and hands each piece of text to `on_text` until an end
/// token, `limit` tokens, the end of the context or `on_text` says stop.
///
/// The steps are pipelined ([`Session::decode_ahead`]): the step feeding a token is on the
/// GPU while the host streams it. When the reply ends at a token it could not foresee (an
/// end token, a stop from `on_text`) that token has been fed and `pending` is `None`; when
/// it ends at a token it could (the limit, a full context) no step feeds it and it is
/// `pending`, as in the unpipelined loop.
pub fn generate(
    session: &mut Session,
    tokenizer: &GgufTokenizer,
    prompt: &[u32],
    limit: Option<usize>,
    on_text: &mut dyn FnMut(&str) -> Result<Flow, Error>,
) -> Result<Reply, Error> {
    let start = Instant::now();
    session.prefill(prompt)?;
    session.sample_ahead()?;
    let reply = stream_ahead(session, tokenizer, prompt.len(), start, limit, on_text);
    // A stop the loop did not foresee leaves a draw in flight (and an error may too).
    session.discard_ahead();
    reply
}

/// The loop of [`generate`] after the first draw was submitted.
fn stream_ahead(
    session: &mut Session,
    tokenizer: &GgufTokenizer,
    prompt_tokens: usize,
    start: Instant,
    limit: Option<usize>,
    on_text: &mut dyn FnMut(&str) -> Result<Flow, Error>,
) -> Result<Reply, Error> {
    let mut stream = TextStream::default();
    let mut reply = Reply {
        text: String::new(),
        tokens: Vec::new(),
        end: End::Limit,
        pending: None,
        prompt_tokens,
        prompt_seconds: 0.0,
        decode_tokens: 0,
        decode_seconds: 0.0,
    };
    let capacity = session.options.context;
    let mut decode_start = start;
    loop {
        // The token about to be read is the last whatever it is: do not feed it.
        let last =
            limit.is_some_and(|l| reply.tokens.len() + 1 >= l) || session.position() >= capacity;
        let token = if last {
            session.read_ahead()?
        } else {
            session.decode_ahead()?
        };
        if reply.tokens.is_empty() {
            reply.prompt_seconds = start.elapsed().as_secs_f64();
            decode_start = Instant::now();
        } else {
            reply.decode_tokens += 1;
        }
        reply.tokens.push(token);
        reply.pending = last.then_some(token);
        reply.decode_seconds = decode_start.elapsed().as_secs_f64();
        if tokenizer.is_end_of_generation(token) {
            reply.end = End::EndToken;
            break;
        }
        let piece = stream.push(tokenizer, token)?;
        reply.text.push_str(&piece);
        let flow = on_text(&piece)?;
        if limit.is_some_and(|l| reply.tokens.len() >= l) {
            reply.end = End::Limit;
            break;
        }
        if session.position() >= capacity && last {
            reply.end = End::ContextFull;
            reply.pending = None;
            break;
        }
        if flow == Flow::Stop {
            reply.end = End::Interrupted;
            break;
        }
    }
    Ok(reply)
}

/// `tokens` with the model's BOS in front when its tokenizer asks for one.
pub fn with_bos(tokenizer: &GgufTokenizer, mut tokens: Vec<u32>) -> Vec<u32> {
    if let (true, Some(bos)) = (tokenizer.add_bos, tokenizer.bos) {
        tokens.insert(0, bos);
    }
    tokens
}

/// A conversation on one session. A new turn is prefilled alone: the model already holds
/// everything up to its last reply, so it is fed the rest of that reply's turn as the
/// template closes it, then the template's rendering of the new user turn (the difference
/// between the conversation rendered with and without it, as llama-cli does).
pub struct Conversation {
    pub messages: Vec<ChatMessage>,
    /// The last sampled token, fed at the start of the next turn.
    pending: Option<u32>,
    /// The text of the end token the last reply stopped on (already fed, or `pending`).
    ended_with: Option<String>,
    pub think: bool,
    /// The last reply, for its speeds.
    pub last: Option<Reply>,
}

impl Conversation {
    pub fn new(system: Option<&str>, think: bool) -> Conversation {
        Conversation {
            messages: system
                .map(|s| vec![ChatMessage::new("system", s)])
                .unwrap_or_default(),
            pending: None,
            ended_with: None,
            think,
            last: None,
        }
    }

    /// Forgets everything but the system message.
    pub fn reset(&mut self, session: &mut Session) {
        self.messages.retain(|m| m.role == "system");
        self.pending = None;
        self.ended_with = None;
        self.last = None;
        session.reset();
    }

    /// What closes the last reply's turn in `rendered` (the conversation so far, without a
    /// generation prompt) and has not been fed: `None` when the reply cannot be found there.
    fn turn_tail<'a>(&self, rendered: &'a str) -> Option<&'a str> {
        let reply = self.messages.last().filter(|m| m.role == "assistant")?;
        let content = reply.content.as_str();
        if content.is_empty() {
            return None;
        }
        let rest = &rendered[rendered.rfind(content)? + content.len()..];
        Some(match &self.ended_with {
            Some(end) => rest.strip_prefix(end.as_str()).unwrap_or(rest),
            None => rest,
        })
    }

    /// The tokens to feed for `user`'s turn: only the new turn when the model holds the
    /// conversation so far, else (first turn, or a history the template no longer renders
    /// as a prefix) the whole conversation after a reset.
    pub fn turn_tokens(
        &mut self,
        session: &mut Session,
        tokenizer: &GgufTokenizer,
        template: &ChatTemplate,
        user: &str,
    ) -> Result<Vec<u32>, Error> {
        let before = template.render(&self.messages, false, self.think)?;
        let tail = self.turn_tail(&before);
        self.messages.push(ChatMessage::new("user", user));
        let full = template.render(&self.messages, true, self.think)?;
        let incremental = if session.position() > 0 {
            full.strip_prefix(before.as_str()).zip(tail)
        } else {
            None
        };
        let tokens = match incremental {
            Some((turn, tail)) => {
                let mut t: Vec<u32> = self.pending.take().into_iter().collect();
                t.extend(tokenizer.encode(&format!("{tail}{turn}"))?);
                t
            }
            None => {
                if session.position() > 0 {
                    log::info!(
                        "the template rewrote the history (prefix kept: {}, reply found: {}): \
                         prefilling it again",
                        full.starts_with(before.as_str()),
                        tail.is_some()
                    );
                }
                session.reset();
                self.pending = None;
                with_bos(tokenizer, tokenizer.encode(&full)?)
            }
        };
        self.ended_with = None;
        Ok(tokens)
    }

    /// Adds the model's reply to the history.
    pub fn record(&mut self, tokenizer: &GgufTokenizer, reply: Reply) -> Result<(), Error> {
        // The end token is in the session (fed, or pending to be fed first), so the next
        // turn's text must not bring it again.
        self.ended_with = match (reply.end, reply.tokens.last()) {
            (End::EndToken, Some(&t)) => Some(tokenizer.decode(&[t])?),
            _ => None,
        };
        self.pending = reply.pending;
        self.messages
            .push(ChatMessage::new("assistant", reply.text.trim()));
        self.last = Some(reply);
        Ok(())
    }
}
