//! The tensors a configuration implies: [`ModelConfig::tensor_specs`] lists every tensor of
//! the main pass with its expected shape and role, and [`ModelConfig::check_tensors`] holds
//! a file to that list.

use crate::error::ConfigError;
use crate::loader::config::{Architecture, ExpertStorage, FfnConfig, LayerKind, ModelConfig};
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
        let p = TensorRole::AttentionProj;
        out.push(spec(&blk(i, t::ATTN_Q), &[e, a.q_rows()], p));
        out.push(spec(&blk(i, t::ATTN_K), &[e, a.kv_width()], p));
        out.push(spec(&blk(i, t::ATTN_V), &[e, a.kv_width()], p));
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
