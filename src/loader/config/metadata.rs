//! The configuration from GGUF metadata, read as llama.cpp reads it: `{arch}.*` keys with
//! llama.cpp's defaults and fallbacks, errors that name the key.

use crate::error::ConfigError;
use crate::loader::config::{
    Architecture, AttentionConfig, ExpertStorage, FfnConfig, GdnConfig, LayerKind, ModelConfig,
    MoeConfig,
};
use crate::loader::gguf::{GgufFile, MetaValue};
use crate::loader::names::{self, arch as k, layer as t};

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

        let (n_blocks, n_nextn, layers) = Self::read_layers(&m, arch)?;
        let n_embd = m.u32_req(k::EMBEDDING_LENGTH)?;
        let attention = Self::read_attention(&m, arch, &layers, n_blocks, n_embd)?;
        let gdn = if arch.is_hybrid() {
            Some(Self::read_gdn(&m)?)
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

    /// `block_count`, `nextn_predict_layers` (the MTP blocks after the trunk) and the trunk's
    /// layer kinds.
    fn read_layers(
        m: &Meta,
        arch: Architecture,
    ) -> Result<(usize, u32, Vec<LayerKind>), ConfigError> {
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
        let layers = Self::read_schedule(m, arch, n_blocks, n_nextn as usize)?[..n_trunk].to_vec();
        Ok((n_blocks, n_nextn, layers))
    }

    /// The attention geometry, one value shared by every attention layer (`head_count` and
    /// `head_count_kv` may be written per block).
    fn read_attention(
        m: &Meta,
        arch: Architecture,
        layers: &[LayerKind],
        n_blocks: usize,
        n_embd: u32,
    ) -> Result<AttentionConfig, ConfigError> {
        let heads = m
            .per_layer_u32(k::HEAD_COUNT, n_blocks)?
            .ok_or_else(|| ConfigError::MissingKey(m.key(k::HEAD_COUNT)))?;
        let n_head = uniform_over(&heads, layers, &m.key(k::HEAD_COUNT))?.unwrap_or(heads[0]);
        let n_head_kv = match m.per_layer_u32(k::HEAD_COUNT_KV, n_blocks)? {
            Some(kv) => uniform_over(&kv, layers, &m.key(k::HEAD_COUNT_KV))?.unwrap_or(n_head),
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
        Ok(AttentionConfig {
            n_head,
            n_head_kv,
            head_dim,
            n_rot: m.u32_opt(k::ROPE_DIMENSION_COUNT)?.unwrap_or(head_dim),
            rope_base: m.f32_opt(k::ROPE_FREQ_BASE)?.unwrap_or(10_000.0),
            rope_sections,
            output_gate: arch.is_hybrid(),
        })
    }

    /// The Gated DeltaNet geometry from `ssm.*`; the value head dim is `inner_size / time_step_rank`.
    fn read_gdn(m: &Meta) -> Result<GdnConfig, ConfigError> {
        let n_v_heads = m.u32_req(k::SSM_TIME_STEP_RANK)?;
        let inner = m.u32_req(k::SSM_INNER_SIZE)?;
        if n_v_heads == 0 || inner % n_v_heads != 0 {
            return Err(ConfigError::InvalidValue {
                key: m.key(k::SSM_INNER_SIZE),
                value: inner.to_string(),
                reason: format!("must be a non-zero multiple of ssm.time_step_rank ({n_v_heads})"),
            });
        }
        Ok(GdnConfig {
            n_k_heads: m.u32_req(k::SSM_GROUP_COUNT)?,
            n_v_heads,
            d_k: m.u32_req(k::SSM_STATE_SIZE)?,
            d_v: inner / n_v_heads,
            conv_kernel: m.u32_req(k::SSM_CONV_KERNEL)?,
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
