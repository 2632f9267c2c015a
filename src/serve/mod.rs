//! `qwen-wgpu serve`: an OpenAI-compatible HTTP server.
//!
//! axum on tokio answers HTTP ([`http`]); one engine thread owns the model on the GPU and
//! `--parallel` slots ([`engine`]), fed through a channel. Requests are checked and
//! tokenized on the HTTP side ([`api`]); replies come back token by token as [`job::Event`]s,
//! split into reasoning, content and tool calls ([`reply`]). A request whose prompt starts
//! with what a slot holds resumes there ([`prompt_cache`]).

pub mod api;
pub mod engine;
pub mod error;
pub mod http;
pub mod job;
pub mod logprobs;
pub mod metrics;
pub mod prompt_cache;
pub mod reply;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::Error;
use crate::loader::tokenizer::{ChatTemplate, GgufTokenizer};
use crate::loader::{GgufFile, ModelConfig};
use crate::runtime::{AdapterChoice, GpuContext, GpuModel, LoadOptions, SessionOptions};

use engine::{Command, Engine, EngineHandle, EngineOptions};
use http::{AppState, Ready};
use metrics::Metrics;
use tokio::sync::mpsc::UnboundedReceiver;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub model: PathBuf,
    /// The name clients give as `model`.
    pub model_id: String,
    pub adapter: Option<String>,
    /// Each slot's session (its context is each request's limit).
    pub session: SessionOptions,
    /// Sequences generating at once.
    pub parallel: u32,
    /// Requests waiting for a slot before new ones are refused (503).
    pub queue: usize,
    pub api_key: Option<String>,
    /// VRAM for the prompt cache's snapshots.
    pub cache_bytes: u64,
    /// Largest request body.
    pub body_limit: usize,
    /// VRAM the model and the slots may take; routed experts past it stay in host memory.
    pub gpu_memory: Option<u64>,
}

/// A model's name for clients: its file's name without `.gguf`.
pub fn model_id_of(path: &std::path::Path) -> String {
    path.file_stem()
        .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned())
}

/// The server's shared state and the engine's inbox, before the model is loaded.
pub fn prepare_state(options: &ServeOptions) -> (Arc<AppState>, UnboundedReceiver<Command>) {
    let slots = options.parallel.max(1) as usize;
    let (handle, inbox) = EngineHandle::channel(slots + options.queue);
    let state = AppState::new(
        handle,
        Arc::new(Metrics::default()),
        options.model_id.clone(),
        slots,
        options.api_key.clone(),
        options.body_limit,
    );
    (Arc::new(state), inbox)
}

/// What `--gpu-memory` leaves the model and its slots: the prompt cache's snapshots
/// (`--cache-mib`) take VRAM beside them.
fn model_budget(gpu_memory: u64, cache_bytes: u64) -> Result<u64, Error> {
    match gpu_memory.checked_sub(cache_bytes) {
        Some(rest) if rest > 0 => Ok(rest),
        _ => Err(Error::InvalidArgument(format!(
            "--cache-mib {} MiB leaves nothing of --gpu-memory {:.0} MiB for the model; lower it \
             or raise the budget",
            cache_bytes >> 20,
            gpu_memory as f64 / (1u64 << 20) as f64
        ))),
    }
}

/// Loads the model (refused before any upload when the slots do not fit), marks the
/// server ready and runs the engine until shutdown. Runs on the engine's own thread.
pub fn load_and_run(
    options: &ServeOptions,
    state: &AppState,
    inbox: UnboundedReceiver<Command>,
) -> Result<(), Error> {
    let file = GgufFile::open(&options.model)?;
    let config = ModelConfig::from_gguf(&file)?;
    config.check_tensors(&file)?;
    let tokenizer = Arc::new(GgufTokenizer::from_gguf(&file)?);
    let template = ChatTemplate::of_tokenizer(&tokenizer)?;
    let gpu = GpuContext::new(&AdapterChoice::from_flag(options.adapter.as_deref()))?;
    log::info!("{}", gpu.describe());
    let load = LoadOptions {
        sessions: options.parallel.max(1),
        gpu_memory: options
            .gpu_memory
            .map(|budget| model_budget(budget, options.cache_bytes))
            .transpose()?,
    };
    let model = GpuModel::load_with(gpu, &file, &config, &options.session, load, &mut |_, _| {})?;
    if let Some(split) = model.experts.as_ref().map(|c| &c.split) {
        if !split.all_resident() {
            eprintln!("{split}");
        }
    }
    let engine = Engine::new(
        model,
        Arc::clone(&tokenizer),
        EngineOptions {
            slots: state.slots,
            session: options.session,
            cache_bytes: options.cache_bytes,
        },
        inbox,
        Arc::clone(&state.metrics),
    )?;
    let ready = Ready {
        tokenizer,
        template,
        limits: api::Limits {
            context: options.session.context,
            model_id: state.model_id.clone(),
        },
    };
    // Only this thread sets it, once.
    let _ = state.ready.set(ready);
    eprintln!(
        "qwen-wgpu serve: {} loaded, {} slots of {} tokens",
        state.model_id, state.slots, options.session.context
    );
    engine.run();
    Ok(())
}

/// Answers HTTP on `listener` until `shutdown` completes; then the engine fails what is
/// in flight (streams end with an error event) and the server waits for the connections
/// to close.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let handle = state.handle.clone();
    let app = http::router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            handle.shutdown();
        })
        .await
        .map_err(|source| Error::Io {
            context: "serving HTTP".into(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::model_budget;

    #[test]
    fn the_prompt_cache_comes_out_of_the_gpu_memory_budget() {
        assert_eq!(model_budget(12 << 30, 1 << 30).unwrap(), 11 << 30);
        let err = model_budget(512 << 20, 1 << 30).unwrap_err().to_string();
        assert!(
            err.contains("--cache-mib 1024 MiB") && err.contains("512 MiB"),
            "{err}"
        );
        assert!(model_budget(1 << 30, 1 << 30).is_err());
    }
}
