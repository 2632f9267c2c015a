//! The typed model configuration: architecture, layer schedule and every dimension the
//! forward pass and the memory algebra need, read from GGUF metadata (as llama.cpp reads it)
//! or from a named preset.
//!
//! [`ModelConfig::tensor_specs`] lists every tensor the main pass needs with its expected
//! shape; it is the single description that file validation, the synthetic writer and the
//! parameter/memory algebra all use, so they cannot disagree.

use std::fmt;

use crate::error::ConfigError;
use crate::loader::gguf::{GgufFile, MetaValue};
use crate::loader::names::{self, arch as k, blk, layer as t};

/// The model families qwen-wgpu runs, by their `general.architecture` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Architecture {
    /// Qwen3.5 hybrid (Gated DeltaNet + gated attention) with a routed + shared-expert MoE FFN.
    #[serde(rename = "qwen35moe")]
    Qwen35Moe,
    /// Qwen3.5 hybrid with a dense SwiGLU FFN.
    #[serde(rename = "qwen35")]
    Qwen35,
    /// Qwen3 MoE: plain GQA attention with q/k norm in every layer, routed experts only.
    #[serde(rename = "qwen3moe")]
    Qwen3Moe,
}

impl Architecture {
    pub fn gguf_name(self) -> &'static str {
        match self {
            Architecture::Qwen35Moe => "qwen35moe",
            Architecture::Qwen35 => "qwen35",
            Architecture::Qwen3Moe => "qwen3moe",
        }
    }

    pub fn from_gguf_name(name: &str) -> Option<Architecture> {
        [
            Architecture::Qwen35Moe,
            Architecture::Qwen35,
            Architecture::Qwen3Moe,
        ]
        .into_iter()
        .find(|a| a.gguf_name() == name)
    }

    /// Qwen3.5 models interleave Gated DeltaNet layers with gated full attention.
    pub fn is_hybrid(self) -> bool {
        matches!(self, Architecture::Qwen35Moe | Architecture::Qwen35)
    }

    pub fn is_moe(self) -> bool {
        matches!(self, Architecture::Qwen35Moe | Architecture::Qwen3Moe)
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.gguf_name())
    }
}

/// What a block's token mixer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum LayerKind {
    /// Gated DeltaNet linear attention with a recurrent state (no KV cache).
    #[serde(rename = "linear")]
    Linear,
    /// Full softmax attention with a KV cache (output-gated in qwen35*).
    #[serde(rename = "attention")]
    Attention,
}

impl LayerKind {
    /// One letter per layer for compact schedules (`LLLA LLLA ...`).
    pub fn letter(self) -> char {
        match self {
            LayerKind::Linear => 'L',
            LayerKind::Attention => 'A',
        }
    }
}

/// Full-attention geometry (shared by every attention layer).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AttentionConfig {
    pub n_head: u32,
    pub n_head_kv: u32,
    /// `attention.key_length` (= value_length for these architectures).
    pub head_dim: u32,
    /// Rotary dimensions at the start of each head (`rope.dimension_count`).
    pub n_rot: u32,
    pub rope_base: f32,
    /// mRoPE sections (pairs per position stream); all zero for plain rope.
    pub rope_sections: [u32; 4],
    /// qwen35*: attn_q emits [query | gate] per head and the output is multiplied by sigmoid(gate).
    pub output_gate: bool,
}

impl AttentionConfig {
    /// Query heads per KV head.
    pub fn group_size(&self) -> u32 {
        self.n_head / self.n_head_kv
    }
}

/// Gated DeltaNet geometry (shared by every linear layer).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GdnConfig {
    /// `ssm.group_count`: q/k heads.
    pub n_k_heads: u32,
    /// `ssm.time_step_rank`: v heads (a multiple of the k heads).
    pub n_v_heads: u32,
    /// `ssm.state_size`: q/k head dim.
    pub d_k: u32,
    /// `ssm.inner_size / n_v_heads`: v head dim.
    pub d_v: u32,
    /// `ssm.conv_kernel`: causal conv1d taps.
    pub conv_kernel: u32,
}

impl GdnConfig {
    /// Channels of the causal conv: q, k and v stacked.
    pub fn conv_channels(&self) -> u64 {
        2 * self.n_k_heads as u64 * self.d_k as u64 + self.value_dim()
    }

