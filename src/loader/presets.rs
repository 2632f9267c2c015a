//! Published model configurations, so the algebra and `inspect --preset` work without weights.
//!
//! Values are the text-model fields of each checkpoint's Hugging Face `config.json`
//! (Qwen3.5: `text_config`), mapped to GGUF terms the way llama.cpp's converter maps them.
//! The trunk is described; Qwen3.5's single MTP block is recorded in `n_nextn`.
//! Where a field could not be read from a published config (tied embeddings of the 2B and 4B),
//! the family's convention is used: Qwen's small checkpoints tie the lm head to the embedding.

use crate::error::ConfigError;
use crate::loader::config::{
    Architecture, AttentionConfig, ExpertStorage, FfnConfig, GdnConfig, LayerKind, ModelConfig,
    MoeConfig, DEFAULT_FULL_ATTENTION_INTERVAL,
};

/// Every preset name `inspect --preset` accepts.
pub const PRESET_NAMES: [&str; 20] = [
    "qwen3-30b-a3b",
    "qwen3-235b-a22b",
    "qwen3.5-0.8b",
    "qwen3.5-2b",
    "qwen3.5-4b",
    "qwen3.5-9b",
    "qwen3.5-27b",
    "qwen3.5-35b-a3b",
    "qwen3.5-122b-a10b",
    "qwen3.5-397b-a17b",
    "tiny-qwen35moe",
    "tiny-qwen35",
    "tiny-qwen3moe",
    "small-qwen35moe",
    "small-qwen35",
    "small-qwen3moe",
    "demo-qwen35moe",
    "bench-qwen35moe",
    "a3b-depth",
    "route-qwen35moe",
];

/// Looks a preset up by name (case-insensitive; `_` and `-` are interchangeable).
pub fn preset(name: &str) -> Result<ModelConfig, ConfigError> {
    let key = name.to_ascii_lowercase().replace('_', "-");
    let config = match key.as_str() {
        "qwen3-30b-a3b" => qwen3_moe("Qwen3-30B-A3B", 2048, 48, 32, 4, 128, 768),
        "qwen3-235b-a22b" => qwen3_moe("Qwen3-235B-A22B", 4096, 94, 64, 4, 128, 1536),
        "qwen3.5-0.8b" => qwen35_dense(shape("Qwen3.5-0.8B", 1024, 24, 8, 2, 16), 3584, true),
        "qwen3.5-2b" => qwen35_dense(shape("Qwen3.5-2B", 2048, 24, 8, 2, 16), 6144, true),
        "qwen3.5-4b" => qwen35_dense(shape("Qwen3.5-4B", 2560, 32, 16, 4, 32), 9216, true),
        "qwen3.5-9b" => qwen35_dense(shape("Qwen3.5-9B", 4096, 32, 16, 4, 32), 12288, false),
        "qwen3.5-27b" => qwen35_dense(shape("Qwen3.5-27B", 5120, 64, 24, 4, 48), 17408, false),
        "qwen3.5-35b-a3b" => qwen35_moe(shape("Qwen3.5-35B-A3B", 2048, 40, 16, 2, 32), 256, 8, 512),
        "qwen3.5-122b-a10b" => qwen35_moe(
            shape("Qwen3.5-122B-A10B", 3072, 48, 32, 2, 64),
            256,
            8,
            1024,
        ),
        "qwen3.5-397b-a17b" => qwen35_moe(
            shape("Qwen3.5-397B-A17B", 4096, 60, 32, 2, 64),
            512,
            10,
            1024,
        ),
        "tiny-qwen35moe" => tiny_qwen35moe(),
        "tiny-qwen35" => tiny_qwen35(),
        "tiny-qwen3moe" => tiny_qwen3moe(),
        "small-qwen35moe" => small(tiny_qwen35moe()),
        "small-qwen35" => small(tiny_qwen35()),
        "small-qwen3moe" => small(tiny_qwen3moe()),
        "demo-qwen35moe" => demo_qwen35moe(),
        "bench-qwen35moe" => bench_qwen35moe(),
        "a3b-depth" => a3b_depth(),
        "route-qwen35moe" => route_qwen35moe(),
        _ => {
            return Err(ConfigError::UnknownPreset {
                name: name.to_string(),
                known: PRESET_NAMES.join(", "),
            })
        }
    };
    Ok(config)
}

/// Qwen3 MoE: 151936-token vocabulary, every layer attention, 128 experts (8 used).
fn qwen3_moe(
    name: &str,
    n_embd: u32,
    n_layer: usize,
    n_head: u32,
    n_head_kv: u32,
    head_dim: u32,
    expert_ffn: u32,
) -> ModelConfig {
    ModelConfig {
        name: name.into(),
        arch: Architecture::Qwen3Moe,
        n_embd,
        n_vocab: 151_936,
        n_ctx_train: 40_960,
        rms_eps: 1e-6,
        layers: vec![LayerKind::Attention; n_layer],
        n_nextn: 0,
        attention: AttentionConfig {
            n_head,
            n_head_kv,
            head_dim,
            n_rot: head_dim,
            rope_base: 1_000_000.0,
            rope_sections: [0; 4],
            output_gate: false,
        },
        gdn: None,
        ffn: FfnConfig::Moe(MoeConfig {
            n_expert: 128,
            n_expert_used: 8,
            expert_ffn,
            shared_ffn: None,
            norm_top_k: true,
            storage: ExpertStorage::Separate,
        }),
        tied_embeddings: false,
    }
}

