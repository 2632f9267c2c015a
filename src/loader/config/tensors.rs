//! The tensors a configuration implies: [`ModelConfig::layer_tensors`] describes each
//! layer's, [`ModelConfig::tensor_specs`] lists every tensor of the main pass with its
//! expected shape and role, and [`ModelConfig::check_tensors`] holds a file to that list.

use crate::error::ConfigError;
use crate::loader::config::layer::{
    AttentionTensors, ExpertGateUp, FfnTensors, LayerSpecs, LayerTensors, LinearTensors,
    MixerTensors, MoeTensors, SharedExpertTensors,
};
use crate::loader::config::{
    Architecture, ExpertStorage, FfnConfig, GdnConfig, LayerKind, ModelConfig, MoeConfig,
};
use crate::loader::gguf::GgufFile;
use crate::loader::names::{self, blk, layer as t};

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
    /// Every tensor of the main pass with its expected ggml-order shape, in file order: the
    /// globals, then each layer's [`Self::layer_tensors`].
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
        // Only a config `validate` rejects (a linear layer without ssm geometry) has layers
        // without a description.
        for layer in (0..self.layers.len()).filter_map(|i| self.layer_tensors(i).ok()) {
            specs.extend(layer.specs());
        }
        specs
    }

    /// Every tensor of trunk layer `i`: the one place a layer's tensors are listed. Fails
    /// for a layer past the trunk, or a linear layer without ssm geometry.
    pub fn layer_tensors(&self, i: usize) -> Result<LayerSpecs, ConfigError> {
        let kind = self.dispatch(i).ok_or_else(|| {
            ConfigError::Geometry(format!(
                "layer {i} is past the trunk of {} layers",
                self.layers.len()
            ))
        })?;
        let mixer = match (kind, &self.gdn) {
            (LayerKind::Attention, _) => MixerTensors::Attention(self.attention_tensors(i)),
            (LayerKind::Linear, Some(g)) => MixerTensors::Linear(self.linear_tensors(g, i)),
            (LayerKind::Linear, None) => {
                return Err(ConfigError::Geometry(format!(
                    "layer {i} is linear but the config has no ssm.* geometry"
                )))
            }
        };
        let norm = if self.arch == Architecture::Qwen3Moe {
            t::FFN_NORM
        } else {
            t::POST_ATTENTION_NORM
        };
        let e = self.n_embd as u64;
        Ok(LayerTensors {
            attn_norm: spec(&blk(i, t::ATTN_NORM), &[e], TensorRole::Norm),
            mixer,
            ffn_norm: spec(&blk(i, norm), &[e], TensorRole::Norm),
            ffn: self.ffn_tensors(i),
        })
    }

    fn attention_tensors(&self, i: usize) -> AttentionTensors<TensorSpec, TensorSpec> {
        let a = &self.attention;
        let e = self.n_embd as u64;
        let hd = a.head_dim as u64;
        let p = TensorRole::AttentionProj;
        AttentionTensors {
            q: spec(&blk(i, t::ATTN_Q), &[e, a.q_rows()], p),
            k: spec(&blk(i, t::ATTN_K), &[e, a.kv_width()], p),
            v: spec(&blk(i, t::ATTN_V), &[e, a.kv_width()], p),
            o: spec(&blk(i, t::ATTN_OUTPUT), &[a.n_head as u64 * hd, e], p),
            q_norm: spec(&blk(i, t::ATTN_Q_NORM), &[hd], TensorRole::Norm),
            k_norm: spec(&blk(i, t::ATTN_K_NORM), &[hd], TensorRole::Norm),
        }
    }

    fn linear_tensors(&self, g: &GdnConfig, i: usize) -> LinearTensors<TensorSpec, TensorSpec> {
        let e = self.n_embd as u64;
        let nv = g.n_v_heads as u64;
        let (p, s) = (TensorRole::LinearProj, TensorRole::LinearParam);
        LinearTensors {
            qkv: spec(&blk(i, t::ATTN_QKV), &[e, g.conv_channels()], p),
            gate: spec(&blk(i, t::ATTN_GATE), &[e, g.value_dim()], p),
            conv: spec(
                &blk(i, t::SSM_CONV1D),
                &[g.conv_kernel as u64, g.conv_channels()],
                s,
            ),
            dt_bias: spec(&blk(i, t::SSM_DT_BIAS), &[nv], s),
            a: spec(&blk(i, t::SSM_A), &[nv], s),
            beta: spec(&blk(i, t::SSM_BETA), &[e, nv], p),
            alpha: spec(&blk(i, t::SSM_ALPHA), &[e, nv], p),
            norm: spec(&blk(i, t::SSM_NORM), &[g.d_v as u64], TensorRole::Norm),
            out: spec(&blk(i, t::SSM_OUT), &[g.value_dim(), e], p),
        }
    }

    fn ffn_tensors(&self, i: usize) -> FfnTensors<TensorSpec, TensorSpec> {
        let e = self.n_embd as u64;
        match &self.ffn {
            FfnConfig::Dense { n_ff } => {
                let f = *n_ff as u64;
                let d = TensorRole::DenseFfn;
                FfnTensors::Dense {
                    gate: spec(&blk(i, t::FFN_GATE), &[e, f], d),
                    up: spec(&blk(i, t::FFN_UP), &[e, f], d),
                    down: spec(&blk(i, t::FFN_DOWN), &[f, e], d),
                }
            }
            FfnConfig::Moe(m) => FfnTensors::Moe(self.moe_tensors(m, i)),
        }
    }

    fn moe_tensors(&self, m: &MoeConfig, i: usize) -> MoeTensors<TensorSpec, TensorSpec> {
        let e = self.n_embd as u64;
        let (x, fe) = (m.n_expert as u64, m.expert_ffn as u64);
        let r = TensorRole::RoutedExperts;
        let sh = TensorRole::SharedExpert;
        MoeTensors {
            router: spec(&blk(i, t::FFN_GATE_INP), &[e, x], TensorRole::Router),
            gate_up: match m.storage {
                ExpertStorage::Separate => ExpertGateUp::Separate {
                    gate: spec(&blk(i, t::FFN_GATE_EXPS), &[e, fe, x], r),
                    up: spec(&blk(i, t::FFN_UP_EXPS), &[e, fe, x], r),
                },
                ExpertStorage::Fused => {
                    ExpertGateUp::Fused(spec(&blk(i, t::FFN_GATE_UP_EXPS), &[e, 2 * fe, x], r))
                }
            },
            down: spec(&blk(i, t::FFN_DOWN_EXPS), &[fe, e, x], r),
            shared: m.shared_ffn.map(|fs| {
                let fs = fs as u64;
                SharedExpertTensors {
                    gate_inp: spec(
                        &blk(i, t::FFN_GATE_INP_SHEXP),
                        &[e],
                        TensorRole::SharedExpertGate,
                    ),
                    gate: spec(&blk(i, t::FFN_GATE_SHEXP), &[e, fs], sh),
                    up: spec(&blk(i, t::FFN_UP_SHEXP), &[e, fs], sh),
                    down: spec(&blk(i, t::FFN_DOWN_SHEXP), &[fs, e], sh),
                }
            }),
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

fn spec(name: &str, dims: &[u64], role: TensorRole) -> TensorSpec {
    TensorSpec {
        name: name.to_string(),
        dims: dims.to_vec(),
        role,
    }
}

/// `*.bias` tensors other than the GDN's dt bias (a parameter of the decay, not a projection).
pub fn is_projection_bias(name: &str) -> bool {
    name.ends_with(".bias") && !name.ends_with(t::SSM_DT_BIAS)
}
