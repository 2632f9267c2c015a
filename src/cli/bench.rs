//! `bench`: llama-bench's pp/tg table for one model on this adapter, the roofline the
//! algebra predicts from the adapter's bandwidth, memory as allocated and as predicted, and
//! (`--profile`) the time of each kernel in one decode step and one prefill chunk.

use std::collections::BTreeMap;
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use qwen_wgpu::error::Error;
use qwen_wgpu::loader::GgufFile;
use qwen_wgpu::model::algebra::{decode_bytes_per_token, WeightBytes};
use qwen_wgpu::report::parse_rate;
use qwen_wgpu::rng::SplitMix64;
use qwen_wgpu::runtime::experts::ExpertTraffic;
use qwen_wgpu::runtime::gpu::host_anonymous_memory;
use qwen_wgpu::runtime::session::{MinWorkgroups, NodeTime};
use qwen_wgpu::runtime::tensor::HOST_STORAGE_USAGE;
use qwen_wgpu::runtime::{GpuContext, Sampling, Session};

use crate::cli::model::{load, Loaded, ModelArgs};

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Prompt tokens of the prefill test (ppN).
    #[arg(short = 'p', long = "n-prompt", default_value_t = 512)]
    pub n_prompt: u32,
    /// Generated tokens of the decode test (tgN).
    #[arg(short = 'n', long = "n-gen", default_value_t = 128)]
    pub n_gen: u32,
    /// Timed repetitions of each test (after one warm-up run).
    #[arg(short = 'r', long, default_value_t = 3)]
    pub repetitions: u32,
    /// Device memory bandwidth for the roofline, e.g. 3.35TB/s (default: measured by a
    /// buffer copy).
    #[arg(long)]
    pub bandwidth: Option<String>,
    /// Also time each kernel of one decode step and one prefill chunk.
    #[arg(long)]
    pub profile: bool,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Mean and sample standard deviation.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Stat {
    pub mean: f64,
    pub sd: f64,
}

impl Stat {
    fn of(values: &[f64]) -> Stat {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = if values.len() > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Stat {
            mean,
            sd: var.sqrt(),
        }
    }
}

/// One kernel family's share of a step, summed over layers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KernelShare {
    pub kernel: String,
    pub calls: usize,
    pub dispatches: usize,
    pub ms: f64,
    pub percent: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Memory {
    /// Bytes allocated in VRAM: weights, KV cache, recurrent state, activations.
    pub vram_allocated: u64,
    /// What `inspect` predicts for the same context and batch.
    pub vram_predicted: f64,
    pub weights: u64,
    pub kv: u64,
    pub recurrent_state: u64,
    pub activations: u64,
    /// Anonymous host memory of this process after the benchmark (the file's map is not
    /// counted).
    pub host_anonymous: Option<u64>,
    /// Anonymous host memory the weight upload added and kept, less the weights themselves
    /// where the device's memory is host memory (a CPU device): the host copy a load leaves
    /// behind.
    pub host_kept_by_load: Option<i64>,
    /// Anonymous host memory added per token over the timed decode runs (bytes).
    pub host_growth_per_decode_token: Option<f64>,
    pub file_bytes: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    pub model: String,
    pub file: String,
    pub adapter: String,
    pub n_prompt: u32,
    pub n_gen: u32,
    pub repetitions: u32,
    pub prefill_tok_s: Stat,
    pub decode_tok_s: Stat,
    pub dispatches_per_token: usize,
    /// Memory barriers within a decode step, where steps are recorded directly (each one
    /// drains the GPU); none where wgpu's pass places them.
    pub barriers_per_token: Option<u32>,
    /// CPU time to prepare, record and submit one decode step (mean over the timed runs).
    pub host_us_per_token: Option<f64>,
    /// Of the steps of the timed decode runs, the share replayed rather than recorded,
    /// where steps are recorded directly.
    pub replayed_step_percent: Option<f64>,
    /// The decode plan's matvec launching the fewest workgroups.
    pub min_workgroups: Option<MinWorkgroups>,
    pub bandwidth_bytes_s: f64,
    pub bandwidth_measured: bool,
    pub bytes_per_token: f64,
    pub roofline_tok_s: f64,
    pub roofline_percent: f64,
    pub memory: Memory,
    pub decode_profile: Option<Vec<KernelShare>>,
    pub prefill_profile: Option<Vec<KernelShare>>,
    /// How the profile was timed.
    pub profile_timing: &'static str,
    /// Routed experts (summed over layers) in VRAM and in host memory (`--gpu-memory`).
    pub experts_resident: Option<u64>,
    pub experts_host: Option<u64>,
    /// Share of the timed decode tokens' routed reads served from VRAM.
    pub expert_hit_rate: Option<f64>,
    /// Expert bytes the timed decode tokens read from host memory, per token.
    pub expert_host_bytes_per_token: Option<f64>,
    /// Re-plans of the resident experts during the timed runs, and experts they moved.
    pub expert_replans: Option<u64>,
    pub experts_moved: Option<u64>,
    /// Host-to-VRAM copy bandwidth (bytes/s), measured when experts live in host memory.
    pub link_bandwidth_bytes_s: Option<f64>,
    /// Decode tok/s the split predicts from the measured hit rate and both bandwidths.
    pub expert_predicted_tok_s: Option<f64>,
}

