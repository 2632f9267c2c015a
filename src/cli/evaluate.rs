//! Commands that score text rather than generate it: `logits` and `perplexity`, on the GPU
//! executor by default or on the CPU reference (`--device cpu`) to compare the two.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use qwen_wgpu::error::Error;
use qwen_wgpu::loader::tokenizer::GgufTokenizer;
use qwen_wgpu::loader::{GgufFile, ModelConfig};
use qwen_wgpu::model::algebra::param_count;
use qwen_wgpu::model::perplexity::perplexity;
use qwen_wgpu::model::reference::sample::argmax;
use qwen_wgpu::model::reference::ReferenceModel;
use qwen_wgpu::npy::write_npy_f32;
use qwen_wgpu::runtime::gpu::host_available_memory;
use qwen_wgpu::runtime::Session;

use crate::cli::model::{load, ModelArgs};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Device {
    /// The GPU executor.
    Gpu,
    /// The plain f32 CPU reference (the specification the GPU is tested against).
    Cpu,
}

#[derive(Args)]
pub struct LogitsArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Text to tokenize with the model's tokenizer (special tokens are parsed).
    #[arg(
        short,
        long,
        conflicts_with = "tokens",
        required_unless_present = "tokens"
    )]
    pub prompt: Option<String>,
    /// Token ids instead of text, e.g. 1,2,3.
    #[arg(long, value_delimiter = ',')]
    pub tokens: Option<Vec<u32>>,
    /// Output .npy file.
    #[arg(short, long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t = Device::Gpu)]
    pub device: Device,
}

#[derive(Args)]
pub struct PerplexityArgs {
    /// The model; --ctx is the chunk length.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Text file to score.
    #[arg(short, long)]
    pub file: PathBuf,
    /// Score at most this many chunks.
    #[arg(long)]
    pub chunks: Option<usize>,
    #[arg(long, value_enum, default_value_t = Device::Gpu)]
    pub device: Device,
}

/// Something that returns every position's logits of a sequence scored from scratch.
enum Scorer {
    Cpu(Box<ReferenceModel>),
    Gpu(Box<Session>),
}

impl Scorer {
    fn open(
        args: &ModelArgs,
        device: Device,
        context: u32,
    ) -> Result<(Scorer, GgufTokenizer, ModelConfig), Error> {
        match device {
            Device::Cpu => {
                let file = GgufFile::open(args.path()?)?;
                let config = ModelConfig::from_gguf(&file)?;
                let tokenizer = GgufTokenizer::from_gguf(&file)?;
                // The reference holds every weight as f32: refuse up front rather than be killed.
                let needed = param_count(&config).total.saturating_mul(4);
                if let Some(available) = host_available_memory().filter(|&a| needed > a) {
                    return Err(Error::InvalidArgument(format!(
                        "the CPU reference needs {:.1} GiB to hold {} as f32 but {:.1} GiB are \
                         available; use --device gpu",
                        needed as f64 / (1u64 << 30) as f64,
                        config.name,
                        available as f64 / (1u64 << 30) as f64
                    )));
                }
                let model = ReferenceModel::load(&file, &config)?;
                Ok((Scorer::Cpu(Box::new(model)), tokenizer, config))
            }
            Device::Gpu => {
                let mut sized = args.clone();
                sized.context = context;
                // Every position's logits stay on the device per step: keep them in one binding.
                sized.ubatch = sized.ubatch.min(context).max(1);
                let loaded = load(&sized, sized.session_options(true))?;
                Ok((
                    Scorer::Gpu(Box::new(loaded.session)),
                    loaded.tokenizer,
                    loaded.config,
                ))
            }
        }
    }

    fn score(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>, Error> {
        match self {
            Scorer::Cpu(model) => model.forward(tokens, &mut model.new_state()),
            Scorer::Gpu(session) => {
                session.reset();
                session.forward_all(tokens)
            }
        }
    }
}

pub fn logits(args: LogitsArgs) -> Result<(), Error> {
    // The prompt's length sizes the context; tokenizing needs the file first.
    let file = GgufFile::open(args.model.path()?)?;
    let tokenizer = GgufTokenizer::from_gguf(&file)?;
    drop(file);
    let tokens = match (&args.tokens, &args.prompt) {
        (Some(t), _) => t.clone(),
        (None, Some(text)) => tokenizer.encode(text)?,
        (None, None) => {
            return Err(Error::InvalidArgument(
                "give --prompt TEXT or --tokens IDS".into(),
            ))
        }
    };
    if tokens.is_empty() {
        return Err(Error::InvalidArgument("the prompt has no tokens".into()));
    }
    let (mut scorer, _, config) = Scorer::open(&args.model, args.device, tokens.len() as u32)?;
    let logits = scorer.score(&tokens)?;
    let vocab = config.n_vocab as usize;
    write_npy_f32(&args.out, &[tokens.len(), vocab], &logits.concat())?;
    let best = logits.last().map_or(0, |l| argmax(l));
    eprintln!(
        "wrote {} [{}, {vocab}] f32; last position's top token {best} ({:?})",
        args.out.display(),
        tokens.len(),
        tokenizer.decode(&[best]).unwrap_or_default()
    );
    Ok(())
}

pub fn perplexity_cmd(args: PerplexityArgs) -> Result<(), Error> {
    let ctx = args.model.context;
    let (mut scorer, tokenizer, _) = Scorer::open(&args.model, args.device, ctx)?;
    let text = std::fs::read_to_string(&args.file).map_err(|source| Error::Io {
        context: format!("reading {}", args.file.display()),
        source,
    })?;
    let mut tokens = tokenizer.encode(&text)?;
    if let Some(chunks) = args.chunks {
        tokens.truncate(chunks.saturating_mul(ctx as usize));
    }
    eprintln!("{} tokens, chunks of {ctx}", tokens.len());
    let result = perplexity(&tokens, ctx as usize, |chunk| scorer.score(chunk))?;
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