/// The dimensions that vary across Qwen3.5 checkpoints.
struct Qwen35Shape {
    name: &'static str,
    n_embd: u32,
    n_layer: usize,
    n_head: u32,
    n_head_kv: u32,
    /// Linear-attention value heads (the key heads are 16 throughout).
    n_v_heads: u32,
}

/// The Qwen3.5 hybrid skeleton: 256-dim gated attention heads with 64 rotary dims,
/// 128-dim linear heads with 16 key heads, conv kernel 4, one attention layer in four.
fn qwen35(
    s: Qwen35Shape,
    arch: Architecture,
    ffn: FfnConfig,
    tied_embeddings: bool,
) -> ModelConfig {
    ModelConfig {
        name: s.name.into(),
        arch,
        n_embd: s.n_embd,
        n_vocab: 248_320,
        n_ctx_train: 262_144,
        rms_eps: 1e-6,
        layers: ModelConfig::interval_schedule(s.n_layer, DEFAULT_FULL_ATTENTION_INTERVAL),
        n_nextn: 1,
        attention: AttentionConfig {
            n_head: s.n_head,
            n_head_kv: s.n_head_kv,
            head_dim: 256,
            n_rot: 64,
            rope_base: 10_000_000.0,
            rope_sections: [11, 11, 10, 0],
            output_gate: true,
        },
        gdn: Some(GdnConfig {
            n_k_heads: 16,
            n_v_heads: s.n_v_heads,
            d_k: 128,
            d_v: 128,
            conv_kernel: 4,
        }),
        ffn,
        tied_embeddings,
    }
}

fn qwen35_dense(s: Qwen35Shape, n_ff: u32, tied: bool) -> ModelConfig {
    qwen35(s, Architecture::Qwen35, FfnConfig::Dense { n_ff }, tied)
}

/// Qwen3.5 MoE: a shared expert as wide as a routed one, untied lm head.
fn qwen35_moe(s: Qwen35Shape, n_expert: u32, n_expert_used: u32, expert_ffn: u32) -> ModelConfig {
    let ffn = FfnConfig::Moe(MoeConfig {
        n_expert,
        n_expert_used,
        expert_ffn,
        shared_ffn: Some(expert_ffn),
        norm_top_k: true,
        storage: ExpertStorage::Separate,
    });
    qwen35(s, Architecture::Qwen35Moe, ffn, false)
}

#[rustfmt::skip]
fn shape(name: &'static str, n_embd: u32, n_layer: usize, n_head: u32, n_head_kv: u32, n_v_heads: u32) -> Qwen35Shape {
    Qwen35Shape { name, n_embd, n_layer, n_head, n_head_kv, n_v_heads }
}

/// A miniature qwen35moe for tests and the demo: every feature of the 35B-A3B geometry
/// (LLLA schedule, 2 v heads per k head, partial rotary, gated attention, shared expert)
/// at a size that runs in milliseconds on a CPU, with the 263-token byte vocabulary.
fn tiny_qwen35moe() -> ModelConfig {
    ModelConfig {
        name: "tiny-qwen35moe".into(),
        arch: Architecture::Qwen35Moe,
        n_embd: 64,
        n_vocab: 263,
        n_ctx_train: 4096,
        rms_eps: 1e-6,
        layers: ModelConfig::interval_schedule(4, DEFAULT_FULL_ATTENTION_INTERVAL),
        n_nextn: 0,
        attention: AttentionConfig {
            n_head: 4,
            n_head_kv: 2,
            head_dim: 16,
            n_rot: 8,
            rope_base: 10_000_000.0,
            rope_sections: [2, 1, 1, 0],
            output_gate: true,
        },
        gdn: Some(GdnConfig {
            n_k_heads: 2,
            n_v_heads: 4,
            d_k: 16,
            d_v: 16,
            conv_kernel: 4,
        }),
        ffn: FfnConfig::Moe(MoeConfig {
            n_expert: 8,
            n_expert_used: 2,
            expert_ffn: 32,
            shared_ffn: Some(32),
            norm_top_k: true,
            storage: ExpertStorage::Separate,
        }),
        tied_embeddings: false,
    }
}

/// The dense hybrid in miniature, with tied embeddings as the small Qwen3.5 checkpoints have.
fn tiny_qwen35() -> ModelConfig {
    ModelConfig {
        name: "tiny-qwen35".into(),
        arch: Architecture::Qwen35,
        ffn: FfnConfig::Dense { n_ff: 96 },
        tied_embeddings: true,
        ..tiny_qwen35moe()
    }
}

