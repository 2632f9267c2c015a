//! The `qwen-wgpu` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use qwen_wgpu::error::Error;
use qwen_wgpu::loader::presets::{self, PRESET_NAMES};
use qwen_wgpu::loader::tokenizer::GgufTokenizer;
use qwen_wgpu::loader::writer::{synthetic_file_name, synthetic_model, SynthOptions, Vocabulary};
use qwen_wgpu::loader::{GgmlType, GgufFile, ModelConfig};
use qwen_wgpu::model::algebra::{param_count, KvDtype, Roofline};
use qwen_wgpu::model::perplexity::perplexity;
use qwen_wgpu::model::reference::ReferenceModel;
use qwen_wgpu::npy::write_npy_f32;
use qwen_wgpu::report::{parse_rate, InspectOptions, InspectReport};
use qwen_wgpu::runtime::gpu::list_adapters;
use qwen_wgpu::runtime::{AdapterChoice, GpuContext};

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
    /// Describe a GGUF model (or a published preset): layers, parameters, KV and state sizes,
    /// memory at a context, roofline decode speed.
    Inspect(InspectArgs),
    /// Write a synthetic model (random weights, real architecture) as a GGUF file.
    Synth(SynthArgs),
    /// Write the logits of every position of a prompt as a .npy file ([tokens, vocab] f32),
    /// computed by the CPU reference.
    Logits(LogitsArgs),
    /// Perplexity of a text file, llama-perplexity style (chunks of --ctx tokens, second half
    /// of each scored), computed by the CPU reference.
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

#[derive(Args)]
struct InspectArgs {
    /// The GGUF file to inspect.
    #[arg(required_unless_present_any = ["preset", "demo"], conflicts_with_all = ["preset", "demo"])]
    model: Option<PathBuf>,
    /// A published configuration instead of a file (see `qwen-wgpu presets`).
    #[arg(long, conflicts_with = "demo")]
    preset: Option<String>,
    /// Inspect the embedded demo model (a tiny synthetic qwen35moe, written on first use).
    #[arg(long)]
    demo: bool,
    /// Tokens of context per sequence.
    #[arg(long, default_value_t = 4096)]
    context: u64,
    /// Sequences decoded together.
    #[arg(long, default_value_t = 1)]
    batch: u32,
    /// Tokens prefilled at once.
    #[arg(long, default_value_t = 512)]
    ubatch: u64,
    /// KV cache element type.
    #[arg(long, value_enum, default_value_t = KvType::F16)]
    kv_type: KvType,
    /// Weight type assumed for a preset (e.g. q4_K, q8_0, f16).
    #[arg(long, default_value = "q4_K")]
    weights: String,
    /// Memory bandwidth for the roofline, e.g. 1000GB/s or 3.35TB/s.
    #[arg(long)]
    bandwidth: Option<String>,
    /// Compute for the roofline, e.g. 989TFLOPS.
    #[arg(long)]
    compute: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct LogitsArgs {
    #[arg(short, long)]
    model: PathBuf,
    /// Text to tokenize with the model's tokenizer (special tokens are parsed).
    #[arg(
        short,
        long,
        conflicts_with = "tokens",
        required_unless_present = "tokens"
    )]
    prompt: Option<String>,
    /// Token ids instead of text, e.g. 1,2,3.
    #[arg(long, value_delimiter = ',')]
    tokens: Option<Vec<u32>>,
    /// Output .npy file.
    #[arg(short, long)]
    out: PathBuf,
}

#[derive(Args)]
struct PerplexityArgs {
    #[arg(short, long)]
    model: PathBuf,
    /// Text file to score.
    #[arg(short, long)]
    file: PathBuf,
    /// Tokens per chunk.
    #[arg(long, default_value_t = 512)]
    ctx: usize,
    /// Score at most this many chunks.
    #[arg(long)]
    chunks: Option<usize>,
}

#[derive(Clone, Copy, ValueEnum)]
enum KvType {
    F16,
    F32,
}

