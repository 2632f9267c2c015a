//! OpenAI's chat-completions and completions requests: the body read with the failing
//! field named, checked, and turned into the prompt's tokens and a [`Job`]'s settings.

use serde::Deserialize;
use serde_json::Value;

use crate::chat_output::ToolSpec;
use crate::loader::tokenizer::{
    ChatMessage, ChatTemplate, GgufTokenizer, TemplateFunction, TemplateToolCall,
};
use crate::runtime::ops::sample::MAX_TOP_K;
use crate::runtime::Sampling;
use crate::serve::error::ApiError;
use crate::serve::job::OutputForm;

/// Most stop strings a request may give.
pub const MAX_STOPS: usize = 16;
/// Most alternatives `top_logprobs` may ask for (OpenAI's limit).
pub const MAX_TOP_LOGPROBS: u32 = 20;

/// The body of `/v1/chat/completions` and `/v1/completions` (the fields either reads;
/// fields this server does not know are ignored, as OpenAI's own server does).
#[derive(Debug, Default, Deserialize)]
pub struct RequestBody {
    pub model: Option<String>,
    pub messages: Option<Vec<MessageIn>>,
    pub prompt: Option<PromptIn>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<u32>,
    pub min_p: Option<f32>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    #[serde(alias = "repeat_penalty")]
    pub repetition_penalty: Option<f32>,
    /// The recent tokens the penalties cover (llama.cpp's name).
    pub repeat_last_n: Option<u32>,
    pub seed: Option<i64>,
    pub stop: Option<StopIn>,
    pub n: Option<u32>,
    pub tools: Option<Vec<ToolIn>>,
    pub tool_choice: Option<Value>,
    pub response_format: Option<Value>,
    pub chat_template_kwargs: Option<serde_json::Map<String, Value>>,
    pub logprobs: Option<Value>,
    pub top_logprobs: Option<u32>,
    pub echo: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    pub include_usage: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum StopIn {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum PromptIn {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
}

#[derive(Debug, Deserialize)]
pub struct MessageIn {
    pub role: String,
    pub content: Option<ContentIn>,
    pub reasoning_content: Option<String>,
    pub tool_calls: Option<Vec<ToolCallIn>>,
    pub tool_call_id: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ContentIn {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ToolCallIn {
    pub id: Option<String>,
    pub function: FunctionCallIn,
}

#[derive(Debug, Deserialize)]
pub struct FunctionCallIn {
    pub name: String,
    /// A JSON object as a string (OpenAI's form), or the object itself.
    pub arguments: Value,
}

#[derive(Debug, Deserialize)]
pub struct ToolIn {
    #[serde(rename = "type")]
    pub kind: String,
    pub function: FunctionDef,
}

#[derive(Debug, Deserialize, serde::Serialize)]
pub struct FunctionDef {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
}

/// Reads a body, naming the field that does not fit (`messages[1].content: invalid type`).
pub fn parse_body(bytes: &[u8]) -> Result<RequestBody, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            ApiError::bad_request(None, format!("the body is not a valid request: {inner}"))
        } else {
            ApiError::bad_request(Some(&path), format!("{path}: {inner}"))
        }
    })
}

/// What the model and its session allow a request.
pub struct Limits {
    pub context: u32,
    pub model_id: String,
}

/// A request checked and tokenized, ready to become a job.
#[derive(Debug)]
pub struct Prepared {
    pub prompt: Vec<u32>,
    pub max_tokens: u32,
    pub sampling: Sampling,
    pub seed: Option<u64>,
    pub stops: Vec<String>,
    pub form: OutputForm,
    pub stream: bool,
    pub include_usage: bool,
    /// Each generated token's log probability and this many alternatives, when asked.
    pub logprobs: Option<u32>,
}

/// Which endpoint a body came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completion,
}