    pub fn key_dim(&self) -> u64 {
        self.n_k_heads as u64 * self.d_k as u64
    }

    /// `ssm.inner_size`.
    pub fn value_dim(&self) -> u64 {
        self.n_v_heads as u64 * self.d_v as u64
    }
}

/// How routed experts' gate and up projections are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ExpertStorage {
    /// `ffn_gate_exps` and `ffn_up_exps`.
    Separate,
    /// `ffn_gate_up_exps`, gate rows first.
    Fused,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MoeConfig {
    pub n_expert: u32,
    pub n_expert_used: u32,
    pub expert_ffn: u32,
    /// qwen35moe's always-on shared expert, gated by sigmoid(ffn_gate_inp_shexp . x).
    pub shared_ffn: Option<u32>,
    /// Renormalise the selected top-k probabilities to sum to one.
    pub norm_top_k: bool,
    pub storage: ExpertStorage,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum FfnConfig {
    Moe(MoeConfig),
    Dense { n_ff: u32 },
}

/// A model, fully described without its weights.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelConfig {
    pub name: String,
    pub arch: Architecture,
    pub n_embd: u32,
    pub n_vocab: u32,
    pub n_ctx_train: u32,
    pub rms_eps: f32,
    /// The main pass, in order: `layers[i]` is block `i`'s mixer.
    pub layers: Vec<LayerKind>,
    /// Multi-token-prediction blocks stored after the trunk (`nextn_predict_layers`); they are
    /// not run by the main pass and serve speculative decoding.
    pub n_nextn: u32,
    pub attention: AttentionConfig,
    pub gdn: Option<GdnConfig>,
    pub ffn: FfnConfig,
    /// No `output.weight`: the lm head reuses `token_embd`.
    pub tied_embeddings: bool,
}

/// What a tensor does; drives memory accounting (routed experts are read k-of-n per token)
/// and which tensors converters keep in f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum TensorRole {
    TokenEmbedding,
    Output,
    Norm,
    AttentionProj,
    LinearProj,
    /// Conv weights, dt bias and A: small f32 parameters of the recurrence.
    LinearParam,
    Router,
    RoutedExperts,
    SharedExpert,
    SharedExpertGate,
    DenseFfn,
}

impl TensorRole {
    /// Converters keep these in f32 whatever the file type (1-D tensors, norms, routers, conv).
    pub fn kept_f32(self) -> bool {
        matches!(
            self,
            TensorRole::Norm
                | TensorRole::LinearParam
                | TensorRole::Router
                | TensorRole::SharedExpertGate
        )
    }

    /// Whether the tensor is a weight multiplied by the activations each token (FLOPs).
    pub fn is_matmul(self) -> bool {
        !matches!(
            self,
            TensorRole::TokenEmbedding | TensorRole::Norm | TensorRole::LinearParam
        )
    }
}

/// One tensor the main pass needs: name, ggml-order shape and role.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TensorSpec {
    pub name: String,
    pub dims: Vec<u64>,
    pub role: TensorRole,
}

impl TensorSpec {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

impl ModelConfig {
    /// Blocks in the file: the trunk plus the MTP blocks (`{arch}.block_count`).
    pub fn block_count(&self) -> u32 {
        self.layers.len() as u32 + self.n_nextn
    }

    /// The mixer of trunk layer `i`: a pure function of `i`.
    pub fn dispatch(&self, i: usize) -> Option<LayerKind> {
        self.layers.get(i).copied()
    }

    pub fn n_attention_layers(&self) -> usize {
        self.layers
            .iter()
            .filter(|&&l| l == LayerKind::Attention)
            .count()
    }

    pub fn n_linear_layers(&self) -> usize {
        self.layers.len() - self.n_attention_layers()
    }

