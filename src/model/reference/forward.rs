//! The whole model on the CPU in plain f32, batch 1: the specification the GPU executor is
//! held to, written to be read top to bottom.
//!
//! Per block: `h = x + mixer(rms(x) * attn_norm)`, `x = h + ffn(rms(h) * ffn_norm)`; the mixer
//! is gated attention or a Gated DeltaNet layer by the config's schedule, the FFN a MoE or a
//! dense SwiGLU. Finally `logits = lm_head(rms(x) * output_norm)`.
//!
//! A prompt is processed layer by layer over all its tokens ([`ReferenceModel::forward`]);
//! calling it with one token at a time must give the same logits, because the KV cache, the
//! conv state and the delta state carry everything between calls.

use std::collections::HashMap;

use crate::error::Error;
use crate::loader::config::{ExpertStorage, FfnConfig, LayerKind, ModelConfig};
use crate::loader::dequant::dequantize;
use crate::loader::gguf::GgufFile;
use crate::loader::names::{self, blk, layer as t};
use crate::model::reference::attention::attend;
use crate::model::reference::gdn::{causal_conv1d, delta_rule};
use crate::model::reference::linear::matvec;
use crate::model::reference::moe::{moe_route, swiglu};
use crate::model::reference::norm::{gated_rms_norm, rms_norm, sigmoid, silu};
use crate::model::reference::rope::{rope_frequencies, rope_neox};

/// A 2-D weight as the GGUF stores it: `rows` rows of `cols` contiguous values.
#[derive(Debug, Clone)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Matrix {
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        matvec(&self.data, x, self.rows, self.cols)
    }

    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }
}

struct AttentionWeights {
    q: Matrix,
    k: Matrix,
    v: Matrix,
    o: Matrix,
    q_norm: Vec<f32>,
    k_norm: Vec<f32>,
}

struct LinearWeights {
    qkv: Matrix,
    gate: Matrix,
    beta: Matrix,
    alpha: Matrix,
    /// [conv_channels, conv_kernel].
    conv: Vec<f32>,
    dt_bias: Vec<f32>,
    a: Vec<f32>,
    norm: Vec<f32>,
    out: Matrix,
}

enum Mixer {
    Attention(AttentionWeights),
    Linear(LinearWeights),
}

/// One expert's SwiGLU: gate and up [ffn, n_embd], down [n_embd, ffn].
struct Expert {
    gate: Vec<f32>,
    up: Vec<f32>,
    down: Vec<f32>,
}

enum Ffn {
    Moe {
        router: Matrix,
        experts: Vec<Expert>,
        shared: Option<(Vec<f32>, Expert)>,
    },
    Dense(Expert),
}

struct Layer {
    attn_norm: Vec<f32>,
    mixer: Mixer,
    ffn_norm: Vec<f32>,
    ffn: Ffn,
}

/// The model's weights, dequantized to f32.
pub struct ReferenceModel {
    pub config: ModelConfig,
    token_embd: Matrix,
    output_norm: Vec<f32>,
    output: Option<Matrix>,
    layers: Vec<Layer>,
    rope_freqs: Vec<f32>,
}

/// What a sequence carries between calls.
pub struct ReferenceState {
    /// Tokens processed so far: the next token's position.
    pub pos: usize,
    layers: Vec<LayerState>,
}

enum LayerState {
    /// [pos, n_kv, head_dim] each.
    Attention { keys: Vec<f32>, values: Vec<f32> },
    /// conv: [conv_kernel - 1, conv_channels]; delta: [n_v_heads, d_k, d_v].
    Linear { conv: Vec<f32>, delta: Vec<f32> },
}

/// Dequantized tensors by name, taken out as the model is assembled.
struct Tensors(HashMap<String, (Vec<u64>, Vec<f32>)>);

impl Tensors {
    fn vector(&mut self, name: &str) -> Result<Vec<f32>, Error> {
        self.0
            .remove(name)
            .map(|(_, v)| v)
            .ok_or_else(|| Error::InvalidArgument(format!("reference: tensor '{name}' missing")))
    }

    fn matrix(&mut self, name: &str) -> Result<Matrix, Error> {
        let (dims, data) = self
            .0
            .remove(name)
            .ok_or_else(|| Error::InvalidArgument(format!("reference: tensor '{name}' missing")))?;
        Ok(Matrix {
            cols: dims[0] as usize,
            rows: (dims.iter().product::<u64>() / dims[0]) as usize,
            data,
        })
    }

