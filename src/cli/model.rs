//! What every model-running command shares: which model (a file or the embedded demo), which
//! adapter, how the session is sized, and loading it with a progress bar.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use qwen_wgpu::demo::demo_model;
use qwen_wgpu::error::Error;
use qwen_wgpu::loader::tokenizer::GgufTokenizer;
use qwen_wgpu::loader::{GgufFile, ModelConfig};
use qwen_wgpu::model::algebra::KvDtype;
use qwen_wgpu::runtime::ops::linear::matmul::TILE;
use qwen_wgpu::runtime::weights::max_piece_bytes;
use qwen_wgpu::runtime::{
    AdapterChoice, GpuContext, GpuModel, LoadOptions, Session, SessionOptions, DEFAULT_UBATCH,
};

#[derive(Clone, Copy, ValueEnum)]
pub enum KvType {
    F16,
    F32,
}

impl From<KvType> for KvDtype {
    fn from(k: KvType) -> KvDtype {
        match k {
            KvType::F16 => KvDtype::F16,
            KvType::F32 => KvDtype::F32,
        }
    }
}

/// The model and how to run it.
#[derive(Args, Clone)]
pub struct ModelArgs {
    /// The GGUF model file.
    #[arg(short, long, required_unless_present = "demo", conflicts_with = "demo")]
    pub model: Option<PathBuf>,
    /// Run the embedded demo model (a small synthetic Qwen3.5 MoE with the real vocabulary
    /// and random weights, written to the cache directory on first use).
    #[arg(long)]
    pub demo: bool,
    /// GPU adapter by index or name (see `qwen-wgpu devices`; also `QWEN_WGPU_ADAPTER`).
    #[arg(long)]
    pub adapter: Option<String>,
    /// Tokens of context the KV cache holds.
    #[arg(short = 'c', long = "ctx", default_value_t = 4096)]
    pub context: u32,
    /// Most prompt tokens processed in one step (with every token's logits kept, as
    /// `perplexity` does, at most the rows of logits one binding holds).
    #[arg(long, default_value_t = DEFAULT_UBATCH)]
    pub ubatch: u32,
    /// KV cache element type.
    #[arg(long, value_enum, default_value_t = KvType::F16)]
    pub kv_type: KvType,
    /// VRAM the model and its sessions may take (e.g. 12GiB): routed experts past it stay
    /// in host memory, which the GPU reads over the bus, the most used ones in VRAM.
    /// Default: everything in VRAM (wgpu reports no VRAM size; `QWEN_WGPU_MEMORY_GIB` gives one).
    #[arg(long, value_parser = parse_size)]
    pub gpu_memory: Option<u64>,
}

pub fn parse_size(text: &str) -> Result<u64, String> {
    qwen_wgpu::model::placement::parse_size(text)
}

impl ModelArgs {
    pub fn path(&self) -> Result<PathBuf, Error> {
        match (&self.model, self.demo) {
            (Some(p), _) => Ok(p.clone()),
            (None, true) => demo_model(),
            (None, false) => Err(Error::InvalidArgument(
                "give a model with -m FILE.gguf, or --demo".into(),
            )),
        }
    }

    pub fn session_options(&self, all_logits: bool) -> SessionOptions {
        SessionOptions {
            context: self.context,
            ubatch: self.ubatch,
            kv_dtype: self.kv_type.into(),
            all_logits,
        }
    }
}

/// `options` with a step's rows of logits within one storage binding when every token's
/// logits are kept: at a 248k vocabulary a 512-token step's logits are 508 MB, past the
/// binding limit of many adapters (128 MiB on lavapipe), so such a session takes shorter
/// steps rather than failing.
fn fit_logit_rows(
    mut options: SessionOptions,
    config: &ModelConfig,
    gpu: &GpuContext,
) -> SessionOptions {
    if options.all_logits {
        let row_bytes = 4 * config.n_vocab.max(1) as u64;
        let fit = (max_piece_bytes(gpu) / row_bytes).clamp(1, u32::MAX as u64) as u32;
        // Whole matmul tiles of tokens where the binding allows one.
        let rows = if fit >= TILE { fit / TILE * TILE } else { fit };
        if rows < options.ubatch {
            log::info!(
                "ubatch {} -> {rows}: the logits of every token of a step fit one binding",
                options.ubatch
            );
            options.ubatch = rows;
        }
    }
    options
}

/// A model loaded on the GPU with one session, and its tokenizer.
pub struct Loaded {
    pub session: Session,
    pub tokenizer: GgufTokenizer,
    pub config: ModelConfig,
    pub path: PathBuf,
    /// Seconds the load took.
    pub load_seconds: f64,
}

/// A progress bar over bytes, on stderr (hidden when stderr is not a terminal).
pub fn byte_bar(message: &str, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_string());
    bar
}

pub fn open_gpu(args: &ModelArgs) -> Result<GpuContext, Error> {
    Ok(GpuContext::new(&AdapterChoice::from_flag(
        args.adapter.as_deref(),
    ))?)
}

/// Opens the file, checks it, uploads it and opens a session sized by `options`.
pub fn load(args: &ModelArgs, options: SessionOptions) -> Result<Loaded, Error> {
    let start = std::time::Instant::now();
    let path = args.path()?;
    let file = GgufFile::open(&path)?;
    let config = ModelConfig::from_gguf(&file)?;
    config.check_tensors(&file)?;
    let tokenizer = GgufTokenizer::from_gguf(&file)?;
    let gpu = open_gpu(args)?;
    log::info!("{}", gpu.describe());
    let options = fit_logit_rows(options, &config, &gpu);
    let bar = byte_bar("loading", 0);
    let load = LoadOptions {
        sessions: 1,
        gpu_memory: args.gpu_memory,
    };
    let model = GpuModel::load_with(gpu, &file, &config, &options, load, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    let session = Session::new(Arc::clone(&model), options)?;
    Ok(Loaded {
        session,
        tokenizer,
        config,
        path,
        load_seconds: start.elapsed().as_secs_f64(),
    })
}