    /// `LLLA LLLA ...` in groups of four, or `A x 94` for uniform schedules.
    pub fn schedule_string(&self) -> String {
        if self.n_linear_layers() == 0 {
            return format!("A x {}", self.layers.len());
        }
        self.layers
            .chunks(4)
            .map(|c| c.iter().map(|l| l.letter()).collect::<String>())
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn moe(&self) -> Option<&MoeConfig> {
        match &self.ffn {
            FfnConfig::Moe(m) => Some(m),
            FfnConfig::Dense { .. } => None,
        }
    }

    /// The layer schedule of a Qwen3.5 hybrid: layer i is linear iff (i + 1) % interval != 0.
    pub fn interval_schedule(n_layers: usize, interval: u32) -> Vec<LayerKind> {
        (0..n_layers)
            .map(|i| {
                if interval != 0 && (i as u64 + 1) % interval as u64 == 0 {
                    LayerKind::Attention
                } else {
                    LayerKind::Linear
                }
            })
            .collect()
    }

    /// Checks the invariants every consumer relies on. Errors name the offending values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let geo = |msg: String| Err(ConfigError::Geometry(msg));
        if self.n_embd == 0 || self.n_vocab == 0 || self.layers.is_empty() {
            return geo(format!(
                "embedding_length {}, vocabulary {} and trunk layers {} must all be non-zero",
                self.n_embd,
                self.n_vocab,
                self.layers.len()
            ));
        }
        if !(self.rms_eps > 0.0 && self.rms_eps < 1.0) {
            return geo(format!("rms epsilon {} is not in (0, 1)", self.rms_eps));
        }
        let a = &self.attention;
        if self.n_attention_layers() > 0 {
            if a.n_head == 0 || a.n_head_kv == 0 || a.head_dim == 0 {
                return geo(format!(
                    "attention heads {} / kv heads {} / head dim {} must be non-zero",
                    a.n_head, a.n_head_kv, a.head_dim
                ));
            }
            if a.n_head % a.n_head_kv != 0 {
                return geo(format!(
                    "head_count {} is not a multiple of head_count_kv {}",
                    a.n_head, a.n_head_kv
                ));
            }
            if a.n_rot > a.head_dim || a.n_rot % 2 != 0 {
                return geo(format!(
                    "rope dimension count {} must be even and at most the head dim {}",
                    a.n_rot, a.head_dim
                ));
            }
            if self.arch == Architecture::Qwen3Moe && a.n_rot != a.head_dim {
                return geo(format!(
                    "qwen3moe rotates whole heads: rope dimension count {} != head dim {}",
                    a.n_rot, a.head_dim
                ));
            }
            let pairs: u32 = a.rope_sections.iter().sum();
            if pairs > a.n_rot / 2 {
                return geo(format!(
                    "rope sections {:?} cover {pairs} pairs, more than n_rot/2 = {}",
                    a.rope_sections,
                    a.n_rot / 2
                ));
            }
        }
        match (&self.gdn, self.n_linear_layers()) {
            (None, 0) => {}
            (None, n) => return geo(format!("{n} linear-attention layers but no ssm.* geometry")),
            (Some(g), _) => {
                if g.n_k_heads == 0 || g.d_k == 0 || g.d_v == 0 || g.conv_kernel == 0 {
                    return geo(format!(
                        "ssm group_count {}, state_size {}, value head dim {} and conv_kernel {} must be non-zero",
                        g.n_k_heads, g.d_k, g.d_v, g.conv_kernel
                    ));
                }
                if g.n_v_heads % g.n_k_heads != 0 {
                    return geo(format!(
                        "linear value heads {} (ssm.time_step_rank) are not a multiple of key heads {} (ssm.group_count)",
                        g.n_v_heads, g.n_k_heads
                    ));
                }
            }
        }
        match &self.ffn {
            FfnConfig::Dense { n_ff } if *n_ff == 0 => {
                return geo("feed_forward_length is 0".into())
            }
            FfnConfig::Moe(m) => {
                if m.n_expert == 0 || m.n_expert_used == 0 || m.n_expert_used > m.n_expert {
                    return geo(format!(
                        "expert_used_count {} must be in 1..=expert_count {}",
                        m.n_expert_used, m.n_expert
                    ));
                }
                if m.expert_ffn == 0 || m.shared_ffn == Some(0) {
                    return geo("expert feed-forward lengths must be non-zero".into());
                }
            }
            FfnConfig::Dense { .. } => {}
        }
        Ok(())
    }

    /// Every tensor of the main pass with its expected ggml-order shape.
    pub fn tensor_specs(&self) -> Vec<TensorSpec> {
        let e = self.n_embd as u64;
        let v = self.n_vocab as u64;
        let mut specs = vec![
            spec(names::TOKEN_EMBD, &[e, v], TensorRole::TokenEmbedding),
            spec(names::OUTPUT_NORM, &[e], TensorRole::Norm),
        ];
        if !self.tied_embeddings {
            specs.push(spec(names::OUTPUT, &[e, v], TensorRole::Output));
        }
        for (i, kind) in self.layers.iter().enumerate() {
            specs.push(spec(&blk(i, t::ATTN_NORM), &[e], TensorRole::Norm));
            match kind {
                LayerKind::Attention => self.attention_specs(i, &mut specs),
                LayerKind::Linear => self.linear_specs(i, &mut specs),
            }
            self.ffn_specs(i, &mut specs);
        }
        specs
    }