#[derive(Args)]
struct SynthArgs {
    /// Preset whose architecture and shapes the model takes.
    #[arg(long, default_value = "tiny-qwen35moe")]
    preset: String,
    /// Embed the real Qwen3.5 vocabulary (the preset must have 248,320 ids) instead of
    /// the 263-token byte vocabulary.
    #[arg(long)]
    qwen35_vocab: bool,
    /// Output file.
    #[arg(short, long)]
    output: PathBuf,
    #[arg(long, default_value_t = SynthOptions::default().seed)]
    seed: u64,
    /// Type of the large weights: f32, f16, bf16, q8_0, q4_0, q4_K or q6_K.
    #[arg(long = "type", default_value = "f32")]
    weight_type: String,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
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
        Command::Inspect(args) => inspect(args),
        Command::Synth(args) => synth(args),
        Command::Devices { adapter } => devices(adapter.as_deref()),
        Command::Logits(args) => logits(args),
        Command::Perplexity(args) => perplexity_cmd(args),
        Command::Presets => {
            for name in PRESET_NAMES {
                let c = presets::preset(name)?;
                println!(
                    "{name:<20} {} ({}, {} layers)",
                    c.name,
                    c.arch,
                    c.layers.len()
                );
            }
            Ok(())
        }
    }
}

fn devices(adapter: Option<&str>) -> Result<(), Error> {
    for a in list_adapters() {
        println!("{a}");
    }
    let choice = adapter.map_or_else(AdapterChoice::from_env, AdapterChoice::parse);
    let gpu = GpuContext::new(&choice)?;
    println!("selected: {}", gpu.describe());
    Ok(())
}

/// Bytes of memory available to this process, where the OS says (Linux's MemAvailable).
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A GGUF opened, validated and dequantized for the CPU reference, with its tokenizer.
fn load_reference(path: &Path) -> Result<(ReferenceModel, GgufTokenizer), Error> {
    let file = GgufFile::open(path)?;
    let config = ModelConfig::from_gguf(&file)?;
    let tokenizer = GgufTokenizer::from_gguf(&file)?;
    // The reference holds every weight as f32: refuse up front rather than be killed.
    let needed = param_count(&config).total.saturating_mul(4);
    if let Some(available) = available_memory().filter(|&a| needed > a) {
        return Err(Error::InvalidArgument(format!(
            "the CPU reference needs {:.1} GiB to hold {} as f32 but {:.1} GiB are available; \
             use a smaller model (the GPU path comes with the executor)",
            needed as f64 / (1u64 << 30) as f64,
            config.name,
            available as f64 / (1u64 << 30) as f64
        )));
    }
    let model = ReferenceModel::load(&file, &config)?;
    Ok((model, tokenizer))
}

fn logits(args: LogitsArgs) -> Result<(), Error> {
    let (model, tokenizer) = load_reference(&args.model)?;
    let tokens = match (&args.tokens, &args.prompt) {
        (Some(t), _) => t.clone(),
        (None, Some(text)) => tokenizer.encode(text)?,
        (None, None) => unreachable!("clap requires --prompt or --tokens"),
    };
    if tokens.is_empty() {
        return Err(Error::InvalidArgument("the prompt has no tokens".into()));
    }
    let logits = model.forward(&tokens, &mut model.new_state())?;
    let vocab = model.config.n_vocab as usize;
    let flat: Vec<f32> = logits.concat();
    write_npy_f32(&args.out, &[tokens.len(), vocab], &flat)?;
    let last = &logits[logits.len() - 1];
    let best = (0..last.len()).fold(0, |b, i| if last[i] > last[b] { i } else { b });
    eprintln!(
        "wrote {} [{}, {vocab}] f32; last position's top token {best} ({:?})",
        args.out.display(),
        tokens.len(),
        tokenizer.decode(&[best as u32]).unwrap_or_default()
    );
    Ok(())
}

