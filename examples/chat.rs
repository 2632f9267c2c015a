//! A multi-turn chat on the library API: `cargo run --release --example chat [model.gguf]`.
//!
//! Without a file it uses the embedded demo model (random weights: it answers gibberish, but
//! every piece of the engine runs). Each turn prefills only its own tokens; the KV cache and
//! the recurrent state stay on the GPU between turns. `/reset` starts over, an empty line or
//! end of input quits.

use std::io::{BufRead, Write};

use qwen_wgpu::chat::{generate, Conversation, Flow};
use qwen_wgpu::error::Error;
use qwen_wgpu::loader::tokenizer::{ChatTemplate, GgufTokenizer};
use qwen_wgpu::loader::{GgufFile, ModelConfig};
use qwen_wgpu::runtime::{AdapterChoice, GpuContext, GpuModel, Sampling, Session, SessionOptions};

fn main() {
    if let Err(e) = chat() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn chat() -> Result<(), Error> {
    let path = match std::env::args_os().nth(1) {
        Some(p) => p.into(),
        None => qwen_wgpu::demo::demo_model()?,
    };
    let file = GgufFile::open(&path)?;
    let config = ModelConfig::from_gguf(&file)?;
    config.check_tensors(&file)?;
    let tokenizer = GgufTokenizer::from_gguf(&file)?;
    let template = ChatTemplate::of_tokenizer(&tokenizer)?;

    let gpu = GpuContext::new(&AdapterChoice::from_env())?;
    let options = SessionOptions::default();
    let model = GpuModel::load(gpu, &file, &config, &options, &mut |_, _| {})?;
    let mut session = Session::new(model, options)?;
    session.set_sampling(Sampling::default(), 1)?;
    eprintln!("{} on {}", config.name, session.model().ctx.describe());

    let mut conversation = Conversation::new(None, false);
    let stdin = std::io::stdin();
    let io = |source| Error::Io {
        context: "chat".into(),
        source,
    };
    for line in stdin.lock().lines() {
        let line = line.map_err(io)?;
        match line.trim() {
            "" => break,
            "/reset" => {
                conversation.reset(&mut session);
                continue;
            }
            user => {
                let prompt = conversation.turn_tokens(&mut session, &tokenizer, &template, user)?;
                let mut out = std::io::stdout();
                let reply = generate(&mut session, &tokenizer, &prompt, Some(128), &mut |text| {
                    out.write_all(text.as_bytes()).map_err(io)?;
                    out.flush().map_err(io)?;
                    Ok(Flow::Continue)
                })?;
                println!();
                eprintln!("({})", reply.speeds());
                conversation.record(&tokenizer, reply)?;
            }
        }
    }
    Ok(())
}
