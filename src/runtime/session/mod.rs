//! The executor: a model resident in VRAM ([`GpuModel`]) and sequences run on it
//! ([`Session`]), each with its own caches, recurrent state, activation buffers and plans.
//!
//! A decode step is one submit: write the token id (4 bytes), move the plan to the position,
//! record forward + sampling ([`record`]: directly into the command buffer on Vulkan), copy
//! the sampled id to a mappable 4-byte buffer and read it. No buffer or bind group is
//! created on that path. Generation pipelines the
//! steps ([`ahead`]): each step feeds the id the previous one sampled on the GPU, so the
//! host reads a step's id while the next step runs.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, GpuError};
use crate::loader::config::ModelConfig;
use crate::loader::gguf::GgufFile;
use crate::model::algebra::{memory_plan, KvDtype, MemoryPlan, WeightBytes};
use crate::model::placement::ExpertSplit;
use crate::model::reference::sample::{Draw, Penalties};
use crate::rng::SplitMix64;
use crate::runtime::direct::Replays;
use crate::runtime::experts::{ExpertCache, ExpertTraffic};
use crate::runtime::gpu::{host_anonymous_memory, GpuContext};
use crate::runtime::graph::{self, Bindings, Graph, LogitRows};
use crate::runtime::host_clock::thread_cpu_seconds;
use crate::runtime::ops::sample::{
    Argmax, RepetitionPenalty, TopKSampler, MAX_PENALTY_WINDOW, MAX_TOP_K,
};
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::PipelineCache;
use crate::runtime::scratch::Scratch;
use crate::runtime::state::{check_kv_binding, SequenceState, StateSnapshot};
use crate::runtime::tensor::{map_read_after, read_f32};
use crate::runtime::weights::{self, ModelWeights, Progress};

mod ahead;
mod batch;
mod profile;
mod record;

pub use batch::DecodeBatch;

pub use profile::NodeTime;

/// Prompt tokens one prefill step takes unless told otherwise: llama.cpp's default, where
/// a matmul tile reads each weight once for 64 tokens and a MoE chunk gives each expert
/// enough of them to fill its tiles (pp512 on lavapipe: 4.29 tok/s against 3.22 at 128 with
/// the GPU forms, 4.86 against 4.57 with the CPU ones).
pub const DEFAULT_UBATCH: u32 = 512;

/// How a session is sized.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    /// Positions the KV cache holds.
    pub context: u32,
    /// Most tokens one prefill step processes.
    pub ubatch: u32,
    pub kv_dtype: KvDtype,
    /// Keep logits for every token of a step (perplexity, scoring), not just the last.
    pub all_logits: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            context: 4096,
            ubatch: DEFAULT_UBATCH,
            kv_dtype: KvDtype::F16,
            all_logits: false,
        }
    }
}

impl SessionOptions {
    /// Logit rows a session keeps.
    pub fn logit_rows(&self) -> u32 {
        if self.all_logits {
            self.ubatch
        } else {
            1
        }
    }

    /// What one session of this shape needs besides the weights.
    pub fn memory_plan(&self, config: &ModelConfig, weights: &WeightBytes) -> MemoryPlan {
        self.memory_plan_for(config, weights, 1)
    }

    /// What `sessions` sessions of this shape need besides the weights, with the
    /// [`DecodeBatch`] that steps them together when there are several.
    pub fn memory_plan_for(
        &self,
        config: &ModelConfig,
        weights: &WeightBytes,
        sessions: u32,
    ) -> MemoryPlan {
        memory_plan(
            config,
            weights,
            self.context as u64,
            sessions as u64,
            self.ubatch as u64,
            self.kv_dtype,
        )
    }
}

/// How the next token is drawn, on the GPU: repetition penalty, then greedy or top-k /
/// top-p / min-p at a temperature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// 0 picks the most likely token (greedy).
    pub temperature: f32,
    /// Candidates kept (0: the kernel's maximum, 64).
    pub top_k: u32,
    pub top_p: f32,
    pub min_p: f32,
    /// 1 disables it.
    pub repeat_penalty: f32,
    /// Subtracted from the logit of each token in the window (0 disables it).
    pub presence_penalty: f32,
    /// Subtracted per occurrence in the window (0 disables it).
    pub frequency_penalty: f32,
    /// Recent tokens (prompt included) the penalties cover.
    pub repeat_last_n: u32,
}