    fn attention_specs(&self, i: usize, out: &mut Vec<TensorSpec>) {
        let a = &self.attention;
        let e = self.n_embd as u64;
        let hd = a.head_dim as u64;
        let q_rows = a.n_head as u64 * hd * if a.output_gate { 2 } else { 1 };
        let kv_rows = a.n_head_kv as u64 * hd;
        let p = TensorRole::AttentionProj;
        out.push(spec(&blk(i, t::ATTN_Q), &[e, q_rows], p));
        out.push(spec(&blk(i, t::ATTN_K), &[e, kv_rows], p));
        out.push(spec(&blk(i, t::ATTN_V), &[e, kv_rows], p));
        out.push(spec(&blk(i, t::ATTN_OUTPUT), &[a.n_head as u64 * hd, e], p));
        out.push(spec(&blk(i, t::ATTN_Q_NORM), &[hd], TensorRole::Norm));
        out.push(spec(&blk(i, t::ATTN_K_NORM), &[hd], TensorRole::Norm));
    }

    fn linear_specs(&self, i: usize, out: &mut Vec<TensorSpec>) {
        let Some(g) = &self.gdn else { return };
        let e = self.n_embd as u64;
        let nv = g.n_v_heads as u64;
        let (p, s) = (TensorRole::LinearProj, TensorRole::LinearParam);
        out.push(spec(&blk(i, t::ATTN_QKV), &[e, g.conv_channels()], p));
        out.push(spec(&blk(i, t::ATTN_GATE), &[e, g.value_dim()], p));
        out.push(spec(
            &blk(i, t::SSM_CONV1D),
            &[g.conv_kernel as u64, g.conv_channels()],
            s,
        ));
        out.push(spec(&blk(i, t::SSM_DT_BIAS), &[nv], s));
        out.push(spec(&blk(i, t::SSM_A), &[nv], s));
        out.push(spec(&blk(i, t::SSM_BETA), &[e, nv], p));
        out.push(spec(&blk(i, t::SSM_ALPHA), &[e, nv], p));
        out.push(spec(
            &blk(i, t::SSM_NORM),
            &[g.d_v as u64],
            TensorRole::Norm,
        ));
        out.push(spec(&blk(i, t::SSM_OUT), &[g.value_dim(), e], p));
    }

    fn ffn_specs(&self, i: usize, out: &mut Vec<TensorSpec>) {
        let e = self.n_embd as u64;
        let norm = if self.arch == Architecture::Qwen3Moe {
            t::FFN_NORM
        } else {
            t::POST_ATTENTION_NORM
        };
        out.push(spec(&blk(i, norm), &[e], TensorRole::Norm));
        match &self.ffn {
            FfnConfig::Dense { n_ff } => {
                let f = *n_ff as u64;
                let d = TensorRole::DenseFfn;
                out.push(spec(&blk(i, t::FFN_GATE), &[e, f], d));
                out.push(spec(&blk(i, t::FFN_UP), &[e, f], d));
                out.push(spec(&blk(i, t::FFN_DOWN), &[f, e], d));
            }
            FfnConfig::Moe(m) => {
                let (x, fe) = (m.n_expert as u64, m.expert_ffn as u64);
                let r = TensorRole::RoutedExperts;
                out.push(spec(&blk(i, t::FFN_GATE_INP), &[e, x], TensorRole::Router));
                match m.storage {
                    ExpertStorage::Separate => {
                        out.push(spec(&blk(i, t::FFN_GATE_EXPS), &[e, fe, x], r));
                        out.push(spec(&blk(i, t::FFN_UP_EXPS), &[e, fe, x], r));
                    }
                    ExpertStorage::Fused => {
                        out.push(spec(&blk(i, t::FFN_GATE_UP_EXPS), &[e, 2 * fe, x], r));
                    }
                }
                out.push(spec(&blk(i, t::FFN_DOWN_EXPS), &[fe, e, x], r));
                if let Some(fs) = m.shared_ffn {
                    let fs = fs as u64;
                    let sh = TensorRole::SharedExpert;
                    out.push(spec(
                        &blk(i, t::FFN_GATE_INP_SHEXP),
                        &[e],
                        TensorRole::SharedExpertGate,
                    ));
                    out.push(spec(&blk(i, t::FFN_GATE_SHEXP), &[e, fs], sh));
                    out.push(spec(&blk(i, t::FFN_UP_SHEXP), &[e, fs], sh));
                    out.push(spec(&blk(i, t::FFN_DOWN_SHEXP), &[fs, e], sh));
                }
            }
        }
    }
}

fn spec(name: &str, dims: &[u64], role: TensorRole) -> TensorSpec {
    TensorSpec {
        name: name.to_string(),
        dims: dims.to_vec(),
        role,
    }
}

/// llama.cpp's default when neither `attention.recurrent_layers` nor the interval is written.
pub const DEFAULT_FULL_ATTENTION_INTERVAL: u32 = 4;

/// Typed access to `{arch}.*` metadata with errors that name the key.
struct Meta<'a> {
    file: &'a GgufFile,
    arch: &'a str,
}