fn bar(len: u64, message: &str) -> ProgressBar {
    let b = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}") {
        b.set_style(style.progress_chars("=> "));
    }
    b.set_message(message.to_string());
    b
}

/// Device copy bandwidth: a buffer copied several times, read plus write bytes per second.
pub fn copy_bandwidth(ctx: &GpuContext) -> Result<f64, Error> {
    let size = copy_size(ctx);
    let usage = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let (a, b) = (
        copy_buffer(ctx, "copy-a", size, usage),
        copy_buffer(ctx, "copy-b", size, usage),
    );
    // Each copy reads and writes the size.
    Ok(2.0 * timed_copies(ctx, [&a, &b], size)?)
}

/// Host link bandwidth, where host memory can be bound as storage (routed experts past
/// `--gpu-memory` live there): bytes per second copied from a buffer in host memory (the
/// usage of the experts' host copies) into VRAM, the bus the kernels read those experts
/// over. None where the adapter has no host storage.
pub fn link_bandwidth(ctx: &GpuContext) -> Result<Option<f64>, Error> {
    if !ctx.features.host_storage {
        return Ok(None);
    }
    let size = copy_size(ctx);
    let host = copy_buffer(ctx, "link-host", size, HOST_STORAGE_USAGE);
    let vram = copy_buffer(ctx, "link-vram", size, wgpu::BufferUsages::COPY_DST);
    Ok(Some(timed_copies(ctx, [&host, &vram], size)?))
}

/// Bytes a copy test moves: 256 MiB, or what one buffer and binding allow.
fn copy_size(ctx: &GpuContext) -> u64 {
    (256u64 << 20)
        .min(ctx.limits.max_buffer_size / 2)
        .min(ctx.limits.max_storage_buffer_binding_size)
        / 4
        * 4
}

fn copy_buffer(
    ctx: &GpuContext,
    label: &str,
    size: u64,
    usage: wgpu::BufferUsages,
) -> wgpu::Buffer {
    ctx.created.buffer();
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage,
        mapped_at_creation: false,
    })
}

/// Bytes per second of copies `from` -> `to` of `size` bytes: one warm-up copy, then six
/// in one submit, timed to the GPU's completion.
fn timed_copies(ctx: &GpuContext, [from, to]: [&wgpu::Buffer; 2], size: u64) -> Result<f64, Error> {
    let copies = |n: u32| -> Result<f64, Error> {
        let start = Instant::now();
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        for _ in 0..n {
            enc.copy_buffer_to_buffer(from, 0, to, 0, size);
        }
        ctx.queue.submit([enc.finish()]);
        ctx.wait()?;
        Ok(start.elapsed().as_secs_f64())
    };
    copies(1)?;
    let n = 6;
    let seconds = copies(n)?;
    Ok(size as f64 * n as f64 / seconds)
}

