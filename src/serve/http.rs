//! The HTTP side: axum routes for OpenAI's API, each request checked, tokenized and handed
//! to the engine, its events answered as one JSON body or as server-sent events.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::stream::{self, Stream, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::chat_output::ToolCall;
use crate::loader::tokenizer::{ChatTemplate, GgufTokenizer};
use crate::serve::api::{parse_body, prepare, Endpoint, Limits, Prepared};
use crate::serve::engine::EngineHandle;
use crate::serve::error::ApiError;
use crate::serve::job::{Event, FinishReason, Job, Logprobs, TokenLogprob, Usage};
use crate::serve::metrics::Metrics;

/// What the server knows once the model is loaded.
pub struct Ready {
    pub tokenizer: Arc<GgufTokenizer>,
    pub template: ChatTemplate,
    pub limits: Limits,
}

pub struct AppState {
    /// Set by the engine thread when the model is loaded (`/health` says 503 until then).
    pub ready: OnceLock<Ready>,
    pub handle: EngineHandle,
    pub metrics: Arc<Metrics>,
    pub api_key: Option<String>,
    pub model_id: String,
    pub slots: usize,
    pub body_limit: usize,
    created: u64,
    next_id: AtomicU64,
}

impl AppState {
    pub fn new(
        handle: EngineHandle,
        metrics: Arc<Metrics>,
        model_id: String,
        slots: usize,
        api_key: Option<String>,
        body_limit: usize,
    ) -> AppState {
        AppState {
            ready: OnceLock::new(),
            handle,
            metrics,
            api_key,
            model_id,
            slots,
            body_limit,
            created: unix_now(),
            next_id: AtomicU64::new(1),
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.body_limit;
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/models", get(models))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "no such endpoint: this server has /v1/chat/completions, /v1/completions, \
                 /v1/models, /health and /metrics"
                    .into(),
            )
        })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Refuses a request without the server's key, when it has one.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = &state.api_key else {
        return Ok(());
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if g.trim() == key => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "the API key is wrong".into(),
        )
        .with_code("invalid_api_key")),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "an API key is required: send 'Authorization: Bearer KEY'".into(),
        )
        .with_code("invalid_api_key")),
    }
}

fn loading() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_unavailable",
        "the model is still loading".into(),
    )
}

async fn chat(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    generate(state, headers, body, Endpoint::Chat).await
}

async fn completions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    generate(state, headers, body, Endpoint::Completion).await
}

async fn generate(
    state: Arc<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    endpoint: Endpoint,
) -> Response {
    match start(state, headers, body, endpoint).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// Everything that can still answer with an error status: checks, tokenizing, queueing.
async fn start(
    state: Arc<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    endpoint: Endpoint,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let bytes = body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "invalid_request_error",
                format!("the body is over the limit of {} bytes", state.body_limit),
            )
        } else {
            ApiError::new(status, "invalid_request_error", rejection.body_text())
        }
    })?;
    if state.ready.get().is_none() {
        return Err(loading());
    }
    let body = parse_body(&bytes)?;
    let checked = Arc::clone(&state);
    // Rendering and tokenizing a long prompt is CPU work: off the async workers.
    let prepared = tokio::task::spawn_blocking(move || {
        let ready = checked.ready.get().ok_or_else(loading)?;
        prepare(
            body,
            endpoint,
            &ready.tokenizer,
            &ready.template,
            &ready.limits,
        )
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            format!("preparing the request: {e}"),
        )
    })??;
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = unbounded_channel();
    let seed = prepared
        .seed
        .unwrap_or_else(|| unix_now().wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ id);
    let reply = ReplyShape {
        id,
        endpoint,
        model: state.model_id.clone(),
        created: unix_now(),
        include_usage: prepared.include_usage,
    };
    let stream = prepared.stream;
    let Prepared {
        prompt,
        max_tokens,
        sampling,
        stops,
        form,
        logprobs,
        ..
    } = prepared;
    state
        .handle
        .submit(|ticket| Job {
            id,
            prompt,
            max_tokens,
            sampling,
            seed,
            stops,
            form,
            logprobs,
            events: tx,
            received: Instant::now(),
            ticket,
        })
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_unavailable",
                format!(
                    "the server is busy: {} requests are waiting or running; try again",
                    state.handle.in_flight()
                ),
            )
        })?;
    Ok(if stream {
        Sse::new(event_stream(rx, reply))
            .keep_alive(KeepAlive::default())
            .into_response()
    } else {
        collect(rx, reply).await?.into_response()
    })
}