impl Sampling {
    pub fn greedy() -> Sampling {
        Sampling {
            temperature: 0.0,
            ..Sampling::default()
        }
    }

    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }

    /// Refuses settings the sampler cannot follow, naming the allowed ranges.
    pub fn validate(&self) -> Result<(), Error> {
        let ok = self.temperature >= 0.0
            && self.top_k <= MAX_TOP_K
            && self.top_p > 0.0
            && self.top_p <= 1.0
            && (0.0..=1.0).contains(&self.min_p)
            && self.repeat_penalty > 0.0
            && (-2.0..=2.0).contains(&self.presence_penalty)
            && (-2.0..=2.0).contains(&self.frequency_penalty)
            && self.repeat_last_n <= MAX_PENALTY_WINDOW;
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "sampling: temperature {} (>= 0), top-k {} (0..={MAX_TOP_K}), top-p {} (0, 1], \
                 min-p {} [0, 1], repeat penalty {} (> 0), presence penalty {} and frequency \
                 penalty {} [-2, 2], over {} tokens (at most {MAX_PENALTY_WINDOW})",
                self.temperature,
                self.top_k,
                self.top_p,
                self.min_p,
                self.repeat_penalty,
                self.presence_penalty,
                self.frequency_penalty,
                self.repeat_last_n
            )))
        }
    }
}

impl Default for Sampling {
    /// llama.cpp's defaults.
    fn default() -> Self {
        Sampling {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            repeat_last_n: 64,
        }
    }
}

/// How a model is loaded: the sessions it must hold besides its weights, and the VRAM
/// budget that decides which routed experts stay in host memory.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Sessions shaped by the plan's [`SessionOptions`] (a server's slots).
    pub sessions: u32,
    /// VRAM bytes the model and its sessions may take (`--gpu-memory`); routed experts
    /// past it are read from host memory. `None`: what the device reports, where it does
    /// (`QWEN_WGPU_MEMORY_GIB` on a GPU; wgpu reports no VRAM size), else everything in VRAM.
    pub gpu_memory: Option<u64>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            sessions: 1,
            gpu_memory: None,
        }
    }
}

/// A model's weights and pipelines in VRAM, shared by its sessions.
pub struct GpuModel {
    pub ctx: GpuContext,
    pub cache: PipelineCache,
    pub config: ModelConfig,
    pub weights: ModelWeights,
    /// Where the routed experts live and how their resident sets follow use (MoE models).
    pub experts: Option<ExpertCache>,
    /// Anonymous host memory (bytes) just before and just after the upload, where the OS
    /// reports it: what loading kept on the host besides the file's map.
    pub host_memory_at_load: Option<(u64, u64)>,
}

const GIB: f64 = (1u64 << 30) as f64;

impl GpuModel {
    /// Checks that the weights and one session shaped by `plan_for` fit the device, then
    /// uploads every tensor once.
    pub fn load(
        ctx: GpuContext,
        file: &GgufFile,
        config: &ModelConfig,
        plan_for: &SessionOptions,
        progress: Progress<'_>,
    ) -> Result<Arc<GpuModel>, Error> {
        GpuModel::load_with(
            ctx,
            file,
            config,
            plan_for,
            LoadOptions::default(),
            progress,
        )
    }