/// Sums node times by kernel family.
fn shares(times: &[NodeTime]) -> Vec<KernelShare> {
    let total: f64 = times.iter().map(|t| t.seconds).sum();
    let mut by: BTreeMap<&str, (usize, usize, f64)> = BTreeMap::new();
    for t in times {
        let e = by.entry(t.label).or_default();
        e.0 += 1;
        e.1 += t.dispatches;
        e.2 += t.seconds;
    }
    let mut out: Vec<KernelShare> = by
        .into_iter()
        .map(|(k, (calls, dispatches, s))| KernelShare {
            kernel: k.to_string(),
            calls,
            dispatches,
            ms: s * 1e3,
            percent: 100.0 * s / total.max(1e-12),
        })
        .collect();
    out.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    out
}

fn random_tokens(n: u32, vocab: u32, seed: u64) -> Vec<u32> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| rng.below(vocab as u64) as u32).collect()
}

fn prefill_once(session: &mut Session, tokens: &[u32]) -> Result<f64, Error> {
    session.reset();
    let start = Instant::now();
    session.prefill(tokens)?;
    // Sampling waits for the device, so the time covers the whole prefill.
    session.sample()?;
    Ok(tokens.len() as f64 / start.elapsed().as_secs_f64())
}

fn decode_once(session: &mut Session, n: u32, first: u32) -> Result<f64, Error> {
    session.reset();
    session.prefill(&[first])?;
    // The generation loop's pipelining: the clock starts at the first token, with the step
    // feeding it already queued, and stops when the n-th step's token is read.
    session.sample_ahead()?;
    session.decode_ahead()?;
    let start = Instant::now();
    for _ in 1..n {
        session.decode_ahead()?;
    }
    session.read_ahead()?;
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// The timed runs: prefill and decode rates after one warm-up each, and the host memory
/// decode added per token.
struct Runs {
    pp: Vec<f64>,
    tg: Vec<f64>,
    host_growth_per_token: Option<f64>,
    /// Mean CPU time to prepare, record and submit one decode step over the timed runs.
    host_us_per_token: Option<f64>,
    /// The share of the timed decode runs' steps replayed (see `BenchReport`).
    replayed_step_percent: Option<f64>,
    /// The routed expert reads of the timed decode runs, and their tokens.
    expert_decode: Option<(ExpertTraffic, f64)>,
}

fn timed_runs(session: &mut Session, args: &BenchArgs, prompt: &[u32]) -> Result<Runs, Error> {
    let reps = args.repetitions.max(1);
    let progress = bar(2 * (reps as u64 + 1), "benchmarking");
    let mut pp = Vec::new();
    let mut tg = Vec::new();
    for rep in 0..=reps {
        let rate = prefill_once(session, prompt)?;
        progress.inc(1);
        if rep > 0 {
            pp.push(rate);
        }
    }
    // The prompts' uses re-plan the resident experts, as the first interval of a real run
    // would; the timed decode then reads from a set that follows use.
    let model = session.model().clone();
    model.replan_experts()?;
    let mut host_after_warm_up = None;
    let mut experts_before = None;
    let mut replays_before = (0, 0);
    for rep in 0..=reps {
        let rate = decode_once(session, args.n_gen.max(1), prompt[0])?;
        progress.inc(1);
        if rep > 0 {
            tg.push(rate);
        } else {
            experts_before = model.expert_traffic()?;
            host_after_warm_up = host_anonymous_memory();
            session.take_host_time();
            replays_before = session.step_replays();
        }
    }
    // Each timed run decodes n_gen tokens after a one-token prefill.
    let tokens = (reps * (args.n_gen.max(1) + 1)) as f64;
    let expert_decode = match (experts_before, model.expert_traffic()?) {
        (Some(before), Some(after)) => Some((after.since(&before), tokens)),
        _ => None,
    };
    let host_us_per_token = session.take_host_time().us_per_step();
    let (recorded, replayed) = session.step_replays();
    let steps = (recorded - replays_before.0, replayed - replays_before.1);
    let replayed_step_percent =
        (steps.0 + steps.1 > 0).then(|| 100.0 * steps.1 as f64 / (steps.0 + steps.1) as f64);
    // Host memory must not grow with the tokens decoded (it did, 3 MiB a token, while
    // lavapipe recompiled shaders per dispatch).
    let decoded = (reps * args.n_gen.max(1)) as f64;
    let host_growth_per_token = host_after_warm_up
        .zip(host_anonymous_memory())
        .map(|(before, after)| (after as f64 - before as f64) / decoded);
    progress.finish_and_clear();
    Ok(Runs {
        pp,
        tg,
        host_growth_per_token,
        host_us_per_token,
        replayed_step_percent,
        expert_decode,
    })
}

/// Per-node shares of one decode step and one prefill chunk (`--profile`).
type Profiles = (Option<Vec<KernelShare>>, Option<Vec<KernelShare>>);

fn profiles(session: &mut Session, args: &BenchArgs, prompt: &[u32]) -> Result<Profiles, Error> {
    if !args.profile {
        return Ok((None, None));
    }
    session.reset();
    let chunk = &prompt[..prompt.len().min(session.options.ubatch as usize)];
    let prefill = shares(&session.profile_prefill(chunk)?);
    let token = session.sample()?;
    let (decode, _) = session.profile_decode(token)?;
    Ok((Some(shares(&decode)), Some(prefill)))
}

/// What the session allocated against what the algebra predicted, and what the host kept.
fn memory(
    session: &Session,
    loaded: &Loaded,
    weights: &WeightBytes,
    host_growth_per_token: Option<f64>,
) -> Memory {
    let state = session.state();
    let model = session.model();
    let plan = session.options.memory_plan(&loaded.config, weights);
    Memory {
        weights: model.weights.bytes,
        kv: state.kv_bytes(),
        recurrent_state: state.recurrent_bytes(),
        activations: session.scratch_bytes(),
        vram_allocated: model.weights.bytes
            + state.kv_bytes()
            + state.recurrent_bytes()
            + session.scratch_bytes(),
        vram_predicted: plan.total(),
        host_anonymous: host_anonymous_memory(),
        host_growth_per_decode_token: host_growth_per_token,
        host_kept_by_load: model.host_memory_at_load.map(|(before, after)| {
            let device_is_host = model.ctx.info.device_type == wgpu::DeviceType::Cpu;
            let weights = if device_is_host {
                model.weights.bytes
            } else {
                0
            };
            after as i64 - before as i64 - weights as i64
        }),
        file_bytes: std::fs::metadata(&loaded.path).map_or(0, |m| m.len()),
    }
}

pub fn bench(args: BenchArgs) -> Result<(), Error> {
    let mut margs = args.model.clone();
    // Room for the longer test.
    margs.context = margs.context.max(args.n_prompt.max(args.n_gen + 1));
    let mut loaded = load(&margs, margs.session_options(false))?;
    loaded.session.set_sampling(Sampling::greedy(), 0)?;
    let prompt = random_tokens(args.n_prompt.max(1), loaded.config.n_vocab, 1);
    let runs = timed_runs(&mut loaded.session, &args, &prompt)?;
    let (decode_profile, prefill_profile) = profiles(&mut loaded.session, &args, &prompt)?;
    let session = &loaded.session;
    let ctx = &session.model().ctx;
    let (bandwidth, measured) = match &args.bandwidth {
        Some(b) => (parse_rate(b, "B")?, false),
        None => (copy_bandwidth(ctx)?, true),
    };
    let split = session.model().experts.as_ref().map(|c| &c.split);
    // The bus matters only to a model with experts in host memory.
    let link = match split {
        Some(s) if s.experts_host() > 0 => link_bandwidth(ctx)?,
        _ => None,
    };
    let file = GgufFile::open(&loaded.path)?;
    let weights = WeightBytes::from_file(&loaded.config, &file);
    // The decode test's mean context.
    let traffic = decode_bytes_per_token(
        &loaded.config,
        &weights,
        (args.n_gen / 2 + 1) as u64,
        1,
        session.options.kv_dtype,
    );
    let bytes_per_token = traffic.total();
    let roofline = bandwidth / bytes_per_token;
    let decode = Stat::of(&runs.tg);
    let expert_decode = runs.expert_decode;
    let hit_rate = expert_decode.and_then(|(t, _)| t.hit_rate());
    let predicted = match (split, link, hit_rate) {
        (Some(s), Some(link), Some(hit)) => {
            Some(s.predicted_tok_per_s(bytes_per_token, 1.0 - hit, bandwidth, link))
        }
        _ => None,
    };
    let report = BenchReport {
        model: loaded.config.name.clone(),
        file: loaded.path.display().to_string(),
        adapter: ctx.describe(),
        n_prompt: args.n_prompt,
        n_gen: args.n_gen,
        repetitions: args.repetitions.max(1),
        prefill_tok_s: Stat::of(&runs.pp),
        decode_tok_s: decode,
        dispatches_per_token: session.decode_dispatches(),
        barriers_per_token: session.decode_barriers(),
        host_us_per_token: runs.host_us_per_token,
        replayed_step_percent: runs.replayed_step_percent,
        min_workgroups: session.decode_min_workgroups(),
        bandwidth_bytes_s: bandwidth,
        bandwidth_measured: measured,
        bytes_per_token,
        roofline_tok_s: roofline,
        roofline_percent: 100.0 * decode.mean / roofline,
        memory: memory(session, &loaded, &weights, runs.host_growth_per_token),
        decode_profile,
        prefill_profile,
        profile_timing: if ctx.features.timestamp_query {
            "GPU timestamp queries, one compute pass per node"
        } else {
            "CPU time around one submit per node"
        },
        experts_resident: split.map(|s| s.experts_resident()),
        experts_host: split.map(|s| s.experts_host()),
        expert_hit_rate: hit_rate,
        link_bandwidth_bytes_s: link,
        expert_predicted_tok_s: predicted,
        expert_host_bytes_per_token: expert_decode.map(|(t, n)| t.host_bytes / n),
        expert_replans: expert_decode.map(|(t, _)| t.replans),
        experts_moved: expert_decode.map(|(t, _)| t.moved),
    };
    if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::InvalidArgument(format!("cannot serialise the report: {e}")))?;
        println!("{text}");
    } else {
        print_report(&report);
    }
    Ok(())
}

