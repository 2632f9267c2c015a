//! What the HTTP side hands the engine (a [`Job`]: tokens and how to answer) and what comes
//! back, token by token ([`Event`]s on the job's own channel).

use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;

use crate::chat_output::{ToolCall, ToolSpec};
use crate::runtime::Sampling;
use crate::serve::engine::Ticket;

/// How a reply's text is read.
#[derive(Debug, Clone)]
pub enum OutputForm {
    /// A chat reply: reasoning and tool calls split from the content.
    Chat {
        /// The prompt ends inside an opened `<think>` block.
        thinking_opened: bool,
        /// The tools offered (their schemas type the arguments); `None` when calls are not
        /// parsed (no tools, or `tool_choice: none`).
        tools: Option<Vec<ToolSpec>>,
        /// Text the prompt already holds of the reply (a forced call's opening), read by the
        /// parser first and never sent.
        forced: String,
    },
    /// A raw completion: text only.
    Text,
}

/// One request for the engine.
pub struct Job {
    /// Request number, for logs.
    pub id: u64,
    pub prompt: Vec<u32>,
    /// Most tokens to generate (already within the context).
    pub max_tokens: u32,
    pub sampling: Sampling,
    pub seed: u64,
    pub stops: Vec<String>,
    pub form: OutputForm,
    /// Report each token's log probability with this many alternatives.
    pub logprobs: Option<u32>,
    pub events: UnboundedSender<Event>,
    pub received: Instant,
    /// Holds the job's place in the engine's limit until the job is dropped.
    pub ticket: Ticket,
}

/// Why a reply ended, in OpenAI's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
}

impl FinishReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
        }
    }
}

/// Tokens a request used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u32,
    /// Prompt tokens not prefilled: resumed from a cached sequence.
    pub cached_tokens: u32,
    pub completion_tokens: u32,
}

/// A token's text as bytes (a token may hold part of a UTF-8 character) and its log
/// probability under the distribution it was drawn from.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    pub bytes: Vec<u8>,
    pub logprob: f32,
}

/// A generated token's log probability, and the most likely tokens at its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Logprobs {
    pub token: TokenLogprob,
    pub top: Vec<TokenLogprob>,
}

/// What the engine reports on a job's channel, in order: `Started`, pieces (with each
/// token's `Logprobs` before its text, when asked), then `Done` or `Failed` (a job may also
/// fail before it starts).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Started { cached_tokens: u32 },
    Logprobs(Logprobs),
    Reasoning(String),
    Content(String),
    ToolCall(ToolCall),
    Done { finish: FinishReason, usage: Usage },
    Failed { status: u16, message: String },
}