impl Meta<'_> {
    fn key(&self, suffix: &str) -> String {
        names::arch_key(self.arch, suffix)
    }

    fn get(&self, suffix: &str) -> Option<(String, &MetaValue)> {
        let key = self.key(suffix);
        self.file.get(&key).map(|v| (key, v))
    }

    fn u32_opt(&self, suffix: &str) -> Result<Option<u32>, ConfigError> {
        self.get(suffix)
            .map(|(key, v)| scalar_u32(&key, v))
            .transpose()
    }

    fn u32_req(&self, suffix: &str) -> Result<u32, ConfigError> {
        self.u32_opt(suffix)?
            .ok_or_else(|| ConfigError::MissingKey(self.key(suffix)))
    }

    fn f32_opt(&self, suffix: &str) -> Result<Option<f32>, ConfigError> {
        let Some((key, v)) = self.get(suffix) else {
            return Ok(None);
        };
        match v.as_f64() {
            Some(x) if x.is_finite() => Ok(Some(x as f32)),
            Some(x) => Err(ConfigError::InvalidValue {
                key,
                value: x.to_string(),
                reason: "not a finite number".into(),
            }),
            None => Err(wrong_type(key, v, "a number")),
        }
    }

    /// A key that is a scalar or one value per block; returns one value per block.
    fn per_layer_u32(
        &self,
        suffix: &str,
        n_blocks: usize,
    ) -> Result<Option<Vec<u32>>, ConfigError> {
        let Some((key, v)) = self.get(suffix) else {
            return Ok(None);
        };
        if let MetaValue::Array(arr) = v {
            let ints = arr
                .to_ints()
                .ok_or_else(|| wrong_type(key.clone(), v, "an integer or integer array"))?;
            if ints.len() != n_blocks {
                return Err(ConfigError::InvalidValue {
                    key,
                    value: format!("[{} values]", ints.len()),
                    reason: format!("expected one value per block ({n_blocks})"),
                });
            }
            return ints
                .into_iter()
                .map(|x| int_to_u32(&key, x))
                .collect::<Result<_, _>>()
                .map(Some);
        }
        Ok(Some(vec![scalar_u32(&key, v)?; n_blocks]))
    }
}

fn wrong_type(key: String, v: &MetaValue, expected: &'static str) -> ConfigError {
    ConfigError::WrongType {
        key,
        found: v.meta_type().name(),
        expected,
    }
}

fn int_to_u32(key: &str, x: i128) -> Result<u32, ConfigError> {
    u32::try_from(x).map_err(|_| ConfigError::InvalidValue {
        key: key.to_string(),
        value: x.to_string(),
        reason: "must be a non-negative 32-bit integer".into(),
    })
}

fn scalar_u32(key: &str, v: &MetaValue) -> Result<u32, ConfigError> {
    let x = v
        .as_int()
        .ok_or_else(|| wrong_type(key.to_string(), v, "an integer"))?;
    int_to_u32(key, x)
}

