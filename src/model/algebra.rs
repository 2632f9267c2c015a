//! The contract algebra: parameter counts, FLOPs, KV-cache and recurrent-state sizes, the
//! memory plan and the bandwidth/compute roofline, computed from a [`ModelConfig`] alone
//! (presets) or with a GGUF's actual tensor types.
//!
//! Contracts implemented (`shared/seeds/`): hybrid-layer-dispatch-v1 (dispatch, head
//! grouping, linear shapes), kv-cache-sizing-v1 (per-token and total KV, hybrid accounting),
//! qwen3moe-e2e-verification-v1 (total/active parameters, FLOPs, memory, roofline, shapes).
//! Every count is derived from [`ModelConfig::tensor_specs`], the same list that validates
//! files and drives the synthetic writer.

use std::collections::BTreeMap;

use crate::error::ConfigError;
use crate::loader::config::{ExpertStorage, LayerKind, ModelConfig, TensorRole, TensorSpec};
use crate::loader::gguf::GgufFile;
use crate::loader::names::{self, blk, layer as t};
use crate::loader::quant::GgmlType;

/// Element type of the KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum KvDtype {
    F16,
    F32,
}

impl KvDtype {
    pub fn bytes(self) -> u64 {
        match self {
            KvDtype::F16 => 2,
            KvDtype::F32 => 4,
        }
    }
}

/// KV bytes one token adds to one attention layer: `2 * n_kv * d_k * sizeof(dtype)`
/// (the 2 is K and V).
pub fn kv_bytes_per_token_per_layer(n_kv: u64, d_k: u64, dtype: KvDtype) -> u64 {
    2 * n_kv * d_k * dtype.bytes()
}

/// Layers that hold a KV cache: only full-attention layers (hybrid accounting).
pub fn kv_layers(config: &ModelConfig) -> u64 {
    config.n_attention_layers() as u64
}

/// KV bytes one token adds across the model.
pub fn kv_bytes_per_token(config: &ModelConfig, dtype: KvDtype) -> u64 {
    let a = &config.attention;
    kv_layers(config) * kv_bytes_per_token_per_layer(a.n_head_kv.into(), a.head_dim.into(), dtype)
}

/// `L_attn * S * 2 * n_kv * d_k * bytes` for one sequence of `seq_len` tokens.
pub fn kv_total_bytes(config: &ModelConfig, seq_len: u64, dtype: KvDtype) -> u64 {
    seq_len * kv_bytes_per_token(config, dtype)
}

/// Recurrent state of one sequence across all Gated DeltaNet layers, in f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RecurrentStateBytes {
    /// The ring of the last `conv_kernel` inputs of every conv channel (`conv_ring_len`).
    pub conv: u64,
    /// One `d_k x d_v` matrix per value head.
    pub delta: u64,
}

impl RecurrentStateBytes {
    pub fn total(&self) -> u64 {
        self.conv + self.delta
    }
}

pub fn recurrent_state_bytes(config: &ModelConfig) -> RecurrentStateBytes {
    let Some(g) = &config.gdn else {
        return RecurrentStateBytes { conv: 0, delta: 0 };
    };
    let layers = config.n_linear_layers() as u64;
    let conv = g.conv_ring_len() * 4;
    let delta = g.delta_state_len() * 4;
    RecurrentStateBytes {
        conv: layers * conv,
        delta: layers * delta,
    }
}

