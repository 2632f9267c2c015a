//! `run` (one prompt, streamed) and `chat` (multi-turn, state kept across turns).

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;

use qwen_wgpu::chat::{generate, with_bos, Conversation, End, Flow, Reply};
use qwen_wgpu::error::Error;
use qwen_wgpu::loader::tokenizer::{ChatMessage, ChatTemplate};
use qwen_wgpu::runtime::{Sampling, Session};

use crate::cli::model::{load, Loaded, ModelArgs};

/// How tokens are drawn (llama.cpp's flags and defaults).
#[derive(Args, Clone)]
pub struct SamplingArgs {
    /// Temperature; 0 picks the most likely token (greedy).
    #[arg(long = "temp", default_value_t = 0.8)]
    pub temperature: f32,
    /// Candidates kept, at most 64 (0: 64).
    #[arg(long, default_value_t = 40)]
    pub top_k: u32,
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Drop candidates less likely than this fraction of the best one.
    #[arg(long, default_value_t = 0.05)]
    pub min_p: f32,
    /// Penalise recently seen tokens (1: off).
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// Lower the logit of every token among the recent ones by this (0: off; -2 to 2).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub presence_penalty: f32,
    /// Lower a recent token's logit by this for each time it occurs (0: off; -2 to 2).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub frequency_penalty: f32,
    /// How many recent tokens the penalties cover.
    #[arg(long, default_value_t = 64)]
    pub repeat_last_n: u32,
    /// Seed of the draws (default: from the clock; printed so a run can be repeated).
    #[arg(long)]
    pub seed: Option<u64>,
}

impl SamplingArgs {
    pub fn sampling(&self) -> Sampling {
        Sampling {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            presence_penalty: self.presence_penalty,
            frequency_penalty: self.frequency_penalty,
            repeat_last_n: self.repeat_last_n,
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        })
    }
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The prompt (a user message, unless --raw).
    #[arg(short, long)]
    pub prompt: String,
    /// Most tokens to generate (-1: until an end token or the context is full).
    #[arg(
        short = 'n',
        long = "n-predict",
        default_value_t = 256,
        allow_negative_numbers = true
    )]
    pub n_predict: i64,
    /// A system message.
    #[arg(long)]
    pub system: Option<String>,
    /// Feed the prompt as is, without the model's chat template.
    #[arg(long)]
    pub raw: bool,
    /// Let Qwen3.5 reason in a <think> block before answering.
    #[arg(long)]
    pub think: bool,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

#[derive(Args)]
pub struct ChatArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// A system message.
    #[arg(long)]
    pub system: Option<String>,
    /// Let Qwen3.5 reason in a <think> block before answering (`/think on|off` switches).
    #[arg(long)]
    pub think: bool,
    /// Most tokens per reply (-1: until an end token or the context is full).
    #[arg(short = 'n', long = "n-predict", default_value_t = -1, allow_negative_numbers = true)]
    pub n_predict: i64,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

/// Set by Ctrl-C: the reply in progress stops at the next token.
static STOP: AtomicBool = AtomicBool::new(false);
/// Whether a reply is in progress (Ctrl-C outside one exits).
static GENERATING: AtomicBool = AtomicBool::new(false);

fn install_ctrl_c() {
    let installed = ctrlc::set_handler(|| {
        if GENERATING.load(Ordering::SeqCst) {
            STOP.store(true, Ordering::SeqCst);
        } else {
            eprintln!();
            std::process::exit(130);
        }
    });
    if let Err(e) = installed {
        log::warn!("Ctrl-C will not stop a reply: {e}");
    }
}

/// Generates with the reply streamed to stdout; Ctrl-C stops it at the next token.
fn stream_reply(
    session: &mut Session,
    loaded_tokenizer: &qwen_wgpu::loader::tokenizer::GgufTokenizer,
    prompt: &[u32],
    n_predict: i64,
) -> Result<Reply, Error> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let io = |source| Error::Io {
        context: "writing the reply".into(),
        source,
    };
    STOP.store(false, Ordering::SeqCst);
    GENERATING.store(true, Ordering::SeqCst);
    let reply = generate(
        session,
        loaded_tokenizer,
        prompt,
        limit(n_predict),
        &mut |piece| {
            out.write_all(piece.as_bytes()).map_err(io)?;
            out.flush().map_err(io)?;
            Ok(if STOP.load(Ordering::SeqCst) {
                Flow::Stop
            } else {
                Flow::Continue
            })
        },
    );
    GENERATING.store(false, Ordering::SeqCst);
    writeln!(out).map_err(io)?;
    reply
}

fn limit(n_predict: i64) -> Option<usize> {
    usize::try_from(n_predict).ok()
}

fn template_of(loaded: &Loaded) -> Result<Option<ChatTemplate>, Error> {
    Ok(match &loaded.tokenizer.chat_template {
        Some(source) => Some(ChatTemplate::new(source)?),
        None => None,
    })
}