/// Which attention layers share one (head_count, head_count_kv); mixed per-layer values are
/// rejected because every attention kernel is compiled for one geometry.
fn uniform_over(
    values: &[u32],
    layers: &[LayerKind],
    key: &str,
) -> Result<Option<u32>, ConfigError> {
    let mut found = None;
    for (i, (&v, &kind)) in values.iter().zip(layers).enumerate() {
        if kind != LayerKind::Attention {
            continue;
        }
        match found {
            None => found = Some(v),
            Some(f) if f != v => {
                return Err(ConfigError::InvalidValue {
                    key: key.to_string(),
                    value: format!("{v} at block {i}"),
                    reason: format!("attention layers must share one value (block 0.. had {f})"),
                })
            }
            Some(_) => {}
        }
    }
    Ok(found)
}

impl ModelConfig {
    /// Reads the configuration from a GGUF's metadata and checks every tensor the main pass
    /// needs against its expected shape.
    pub fn from_gguf(file: &GgufFile) -> Result<ModelConfig, ConfigError> {
        let config = Self::from_metadata(file)?;
        config.validate()?;
        config.check_tensors(file)?;
        Ok(config)
    }

    fn from_metadata(file: &GgufFile) -> Result<ModelConfig, ConfigError> {
        let arch_name = match file.get(names::general::ARCHITECTURE) {
            Some(v) => v
                .as_str()
                .ok_or_else(|| wrong_type(names::general::ARCHITECTURE.into(), v, "a string"))?,
            None => return Err(ConfigError::MissingKey(names::general::ARCHITECTURE.into())),
        };
        let arch = Architecture::from_gguf_name(arch_name)
            .ok_or_else(|| ConfigError::UnknownArchitecture(arch_name.to_string()))?;
        let m = Meta {
            file,
            arch: arch_name,
        };

        let n_blocks = m.u32_req(k::BLOCK_COUNT)? as usize;
        let n_nextn = m.u32_opt(k::NEXTN_PREDICT_LAYERS)?.unwrap_or(0);
        if n_blocks == 0 || n_nextn as usize >= n_blocks {
            return Err(ConfigError::InvalidValue {
                key: m.key(k::BLOCK_COUNT),
                value: n_blocks.to_string(),
                reason: format!("must exceed nextn_predict_layers ({n_nextn})"),
            });
        }
        let n_trunk = n_blocks - n_nextn as usize;
        let layers = Self::read_schedule(&m, arch, n_blocks, n_nextn as usize)?[..n_trunk].to_vec();

        let n_embd = m.u32_req(k::EMBEDDING_LENGTH)?;
        let heads = m
            .per_layer_u32(k::HEAD_COUNT, n_blocks)?
            .ok_or_else(|| ConfigError::MissingKey(m.key(k::HEAD_COUNT)))?;
        let n_head = uniform_over(&heads, &layers, &m.key(k::HEAD_COUNT))?.unwrap_or(heads[0]);
        let n_head_kv = match m.per_layer_u32(k::HEAD_COUNT_KV, n_blocks)? {
            Some(kv) => uniform_over(&kv, &layers, &m.key(k::HEAD_COUNT_KV))?.unwrap_or(n_head),
            None => n_head,
        };
        let default_hd = n_embd.checked_div(n_head).unwrap_or(0);
        let head_dim = m.u32_opt(k::KEY_LENGTH)?.unwrap_or(default_hd);
        let value_len = m.u32_opt(k::VALUE_LENGTH)?.unwrap_or(default_hd);
        if value_len != head_dim {
            return Err(ConfigError::InvalidValue {
                key: m.key(k::VALUE_LENGTH),
                value: value_len.to_string(),
                reason: format!("must equal attention.key_length ({head_dim}) for {arch}"),
            });
        }
        let rope_sections = match m.get(k::ROPE_DIMENSION_SECTIONS) {
            Some((key, v)) => read_sections(&key, v)?,
            None if arch.is_hybrid() => {
                return Err(ConfigError::MissingKey(m.key(k::ROPE_DIMENSION_SECTIONS)))
            }
            None => [0; 4],
        };
        let attention = AttentionConfig {
            n_head,
            n_head_kv,
            head_dim,
            n_rot: m.u32_opt(k::ROPE_DIMENSION_COUNT)?.unwrap_or(head_dim),
            rope_base: m.f32_opt(k::ROPE_FREQ_BASE)?.unwrap_or(10_000.0),
            rope_sections,
            output_gate: arch.is_hybrid(),
        };

        let gdn = if arch.is_hybrid() {
            let n_v_heads = m.u32_req(k::SSM_TIME_STEP_RANK)?;
            let inner = m.u32_req(k::SSM_INNER_SIZE)?;
            if n_v_heads == 0 || inner % n_v_heads != 0 {
                return Err(ConfigError::InvalidValue {
                    key: m.key(k::SSM_INNER_SIZE),
                    value: inner.to_string(),
                    reason: format!(
                        "must be a non-zero multiple of ssm.time_step_rank ({n_v_heads})"
                    ),
                });
            }
            Some(GdnConfig {
                n_k_heads: m.u32_req(k::SSM_GROUP_COUNT)?,
                n_v_heads,
                d_k: m.u32_req(k::SSM_STATE_SIZE)?,
                d_v: inner / n_v_heads,
                conv_kernel: m.u32_req(k::SSM_CONV_KERNEL)?,
            })
        } else {
            None
        };

        let n_ff = m.u32_opt(k::FEED_FORWARD_LENGTH)?;
        let ffn = if arch.is_moe() {
            Self::read_moe(&m, arch, file, n_ff)?
        } else {
            FfnConfig::Dense {
                n_ff: n_ff.ok_or_else(|| ConfigError::MissingKey(m.key(k::FEED_FORWARD_LENGTH)))?,
            }
        };

        let rms_eps = m
            .f32_opt(k::RMS_EPS)?
            .ok_or_else(|| ConfigError::MissingKey(m.key(k::RMS_EPS)))?;
        let name = file
            .get(names::general::NAME)
            .and_then(MetaValue::as_str)
            .unwrap_or(arch_name)
            .to_string();
        Ok(ModelConfig {
            name,
            arch,
            n_embd,
            n_vocab: Self::read_vocab_size(&m, file)?,
            n_ctx_train: m.u32_req(k::CONTEXT_LENGTH)?,
            rms_eps,
            layers,
            n_nextn,
            attention,
            gdn,
            ffn,
            tied_embeddings: file.tensor(names::OUTPUT).is_none(),
        })
    }