    /// [`GpuModel::load`] for `load.sessions` sessions shaped by `plan_for` within
    /// `load.gpu_memory`, refused before any upload when they do not fit.
    pub fn load_with(
        ctx: GpuContext,
        file: &GgufFile,
        config: &ModelConfig,
        plan_for: &SessionOptions,
        load: LoadOptions,
        progress: Progress<'_>,
    ) -> Result<Arc<GpuModel>, Error> {
        // The KV cache's own limit first: past it no budget matters.
        check_kv_binding(&ctx, config, plan_for.context, plan_for.kv_dtype)?;
        let wb = WeightBytes::from_file(config, file);
        let mut plan = plan_for.memory_plan_for(config, &wb, load.sessions.max(1));
        // A CPU device's "VRAM" is host memory: moving experts to host memory frees none.
        let reported = (ctx.info.device_type != wgpu::DeviceType::Cpu)
            .then(|| ctx.memory_budget())
            .flatten();
        let split = ExpertSplit::plan(config, &wb, &plan, load.gpu_memory.or(reported))?;
        if !split.all_resident() && !ctx.features.host_storage {
            return Err(GpuError::Device(format!(
                "{} cannot read storage buffers in host memory (no MAPPABLE_PRIMARY_BUFFERS), so the routed experts cannot stay outside VRAM: {:.2} GiB would",
                ctx.info.name,
                split.host_bytes() / GIB
            ))
            .into());
        }
        plan.weights -= split.host_bytes();
        if let Some(budget) = ctx.memory_budget() {
            check_fits(&plan, plan_for.context, budget, &ctx.info.name)?;
        }
        let before = host_anonymous_memory();
        let weights = weights::upload(&ctx, file, config, &split, progress)?;
        let host_memory_at_load = before.zip(host_anonymous_memory());
        let experts = config
            .moe()
            .is_some()
            .then(|| ExpertCache::new(&ctx, split, &weights.layers));
        Ok(Arc::new(GpuModel {
            ctx,
            cache: PipelineCache::default(),
            config: config.clone(),
            weights,
            experts,
            host_memory_at_load,
        }))
    }

    /// Called after each submit of `tokens` tokens: lets the resident experts follow use.
    /// The step has run by then, so a failed re-plan is logged rather than losing it; the
    /// table stays as it was, which is correct, only slower.
    pub(crate) fn tend_experts(&self, tokens: u64) {
        if let Some(cache) = &self.experts {
            if let Err(e) = cache.tend(&self.ctx, &self.weights.layers, tokens) {
                log::warn!("re-planning the resident experts: {e}");
            }
        }
    }

    /// Routed expert reads so far (waits for the submitted work); `None` without experts.
    pub fn expert_traffic(&self) -> Result<Option<ExpertTraffic>, Error> {
        match &self.experts {
            Some(cache) => Ok(Some(cache.traffic(&self.ctx, &self.weights.layers)?)),
            None => Ok(None),
        }
    }

    /// Re-plans the resident experts from the uses counted so far, now.
    pub fn replan_experts(&self) -> Result<(), Error> {
        if let Some(cache) = &self.experts {
            cache.replan_now(&self.ctx, &self.weights.layers)?;
        }
        Ok(())
    }
}

/// Fails, saying by how much and what context would fit, when `plan` (for a context of
/// `context` tokens) exceeds `budget` bytes of device memory.
pub fn check_fits(
    plan: &MemoryPlan,
    context: u32,
    budget: u64,
    device: &str,
) -> Result<(), GpuError> {
    let need = plan.total();
    if need <= budget as f64 {
        return Ok(());
    }
    let per_token = plan.kv as f64 / context.max(1) as f64;
    let spare = budget as f64 - (need - plan.kv as f64);
    let hint = if spare >= per_token && per_token > 0.0 {
        format!(
            "a context of at most {} tokens would fit (--ctx)",
            (spare / per_token) as u64
        )
    } else {
        "the weights alone do not fit: use a smaller quantization or a larger device".into()
    };
    Err(GpuError::OutOfMemory(format!(
        "the model needs {:.2} GiB (weights {:.2}, KV cache {:.2} for {context} tokens, state and activations {:.2}) but {device} has {:.2} GiB available, {:.2} GiB short; {hint}",
        need / GIB,
        plan.weights / GIB,
        plan.kv as f64 / GIB,
        (plan.recurrent_state + plan.activations) as f64 / GIB,
        budget as f64 / GIB,
        (need - budget as f64) / GIB,
    )))
}

/// Plans for prefill chunks kept between calls: the full chunk and a few remainders.
const PREFILL_PLANS_KEPT: usize = 4;

/// Directly recorded steps a session keeps for replay: its decode step in both sampling
/// forms, the step that draws from logits already there, and a prompt chunk.
const STEPS_KEPT: usize = 4;