    /// `n` experts of [rows, cols] stored back to back.
    fn experts(&mut self, name: &str, n: usize) -> Result<Vec<Vec<f32>>, Error> {
        let all = self.vector(name)?;
        let each = all.len() / n;
        Ok(all.chunks_exact(each).map(<[f32]>::to_vec).collect())
    }
}

impl ReferenceModel {
    /// Dequantizes every main-pass tensor of `file` (already validated by `config`).
    pub fn load(file: &GgufFile, config: &ModelConfig) -> Result<ReferenceModel, Error> {
        let mut tensors = HashMap::new();
        for spec in config.tensor_specs() {
            let info = file
                .tensor(&spec.name)
                .ok_or_else(|| Error::InvalidArgument(format!("tensor '{}' missing", spec.name)))?;
            let bytes = file.tensor_data(&spec.name).unwrap_or_default();
            let values = dequantize(info.ggml_type, bytes, info.n_elements() as usize)
                .map_err(|e| Error::InvalidArgument(format!("tensor '{}': {e}", spec.name)))?;
            tensors.insert(spec.name.clone(), (info.dims.clone(), values));
        }
        let mut t = Tensors(tensors);
        let layers = (0..config.layers.len())
            .map(|i| Self::load_layer(config, &mut t, i))
            .collect::<Result<Vec<_>, _>>()?;
        let a = &config.attention;
        Ok(ReferenceModel {
            token_embd: t.matrix(names::TOKEN_EMBD)?,
            output_norm: t.vector(names::OUTPUT_NORM)?,
            output: if config.tied_embeddings {
                None
            } else {
                Some(t.matrix(names::OUTPUT)?)
            },
            layers,
            rope_freqs: rope_frequencies(a.n_rot as usize, a.rope_base, a.rope_sections),
            config: config.clone(),
        })
    }

    fn load_layer(config: &ModelConfig, t: &mut Tensors, i: usize) -> Result<Layer, Error> {
        let mixer = match config.layers[i] {
            LayerKind::Attention => Mixer::Attention(AttentionWeights {
                q: t.matrix(&blk(i, t::ATTN_Q))?,
                k: t.matrix(&blk(i, t::ATTN_K))?,
                v: t.matrix(&blk(i, t::ATTN_V))?,
                o: t.matrix(&blk(i, t::ATTN_OUTPUT))?,
                q_norm: t.vector(&blk(i, t::ATTN_Q_NORM))?,
                k_norm: t.vector(&blk(i, t::ATTN_K_NORM))?,
            }),
            LayerKind::Linear => Mixer::Linear(LinearWeights {
                qkv: t.matrix(&blk(i, t::ATTN_QKV))?,
                gate: t.matrix(&blk(i, t::ATTN_GATE))?,
                beta: t.matrix(&blk(i, t::SSM_BETA))?,
                alpha: t.matrix(&blk(i, t::SSM_ALPHA))?,
                conv: t.vector(&blk(i, t::SSM_CONV1D))?,
                dt_bias: t.vector(&blk(i, t::SSM_DT_BIAS))?,
                a: t.vector(&blk(i, t::SSM_A))?,
                norm: t.vector(&blk(i, t::SSM_NORM))?,
                out: t.matrix(&blk(i, t::SSM_OUT))?,
            }),
        };
        let norm_name = if config.arch.is_hybrid() {
            t::POST_ATTENTION_NORM
        } else {
            t::FFN_NORM
        };
        let ffn = match &config.ffn {
            FfnConfig::Dense { .. } => Ffn::Dense(Expert {
                gate: t.vector(&blk(i, t::FFN_GATE))?,
                up: t.vector(&blk(i, t::FFN_UP))?,
                down: t.vector(&blk(i, t::FFN_DOWN))?,
            }),
            FfnConfig::Moe(m) => {
                let n = m.n_expert as usize;
                let (gates, ups) = match m.storage {
                    ExpertStorage::Separate => (
                        t.experts(&blk(i, t::FFN_GATE_EXPS), n)?,
                        t.experts(&blk(i, t::FFN_UP_EXPS), n)?,
                    ),
                    // Each expert's slab is [gate rows | up rows].
                    ExpertStorage::Fused => t
                        .experts(&blk(i, t::FFN_GATE_UP_EXPS), n)?
                        .into_iter()
                        .map(|slab| {
                            let (g, u) = slab.split_at(slab.len() / 2);
                            (g.to_vec(), u.to_vec())
                        })
                        .unzip(),
                };
                let downs = t.experts(&blk(i, t::FFN_DOWN_EXPS), n)?;
                let experts = gates
                    .into_iter()
                    .zip(ups)
                    .zip(downs)
                    .map(|((gate, up), down)| Expert { gate, up, down })
                    .collect();
                let shared = match m.shared_ffn {
                    Some(_) => Some((
                        t.vector(&blk(i, t::FFN_GATE_INP_SHEXP))?,
                        Expert {
                            gate: t.vector(&blk(i, t::FFN_GATE_SHEXP))?,
                            up: t.vector(&blk(i, t::FFN_UP_SHEXP))?,
                            down: t.vector(&blk(i, t::FFN_DOWN_SHEXP))?,
                        },
                    )),
                    None => None,
                };
                Ffn::Moe {
                    router: t.matrix(&blk(i, t::FFN_GATE_INP))?,
                    experts,
                    shared,
                }
            }
        };
        Ok(Layer {
            attn_norm: t.vector(&blk(i, t::ATTN_NORM))?,
            mixer,
            ffn_norm: t.vector(&blk(i, norm_name))?,
            ffn,
        })
    }