    /// Layer kinds of all blocks (trunk and MTP), from `attention.recurrent_layers` when
    /// present, else from `full_attention_interval` (default 4).
    fn read_schedule(
        m: &Meta,
        arch: Architecture,
        n_blocks: usize,
        n_nextn: usize,
    ) -> Result<Vec<LayerKind>, ConfigError> {
        if !arch.is_hybrid() {
            return Ok(vec![LayerKind::Attention; n_blocks]);
        }
        if let Some((key, v)) = m.get(k::RECURRENT_LAYERS) {
            let flags = v
                .as_array()
                .and_then(|a| a.as_bools())
                .ok_or_else(|| wrong_type(key.clone(), v, "a bool array"))?;
            if flags.len() != n_blocks {
                return Err(ConfigError::InvalidValue {
                    key,
                    value: format!("[{} flags]", flags.len()),
                    reason: format!("expected one flag per block ({n_blocks})"),
                });
            }
            let kind = |&rec: &bool| {
                if rec {
                    LayerKind::Linear
                } else {
                    LayerKind::Attention
                }
            };
            return Ok(flags.iter().map(kind).collect());
        }
        let interval = m
            .u32_opt(k::FULL_ATTENTION_INTERVAL)?
            .unwrap_or(DEFAULT_FULL_ATTENTION_INTERVAL);
        if interval == 0 {
            return Err(ConfigError::InvalidValue {
                key: m.key(k::FULL_ATTENTION_INTERVAL),
                value: "0".into(),
                reason: "must be at least 1".into(),
            });
        }
        let n_trunk = n_blocks - n_nextn;
        // Qwen3.5's MTP block is a full-attention decoder layer whatever the interval says.
        let mut kinds = Self::interval_schedule(n_trunk, interval);
        kinds.resize(n_blocks, LayerKind::Attention);
        Ok(kinds)
    }

