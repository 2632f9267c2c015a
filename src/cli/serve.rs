//! `qwen-wgpu serve`: the OpenAI-compatible server on a model.

use clap::Args;

use qwen_wgpu::demo::DEMO_PRESET;
use qwen_wgpu::error::Error;
use qwen_wgpu::serve::{load_and_run, model_id_of, prepare_state, serve, ServeOptions};

use crate::cli::model::ModelArgs;

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Address to listen on (127.0.0.1: this machine only).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0 picks a free one; the address is printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Sequences generating at once, each with its own KV cache and recurrent state in
    /// VRAM (--ctx tokens each).
    #[arg(long, default_value_t = 4)]
    pub parallel: u32,
    /// Requests that may wait for a slot; past them the server answers 503.
    #[arg(long, default_value_t = 64)]
    pub queue: usize,
    /// Require `Authorization: Bearer KEY` on /v1 (also QWEN_WGPU_API_KEY).
    #[arg(long, env = "QWEN_WGPU_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// VRAM (MiB) for the prompt cache's recurrent-state snapshots.
    #[arg(long, default_value_t = 1024)]
    pub cache_mib: u64,
    /// Largest request body (MiB).
    #[arg(long, default_value_t = 16)]
    pub max_body_mib: usize,
}

pub fn serve_cmd(args: ServeArgs) -> Result<(), Error> {
    let model = args.model.path()?;
    let model_id = if args.model.demo {
        DEMO_PRESET.to_string()
    } else {
        model_id_of(&model)
    };
    let options = ServeOptions {
        model,
        model_id,
        adapter: args.model.adapter.clone(),
        session: args.model.session_options(false),
        parallel: args.parallel.max(1),
        queue: args.queue,
        api_key: args.api_key.clone().filter(|k| !k.is_empty()),
        cache_bytes: args.cache_mib << 20,
        body_limit: args.max_body_mib << 20,
        gpu_memory: args.model.gpu_memory,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            context: "starting the async runtime".into(),
            source,
        })?;
    runtime.block_on(run(args, options))
}

async fn run(args: ServeArgs, options: ServeOptions) -> Result<(), Error> {
    let address = format!("{}:{}", args.host, args.port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .map_err(|source| Error::Io {
            context: format!("listening on {address}"),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| Error::Io {
        context: "reading the bound address".into(),
        source,
    })?;
    eprintln!("qwen-wgpu serve: listening on http://{local} (loading the model)");
    let (state, inbox) = prepare_state(&options);
    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<Error>();
    let engine_state = std::sync::Arc::clone(&state);
    let engine = std::thread::Builder::new()
        .name("qwen-wgpu-engine".into())
        .spawn(move || {
            if let Err(e) = load_and_run(&options, &engine_state, inbox) {
                let _ = failed_tx.send(e);
            }
        })
        .map_err(|source| Error::Io {
            context: "starting the engine thread".into(),
            source,
        })?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<Option<Error>>();
    tokio::spawn(async move {
        let reason = tokio::select! {
            _ = shutdown_signal() => None,
            failed = failed_rx => failed.ok(),
        };
        let _ = stop_tx.send(reason);
    });
    let (error_tx, error_rx) = tokio::sync::oneshot::channel::<Option<Error>>();
    let shutdown = async move {
        let reason = stop_rx.await.ok().flatten();
        if reason.is_none() {
            eprintln!("qwen-wgpu serve: shutting down");
        }
        let _ = error_tx.send(reason);
    };
    serve(listener, state, shutdown).await?;
    // The process must not exit while the engine thread still uses the device: exit runs
    // the driver's (and any layer's) teardown under it, which crashed the process at
    // shutdown mid-stream with Vulkan's validation layer loaded.
    let joined = tokio::task::spawn_blocking(move || engine.join());
    if tokio::time::timeout(ENGINE_STOP, joined).await.is_err() {
        eprintln!(
            "qwen-wgpu serve: the engine did not stop within {} s; exiting anyway",
            ENGINE_STOP.as_secs()
        );
    }
    match error_rx.await.ok().flatten() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// How long shutdown waits for the engine to fail what is in flight and free the device
/// (it may still be loading a model, which it finishes first).
const ENGINE_STOP: std::time::Duration = std::time::Duration::from_secs(30);

/// Ctrl-C, or SIGTERM where there are signals.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