    /// An empty state: no tokens seen, caches and recurrent states zero.
    pub fn new_state(&self) -> ReferenceState {
        let c = &self.config;
        let layers = c
            .layers
            .iter()
            .map(|kind| match (kind, &c.gdn) {
                (LayerKind::Linear, Some(g)) => LayerState::Linear {
                    conv: vec![0.0; g.conv_state_len() as usize],
                    delta: vec![0.0; (g.n_v_heads * g.d_k * g.d_v) as usize],
                },
                _ => LayerState::Attention {
                    keys: Vec::new(),
                    values: Vec::new(),
                },
            })
            .collect();
        ReferenceState { pos: 0, layers }
    }

    /// Runs `tokens` after what `state` has seen; returns each token's logits ([V] each).
    pub fn forward(
        &self,
        tokens: &[u32],
        state: &mut ReferenceState,
    ) -> Result<Vec<Vec<f32>>, Error> {
        let c = &self.config;
        let eps = c.rms_eps;
        let mut xs = tokens
            .iter()
            .map(|&tok| {
                let row = tok as usize;
                if row >= self.token_embd.rows {
                    return Err(Error::InvalidArgument(format!(
                        "token id {tok} is outside the vocabulary of {}",
                        self.token_embd.rows
                    )));
                }
                Ok(self.token_embd.row(row).to_vec())
            })
            .collect::<Result<Vec<_>, _>>()?;
        for (layer, layer_state) in self.layers.iter().zip(&mut state.layers) {
            let normed: Vec<Vec<f32>> = xs
                .iter()
                .map(|x| rms_norm(x, &layer.attn_norm, eps))
                .collect();
            let mixed = match (&layer.mixer, layer_state) {
                (Mixer::Attention(w), LayerState::Attention { keys, values }) => {
                    self.attention(w, &normed, state.pos, keys, values)
                }
                (Mixer::Linear(w), LayerState::Linear { conv, delta }) => {
                    self.gated_delta_net(w, &normed, conv, delta)
                }
                _ => unreachable!("states are built from the same schedule as the layers"),
            };
            for (x, m) in xs.iter_mut().zip(mixed) {
                add_into(x, &m);
                let h = rms_norm(x, &layer.ffn_norm, eps);
                add_into(x, &self.ffn(&layer.ffn, &h));
            }
        }
        state.pos += tokens.len();
        let head = self.output.as_ref().unwrap_or(&self.token_embd);
        Ok(xs
            .iter()
            .map(|x| head.apply(&rms_norm(x, &self.output_norm, eps)))
            .collect())
    }