fn perplexity_cmd(args: PerplexityArgs) -> Result<(), Error> {
    let (model, tokenizer) = load_reference(&args.model)?;
    let text = std::fs::read_to_string(&args.file).map_err(|source| Error::Io {
        context: format!("reading {}", args.file.display()),
        source,
    })?;
    let mut tokens = tokenizer.encode(&text)?;
    if let Some(chunks) = args.chunks {
        tokens.truncate(chunks.saturating_mul(args.ctx));
    }
    eprintln!("{} tokens, chunks of {}", tokens.len(), args.ctx);
    let result = perplexity(&tokens, args.ctx, |chunk| {
        let logits = model.forward(chunk, &mut model.new_state())?;
        Ok(logits)
    })?;
    let running: Vec<String> = result
        .running
        .iter()
        .enumerate()
        .map(|(i, p)| format!("[{}]{p:.4}", i + 1))
        .collect();
    println!("{}", running.join(","));
    println!(
        "Final estimate: PPL = {:.4} +/- {:.4} ({} tokens scored)",
        result.perplexity,
        result.perplexity * result.nll_stderr,
        result.scored_tokens
    );
    Ok(())
}

fn parse_type(name: &str) -> Result<GgmlType, Error> {
    GgmlType::from_name(name).ok_or_else(|| {
        Error::InvalidArgument(format!("unknown ggml type '{name}' (e.g. q4_K, q8_0, f16)"))
    })
}

fn inspect(args: InspectArgs) -> Result<(), Error> {
    let roofline = match &args.bandwidth {
        Some(bw) => Some(Roofline {
            bandwidth: parse_rate(bw, "B")?,
            compute: args
                .compute
                .as_deref()
                .map(|c| parse_rate(c, "FLOPS"))
                .transpose()?,
        }),
        None => None,
    };
    let opts = InspectOptions {
        context: args.context,
        batch: args.batch,
        ubatch: args.ubatch,
        kv_dtype: match args.kv_type {
            KvType::F16 => KvDtype::F16,
            KvType::F32 => KvDtype::F32,
        },
        preset_weight_type: parse_type(&args.weights)?,
        roofline,
    };
    let path = match (&args.preset, args.demo, &args.model) {
        (Some(name), _, _) => {
            let config = presets::preset(name)?;
            return print_report(&InspectReport::build(&config, None, &opts)?, args.json);
        }
        (None, true, _) => demo_model()?,
        (None, false, Some(p)) => p.clone(),
        (None, false, None) => {
            return Err(Error::InvalidArgument(
                "give a GGUF file, --preset NAME or --demo".into(),
            ))
        }
    };
    let file = GgufFile::open(&path)?;
    let config = ModelConfig::from_gguf(&file)?;
    let shown = path.display().to_string();
    let report = InspectReport::build(&config, Some((&shown, &file)), &opts)?;
    print_report(&report, args.json)
}

fn print_report(report: &InspectReport, json: bool) -> Result<(), Error> {
    if json {
        let text = serde_json::to_string_pretty(report)
            .map_err(|e| Error::InvalidArgument(format!("cannot serialise the report: {e}")))?;
        println!("{text}");
    } else {
        print!("{report}");
    }
    Ok(())
}

fn synth(args: SynthArgs) -> Result<(), Error> {
    let config = presets::preset(&args.preset)?;
    let opts = SynthOptions {
        seed: args.seed,
        weight_type: parse_type(&args.weight_type)?,
        vocabulary: if args.qwen35_vocab {
            Vocabulary::Qwen35
        } else {
            Vocabulary::Bytes
        },
        ..SynthOptions::default()
    };
    synthetic_model(&config, &opts)?.write_to(&args.output)?;
    eprintln!("wrote {} ({})", args.output.display(), config.name);
    Ok(())
}

/// Where downloaded-free defaults live: `$XDG_CACHE_HOME/qwen-wgpu`, else `~/.cache/qwen-wgpu`.
fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("qwen-wgpu")
}

/// The embedded default model, written on first use.
fn demo_model() -> Result<PathBuf, Error> {
    let config = presets::preset("tiny-qwen35moe")?;
    let opts = SynthOptions::default();
    let dir = cache_dir();
    let path = dir.join(synthetic_file_name(&config, &opts));
    if !path.exists() {
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            context: format!("creating the cache directory {}", dir.display()),
            source,
        })?;
        synthetic_model(&config, &opts)?.write_to(&path)?;
        eprintln!(
            "wrote the demo model (random weights) to {}",
            path.display()
        );
    }
    Ok(path)
}