/// One sequence on a [`GpuModel`].
pub struct Session {
    /// Unique among the process's sessions: names it in batched plans.
    id: u64,
    /// Held only here: a batch's plans watch it (through a `Weak`) to let go of the buffers
    /// of a session that was dropped.
    alive: Arc<()>,
    model: Arc<GpuModel>,
    pub options: SessionOptions,
    state: SequenceState,
    scratch: Scratch,
    decode: Graph,
    prefill: HashMap<(u32, LogitRows), Graph>,
    argmax: Argmax,
    top_k: Option<TopKSampler>,
    penalty: RepetitionPenalty,
    sampling: Sampling,
    /// Every token the sequence holds, for the repetition penalty and for callers.
    history: Vec<u32>,
    rng: SplitMix64,
    /// Which logits row holds the last token's logits, once a step has computed them.
    last_row: Option<u32>,
    /// CPU time spent preparing, recording and submitting decode steps.
    host: HostTime,
    /// Barriers within the last decode step ([`Session::decode_barriers`]).
    decode_barriers: Option<u32>,
    /// The session's directly recorded steps, kept for replay (shared only with its own
    /// step while it is recorded).
    replays: Arc<Replays>,
    /// The submitted step whose sampled id has not been read ([`ahead`]).
    ahead: Option<ahead::Ahead>,
    /// The read-back buffer (of `scratch.sampled_reads`) the next step copies its id into.
    next_read: usize,
}

/// Where the token of a step comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepInput {
    /// No forward pass: the step samples the logits already there.
    Logits,
    /// The id the host wrote into `scratch.tokens`.
    Host,
    /// The id the previous step sampled, still on the GPU.
    Sampled,
}

/// How a step draws, set up by [`Session::prepare_draw`] before recording.
struct DrawPlan {
    penalise: bool,
    /// Top-k sampling rather than the argmax.
    top_k: bool,
}

/// A submitted step and the read-back buffer its id goes to.
#[derive(Debug, Clone)]
struct Submitted {
    read: usize,
    submission: wgpu::SubmissionIndex,
}

/// CPU time (the thread's, not the wall clock's: see [`thread_cpu_seconds`]) the host spent
/// on decode steps before handing them to the GPU (writing the token, moving the plan,
/// recording, submitting), and how many steps.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostTime {
    pub seconds: f64,
    pub steps: u64,
}

impl HostTime {
    /// Mean microseconds a step, if any step ran.
    pub fn us_per_step(&self) -> Option<f64> {
        (self.steps > 0).then(|| 1e6 * self.seconds / self.steps as f64)
    }
}

/// The matvec of a plan that launches the fewest workgroups.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MinWorkgroups {
    pub label: &'static str,
    pub layer: Option<usize>,
    pub workgroups: u64,
}