fn print_report(r: &BenchReport) {
    let mib = |b: f64| b / (1u64 << 20) as f64;
    println!("model: {} ({})", r.model, r.file);
    println!("adapter: {}", r.adapter);
    println!();
    println!("| test   |              t/s |");
    println!("| ------ | ---------------: |");
    println!(
        "| pp{:<4} | {:>8.2} ± {:<5.2} |",
        r.n_prompt, r.prefill_tok_s.mean, r.prefill_tok_s.sd
    );
    println!(
        "| tg{:<4} | {:>8.2} ± {:<5.2} |",
        r.n_gen, r.decode_tok_s.mean, r.decode_tok_s.sd
    );
    println!();
    println!(
        "roofline: {:.2} MiB read per token at {:.2} GB/s ({}) -> {:.2} tok/s; decode reaches {:.1}%",
        mib(r.bytes_per_token),
        r.bandwidth_bytes_s / 1e9,
        if r.bandwidth_measured {
            "measured copy"
        } else {
            "given"
        },
        r.roofline_tok_s,
        r.roofline_percent
    );
    match r.barriers_per_token {
        Some(b) => println!(
            "dispatches per decode token: {} ({b} barriers between them)",
            r.dispatches_per_token
        ),
        None => println!("dispatches per decode token: {}", r.dispatches_per_token),
    }
    print_experts(r);
    print_decode_shape(r);
    let m = &r.memory;
    println!(
        "VRAM: {:.1} MiB allocated (weights {:.1}, KV {:.1}, recurrent {:.1}, activations {:.1}); {:.1} MiB predicted",
        mib(m.vram_allocated as f64),
        mib(m.weights as f64),
        mib(m.kv as f64),
        mib(m.recurrent_state as f64),
        mib(m.activations as f64),
        mib(m.vram_predicted)
    );
    if let Some(kept) = m.host_kept_by_load {
        println!(
            "host: loading kept {:.1} MiB beyond the weights in device memory ({:.1}% of the {:.1} MiB file)",
            mib(kept.max(0) as f64),
            100.0 * kept.max(0) as f64 / m.file_bytes.max(1) as f64,
            mib(m.file_bytes as f64)
        );
    }
    if let Some(h) = m.host_anonymous {
        println!(
            "host: {:.1} MiB anonymous memory after the benchmark, besides the file's map",
            mib(h as f64),
        );
    }
    if let Some(g) = m.host_growth_per_decode_token {
        println!(
            "host: {:+.1} KiB per decode token over the timed runs",
            g / 1024.0
        );
    }
    for (name, profile) in [
        ("decode step", &r.decode_profile),
        ("prefill chunk", &r.prefill_profile),
    ] {
        let Some(p) = profile else { continue };
        println!();
        println!("{name}, per kernel ({}):", r.profile_timing);
        println!("| kernel               | calls | dispatches |       ms |     % |");
        println!("| -------------------- | ----: | ---------: | -------: | ----: |");
        for k in p {
            println!(
                "| {:<20} | {:>5} | {:>10} | {:>8.3} | {:>5.1} |",
                k.kernel, k.calls, k.dispatches, k.ms, k.percent
            );
        }
    }
}

