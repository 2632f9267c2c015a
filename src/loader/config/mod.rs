//! The typed model configuration: architecture, layer schedule and every dimension the
//! forward pass and the memory algebra need, read from GGUF metadata (as llama.cpp reads it)
//! or from a named preset.
//!
//! [`ModelConfig::layer_tensors`] describes every tensor of one layer, and
//! [`ModelConfig::tensor_specs`] lists the main pass's tensors from it; that is the single
//! description that file validation, the synthetic writer, the parameter/memory algebra,
//! the GPU upload and the CPU reference all use, so they cannot disagree.
//!
//! This file holds the types and their derived sizes; `metadata.rs` reads them from GGUF
//! metadata, `validate.rs` checks their invariants, `layer.rs` holds the generic per-layer
//! structs (tensors and state) and `tensors.rs` lists and checks the tensors they imply.

mod layer;
mod metadata;
mod tensors;
mod validate;

use std::fmt;

pub use layer::{
    AttentionTensors, ExpertGateUp, FfnTensors, LayerSpecs, LayerState, LayerTensors,
    LinearTensors, Loaded, MixerTensors, MoeTensors, SharedExpertTensors, TensorSource,
};
pub use metadata::DEFAULT_FULL_ATTENTION_INTERVAL;
pub use tensors::{is_projection_bias, TensorRole, TensorSpec};

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

    /// Floats per head in attn_q's output: the query, then the gate when `output_gate`.
    /// `u32` like the kernel parameters it feeds.
    pub fn q_head_stride(&self) -> u32 {
        self.head_dim * if self.output_gate { 2 } else { 1 }
    }

    /// Rows of attn_q (`n_head` heads of [`Self::q_head_stride`] floats). `u64` like the
    /// tensor shapes and buffer sizes it feeds.
    pub fn q_rows(&self) -> u64 {
        self.n_head as u64 * self.head_dim as u64 * if self.output_gate { 2 } else { 1 }
    }

    /// Rows of attn_k and attn_v, and floats of one token's keys (or values) in one layer.
    /// `u64` like the tensor shapes and buffer sizes it feeds.
    pub fn kv_width(&self) -> u64 {
        self.n_head_kv as u64 * self.head_dim as u64
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

    /// Floats of one layer's conv state: the last `conv_kernel - 1` inputs of every conv
    /// channel. `u64` like [`Self::conv_channels`].
    pub fn conv_state_len(&self) -> u64 {
        (self.conv_kernel as u64 - 1) * self.conv_channels()
    }

    /// Floats of one layer's conv state on the GPU: a ring of the last `conv_kernel` inputs
    /// of every conv channel, the input at position p in row `p % conv_kernel`. One row
    /// more than [`Self::conv_state_len`], so that a decode step writes its input into the
    /// row no reader of that step needs (workgroups sharing a channel then never race).
    pub fn conv_ring_len(&self) -> u64 {
        self.conv_kernel as u64 * self.conv_channels()
    }

    /// Floats of one layer's delta state: a `d_k x d_v` matrix per value head.
    pub fn delta_state_len(&self) -> u64 {
        self.n_v_heads as u64 * self.d_k as u64 * self.d_v as u64
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
}

#[cfg(test)]
mod tests {
    use super::Architecture;

    #[test]
    fn architecture_names_round_trip() {
        for a in [
            Architecture::Qwen35Moe,
            Architecture::Qwen35,
            Architecture::Qwen3Moe,
        ] {
            assert_eq!(Architecture::from_gguf_name(a.gguf_name()), Some(a));
        }
    }
}