/// Checks every field of `body` and renders its prompt.
pub fn prepare(
    body: RequestBody,
    endpoint: Endpoint,
    tokenizer: &GgufTokenizer,
    template: &ChatTemplate,
    limits: &Limits,
) -> Result<Prepared, ApiError> {
    check_common(&body, limits)?;
    let logprobs = logprobs(&body, endpoint)?;
    let sampling = sampling(&body)?;
    let stops = match &body.stop {
        None => Vec::new(),
        Some(StopIn::One(s)) => vec![s.clone()],
        Some(StopIn::Many(v)) => v.clone(),
    };
    if stops.len() > MAX_STOPS {
        return Err(ApiError::bad_request(
            Some("stop"),
            format!("stop: {} strings, at most {MAX_STOPS}", stops.len()),
        ));
    }
    let encode = |text: &str| {
        tokenizer
            .encode(text)
            .map_err(|e| ApiError::bad_request(None, format!("tokenizing the prompt: {e}")))
    };
    let (prompt, form) = match endpoint {
        Endpoint::Chat => {
            let (text, form) = chat_prompt(&body, template)?;
            (encode(&text)?, form)
        }
        Endpoint::Completion => {
            let prompt = match completion_prompt(&body, tokenizer)? {
                CompletionPrompt::Text(text) => encode(text)?,
                CompletionPrompt::Tokens(ids) => ids.to_vec(),
            };
            (prompt, OutputForm::Text)
        }
    };
    let max_tokens = max_tokens(&body, prompt.len(), limits)?;
    Ok(Prepared {
        prompt,
        max_tokens,
        sampling,
        seed: body.seed.map(|s| s as u64),
        stops,
        form,
        stream: body.stream.unwrap_or(false),
        include_usage: body
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        logprobs,
    })
}

fn check_common(body: &RequestBody, limits: &Limits) -> Result<(), ApiError> {
    if let Some(model) = &body.model {
        if model != &limits.model_id {
            return Err(ApiError::bad_request(
                Some("model"),
                format!(
                    "model: '{model}' is not served here; this server runs '{}'",
                    limits.model_id
                ),
            )
            .with_code("model_not_found"));
        }
    }
    if body.n.is_some_and(|n| n != 1) {
        return Err(ApiError::bad_request(
            Some("n"),
            "n: only one choice a request is supported (n = 1)".into(),
        ));
    }
    if body.echo == Some(true) {
        return Err(ApiError::bad_request(
            Some("echo"),
            "echo: returning the prompt with the completion is not supported".into(),
        ));
    }
    match body
        .response_format
        .as_ref()
        .and_then(|f| f.get("type"))
        .and_then(Value::as_str)
    {
        None | Some("text") => Ok(()),
        Some(other) => Err(ApiError::bad_request(
            Some("response_format"),
            format!(
                "response_format: '{other}' is not supported (no constrained decoding yet); \
                 only 'text'"
            ),
        )),
    }
}

/// The alternatives a request wants with each token's log probability: chat's `logprobs:
/// true` with `top_logprobs: n`, or the completions endpoint's `logprobs: n`.
fn logprobs(body: &RequestBody, endpoint: Endpoint) -> Result<Option<u32>, ApiError> {
    let bad = |what: &str| ApiError::bad_request(Some("logprobs"), format!("logprobs: {what}"));
    let top = match (endpoint, &body.logprobs) {
        (_, None | Some(Value::Null) | Some(Value::Bool(false))) => None,
        (Endpoint::Chat, Some(Value::Bool(true))) => Some(body.top_logprobs.unwrap_or(0)),
        (Endpoint::Completion, Some(Value::Number(n))) => Some(
            n.as_u64()
                .ok_or_else(|| bad("expected a count of alternatives"))? as u32,
        ),
        (Endpoint::Chat, Some(_)) => return Err(bad("expected a boolean")),
        (Endpoint::Completion, Some(_)) => return Err(bad("expected a count of alternatives")),
    };
    if body.top_logprobs.is_some() && top.is_none() && endpoint == Endpoint::Chat {
        return Err(ApiError::bad_request(
            Some("top_logprobs"),
            "top_logprobs: needs logprobs: true".into(),
        ));
    }
    match top {
        Some(n) if n > MAX_TOP_LOGPROBS => Err(ApiError::bad_request(
            Some("top_logprobs"),
            format!("top_logprobs: {n}, at most {MAX_TOP_LOGPROBS}"),
        )),
        other => Ok(other),
    }
}

fn sampling(body: &RequestBody) -> Result<Sampling, ApiError> {
    if body.top_k.is_some_and(|k| k > MAX_TOP_K) {
        return Err(ApiError::bad_request(
            Some("top_k"),
            format!(
                "top_k: {} is over the sampler's {MAX_TOP_K} candidates",
                body.top_k.unwrap_or_default()
            ),
        ));
    }
    let base = Sampling::default();
    let sampling = Sampling {
        temperature: body.temperature.unwrap_or(base.temperature),
        top_k: body.top_k.unwrap_or(base.top_k),
        top_p: body.top_p.unwrap_or(base.top_p),
        min_p: body.min_p.unwrap_or(base.min_p),
        repeat_penalty: body.repetition_penalty.unwrap_or(base.repeat_penalty),
        presence_penalty: body.presence_penalty.unwrap_or(base.presence_penalty),
        frequency_penalty: body.frequency_penalty.unwrap_or(base.frequency_penalty),
        repeat_last_n: body.repeat_last_n.unwrap_or(base.repeat_last_n),
    };
    sampling
        .validate()
        .map_err(|e| ApiError::bad_request(None, e.to_string()))?;
    Ok(sampling)
}

