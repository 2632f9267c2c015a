//! Every GGUF metadata key and tensor name qwen-wgpu reads or writes, in one place, spelled as
//! llama.cpp's converter writes them.

/// Keys outside an architecture's namespace.
pub mod general {
    pub const ARCHITECTURE: &str = "general.architecture";
    pub const NAME: &str = "general.name";
    pub const ALIGNMENT: &str = "general.alignment";
    pub const FILE_TYPE: &str = "general.file_type";
    pub const QUANTIZATION_VERSION: &str = "general.quantization_version";
}

/// Architecture-scoped keys; the full key is `{arch}.{suffix}` (see [`arch_key`]).
pub mod arch {
    pub const CONTEXT_LENGTH: &str = "context_length";
    pub const EMBEDDING_LENGTH: &str = "embedding_length";
    pub const BLOCK_COUNT: &str = "block_count";
    pub const FEED_FORWARD_LENGTH: &str = "feed_forward_length";
    pub const VOCAB_SIZE: &str = "vocab_size";
    pub const HEAD_COUNT: &str = "attention.head_count";
    pub const HEAD_COUNT_KV: &str = "attention.head_count_kv";
    pub const KEY_LENGTH: &str = "attention.key_length";
    pub const VALUE_LENGTH: &str = "attention.value_length";
    pub const RMS_EPS: &str = "attention.layer_norm_rms_epsilon";
    pub const RECURRENT_LAYERS: &str = "attention.recurrent_layers";
    pub const ROPE_FREQ_BASE: &str = "rope.freq_base";
    pub const ROPE_DIMENSION_COUNT: &str = "rope.dimension_count";
    pub const ROPE_DIMENSION_SECTIONS: &str = "rope.dimension_sections";
    pub const FULL_ATTENTION_INTERVAL: &str = "full_attention_interval";
    pub const SSM_CONV_KERNEL: &str = "ssm.conv_kernel";
    pub const SSM_STATE_SIZE: &str = "ssm.state_size";
    pub const SSM_GROUP_COUNT: &str = "ssm.group_count";
    pub const SSM_TIME_STEP_RANK: &str = "ssm.time_step_rank";
    pub const SSM_INNER_SIZE: &str = "ssm.inner_size";
    pub const EXPERT_COUNT: &str = "expert_count";
    pub const EXPERT_USED_COUNT: &str = "expert_used_count";
    pub const EXPERT_FEED_FORWARD_LENGTH: &str = "expert_feed_forward_length";
    pub const EXPERT_SHARED_FEED_FORWARD_LENGTH: &str = "expert_shared_feed_forward_length";
    pub const EXPERT_WEIGHTS_NORM: &str = "expert_weights_norm";
    pub const NEXTN_PREDICT_LAYERS: &str = "nextn_predict_layers";
}

/// Tokenizer keys.
pub mod tokenizer {
    pub const MODEL: &str = "tokenizer.ggml.model";
    pub const PRE: &str = "tokenizer.ggml.pre";
    pub const TOKENS: &str = "tokenizer.ggml.tokens";
    pub const TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
    pub const MERGES: &str = "tokenizer.ggml.merges";
    pub const BOS_ID: &str = "tokenizer.ggml.bos_token_id";
    pub const EOS_ID: &str = "tokenizer.ggml.eos_token_id";
    pub const EOT_ID: &str = "tokenizer.ggml.eot_token_id";
    pub const PADDING_ID: &str = "tokenizer.ggml.padding_token_id";
    pub const ADD_BOS: &str = "tokenizer.ggml.add_bos_token";
    pub const CHAT_TEMPLATE: &str = "tokenizer.chat_template";
}

/// `{arch}.{suffix}`.
pub fn arch_key(arch: &str, suffix: &str) -> String {
    format!("{arch}.{suffix}")
}

/// Global tensors.
pub const TOKEN_EMBD: &str = "token_embd.weight";
pub const OUTPUT_NORM: &str = "output_norm.weight";
pub const OUTPUT: &str = "output.weight";

/// Per-block tensor suffixes; the full name is `blk.{i}.{suffix}` (see [`blk`]).
pub mod layer {
    pub const ATTN_NORM: &str = "attn_norm.weight";
    /// qwen35*: the pre-FFN norm (HF's post_attention_layernorm).
    pub const POST_ATTENTION_NORM: &str = "post_attention_norm.weight";
    /// qwen3moe: the pre-FFN norm.
    pub const FFN_NORM: &str = "ffn_norm.weight";

    pub const ATTN_Q: &str = "attn_q.weight";
    pub const ATTN_K: &str = "attn_k.weight";
    pub const ATTN_V: &str = "attn_v.weight";
    pub const ATTN_OUTPUT: &str = "attn_output.weight";
    pub const ATTN_Q_NORM: &str = "attn_q_norm.weight";
    pub const ATTN_K_NORM: &str = "attn_k_norm.weight";

    pub const ATTN_QKV: &str = "attn_qkv.weight";
    pub const ATTN_GATE: &str = "attn_gate.weight";
    pub const SSM_CONV1D: &str = "ssm_conv1d.weight";
    pub const SSM_DT_BIAS: &str = "ssm_dt.bias";
    pub const SSM_A: &str = "ssm_a";
    pub const SSM_BETA: &str = "ssm_beta.weight";
    pub const SSM_ALPHA: &str = "ssm_alpha.weight";
    pub const SSM_NORM: &str = "ssm_norm.weight";
    pub const SSM_OUT: &str = "ssm_out.weight";

    pub const FFN_GATE_INP: &str = "ffn_gate_inp.weight";
    pub const FFN_GATE_EXPS: &str = "ffn_gate_exps.weight";
    pub const FFN_UP_EXPS: &str = "ffn_up_exps.weight";
    pub const FFN_GATE_UP_EXPS: &str = "ffn_gate_up_exps.weight";
    pub const FFN_DOWN_EXPS: &str = "ffn_down_exps.weight";
    pub const FFN_GATE_INP_SHEXP: &str = "ffn_gate_inp_shexp.weight";
    pub const FFN_GATE_SHEXP: &str = "ffn_gate_shexp.weight";
    pub const FFN_UP_SHEXP: &str = "ffn_up_shexp.weight";
    pub const FFN_DOWN_SHEXP: &str = "ffn_down_shexp.weight";

    pub const FFN_GATE: &str = "ffn_gate.weight";
    pub const FFN_UP: &str = "ffn_up.weight";
    pub const FFN_DOWN: &str = "ffn_down.weight";
}

/// `blk.{i}.{suffix}`.
pub fn blk(i: usize, suffix: &str) -> String {
    format!("blk.{i}.{suffix}")
}