/// Parameters of a tensor that one token uses: routed experts count `k` of their `n`.
fn active_elements(config: &ModelConfig, spec: &TensorSpec) -> u64 {
    match (spec.role, config.moe()) {
        (TensorRole::RoutedExperts, Some(m)) => {
            spec.n_elements() / m.n_expert as u64 * m.n_expert_used as u64
        }
        _ => spec.n_elements(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParamCount {
    /// Every weight the main pass loads (all experts).
    pub total: u64,
    /// Weights one token touches: routed experts count `k` of `n`.
    pub active: u64,
    pub by_role: BTreeMap<String, u64>,
}

/// Total and active parameters of the main pass:
/// `P = V*d + L*(attn + router + N*expert + norms) + final_norm + V*d` (untied).
pub fn param_count(config: &ModelConfig) -> ParamCount {
    let mut by_role = BTreeMap::new();
    let (mut total, mut active) = (0, 0);
    for s in config.tensor_specs() {
        total += s.n_elements();
        active += active_elements(config, &s);
        *by_role.entry(format!("{:?}", s.role)).or_insert(0) += s.n_elements();
    }
    ParamCount {
        total,
        active,
        by_role,
    }
}

/// FLOPs of one decode token at `context` tokens of history: 2 per active matmul weight
/// (the lm head included, the embedding lookup not), plus the attention scores and values
/// (`4 * n_head * head_dim * context` per attention layer), the delta rule (about 7 FLOPs
/// per state element: decay, `S^T k`, rank-1 update, readout) and the causal conv.
pub fn flops_per_token(config: &ModelConfig, context: u64) -> f64 {
    let mut flops = 0.0;
    for s in config.tensor_specs() {
        if s.role.is_matmul() {
            flops += 2.0 * active_elements(config, &s) as f64;
        }
    }
    if config.tied_embeddings {
        flops += 2.0 * config.n_embd as f64 * config.n_vocab as f64;
    }
    let a = &config.attention;
    flops += config.n_attention_layers() as f64
        * 4.0
        * a.n_head as f64
        * a.head_dim as f64
        * context as f64;
    if let Some(g) = &config.gdn {
        let state = g.n_v_heads as f64 * g.d_k as f64 * g.d_v as f64;
        let conv = 2.0 * g.conv_kernel as f64 * g.conv_channels() as f64;
        flops += config.n_linear_layers() as f64 * (7.0 * state + conv);
    }
    flops
}

/// Bytes of every main-pass weight, at the file's actual types or at an assumed scheme.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WeightBytes {
    /// (tensor, bytes) for each tensor of [`ModelConfig::tensor_specs`].
    pub tensors: Vec<(TensorSpec, f64)>,
    /// Bytes of file tensors outside the main pass (MTP blocks, extras).
    pub other: f64,
}

impl WeightBytes {
    /// Every weight at `ty`'s average bits per weight, except the tensors converters keep
    /// in f32 (norms, routers, conv, 1-D parameters).
    pub fn uniform(config: &ModelConfig, ty: GgmlType) -> WeightBytes {
        let tensors = config
            .tensor_specs()
            .into_iter()
            .map(|s| {
                let bpw = if s.role.kept_f32() {
                    32.0
                } else {
                    ty.bits_per_weight()
                };
                let bytes = s.n_elements() as f64 * bpw / 8.0;
                (s, bytes)
            })
            .collect();
        WeightBytes {
            tensors,
            other: 0.0,
        }
    }

    /// The bytes each tensor really takes in `file` (which `config` was read from).
    pub fn from_file(config: &ModelConfig, file: &GgufFile) -> WeightBytes {
        let tensors: Vec<(TensorSpec, f64)> = config
            .tensor_specs()
            .into_iter()
            .map(|s| {
                let bytes = file.tensor(&s.name).map_or(0, |t| t.n_bytes);
                (s, bytes as f64)
            })
            .collect();
        let main: f64 = tensors.iter().map(|(_, b)| b).sum();
        let all: u64 = file.tensors().iter().map(|t| t.n_bytes).sum();
        WeightBytes {
            tensors,
            other: all as f64 - main,
        }
    }

    /// Main-pass weight bytes (what is uploaded for inference).
    pub fn main(&self) -> f64 {
        self.tensors.iter().map(|(_, b)| b).sum()
    }

    pub fn role(&self, role: TensorRole) -> f64 {
        self.tensors
            .iter()
            .filter(|(s, _)| s.role == role)
            .map(|(_, b)| b)
            .sum()
    }
}

/// Expected number of distinct experts a batch of `batch` tokens routes to, each token
/// picking `k` of `n` uniformly: `n * (1 - (1 - k/n)^batch)`.
pub fn expected_experts_touched(n: u32, k: u32, batch: u32) -> f64 {
    let n = n as f64;
    n * (1.0 - (1.0 - k as f64 / n).powi(batch as i32))
}

/// Bytes read from memory per generated token, by kind.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct DecodeTraffic {
    pub weights: f64,
    pub kv: f64,
    pub recurrent_state: f64,
}

impl DecodeTraffic {
    pub fn total(&self) -> f64 {
        self.weights + self.kv + self.recurrent_state
    }
}

/// Memory traffic of one decode token when `batch` sequences, each `context` tokens long,
/// step together.
///
/// Why this differs from the contract's bound ([`all_weights_bytes_per_token`]): the
/// contract assumes every weight is read for every token ("must load ALL weights"), true
/// for dense models and for a batch large enough to touch every expert. At batch 1 a token
/// reads only its `k` routed experts (8 of 256 for Qwen3.5-35B-A3B, 3% of the expert bytes),
/// which is why an A3B model decodes near the speed of a 3B dense one. Here the expert bytes
/// are scaled by the expected number of distinct experts the batch touches, the embedding
/// table contributes one row per token (unless tied, when it is also the lm head), and each
/// sequence reads its KV cache and reads and writes its recurrent state.
pub fn decode_bytes_per_token(
    config: &ModelConfig,
    weights: &WeightBytes,
    context: u64,
    batch: u32,
    kv_dtype: KvDtype,
) -> DecodeTraffic {
    let batch = batch.max(1);
    let mut shared = 0.0;
    for (s, bytes) in &weights.tensors {
        shared += match (s.role, config.moe()) {
            (TensorRole::RoutedExperts, Some(m)) => {
                bytes * expected_experts_touched(m.n_expert, m.n_expert_used, batch)
                    / m.n_expert as f64
            }
            (TensorRole::TokenEmbedding, _) if !config.tied_embeddings => {
                bytes / config.n_vocab as f64 * batch as f64
            }
            _ => *bytes,
        };
    }
    DecodeTraffic {
        weights: shared / batch as f64,
        kv: kv_total_bytes(config, context, kv_dtype) as f64,
        recurrent_state: 2.0 * recurrent_state_bytes(config).total() as f64,
    }
}

/// The contract's memory-bound per-token traffic: every main-pass weight, every token.
pub fn all_weights_bytes_per_token(weights: &WeightBytes) -> f64 {
    weights.main()
}

pub use crate::model::activations::kernel_sizes;

/// Bytes of one sequence's activation buffers, as the runtime allocates them: the sum of
/// [`activation_slots`](crate::model::activations::activation_slots) for a prefill chunk of
/// `n_tokens` tokens, one row of logits and decode attention over `context` positions.
pub fn sequence_activation_bytes(config: &ModelConfig, n_tokens: u64, context: u64) -> u64 {
    crate::model::activations::activation_slots(config, n_tokens, 1, context).bytes()
}

/// Device memory needed to run a model: `M = weights + KV + recurrent state + activations`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MemoryPlan {
    pub weights: f64,
    pub kv: u64,
    pub recurrent_state: u64,
    pub activations: u64,
}