    /// Gated (qwen35*) or plain (qwen3moe) attention for tokens at positions `pos0..`, appending
    /// their keys and values to the cache and attending causally.
    fn attention(
        &self,
        w: &AttentionWeights,
        xs: &[Vec<f32>],
        pos0: usize,
        keys: &mut Vec<f32>,
        values: &mut Vec<f32>,
    ) -> Vec<Vec<f32>> {
        let a = &self.config.attention;
        let (nh, nkv, hd) = (a.n_head as usize, a.n_head_kv as usize, a.head_dim as usize);
        let eps = self.config.rms_eps;
        // Keys and values of every new token first: token t may attend to all of 0..=pos0+t.
        let mut queries = Vec::with_capacity(xs.len());
        for (t, x) in xs.iter().enumerate() {
            let pos = pos0 + t;
            let q_rows = w.q.apply(x);
            let per_head = a.q_head_stride() as usize;
            let mut q = Vec::with_capacity(nh * hd);
            let mut gate = Vec::with_capacity(nh * hd);
            for h in 0..nh {
                // attn_q's rows per head: [query | gate] in qwen35*.
                let rows = &q_rows[h * per_head..(h + 1) * per_head];
                let mut qh = rms_norm(&rows[..hd], &w.q_norm, eps);
                rope_neox(&mut qh, pos, &self.rope_freqs);
                q.extend(qh);
                gate.extend_from_slice(&rows[hd..]);
            }
            let k_all = w.k.apply(x);
            for kh in k_all.chunks_exact(hd) {
                let mut kh = rms_norm(kh, &w.k_norm, eps);
                rope_neox(&mut kh, pos, &self.rope_freqs);
                keys.extend(kh);
            }
            values.extend(w.v.apply(x));
            queries.push((q, gate));
        }
        let row = a.kv_width() as usize;
        queries
            .into_iter()
            .enumerate()
            .map(|(t, (q, gate))| {
                let n_pos = pos0 + t + 1;
                let mut o = attend(
                    &q,
                    &keys[..n_pos * row],
                    &values[..n_pos * row],
                    nh,
                    nkv,
                    hd,
                );
                if a.output_gate {
                    o.iter_mut().zip(&gate).for_each(|(o, g)| *o *= sigmoid(*g));
                }
                w.o.apply(&o)
            })
            .collect()
    }

    /// Gated DeltaNet over the tokens: projections, causal conv + SiLU over the sequence,
    /// L2-normed q/k, the delta rule per value head (v head j reads k head j % n_k, the
    /// GGUF's tiled order), gated RMSNorm with z, output projection.
    fn gated_delta_net(
        &self,
        w: &LinearWeights,
        xs: &[Vec<f32>],
        conv_state: &mut [f32],
        delta_state: &mut [f32],
    ) -> Vec<Vec<f32>> {
        let g = self
            .config
            .gdn
            .as_ref()
            .expect("linear layers have ssm geometry");
        let (nv, dv) = (g.n_v_heads as usize, g.d_v as usize);
        let channels = g.conv_channels() as usize;
        let eps = self.config.rms_eps;
        let qkv: Vec<f32> = xs.iter().flat_map(|x| w.qkv.apply(x)).collect();
        let conv: Vec<f32> =
            causal_conv1d(&qkv, &w.conv, conv_state, channels, g.conv_kernel as usize)
                .into_iter()
                .map(silu)
                .collect();
        let beta: Vec<f32> = xs.iter().flat_map(|x| w.beta.apply(x)).collect();
        let alpha: Vec<f32> = xs.iter().flat_map(|x| w.alpha.apply(x)).collect();
        let o = delta_rule(g, &conv, &beta, &alpha, &w.dt_bias, &w.a, eps, delta_state);
        xs.iter()
            .zip(o.chunks_exact(nv * dv))
            .map(|(x, o)| {
                let z = w.gate.apply(x);
                let normed: Vec<f32> = o
                    .chunks_exact(dv)
                    .zip(z.chunks_exact(dv))
                    .flat_map(|(oh, zh)| gated_rms_norm(oh, &w.norm, zh, eps))
                    .collect();
                w.out.apply(&normed)
            })
            .collect()
    }

    fn ffn(&self, ffn: &Ffn, h: &[f32]) -> Vec<f32> {
        match ffn {
            Ffn::Dense(e) => {
                let FfnConfig::Dense { n_ff } = self.config.ffn else {
                    unreachable!("dense weights come from a dense config")
                };
                swiglu(h, &e.gate, &e.up, &e.down, n_ff as usize)
            }
            Ffn::Moe {
                router,
                experts,
                shared,
            } => {
                let m = self
                    .config
                    .moe()
                    .expect("MoE weights come from a MoE config");
                let (ids, weights) =
                    moe_route(&router.apply(h), m.n_expert_used as usize, m.norm_top_k);
                let mut y = vec![0.0f32; h.len()];
                let fe = m.expert_ffn as usize;
                for (&e, &wt) in ids.iter().zip(&weights) {
                    let ex = &experts[e];
                    let out = swiglu(h, &ex.gate, &ex.up, &ex.down, fe);
                    y.iter_mut().zip(out).for_each(|(y, o)| *y += wt * o);
                }
                if let (Some((gate_inp, ex)), Some(fs)) = (shared, m.shared_ffn) {
                    let gate = sigmoid(gate_inp.iter().zip(h).map(|(a, b)| a * b).sum());
                    let out = swiglu(h, &ex.gate, &ex.up, &ex.down, fs as usize);
                    y.iter_mut().zip(out).for_each(|(y, o)| *y += gate * o);
                }
                y
            }
        }
    }
}

fn add_into(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
}