fn max_tokens(body: &RequestBody, prompt: usize, limits: &Limits) -> Result<u32, ApiError> {
    let context = limits.context as usize;
    if prompt == 0 {
        return Err(ApiError::bad_request(
            Some("prompt"),
            "the prompt is empty".into(),
        ));
    }
    if prompt >= context {
        return Err(ApiError::bad_request(
            Some("messages"),
            format!(
                "the prompt is {prompt} tokens; the context holds {context}, leaving no room \
                 for a reply"
            ),
        )
        .with_code("context_length_exceeded"));
    }
    let (name, asked) = match (body.max_completion_tokens, body.max_tokens) {
        (Some(n), _) => ("max_completion_tokens", Some(n)),
        (None, Some(n)) => ("max_tokens", Some(n)),
        (None, None) => ("max_tokens", None),
    };
    match asked {
        Some(0) => Err(ApiError::bad_request(
            Some(name),
            format!("{name}: must be at least 1"),
        )),
        Some(n) if prompt + n as usize > context => Err(ApiError::bad_request(
            Some(name),
            format!(
                "the prompt is {prompt} tokens and {name} {n}: {} is over the context of \
                 {context} tokens",
                prompt + n as usize
            ),
        )
        .with_code("context_length_exceeded")),
        Some(n) => Ok(n),
        None => Ok((context - prompt) as u32),
    }
}

/// A completion's prompt as given.
enum CompletionPrompt<'b> {
    Text(&'b str),
    /// Token ids, checked against the vocabulary.
    Tokens(&'b [u32]),
}

fn completion_prompt<'b>(
    body: &'b RequestBody,
    tokenizer: &GgufTokenizer,
) -> Result<CompletionPrompt<'b>, ApiError> {
    match &body.prompt {
        Some(PromptIn::Text(t)) => Ok(CompletionPrompt::Text(t)),
        Some(PromptIn::Texts(v)) if v.len() == 1 => Ok(CompletionPrompt::Text(&v[0])),
        Some(PromptIn::Texts(v)) => Err(ApiError::bad_request(
            Some("prompt"),
            format!(
                "prompt: {} prompts given, one a request is supported",
                v.len()
            ),
        )),
        Some(PromptIn::Tokens(ids)) => {
            let n_vocab = tokenizer.vocab_size();
            match ids.iter().find(|&&t| t as usize >= n_vocab) {
                Some(t) => Err(ApiError::bad_request(
                    Some("prompt"),
                    format!("prompt: token {t} is outside the vocabulary of {n_vocab}"),
                )),
                None => Ok(CompletionPrompt::Tokens(ids)),
            }
        }
        None => Err(ApiError::bad_request(
            Some("prompt"),
            "prompt: missing".into(),
        )),
    }
}

/// How the request wants tools used.
enum Choice {
    None,
    Auto,
    Required,
    Named(String),
}

fn tool_choice(body: &RequestBody, tools: &[ToolSpec]) -> Result<Choice, ApiError> {
    let bad = |what: String| ApiError::bad_request(Some("tool_choice"), what);
    let choice = match &body.tool_choice {
        None => {
            if tools.is_empty() {
                Choice::None
            } else {
                Choice::Auto
            }
        }
        Some(Value::String(s)) => match s.as_str() {
            "none" => Choice::None,
            "auto" => Choice::Auto,
            "required" => Choice::Required,
            other => {
                return Err(bad(format!(
                    "tool_choice: '{other}' is not one of none, auto, required"
                )))
            }
        },
        Some(v) => match v.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => Choice::Named(name.to_string()),
            None => {
                return Err(bad(
                    "tool_choice: an object must name a function ({\"type\": \"function\", \
                     \"function\": {\"name\": ..}})"
                        .into(),
                ))
            }
        },
    };
    let needs_tools = matches!(choice, Choice::Required | Choice::Named(_));
    if needs_tools && tools.is_empty() {
        return Err(bad(
            "tool_choice: asks for a call but no tools are given".into()
        ));
    }
    if let Choice::Named(name) = &choice {
        if !tools.iter().any(|t| &t.name == name) {
            return Err(bad(format!("tool_choice: no tool named '{name}' is given")));
        }
    }
    Ok(choice)
}