impl MemoryPlan {
    pub fn total(&self) -> f64 {
        self.weights + self.kv as f64 + self.recurrent_state as f64 + self.activations as f64
    }
}

/// The plan for `n_seq` sequences of up to `context` tokens, prefilling `ubatch` tokens at
/// once; several sequences also have the rows of the step that decodes them together (a
/// server's slots: `runtime::DecodeBatch`).
pub fn memory_plan(
    config: &ModelConfig,
    weights: &WeightBytes,
    context: u64,
    n_seq: u64,
    ubatch: u64,
    kv_dtype: KvDtype,
) -> MemoryPlan {
    let batch_rows = if n_seq > 1 {
        crate::model::activations::activation_slots(config, n_seq, n_seq, context).bytes()
    } else {
        0
    };
    MemoryPlan {
        weights: weights.main(),
        kv: n_seq * kv_total_bytes(config, context, kv_dtype),
        recurrent_state: n_seq * recurrent_state_bytes(config).total(),
        activations: n_seq * sequence_activation_bytes(config, ubatch, context) + batch_rows,
    }
}

/// A device's limits: memory bandwidth (bytes/s) and, optionally, compute (FLOP/s).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Roofline {
    pub bandwidth: f64,
    pub compute: Option<f64>,
}

impl Roofline {
    /// `tok/s = min(bandwidth / bytes_per_token, compute / flops_per_token)`.
    pub fn tokens_per_second(&self, bytes_per_token: f64, flops_per_token: f64) -> f64 {
        let memory_bound = self.bandwidth / bytes_per_token;
        match self.compute {
            Some(c) => memory_bound.min(c / flops_per_token),
            None => memory_bound,
        }
    }
}

/// One step of [`forward_shapes`]: what was computed and the activation shape after it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ShapeStep {
    pub what: String,
    pub shape: [u64; 2],
}

/// Walks the main pass through the tensor specs for `seq_len` tokens, checking at every
/// product that the weight's input width matches the activation and that every block
/// hands the residual stream back at `[seq_len, n_embd]`. Ends at the logits `[seq_len, V]`.
pub fn forward_shapes(config: &ModelConfig, seq_len: u64) -> Result<Vec<ShapeStep>, ConfigError> {
    forward_shapes_of(config, &config.tensor_specs(), seq_len)
}

/// The tensor list [`forward_shapes_of`] walks, by name.
struct ShapeWalk<'a> {
    config: &'a ModelConfig,
    specs: BTreeMap<&'a str, &'a TensorSpec>,
}