/// Where the routed experts live and what decode read from host memory.
fn print_experts(r: &BenchReport) {
    let (Some(resident), Some(host)) = (r.experts_resident, r.experts_host) else {
        return;
    };
    let hit = r
        .expert_hit_rate
        .map_or("-".into(), |h| format!("{:.1}%", 100.0 * h));
    let bytes = r.expert_host_bytes_per_token.unwrap_or(0.0) / (1u64 << 20) as f64;
    println!(
        "experts: {resident} in VRAM, {host} in host memory; decode hit rate {hit}, {bytes:.2} MiB a token from host memory ({} re-plans moved {})",
        r.expert_replans.unwrap_or(0),
        r.experts_moved.unwrap_or(0)
    );
    if let (Some(link), Some(tok_s)) = (r.link_bandwidth_bytes_s, r.expert_predicted_tok_s) {
        println!(
            "host link: {:.2} GB/s (measured copy from host memory); at the measured hit rate the split predicts {tok_s:.2} tok/s",
            link / 1e9
        );
    }
}

/// The host's time per decode token and the smallest matvec grid of the decode plan.
fn print_decode_shape(r: &BenchReport) {
    match (r.host_us_per_token, r.replayed_step_percent) {
        (Some(us), Some(replayed)) => println!(
            "host: {us:.0} us to prepare, record and submit a decode token ({replayed:.0}% of steps replayed)"
        ),
        (Some(us), None) => {
            println!("host: {us:.0} us to prepare, record and submit a decode token")
        }
        _ => {}
    }
    if let Some(m) = &r.min_workgroups {
        let layer = m.layer.map_or(String::new(), |l| format!(" of layer {l}"));
        println!(
            "fewest workgroups of a decode matvec: {} ({}{layer})",
            m.workgroups, m.label
        );
    }
}