/// qwen3moe in miniature: attention in every layer, whole-head rotary, no gate, no shared expert.
fn tiny_qwen3moe() -> ModelConfig {
    ModelConfig {
        name: "tiny-qwen3moe".into(),
        arch: Architecture::Qwen3Moe,
        layers: vec![LayerKind::Attention; 3],
        attention: AttentionConfig {
            n_head: 4,
            n_head_kv: 2,
            head_dim: 16,
            n_rot: 16,
            rope_base: 1_000_000.0,
            rope_sections: [0; 4],
            output_gate: false,
        },
        gdn: None,
        ffn: FfnConfig::Moe(MoeConfig {
            n_expert: 8,
            n_expert_used: 2,
            expert_ffn: 32,
            shared_ffn: None,
            norm_top_k: true,
            storage: ExpertStorage::Separate,
        }),
        ..tiny_qwen35moe()
    }
}

/// A tiny model widened so every quantized row is a multiple of 256 (K-quants apply to all
/// of them, none falls back), two blocks deep (`LA` for the hybrids) to stay a few MB.
fn small(tiny: ModelConfig) -> ModelConfig {
    let hybrid = tiny.arch.is_hybrid();
    let ffn = match tiny.ffn {
        FfnConfig::Dense { .. } => FfnConfig::Dense { n_ff: 256 },
        FfnConfig::Moe(m) => FfnConfig::Moe(MoeConfig {
            n_expert: 4,
            n_expert_used: 2,
            expert_ffn: 256,
            shared_ffn: m.shared_ffn.map(|_| 256),
            ..m
        }),
    };
    ModelConfig {
        name: tiny.name.replace("tiny", "small"),
        n_embd: 256,
        layers: if hybrid {
            ModelConfig::interval_schedule(2, 2)
        } else {
            vec![LayerKind::Attention; 2]
        },
        attention: AttentionConfig {
            n_head: 4,
            n_head_kv: 2,
            head_dim: 64,
            n_rot: if hybrid { 32 } else { 64 },
            rope_sections: if hybrid { [6, 5, 5, 0] } else { [0; 4] },
            ..tiny.attention
        },
        gdn: tiny.gdn.map(|g| GdnConfig {
            d_k: 64,
            d_v: 64,
            ..g
        }),
        ffn,
        ..tiny
    }
}

/// The embedded demo: the qwen35moe layer pattern at width 128 with the real 248,320-id
/// vocabulary (tied head, so the file stays near 40 MB at q8_0), quick on a CPU device.
fn demo_qwen35moe() -> ModelConfig {
    let tiny = tiny_qwen35moe();
    ModelConfig {
        name: "demo-qwen35moe".into(),
        n_embd: 128,
        n_vocab: 248_320,
        attention: AttentionConfig {
            n_head: 4,
            n_head_kv: 2,
            head_dim: 32,
            n_rot: 16,
            rope_sections: [3, 3, 2, 0],
            ..tiny.attention
        },
        gdn: tiny.gdn.map(|g| GdnConfig {
            d_k: 32,
            d_v: 32,
            ..g
        }),
        ffn: FfnConfig::Moe(MoeConfig {
            n_expert: 16,
            n_expert_used: 4,
            expert_ffn: 64,
            shared_ffn: Some(64),
            norm_top_k: true,
            storage: ExpertStorage::Separate,
        }),
        tied_embeddings: true,
        ..tiny
    }
}

/// Qwen3.5-35B-A3B's layer geometry in 4 layers (LLLA) with 32 experts and the byte
/// vocabulary: the model the performance figures against llama.cpp are measured on.
fn bench_qwen35moe() -> ModelConfig {
    let full = qwen35_moe(shape("bench-qwen35moe", 2048, 4, 16, 2, 32), 32, 8, 512);
    ModelConfig {
        n_vocab: 263,
        n_ctx_train: 4096,
        n_nextn: 0,
        ..full
    }
}

/// Qwen3.5-35B-A3B's routing (8 of 256 experts a layer) on the demo's small widths and the
/// byte vocabulary: hit rates of the VRAM expert cache (`--gpu-memory`) at the real model's
/// share of experts per token, measured in seconds on any device.
fn route_qwen35moe() -> ModelConfig {
    let demo = demo_qwen35moe();
    ModelConfig {
        name: "route-qwen35moe".into(),
        n_vocab: 263,
        tied_embeddings: false,
        ffn: FfnConfig::Moe(MoeConfig {
            n_expert: 256,
            n_expert_used: 8,
            expert_ffn: 64,
            shared_ffn: Some(64),
            norm_top_k: true,
            storage: ExpertStorage::Separate,
        }),
        ..demo
    }
}

/// Qwen3.5-35B-A3B's full depth and widths (40 layers, LLLA x 10) with 16 experts of 8 used
/// and the byte vocabulary: the real model's dispatch count, host cost per token and
/// per-matrix grids, in about 2 GB at Q4_K_M.
fn a3b_depth() -> ModelConfig {
    let full = qwen35_moe(shape("a3b-depth", 2048, 40, 16, 2, 32), 16, 8, 512);
    ModelConfig {
        n_vocab: 263,
        n_ctx_train: 4096,
        n_nextn: 0,
        ..full
    }
}