fn chat_prompt(
    body: &RequestBody,
    template: &ChatTemplate,
) -> Result<(String, OutputForm), ApiError> {
    let messages_in = body
        .messages
        .as_ref()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(Some("messages"), "messages: missing or empty".into())
        })?;
    let messages = messages_in
        .iter()
        .enumerate()
        .map(|(i, m)| message(i, m))
        .collect::<Result<Vec<_>, _>>()?;
    let mut specs = Vec::new();
    let mut tool_values = Vec::new();
    for (i, tool) in body.tools.iter().flatten().enumerate() {
        if tool.kind != "function" {
            return Err(ApiError::bad_request(
                Some(&format!("tools[{i}].type")),
                format!("tools[{i}].type: '{}' is not 'function'", tool.kind),
            ));
        }
        specs.push(ToolSpec {
            name: tool.function.name.clone(),
            parameters: tool.function.parameters.clone().unwrap_or(Value::Null),
        });
        tool_values.push(serde_json::json!({"type": "function", "function": tool.function}));
    }
    let choice = tool_choice(body, &specs)?;
    let mut thinking = body
        .chat_template_kwargs
        .as_ref()
        .and_then(|k| k.get("enable_thinking"))
        .map(|v| {
            v.as_bool().ok_or_else(|| {
                ApiError::bad_request(
                    Some("chat_template_kwargs.enable_thinking"),
                    "chat_template_kwargs.enable_thinking: expected a boolean".into(),
                )
            })
        })
        .transpose()?
        .unwrap_or(true);
    let forced = match &choice {
        Choice::Required => "<tool_call>\n".to_string(),
        Choice::Named(name) => format!("<tool_call>\n<function={name}>\n"),
        Choice::None | Choice::Auto => String::new(),
    };
    if !forced.is_empty() {
        // The call is opened in the prompt, so there is no room for reasoning first.
        thinking = false;
    }
    let offered: &[Value] = match choice {
        Choice::None => &[],
        _ => &tool_values,
    };
    let mut text = template
        .render_with_tools(&messages, offered, true, thinking)
        .map_err(|e| ApiError::bad_request(Some("messages"), format!("the chat template: {e}")))?;
    let thinking_opened = text.trim_end().ends_with("<think>");
    text.push_str(&forced);
    let tools = (!offered.is_empty()).then_some(specs);
    Ok((
        text,
        OutputForm::Chat {
            thinking_opened,
            tools,
            forced,
        },
    ))
}

fn message(i: usize, m: &MessageIn) -> Result<ChatMessage, ApiError> {
    let field = |f: &str| format!("messages[{i}].{f}");
    if !matches!(
        m.role.as_str(),
        "system" | "developer" | "user" | "assistant" | "tool"
    ) {
        return Err(ApiError::bad_request(
            Some(&field("role")),
            format!(
                "{}: '{}' is not one of system, developer, user, assistant, tool",
                field("role"),
                m.role
            ),
        ));
    }
    let content = match &m.content {
        None => String::new(),
        Some(ContentIn::Text(t)) => t.clone(),
        Some(ContentIn::Parts(parts)) => {
            let mut text = String::new();
            for (j, p) in parts.iter().enumerate() {
                match (p.kind.as_str(), &p.text) {
                    ("text", Some(t)) => text.push_str(t),
                    (kind, _) => {
                        let f = field(&format!("content[{j}]"));
                        return Err(ApiError::bad_request(
                            Some(&f),
                            format!("{f}: '{kind}' parts are not supported (text only)"),
                        ));
                    }
                }
            }
            text
        }
    };
    if m.content.is_none() && m.tool_calls.is_none() {
        return Err(ApiError::bad_request(
            Some(&field("content")),
            format!("{}: missing", field("content")),
        ));
    }
    let mut tool_calls = Vec::new();
    for (j, call) in m.tool_calls.iter().flatten().enumerate() {
        let f = field(&format!("tool_calls[{j}].function.arguments"));
        let arguments = match &call.function.arguments {
            Value::String(s) => serde_json::from_str::<Value>(s)
                .map_err(|e| ApiError::bad_request(Some(&f), format!("{f}: not JSON ({e})")))?,
            other => other.clone(),
        };
        if !arguments.is_object() {
            return Err(ApiError::bad_request(
                Some(&f),
                format!("{f}: must be a JSON object"),
            ));
        }
        tool_calls.push(TemplateToolCall {
            id: call.id.clone().unwrap_or_else(|| format!("call_{i}_{j}")),
            kind: "function",
            function: TemplateFunction {
                name: call.function.name.clone(),
                arguments,
            },
        });
    }
    let role = if m.role == "developer" {
        "system"
    } else {
        &m.role
    };
    Ok(ChatMessage {
        role: role.to_string(),
        content,
        reasoning_content: m.reasoning_content.clone(),
        tool_calls,
        tool_call_id: m.tool_call_id.clone(),
        name: m.name.clone(),
    })
}
