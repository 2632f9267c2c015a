//! [`ModelConfig::validate`]: the invariants every consumer of a configuration relies on.

use crate::error::ConfigError;
use crate::loader::config::{
    Architecture, AttentionConfig, FfnConfig, GdnConfig, ModelConfig, MoeConfig,
};

fn geo(msg: String) -> Result<(), ConfigError> {
    Err(ConfigError::Geometry(msg))
}

impl ModelConfig {
    /// Checks the invariants every consumer relies on. Errors name the offending values.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
        if self.n_attention_layers() > 0 {
            validate_attention(&self.attention, self.arch)?;
        }
        match (&self.gdn, self.n_linear_layers()) {
            (None, 0) => {}
            (None, n) => return geo(format!("{n} linear-attention layers but no ssm.* geometry")),
            (Some(g), _) => validate_gdn(g)?,
        }
        match &self.ffn {
            FfnConfig::Dense { n_ff } if *n_ff == 0 => geo("feed_forward_length is 0".into()),
            FfnConfig::Moe(m) => validate_moe(m),
            FfnConfig::Dense { .. } => Ok(()),
        }
    }
}

/// Non-zero heads, whole GQA groups, and rotary dimensions that fit the head.
fn validate_attention(a: &AttentionConfig, arch: Architecture) -> Result<(), ConfigError> {
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
    if arch == Architecture::Qwen3Moe && a.n_rot != a.head_dim {
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
    Ok(())
}

/// Non-zero dimensions, and value heads that tile the key heads.
fn validate_gdn(g: &GdnConfig) -> Result<(), ConfigError> {
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
    Ok(())
}

/// A top-k within the experts, and non-zero expert widths.
fn validate_moe(m: &MoeConfig) -> Result<(), ConfigError> {
    if m.n_expert == 0 || m.n_expert_used == 0 || m.n_expert_used > m.n_expert {
        return geo(format!(
            "expert_used_count {} must be in 1..=expert_count {}",
            m.n_expert_used, m.n_expert
        ));
    }
    if m.expert_ffn == 0 || m.shared_ffn == Some(0) {
        return geo("expert feed-forward lengths must be non-zero".into());
    }
    Ok(())
}