impl ShapeWalk<'_> {
    /// `x W^T` for the weight `name`: its input width must be the activation's.
    fn matmul(&self, x: [u64; 2], name: &str) -> Result<[u64; 2], ConfigError> {
        let w = self
            .specs
            .get(name)
            .ok_or_else(|| ConfigError::MissingTensor(name.to_string()))?;
        if w.dims[0] != x[1] {
            return Err(ConfigError::Geometry(format!(
                "{name} {:?} cannot multiply an activation of shape {x:?}",
                w.dims
            )));
        }
        Ok([x[0], w.dims[1]])
    }

    /// The output shape of block `i`'s mixer.
    fn mixer(&self, i: usize, kind: LayerKind, x: [u64; 2]) -> Result<[u64; 2], ConfigError> {
        match kind {
            LayerKind::Attention => {
                self.matmul(x, &blk(i, t::ATTN_K))?;
                self.matmul(x, &blk(i, t::ATTN_V))?;
                let q = self.matmul(x, &blk(i, t::ATTN_Q))?;
                let heads = if self.config.attention.output_gate {
                    q[1] / 2
                } else {
                    q[1]
                };
                self.matmul([x[0], heads], &blk(i, t::ATTN_OUTPUT))
            }
            LayerKind::Linear => {
                self.matmul(x, &blk(i, t::ATTN_QKV))?;
                let z = self.matmul(x, &blk(i, t::ATTN_GATE))?;
                self.matmul(x, &blk(i, t::SSM_BETA))?;
                self.matmul(x, &blk(i, t::SSM_ALPHA))?;
                self.matmul(z, &blk(i, t::SSM_OUT))
            }
        }
    }

    /// The output shape of block `i`'s FFN.
    fn ffn(&self, i: usize, x: [u64; 2]) -> Result<[u64; 2], ConfigError> {
        let Some(m) = self.config.moe() else {
            let h = self.matmul(x, &blk(i, t::FFN_UP))?;
            return self.matmul(h, &blk(i, t::FFN_DOWN));
        };
        self.matmul(x, &blk(i, t::FFN_GATE_INP))?;
        let up_name = match m.storage {
            ExpertStorage::Separate => t::FFN_UP_EXPS,
            ExpertStorage::Fused => t::FFN_GATE_UP_EXPS,
        };
        let up = self.matmul(x, &blk(i, up_name))?;
        let h = [x[0], m.expert_ffn as u64];
        if up[1] % h[1] != 0 {
            return Err(ConfigError::Geometry(format!(
                "block {i}: expert up width {} is not a multiple of {}",
                up[1], h[1]
            )));
        }
        let routed = self.matmul(h, &blk(i, t::FFN_DOWN_EXPS))?;
        if let Some(fs) = m.shared_ffn {
            let shared = self.matmul([x[0], fs as u64], &blk(i, t::FFN_DOWN_SHEXP))?;
            same_as_residual(i, "shared expert", shared, routed)?;
        }
        Ok(routed)
    }
}

/// A block's output must hand the residual stream back in its shape.
fn same_as_residual(
    i: usize,
    what: &str,
    y: [u64; 2],
    x: [u64; 2],
) -> Result<[u64; 2], ConfigError> {
    if y != x {
        return Err(ConfigError::Geometry(format!(
            "block {i}: {what} output {y:?} does not match the residual stream {x:?}"
        )));
    }
    Ok(y)
}

/// [`forward_shapes`] over a given tensor list (e.g. shapes read from a file).
pub fn forward_shapes_of(
    config: &ModelConfig,
    tensors: &[TensorSpec],
    seq_len: u64,
) -> Result<Vec<ShapeStep>, ConfigError> {
    let walk = ShapeWalk {
        config,
        specs: tensors.iter().map(|s| (s.name.as_str(), s)).collect(),
    };
    let embd = walk
        .specs
        .get(names::TOKEN_EMBD)
        .ok_or_else(|| ConfigError::MissingTensor(names::TOKEN_EMBD.to_string()))?;
    let mut x = [seq_len, embd.dims[0]];
    let mut steps = vec![ShapeStep {
        what: "token_embd".into(),
        shape: x,
    }];
    for (i, &kind) in config.layers.iter().enumerate() {
        x = same_as_residual(i, "mixer", walk.mixer(i, kind, x)?, x)?;
        x = same_as_residual(i, "ffn", walk.ffn(i, x)?, x)?;
        steps.push(ShapeStep {
            what: format!("blk.{i} ({kind:?})"),
            shape: x,
        });
    }
    let head = if config.tied_embeddings {
        names::TOKEN_EMBD
    } else {
        names::OUTPUT
    };
    let logits = walk.matmul(x, head)?;
    steps.push(ShapeStep {
        what: format!("lm head ({head})"),
        shape: logits,
    });
    Ok(steps)
}