    fn read_moe(
        m: &Meta,
        arch: Architecture,
        file: &GgufFile,
        n_ff: Option<u32>,
    ) -> Result<FfnConfig, ConfigError> {
        let n_expert = m.u32_req(k::EXPERT_COUNT)?;
        let n_expert_used = m.u32_req(k::EXPERT_USED_COUNT)?;
        // llama.cpp's fallbacks when the expert widths are absent.
        let expert_ffn = match m.u32_opt(k::EXPERT_FEED_FORWARD_LENGTH)? {
            Some(f) => f,
            None => match n_ff {
                Some(f) if n_expert_used > 0 => f / n_expert_used,
                _ => {
                    return Err(ConfigError::MissingKey(
                        m.key(k::EXPERT_FEED_FORWARD_LENGTH),
                    ))
                }
            },
        };
        let shared_ffn = if arch == Architecture::Qwen35Moe {
            match m.u32_opt(k::EXPERT_SHARED_FEED_FORWARD_LENGTH)?.or(n_ff) {
                Some(f) => Some(f),
                None => {
                    return Err(ConfigError::MissingKey(
                        m.key(k::EXPERT_SHARED_FEED_FORWARD_LENGTH),
                    ))
                }
            }
        } else {
            None
        };
        let norm_top_k = match m.get(k::EXPERT_WEIGHTS_NORM) {
            Some((key, v)) => v.as_bool().ok_or_else(|| wrong_type(key, v, "a bool"))?,
            None => true,
        };
        let fused = file
            .tensors()
            .iter()
            .any(|t| t.name.ends_with(t::FFN_GATE_UP_EXPS));
        let storage = if fused {
            ExpertStorage::Fused
        } else {
            ExpertStorage::Separate
        };
        Ok(FfnConfig::Moe(MoeConfig {
            n_expert,
            n_expert_used,
            expert_ffn,
            shared_ffn,
            norm_top_k,
            storage,
        }))
    }

    /// `{arch}.vocab_size` when written, else the token list's length, else the embedding rows.
    fn read_vocab_size(m: &Meta, file: &GgufFile) -> Result<u32, ConfigError> {
        if let Some(v) = m.u32_opt(k::VOCAB_SIZE)? {
            return Ok(v);
        }
        if let Some(tokens) = file
            .get(names::tokenizer::TOKENS)
            .and_then(MetaValue::as_array)
        {
            return u32::try_from(tokens.len()).map_err(|_| ConfigError::InvalidValue {
                key: names::tokenizer::TOKENS.into(),
                value: format!("[{} tokens]", tokens.len()),
                reason: "too many tokens".into(),
            });
        }
        match file.tensor(names::TOKEN_EMBD) {
            Some(t) if t.dims.len() == 2 => u32::try_from(t.dims[1]).map_err(|_| {
                ConfigError::Geometry(format!("{} has {} rows", names::TOKEN_EMBD, t.dims[1]))
            }),
            _ => Err(ConfigError::MissingTensor(names::TOKEN_EMBD.into())),
        }
    }

    /// Every tensor of the main pass must be present with its expected shape; projections
    /// must have no bias (these architectures have none, and silently ignoring one would
    /// compute a different model).
    pub fn check_tensors(&self, file: &GgufFile) -> Result<(), ConfigError> {
        for s in self.tensor_specs() {
            let found = file
                .tensor(&s.name)
                .ok_or_else(|| ConfigError::MissingTensor(s.name.clone()))?;
            if found.dims != s.dims {
                return Err(ConfigError::TensorShape {
                    tensor: s.name,
                    expected: s.dims,
                    found: found.dims.clone(),
                });
            }
        }
        for tensor in file.tensors() {
            if is_projection_bias(&tensor.name) {
                return Err(ConfigError::Geometry(format!(
                    "tensor '{}' is a projection bias, which {} does not have",
                    tensor.name, self.arch
                )));
            }
        }
        Ok(())
    }
}

/// `*.bias` tensors other than the GDN's dt bias (a parameter of the decay, not a projection).
pub fn is_projection_bias(name: &str) -> bool {
    name.ends_with(".bias") && !name.ends_with(t::SSM_DT_BIAS)
}

fn read_sections(key: &str, v: &MetaValue) -> Result<[u32; 4], ConfigError> {
    let ints = v
        .as_array()
        .and_then(|a| a.to_ints())
        .ok_or_else(|| wrong_type(key.to_string(), v, "an integer array"))?;
    if ints.len() > 4 {
        return Err(ConfigError::InvalidValue {
            key: key.to_string(),
            value: format!("{ints:?}"),
            reason: "at most 4 sections".into(),
        });
    }
    let mut out = [0u32; 4];
    for (o, x) in out.iter_mut().zip(ints) {
        *o = int_to_u32(key, x)?;
    }
    Ok(out)
}
