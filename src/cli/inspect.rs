//! Commands about models and devices that run nothing: `inspect`, `synth`, `presets`,
//! `devices`.

use std::path::PathBuf;

use clap::Args;

use qwen_wgpu::error::Error;
use qwen_wgpu::loader::presets::{self, PRESET_NAMES};
use qwen_wgpu::loader::synth::{synthetic_model, SynthOptions, Vocabulary};
use qwen_wgpu::loader::{GgmlType, GgufFile, ModelConfig};
use qwen_wgpu::model::algebra::Roofline;
use qwen_wgpu::report::{parse_rate, InspectOptions, InspectReport};
use qwen_wgpu::runtime::gpu::list_adapters;
use qwen_wgpu::runtime::{AdapterChoice, GpuContext};

use crate::cli::model::{parse_size, KvType};
use qwen_wgpu::demo::demo_model;
use qwen_wgpu::model::placement::DEFAULT_LINK_BYTES_PER_S;

#[derive(Args)]
pub struct InspectArgs {
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
    /// Sequences decoded together (a server's `--parallel` slots).
    #[arg(long, alias = "parallel", default_value_t = 1)]
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
    /// Show where a VRAM budget (e.g. 12GiB) puts the routed experts, and with
    /// --bandwidth the decode speed it predicts.
    #[arg(long, value_parser = parse_size)]
    gpu_memory: Option<u64>,
    /// Host-to-GPU link for that prediction [default: 25GB/s, PCIe 4.0 x16].
    #[arg(long)]
    link_bandwidth: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct SynthArgs {
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
    /// Type of the large weights: f32, f16, bf16, q8_0, q4_0, q4_K, q5_K, q6_K or iq4_xs; or
    /// q4_K_M, q4_K with q6_K where llama-quantize's Q4_K_M puts it.
    #[arg(long = "type", default_value = "f32")]
    weight_type: String,
    /// Routers that favour a few experts per layer, as trained ones do: the expert ranked r
    /// (a random order per layer) gets its router row scaled by (1 + r)^-SKEW. 0 spreads
    /// tokens evenly, which makes a VRAM expert cache pointless; 0.5 to 1 looks real.
    #[arg(long, default_value_t = 0.0)]
    router_skew: f32,
}

pub fn parse_type(name: &str) -> Result<GgmlType, Error> {
    GgmlType::from_name(name).ok_or_else(|| {
        Error::InvalidArgument(format!("unknown ggml type '{name}' (e.g. q4_K, q8_0, f16)"))
    })
}

pub fn inspect(args: InspectArgs) -> Result<(), Error> {
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
        kv_dtype: args.kv_type.into(),
        preset_weight_type: parse_type(&args.weights)?,
        roofline,
        gpu_memory: args.gpu_memory,
        link_bandwidth: match &args.link_bandwidth {
            Some(l) => parse_rate(l, "B")?,
            None => DEFAULT_LINK_BYTES_PER_S,
        },
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

pub fn synth(args: SynthArgs) -> Result<(), Error> {
    let config = presets::preset(&args.preset)?;
    // Q4_K_M is a mix over q4_K, not a ggml type of its own.
    let q4_k_m = args.weight_type.eq_ignore_ascii_case("q4_k_m");
    let opts = SynthOptions {
        seed: args.seed,
        weight_type: if q4_k_m {
            GgmlType::Q4K
        } else {
            parse_type(&args.weight_type)?
        },
        q4_k_m,
        vocabulary: if args.qwen35_vocab {
            Vocabulary::Qwen35
        } else {
            Vocabulary::Bytes
        },
        router_skew: args.router_skew,
        ..SynthOptions::default()
    };
    if !(args.router_skew >= 0.0 && args.router_skew.is_finite()) {
        return Err(Error::InvalidArgument(format!(
            "--router-skew {} must be a finite number >= 0",
            args.router_skew
        )));
    }
    synthetic_model(&config, &opts)?.write_to(&args.output)?;
    eprintln!("wrote {} ({})", args.output.display(), config.name);
    Ok(())
}

pub fn list_presets() -> Result<(), Error> {
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

pub fn devices(adapter: Option<&str>) -> Result<(), Error> {
    for a in list_adapters() {
        println!("{a}");
    }
    let gpu = GpuContext::new(&AdapterChoice::from_flag(adapter))?;
    println!("selected: {}", gpu.describe());
    Ok(())
}