impl Session {
    pub fn new(model: Arc<GpuModel>, options: SessionOptions) -> Result<Session, Error> {
        if options.context == 0 {
            return Err(Error::InvalidArgument(
                "--ctx must be at least 1 token".into(),
            ));
        }
        if options.ubatch == 0 {
            return Err(Error::InvalidArgument(
                "--ubatch must be at least 1 token".into(),
            ));
        }
        let ctx = &model.ctx;
        let config = &model.config;
        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let state = SequenceState::new(ctx, config, options.context, options.kv_dtype)?;
        let scratch = Scratch::new(
            ctx,
            config,
            options.ubatch,
            options.logit_rows(),
            options.context,
        )?;
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::OutOfMemory(format!(
                "allocating the KV cache for {} tokens and the activations: {e}; try a smaller --ctx",
                options.context
            ))
            .into());
        }
        let bindings = Bindings {
            ctx,
            cache: &model.cache,
            config,
            weights: &model.weights,
            state: &state,
            scratch: &scratch,
        };
        let mut decode = graph::build(&bindings, 1, LogitRows::Last)?;
        decode.bind_direct(ctx)?;
        let mut argmax = Argmax::new(ctx, &model.cache, config.n_vocab, scratch.sample_buffers())?;
        argmax.partial.bind_direct(ctx)?;
        argmax.reduce.bind_direct(ctx)?;
        let mut penalty = RepetitionPenalty::new(
            ctx,
            &model.cache,
            config.n_vocab,
            MAX_PENALTY_WINDOW,
            &scratch.logits,
            &scratch.recent,
        )?;
        penalty.dispatch.bind_direct(ctx)?;
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Ok(Session {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            alive: Arc::new(()),
            options,
            state,
            scratch,
            decode,
            prefill: HashMap::new(),
            argmax,
            top_k: None,
            penalty,
            sampling: Sampling::greedy(),
            history: Vec::new(),
            rng: SplitMix64::new(0),
            last_row: None,
            host: HostTime::default(),
            decode_barriers: None,
            replays: Arc::new(Replays::new(STEPS_KEPT)),
            ahead: None,
            next_read: 0,
            model,
        })
    }

    pub fn model(&self) -> &Arc<GpuModel> {
        &self.model
    }

    /// Tokens processed so far.
    pub fn position(&self) -> u32 {
        self.state.pos
    }

    pub fn state(&self) -> &SequenceState {
        &self.state
    }

    /// Bytes of this session's activation buffers.
    pub fn scratch_bytes(&self) -> u64 {
        self.scratch.bytes
    }

    /// Memory barriers within the last decode step, where steps are recorded directly (wgpu's
    /// pass places its own, uncounted): each makes the GPU finish what came before it.
    pub fn decode_barriers(&self) -> Option<u32> {
        self.decode_barriers
    }

    /// Steps recorded and steps replayed so far, where steps are recorded directly (both
    /// zero elsewhere): a decode step is recorded again only when its attention grid grows.
    pub fn step_replays(&self) -> (u64, u64) {
        self.replays.counts()
    }

    /// Dispatches of one decode step with the current sampling: the forward pass, the
    /// repetition penalty when on, and the sampler's two passes.
    pub fn decode_dispatches(&self) -> usize {
        self.decode.dispatch_count() + usize::from(self.penalises()) + 2
    }

    fn penalises(&self) -> bool {
        let s = &self.sampling;
        let any =
            s.repeat_penalty != 1.0 || s.presence_penalty != 0.0 || s.frequency_penalty != 0.0;
        any && s.repeat_last_n > 0
    }

    /// Forgets the sequence (the next token is at position 0), and any step sampled ahead.
    pub fn reset(&mut self) {
        self.ahead = None;
        let ctx = &self.model.ctx;
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        self.state.reset(&mut enc);
        ctx.queue.submit([enc.finish()]);
        self.last_row = None;
        self.history.clear();
    }

    /// A copy of the sequence's state now, to resume from with [`Session::restore`] after
    /// it has gone on (a prompt cache keeps these at message boundaries).
    pub fn snapshot(&self) -> Result<StateSnapshot, Error> {
        self.check_settled()?;
        let ctx = &self.model.ctx;
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        let snapshot = self.state.snapshot(ctx, self.history.clone(), &mut enc);
        ctx.queue.submit([enc.finish()]);
        Ok(snapshot)
    }

    /// Goes back to `snapshot`, taken from this session at a point its history still
    /// starts with: the attention caches below that point hold the same tokens, and the
    /// recurrent states are copied back. The next step must feed a token (no logits are
    /// kept).
    pub fn restore(&mut self, snapshot: &StateSnapshot) -> Result<(), Error> {
        self.check_settled()?;
        let pos = snapshot.pos() as usize;
        let same_layout = self.state.recurrent_bytes() == snapshot.bytes();
        if !same_layout || !self.history.starts_with(snapshot.tokens()) || pos > self.history.len()
        {
            return Err(Error::InvalidArgument(format!(
                "restore: the snapshot at position {pos} is not of this sequence (it holds {} \
                 tokens, the snapshot {})",
                self.history.len(),
                snapshot.tokens().len()
            )));
        }
        let ctx = &self.model.ctx;
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        self.state.restore(snapshot, &mut enc);
        ctx.queue.submit([enc.finish()]);
        self.history.truncate(pos);
        self.last_row = None;
        Ok(())
    }

    /// Drops the tokens past `len` when no recurrent state has to go back with them: a
    /// model with attention layers only (qwen3moe) can resume anywhere.
    pub fn truncate(&mut self, len: usize) -> Result<bool, Error> {
        self.check_settled()?;
        if self.state.recurrent_bytes() > 0 || len > self.history.len() {
            return Ok(false);
        }
        if len < self.history.len() {
            self.history.truncate(len);
            self.state.pos = len as u32;
            self.last_row = None;
        }
        Ok(true)
    }

    /// Sets how tokens are drawn from now on; `seed` starts the draws.
    pub fn set_sampling(&mut self, sampling: Sampling, seed: u64) -> Result<(), Error> {
        // A draw in flight was made with the old settings, and discarding it would rewind
        // the old generator over the new one.
        self.check_settled()?;
        sampling.validate()?;
        let k = if sampling.top_k == 0 {
            MAX_TOP_K
        } else {
            sampling.top_k
        };
        let rebuild = match (&self.top_k, sampling.is_greedy()) {
            (_, true) => false,
            (None, false) => true,
            (Some(_), false) => self.sampling.is_greedy() || self.sampling.top_k != sampling.top_k,
        };
        if rebuild {
            let mut s = TopKSampler::new(
                &self.model.ctx,
                &self.model.cache,
                self.model.config.n_vocab,
                k,
                self.scratch.sample_buffers(),
            )?;
            s.partial.bind_direct(&self.model.ctx)?;
            s.sample.bind_direct(&self.model.ctx)?;
            self.top_k = Some(s);
        }
        self.sampling = sampling;
        self.rng = SplitMix64::new(seed);
        Ok(())
    }

    pub fn sampling(&self) -> Sampling {
        self.sampling
    }

    /// The tokens the sequence holds (prompt and generated).
    pub fn history(&self) -> &[u32] {
        &self.history
    }

    /// Refuses a step while one sampled ahead has its id unread: the step would run on
    /// logits and state the caller has not accounted for.
    fn check_settled(&self) -> Result<(), Error> {
        if self.ahead.is_some() {
            return Err(Error::InvalidArgument(
                "a step sampled ahead is still in flight: read_ahead or discard_ahead first".into(),
            ));
        }
        Ok(())
    }

    fn check_tokens(&self, tokens: &[u32]) -> Result<(), Error> {
        self.check_settled()?;
        let needed = self.state.pos as u64 + tokens.len() as u64;
        if needed > self.options.context as u64 {
            return Err(Error::ContextFull {
                needed,
                capacity: self.options.context,
            });
        }
        let v = self.model.config.n_vocab;
        if let Some(t) = tokens.iter().find(|&&t| t >= v) {
            return Err(Error::InvalidArgument(format!(
                "token id {t} is outside the vocabulary of {v}"
            )));
        }
        Ok(())
    }

    /// Runs `tokens` (the prompt, or a new turn) in chunks of the batch size, leaving the
    /// last token's logits ready for [`Session::sample`] or [`Session::logits`].
    pub fn prefill(&mut self, tokens: &[u32]) -> Result<(), Error> {
        self.check_tokens(tokens)?;
        let chunks: Vec<&[u32]> = tokens.chunks(self.options.ubatch as usize).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let rows = if i + 1 == chunks.len() {
                LogitRows::Last
            } else {
                LogitRows::None
            };
            self.run_chunk(chunk, rows)?;
        }
        if !tokens.is_empty() {
            self.last_row = Some(0);
        }
        Ok(())
    }

    /// Runs `tokens` and returns every token's logits ([n_vocab] each).
    pub fn forward_all(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>, Error> {
        if !self.options.all_logits {
            return Err(Error::InvalidArgument(
                "this session keeps only the last logits (SessionOptions::all_logits)".into(),
            ));
        }
        self.check_tokens(tokens)?;
        let v = self.model.config.n_vocab as usize;
        let mut out = Vec::with_capacity(tokens.len());
        for chunk in tokens.chunks(self.options.ubatch as usize) {
            self.run_chunk(chunk, LogitRows::All)?;
            let flat = read_f32(&self.model.ctx, &self.scratch.logits, chunk.len() * v)?;
            out.extend(flat.chunks_exact(v).map(<[f32]>::to_vec));
            self.last_row = Some(chunk.len() as u32 - 1);
        }
        Ok(out)
    }

    /// The plan of a step over `n` tokens computing `rows`, built on first use.
    fn plan(&mut self, n: u32, rows: LogitRows) -> Result<&mut Graph, Error> {
        if n == 1 && rows == LogitRows::Last {
            return Ok(&mut self.decode);
        }
        if !self.prefill.contains_key(&(n, rows)) {
            if self.prefill.len() >= PREFILL_PLANS_KEPT {
                // Keep the full-batch plans, which every long prompt reuses.
                let ubatch = self.options.ubatch;
                self.prefill.retain(|&(m, _), _| m == ubatch);
            }
            let bindings = Bindings {
                ctx: &self.model.ctx,
                cache: &self.model.cache,
                config: &self.model.config,
                weights: &self.model.weights,
                state: &self.state,
                scratch: &self.scratch,
            };
            let mut g = graph::build(&bindings, n, rows)?;
            g.bind_direct(&self.model.ctx)?;
            self.prefill.insert((n, rows), g);
        }
        self.prefill
            .get_mut(&(n, rows))
            .ok_or_else(|| GpuError::Shape("prefill plan vanished".into()).into())
    }

    /// Writes the chunk's tokens and returns its plan, moved to the current position.
    fn prepare_chunk(&mut self, chunk: &[u32], rows: LogitRows) -> Result<&mut Graph, Error> {
        self.model
            .ctx
            .queue
            .write_buffer(&self.scratch.tokens, 0, bytemuck::cast_slice(chunk));
        self.place_plan(chunk.len() as u32, rows)
    }

    /// The plan of `n` tokens computing `rows`, moved to the current position.
    fn place_plan(&mut self, n: u32, rows: LogitRows) -> Result<&mut Graph, Error> {
        let pos = self.state.pos;
        let model = Arc::clone(&self.model);
        let graph = self.plan(n, rows)?;
        graph.set_position(&model.ctx.queue, pos)?;
        Ok(graph)
    }

    fn run_chunk(&mut self, chunk: &[u32], rows: LogitRows) -> Result<(), Error> {
        let model = Arc::clone(&self.model);
        let ctx = &model.ctx;
        let replays = Arc::clone(&self.replays);
        let graph = self.prepare_chunk(chunk, rows)?;
        let step = record::Step {
            feeds: Vec::new(),
            plan: Some(graph),
            draws: Vec::new(),
            replays: &replays,
        };
        step.record(ctx)?.submit(&ctx.queue);
        model.tend_experts(chunk.len() as u64);
        self.state.pos += chunk.len() as u32;
        self.history.extend_from_slice(chunk);
        Ok(())
    }

    /// The last computed token's logits (read back: for tests and tools, not generation).
    pub fn logits(&self) -> Result<Vec<f32>, Error> {
        let row = self
            .last_row
            .ok_or_else(|| Error::InvalidArgument("no logits yet: prefill first".into()))?;
        let v = self.model.config.n_vocab as usize;
        let all = read_f32(
            &self.model.ctx,
            &self.scratch.logits,
            (row as usize + 1) * v,
        )?;
        Ok(all[row as usize * v..].to_vec())
    }

    /// Draws the next token from the logits the last prefill left.
    pub fn sample(&mut self) -> Result<u32, Error> {
        if self.last_row != Some(0) {
            return Err(Error::InvalidArgument(
                "sampling needs a prefill or decode step's last logits".into(),
            ));
        }
        self.check_settled()?;
        self.submit_step(StepInput::Logits)
    }

    /// The host's time on decode steps since the last call, which starts a new count.
    pub fn take_host_time(&mut self) -> HostTime {
        std::mem::take(&mut self.host)
    }

    /// The decode plan's matvec with the fewest workgroups.
    pub fn decode_min_workgroups(&self) -> Option<MinWorkgroups> {
        self.decode
            .min_matvec_workgroups()
            .map(|(node, workgroups)| MinWorkgroups {
                label: node.label,
                layer: node.layer,
                workgroups,
            })
    }

    /// Runs `token` at the next position and draws the token after it, in one submit.
    pub fn decode(&mut self, token: u32) -> Result<u32, Error> {
        let started = thread_cpu_seconds();
        self.check_tokens(&[token])?;
        self.prepare_chunk(&[token], LogitRows::Last)?;
        self.history.push(token);
        let next = self.record_and_submit(StepInput::Host).and_then(|step| {
            self.host.seconds += thread_cpu_seconds() - started;
            self.host.steps += 1;
            self.read_sampled(step)
        });
        if next.is_err() {
            self.history.pop();
        }
        let next = next?;
        self.state.pos += 1;
        self.last_row = Some(0);
        Ok(next)
    }

    /// Records (the decode plan and) the penalty and sampler, submits, and reads the id.
    fn submit_step(&mut self, input: StepInput) -> Result<u32, Error> {
        let step = self.record_and_submit(input)?;
        self.read_sampled(step)
    }

    /// Waits for `step` (not for steps submitted after it) and reads the id it sampled.
    fn read_sampled(&self, step: Submitted) -> Result<u32, Error> {
        let id = map_read_after(
            &self.model.ctx,
            &self.scratch.sampled_reads[step.read],
            4,
            Some(step.submission),
        )?;
        Ok(u32::from_le_bytes([id[0], id[1], id[2], id[3]]))
    }

    /// Records (the decode plan and) the penalty and sampler, and submits them with the copy
    /// of the sampled id to the next read-back buffer. For [`StepInput::Sampled`] the
    /// previous step's id is copied on the GPU into the token buffer and, when the penalty
    /// is on, into the last slot of its window: the host does not know it yet.
    fn record_and_submit(&mut self, input: StepInput) -> Result<Submitted, Error> {
        let draw = self.prepare_draw(input)?;
        let model = Arc::clone(&self.model);
        let ctx = &model.ctx;
        let mut recorded = {
            let feeds = match input {
                StepInput::Sampled => vec![record::Feed {
                    session: self,
                    draw: &draw,
                    tokens: &self.scratch.tokens,
                    at: 0,
                }],
                _ => Vec::new(),
            };
            let step = record::Step {
                feeds,
                plan: (input != StepInput::Logits).then_some(&self.decode),
                draws: vec![(&*self, &draw)],
                replays: &self.replays,
            };
            step.record(ctx)?
        };
        let read = self.record_read(&mut recorded.encoder);
        let barriers = recorded.barriers;
        let submission = recorded.submit(&ctx.queue);
        if input != StepInput::Logits {
            self.model.tend_experts(1);
            self.decode_barriers = barriers;
        }
        Ok(Submitted { read, submission })
    }

    /// Sets up the next draw on the host: the penalty's window of known tokens (`input`
    /// says whether the last one is still on the GPU) and the draw's parameters (which
    /// takes the generator's next number).
    fn prepare_draw(&mut self, input: StepInput) -> Result<DrawPlan, Error> {
        let ctx = &self.model.ctx;
        let sp = self.sampling;
        let penalise = self.penalises();
        let unknown = usize::from(input == StepInput::Sampled);
        if penalise {
            let n = sp.repeat_last_n as usize;
            let start = (self.history.len() + unknown).saturating_sub(n);
            let known = &self.history[start.min(self.history.len())..];
            // The token still on the GPU goes first (its feed copies it to slot 0) and the
            // known ones after it: the penalty counts, whatever the order, and a copy to a
            // fixed slot keeps the step's commands the same from token to token (replayed).
            ctx.queue.write_buffer(
                &self.scratch.recent,
                4 * unknown as u64,
                bytemuck::cast_slice(known),
            );
            let penalties = Penalties {
                repeat: sp.repeat_penalty,
                presence: sp.presence_penalty,
                frequency: sp.frequency_penalty,
            };
            self.penalty
                .set(&ctx.queue, penalties, (known.len() + unknown) as u32)?;
        }
        let top_k = match (&mut self.top_k, sp.is_greedy()) {
            (Some(s), false) => {
                let draw = Draw {
                    temperature: sp.temperature,
                    top_p: sp.top_p,
                    min_p: sp.min_p,
                    u: self.rng.unit_f32(),
                };
                s.set_draw(&ctx.queue, &draw)?;
                true
            }
            _ => false,
        };
        Ok(DrawPlan { penalise, top_k })
    }

    /// The penalty and the sampler over this session's logits, in order.
    fn draw_dispatches(&self, draw: &DrawPlan) -> Vec<&Dispatch> {
        let mut out = Vec::with_capacity(3);
        if draw.penalise {
            out.push(&self.penalty.dispatch);
        }
        match (&self.top_k, draw.top_k) {
            (Some(s), true) => out.extend([&s.partial, &s.sample]),
            _ => out.extend([&self.argmax.partial, &self.argmax.reduce]),
        }
        out
    }

    /// Copies the sampled id to the next read-back buffer; returns which.
    fn record_read(&mut self, enc: &mut wgpu::CommandEncoder) -> usize {
        let read = self.next_read;
        self.next_read = 1 - read;
        enc.copy_buffer_to_buffer(
            &self.scratch.sampled,
            0,
            &self.scratch.sampled_reads[read],
            0,
            4,
        );
        read
    }
}