fn describe_load(loaded: &Loaded) {
    let s = &loaded.session;
    eprintln!(
        "loaded {} ({}, {} layers {}) in {:.1} s on {}; context {} tokens",
        loaded.path.display(),
        loaded.config.arch,
        loaded.config.layers.len(),
        loaded.config.schedule_string(),
        loaded.load_seconds,
        s.model().ctx.describe(),
        s.options.context
    );
    if let Some(split) = s.model().experts.as_ref().map(|c| &c.split) {
        if !split.all_resident() {
            eprintln!("{split}");
        }
    }
}

/// Ctrl-C handling, the model loaded and described, the sampling set; returns the seed.
fn start(model: &ModelArgs, sampling: &SamplingArgs) -> Result<(Loaded, u64), Error> {
    install_ctrl_c();
    let mut loaded = load(model, model.session_options(false))?;
    describe_load(&loaded);
    let seed = sampling.seed();
    loaded.session.set_sampling(sampling.sampling(), seed)?;
    Ok((loaded, seed))
}

pub fn run(args: RunArgs) -> Result<(), Error> {
    let (mut loaded, seed) = start(&args.model, &args.sampling)?;
    let template = template_of(&loaded)?;
    let text = match (&template, args.raw) {
        (Some(t), false) => {
            let mut messages = Vec::new();
            if let Some(system) = &args.system {
                messages.push(ChatMessage::new("system", system));
            }
            messages.push(ChatMessage::new("user", &args.prompt));
            t.render(&messages, true, args.think)?
        }
        (None, false) => {
            eprintln!("the model has no chat template: feeding the prompt as is");
            args.prompt.clone()
        }
        (_, true) => args.prompt.clone(),
    };
    let prompt = with_bos(&loaded.tokenizer, loaded.tokenizer.encode(&text)?);
    if prompt.is_empty() {
        return Err(Error::InvalidArgument("the prompt has no tokens".into()));
    }
    let reply = stream_reply(
        &mut loaded.session,
        &loaded.tokenizer,
        &prompt,
        args.n_predict,
    )?;
    eprintln!(
        "seed {seed}; {}; stopped by {:?}",
        reply.speeds(),
        reply.end
    );
    Ok(())
}

fn print_stats(loaded: &Loaded, conv: &Conversation) {
    let s = &loaded.session;
    let state = s.state();
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    eprintln!(
        "context {}/{} tokens; VRAM: weights {:.1} MiB, KV cache {:.1} MiB, recurrent state {:.1} MiB, activations {:.1} MiB; {} dispatches per token",
        s.position(),
        s.options.context,
        mib(s.model().weights.bytes),
        mib(state.kv_bytes()),
        mib(state.recurrent_bytes()),
        mib(s.scratch_bytes()),
        s.decode_dispatches()
    );
    if let Some(r) = &conv.last {
        eprintln!("last reply: {}", r.speeds());
    }
}

pub fn chat(args: ChatArgs) -> Result<(), Error> {
    let (mut loaded, _) = start(&args.model, &args.sampling)?;
    let template = ChatTemplate::of_tokenizer(&loaded.tokenizer)?;
    eprintln!("type a message; /reset forgets, /stats shows usage, /think on|off, /exit quits; Ctrl-C stops a reply");
    let mut conv = Conversation::new(args.system.as_deref(), args.think);
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let io = |source| Error::Io {
        context: "chat".into(),
        source,
    };
    loop {
        eprint!("> ");
        std::io::stderr().flush().map_err(io)?;
        let Some(line) = lines.next() else { break };
        let line = line.map_err(io)?;
        let line = line.trim();
        match line {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                conv.reset(&mut loaded.session);
                eprintln!("(conversation reset)");
                continue;
            }
            "/stats" => {
                print_stats(&loaded, &conv);
                continue;
            }
            "/think on" | "/think off" => {
                conv.think = line.ends_with("on");
                eprintln!("(thinking {})", if conv.think { "on" } else { "off" });
                continue;
            }
            _ if line.starts_with('/') => {
                eprintln!("unknown command {line}: /reset, /stats, /think on|off, /exit");
                continue;
            }
            _ => {}
        }
        let tokens = conv.turn_tokens(&mut loaded.session, &loaded.tokenizer, &template, line)?;
        let reply = match stream_reply(
            &mut loaded.session,
            &loaded.tokenizer,
            &tokens,
            args.n_predict,
        ) {
            Ok(r) => r,
            Err(Error::ContextFull { needed, capacity }) => {
                conv.reset(&mut loaded.session);
                eprintln!(
                    "context full ({needed} > {capacity} tokens): the conversation was reset"
                );
                continue;
            }
            Err(e) => return Err(e),
        };
        match reply.end {
            End::Interrupted => eprintln!("(stopped)"),
            End::ContextFull => eprintln!("(context full: /reset to start over)"),
            _ => {}
        }
        conv.record(&loaded.tokenizer, reply)?;
    }
    Ok(())
}