/// How a request's answers are labelled.
struct ReplyShape {
    id: u64,
    endpoint: Endpoint,
    model: String,
    created: u64,
    include_usage: bool,
}

impl ReplyShape {
    fn id(&self) -> String {
        match self.endpoint {
            Endpoint::Chat => format!("chatcmpl-{}", self.id),
            Endpoint::Completion => format!("cmpl-{}", self.id),
        }
    }

    fn envelope(&self, object: &str, choices: Value) -> Value {
        json!({
            "id": self.id(),
            "object": object,
            "created": self.created,
            "model": self.model,
            "choices": choices,
        })
    }

    fn call_json(&self, index: usize, call: &ToolCall) -> Value {
        json!({
            "index": index,
            "id": format!("call_{}_{index}", self.id),
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments.to_string()},
        })
    }
}

fn logprob_json(t: &TokenLogprob) -> Value {
    json!({
        "token": String::from_utf8_lossy(&t.bytes),
        "logprob": t.logprob,
        "bytes": t.bytes,
    })
}

/// Chat's `logprobs.content`: one entry a token, with its alternatives.
fn chat_logprobs(reports: &[Logprobs]) -> Value {
    let content: Vec<Value> = reports
        .iter()
        .map(|l| {
            let mut entry = logprob_json(&l.token);
            entry["top_logprobs"] = l.top.iter().map(logprob_json).collect();
            entry
        })
        .collect();
    json!({ "content": content })
}

/// The completions endpoint's (legacy) `logprobs`: parallel lists, the text offset of each
/// token counted from `offset`.
fn completion_logprobs(reports: &[Logprobs], mut offset: usize) -> Value {
    let text = |t: &TokenLogprob| String::from_utf8_lossy(&t.bytes).into_owned();
    let mut offsets = Vec::new();
    for l in reports {
        offsets.push(offset);
        offset += text(&l.token).len();
    }
    json!({
        "tokens": reports.iter().map(|l| text(&l.token)).collect::<Vec<_>>(),
        "token_logprobs": reports.iter().map(|l| l.token.logprob).collect::<Vec<_>>(),
        "top_logprobs": reports
            .iter()
            .map(|l| l.top.iter().map(|t| (text(t), json!(t.logprob))).collect::<serde_json::Map<_, _>>())
            .collect::<Vec<_>>(),
        "text_offset": offsets,
    })
}

/// A reply's `logprobs` in its endpoint's form, null when none were asked for.
fn logprobs_json(endpoint: Endpoint, reports: &[Logprobs], offset: usize) -> Value {
    match (reports.is_empty(), endpoint) {
        (true, _) => Value::Null,
        (false, Endpoint::Chat) => chat_logprobs(reports),
        (false, Endpoint::Completion) => completion_logprobs(reports, offset),
    }
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
    })
}

/// The whole reply as one body.
async fn collect(
    mut rx: UnboundedReceiver<Event>,
    shape: ReplyShape,
) -> Result<Json<Value>, ApiError> {
    let mut content = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    let mut reports = Vec::new();
    loop {
        match rx.recv().await {
            Some(Event::Started { .. }) => {}
            Some(Event::Logprobs(l)) => reports.push(l),
            Some(Event::Reasoning(t)) => reasoning.push_str(&t),
            Some(Event::Content(t)) => content.push_str(&t),
            Some(Event::ToolCall(c)) => calls.push(shape.call_json(calls.len(), &c)),
            Some(Event::Done { finish, usage }) => {
                let logprobs = logprobs_json(shape.endpoint, &reports, 0);
                let choice = match shape.endpoint {
                    Endpoint::Chat => {
                        let mut message = json!({
                            "role": "assistant",
                            "content": if content.is_empty() && !calls.is_empty() {
                                Value::Null
                            } else {
                                Value::String(content)
                            },
                        });
                        if !reasoning.is_empty() {
                            message["reasoning_content"] = Value::String(reasoning);
                        }
                        if !calls.is_empty() {
                            message["tool_calls"] = Value::Array(calls);
                        }
                        json!({"index": 0, "message": message, "logprobs": logprobs,
                               "finish_reason": finish.as_str()})
                    }
                    Endpoint::Completion => json!({"index": 0, "text": content,
                                                   "logprobs": logprobs,
                                                   "finish_reason": finish.as_str()}),
                };
                let object = match shape.endpoint {
                    Endpoint::Chat => "chat.completion",
                    Endpoint::Completion => "text_completion",
                };
                let mut body = shape.envelope(object, json!([choice]));
                body["usage"] = usage_json(&usage);
                return Ok(Json(body));
            }
            Some(Event::Failed { status, message }) => {
                return Err(ApiError::from_engine(status, message))
            }
            None => {
                return Err(ApiError::from_engine(
                    500,
                    "the engine stopped before the reply ended".into(),
                ))
            }
        }
    }
}

