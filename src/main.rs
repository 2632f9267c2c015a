//! The `qwen-wgpu` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use qwen_wgpu::error::Error;

mod cli;

use cli::bench::{bench, BenchArgs};
use cli::evaluate::{logits, perplexity_cmd, LogitsArgs, PerplexityArgs};
use cli::generate::{chat, run as run_prompt, ChatArgs, RunArgs};
use cli::inspect::{devices, inspect, list_presets, synth, InspectArgs, SynthArgs};
use cli::serve::{serve_cmd, ServeArgs};

#[derive(Parser)]
#[command(
    name = "qwen-wgpu",
    version,
    about = "Qwen3.5-family GGUF models on any GPU through wgpu"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate from a prompt, streaming the text (sampling on the GPU).
    Run(RunArgs),
    /// Chat with the model over several turns (state kept between turns).
    Chat(ChatArgs),
    /// An OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions, /v1/models,
    /// /health, /metrics) with parallel slots, tool calls, reasoning and a prompt cache.
    Serve(ServeArgs),
    /// Prefill and decode speed (llama-bench style), roofline, memory, per-kernel profile.
    Bench(BenchArgs),
    /// Describe a GGUF model (or a published preset): layers, parameters, KV and state sizes,
    /// memory at a context, roofline decode speed.
    Inspect(InspectArgs),
    /// Write a synthetic model (random weights, real architecture) as a GGUF file.
    Synth(SynthArgs),
    /// Write the logits of every position of a prompt as a .npy file ([tokens, vocab] f32).
    Logits(LogitsArgs),
    /// Perplexity of a text file, llama-perplexity style (chunks of --ctx tokens, second half
    /// of each scored).
    Perplexity(PerplexityArgs),
    /// List the presets `inspect --preset` and `synth --preset` accept.
    Presets,
    /// List the GPU adapters and the one qwen-wgpu would pick.
    Devices {
        /// Pick an adapter by index or name (also `QWEN_WGPU_ADAPTER`).
        #[arg(long)]
        adapter: Option<String>,
    },
}

/// Warnings and errors; wgpu-core's instance module only errors: it warns on every device
/// with `MAPPABLE_PRIMARY_BUFFERS` on a discrete GPU, which this program enables on purpose
/// (routed experts in host memory, `runtime::experts`) and uses only for those buffers.
const LOG_FILTER: &str = "warn,wgpu_core::instance=error";

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(LOG_FILTER)).init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Run(args) => run_prompt(args),
        Command::Chat(args) => chat(args),
        Command::Serve(args) => serve_cmd(args),
        Command::Bench(args) => bench(args),
        Command::Inspect(args) => inspect(args),
        Command::Synth(args) => synth(args),
        Command::Devices { adapter } => devices(adapter.as_deref()),
        Command::Logits(args) => logits(args),
        Command::Perplexity(args) => perplexity_cmd(args),
        Command::Presets => list_presets(),
    }
}