/// Where a stream is.
struct Streaming {
    rx: UnboundedReceiver<Event>,
    shape: ReplyShape,
    calls: usize,
    ended: bool,
    /// Bytes of completion text sent, for the legacy logprobs' offsets.
    sent: usize,
}

impl Streaming {
    fn chunk(&self, delta: Value, finish: Option<FinishReason>) -> SseEvent {
        self.chunk_with(delta, finish, Value::Null)
    }

    fn chunk_with(&self, delta: Value, finish: Option<FinishReason>, logprobs: Value) -> SseEvent {
        let finish = finish.map(|f| f.as_str());
        let body = match self.shape.endpoint {
            Endpoint::Chat => self.shape.envelope(
                "chat.completion.chunk",
                json!([{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}]),
            ),
            Endpoint::Completion => {
                let text = delta.get("content").cloned().unwrap_or(json!(""));
                self.shape.envelope(
                    "text_completion",
                    json!([{"index": 0, "text": text, "logprobs": logprobs, "finish_reason": finish}]),
                )
            }
        };
        SseEvent::default().data(body.to_string())
    }

    /// The server-sent events one engine event becomes.
    fn events(&mut self, event: Option<Event>) -> Vec<SseEvent> {
        match event {
            Some(Event::Started { .. }) => match self.shape.endpoint {
                Endpoint::Chat => {
                    vec![self.chunk(json!({"role": "assistant", "content": ""}), None)]
                }
                Endpoint::Completion => Vec::new(),
            },
            Some(Event::Logprobs(l)) => {
                let report = logprobs_json(self.shape.endpoint, &[l], self.sent);
                vec![self.chunk_with(json!({}), None, report)]
            }
            Some(Event::Reasoning(t)) => vec![self.chunk(json!({"reasoning_content": t}), None)],
            Some(Event::Content(t)) => {
                self.sent += t.len();
                vec![self.chunk(json!({"content": t}), None)]
            }
            Some(Event::ToolCall(c)) => {
                let call = self.shape.call_json(self.calls, &c);
                self.calls += 1;
                vec![self.chunk(json!({"tool_calls": [call]}), None)]
            }
            Some(Event::Done { finish, usage }) => {
                self.ended = true;
                let mut out = vec![self.chunk(json!({}), Some(finish))];
                if self.shape.include_usage {
                    let object = match self.shape.endpoint {
                        Endpoint::Chat => "chat.completion.chunk",
                        Endpoint::Completion => "text_completion",
                    };
                    let mut body = self.shape.envelope(object, json!([]));
                    body["usage"] = usage_json(&usage);
                    out.push(SseEvent::default().data(body.to_string()));
                }
                out.push(SseEvent::default().data("[DONE]"));
                out
            }
            Some(Event::Failed { status, message }) => {
                self.ended = true;
                let error = ApiError::from_engine(status, message);
                vec![SseEvent::default().data(error.body().to_string())]
            }
            None => {
                self.ended = true;
                let error = ApiError::from_engine(500, "the engine stopped mid-reply".into());
                vec![SseEvent::default().data(error.body().to_string())]
            }
        }
    }
}

fn event_stream(
    rx: UnboundedReceiver<Event>,
    shape: ReplyShape,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let streaming = Streaming {
        rx,
        shape,
        calls: 0,
        ended: false,
        sent: 0,
    };
    stream::unfold(streaming, |mut s| async move {
        if s.ended {
            return None;
        }
        let event = s.rx.recv().await;
        let out = s.events(event);
        Some((stream::iter(out.into_iter().map(Ok)), s))
    })
    .flatten()
}

async fn models(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&state, &headers) {
        return e.into_response();
    }
    let context = state.ready.get().map(|r| r.limits.context);
    Json(json!({
        "object": "list",
        "data": [{
            "id": state.model_id,
            "object": "model",
            "created": state.created,
            "owned_by": "qwen-wgpu",
            "meta": {"n_ctx": context, "slots": state.slots},
        }],
    }))
    .into_response()
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    if state.ready.get().is_none() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "loading"})),
        )
            .into_response();
    }
    let busy = state.metrics.busy_slots.load(Ordering::Relaxed);
    Json(json!({
        "status": "ok",
        "slots_idle": (state.slots as u64).saturating_sub(busy),
        "slots_processing": busy,
    }))
    .into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(state.slots),
    )
        .into_response()
}
