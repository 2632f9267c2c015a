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

use crate::error::Error;
use crate::loader::config::{
    AttentionTensors, ExpertGateUp, FfnConfig, FfnTensors, LayerKind, LayerState, LayerTensors,
    LinearTensors, MixerTensors, ModelConfig, MoeTensors, TensorSource, TensorSpec,
};
use crate::loader::dequant::dequantize;
use crate::loader::gguf::GgufFile;
use crate::loader::names;
use crate::model::reference::attention::flash_decode;
use crate::model::reference::gdn::{causal_conv1d, delta_rule, DeltaRuleInputs};
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

/// An expert tensor: one matrix per expert.
type Experts = Vec<Matrix>;
/// One layer's weights in f32 (the loader's description, loaded by [`Dequantize`]).
type Layer = LayerTensors<Matrix, Experts, Vec<f32>>;

/// The model's weights, dequantized to f32.
pub struct ReferenceModel {
    pub config: ModelConfig,
    token_embd: Matrix,
    output_norm: Vec<f32>,
    output: Option<Matrix>,
    layers: Vec<Layer>,
    rope_freqs: Vec<f32>,
}

/// What a sequence carries between calls (cloned, a snapshot to resume from).
#[derive(Debug, Clone)]
pub struct ReferenceState {
    /// Tokens processed so far: the next token's position.
    pub pos: usize,
    /// Keys and values [pos, n_kv, head_dim] of each attention layer; conv and delta states
    /// of each linear one.
    layers: Vec<LayerState<Vec<f32>>>,
}

/// Reads tensors out of the file, dequantized to f32.
struct Dequantize<'a>(&'a GgufFile);

impl Dequantize<'_> {
    /// Tensor `name` as `rows` rows of its first dimension's `cols` values.
    fn matrix_named(&self, name: &str) -> Result<Matrix, Error> {
        let info = self
            .0
            .tensor(name)
            .ok_or_else(|| Error::InvalidArgument(format!("reference: tensor '{name}' missing")))?;
        let bytes = self.0.tensor_data(name).unwrap_or_default();
        let data = dequantize(info.ggml_type, bytes, info.n_elements() as usize)
            .map_err(|e| Error::InvalidArgument(format!("tensor '{name}': {e}")))?;
        let cols = *info.dims.first().ok_or_else(|| {
            Error::InvalidArgument(format!("reference: tensor '{name}' has no dimensions"))
        })?;
        Ok(Matrix {
            cols: cols as usize,
            rows: (info.n_elements() / cols) as usize,
            data,
        })
    }
}

impl TensorSource for Dequantize<'_> {
    type Matrix = Matrix;
    type Experts = Experts;
    type Vector = Vec<f32>;
    type Error = Error;

    fn matrix(&mut self, spec: &TensorSpec) -> Result<Matrix, Error> {
        self.matrix_named(&spec.name)
    }

    /// {cols, rows, n_experts}: `n_experts` matrices of [rows, cols] stored back to back.
    fn experts(&mut self, spec: &TensorSpec) -> Result<Experts, Error> {
        let all = self.matrix_named(&spec.name)?;
        let &[_, rows, _] = &spec.dims[..] else {
            return Err(Error::InvalidArgument(format!(
                "reference: expert tensor '{}' has dimensions {:?}",
                spec.name, spec.dims
            )));
        };
        let rows = rows as usize;
        Ok(all
            .data
            .chunks_exact(rows * all.cols)
            .map(|data| Matrix {
                rows,
                cols: all.cols,
                data: data.to_vec(),
            })
            .collect())
    }

    fn vector(&mut self, spec: &TensorSpec) -> Result<Vec<f32>, Error> {
        Ok(self.matrix_named(&spec.name)?.data)
    }
}

impl ReferenceModel {
    /// Dequantizes every main-pass tensor of `file` (already validated by `config`).
    pub fn load(file: &GgufFile, config: &ModelConfig) -> Result<ReferenceModel, Error> {
        let mut source = Dequantize(file);
        let layers = (0..config.layers.len())
            .map(|i| config.layer_tensors(i)?.load(&mut source))
            .collect::<Result<Vec<_>, Error>>()?;
        let a = &config.attention;
        Ok(ReferenceModel {
            token_embd: source.matrix_named(names::TOKEN_EMBD)?,
            output_norm: source.matrix_named(names::OUTPUT_NORM)?.data,
            output: if config.tied_embeddings {
                None
            } else {
                Some(source.matrix_named(names::OUTPUT)?)
            },
            layers,
            rope_freqs: rope_frequencies(a.n_rot as usize, a.rope_base, a.rope_sections),
            config: config.clone(),
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
                    delta: vec![0.0; g.delta_state_len() as usize],
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
                (MixerTensors::Attention(w), LayerState::Attention { keys, values }) => {
                    self.attention(w, &normed, state.pos, keys, values)
                }
                (MixerTensors::Linear(w), LayerState::Linear { conv, delta }) => {
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
        w: &AttentionTensors<Matrix, Vec<f32>>,
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
                let mut o = flash_decode(
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
        w: &LinearTensors<Matrix, Vec<f32>>,
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
        let inputs = DeltaRuleInputs {
            conv_out: &conv,
            beta_raw: &beta,
            alpha: &alpha,
            dt_bias: &w.dt_bias,
            a: &w.a,
        };
        let o = delta_rule(g, inputs, eps, delta_state);
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

    fn ffn(&self, ffn: &FfnTensors<Matrix, Experts>, h: &[f32]) -> Vec<f32> {
        match ffn {
            FfnTensors::Dense { gate, up, down } => {
                let FfnConfig::Dense { n_ff } = self.config.ffn else {
                    unreachable!("dense weights come from a dense config")
                };
                swiglu(h, &gate.data, &up.data, &down.data, n_ff as usize)
            }
            FfnTensors::Moe(w) => self.moe(w, h),
        }
    }

    /// The k routed experts the router picks, weighted by their probabilities, plus the
    /// shared expert weighted by `sigmoid(gate_inp . h)`.
    fn moe(&self, w: &MoeTensors<Matrix, Experts>, h: &[f32]) -> Vec<f32> {
        let m = self
            .config
            .moe()
            .expect("MoE weights come from a MoE config");
        let (ids, weights) = moe_route(&w.router.apply(h), m.n_expert_used as usize, m.norm_top_k);
        let mut y = vec![0.0f32; h.len()];
        let fe = m.expert_ffn as usize;
        for (&e, &wt) in ids.iter().zip(&weights) {
            let (gate, up) = expert_gate_up(&w.gate_up, e);
            let out = swiglu(h, gate, up, &w.down[e].data, fe);
            y.iter_mut().zip(out).for_each(|(y, o)| *y += wt * o);
        }
        if let (Some(s), Some(fs)) = (&w.shared, m.shared_ffn) {
            let gate = sigmoid(s.gate_inp.apply(h)[0]);
            let out = swiglu(h, &s.gate.data, &s.up.data, &s.down.data, fs as usize);
            y.iter_mut().zip(out).for_each(|(y, o)| *y += gate * o);
        }
        y
    }
}

/// Expert `e`'s gate and up projections, [expert_ffn, n_embd] each; a fused slab is
/// `[gate rows | up rows]`.
fn expert_gate_up(w: &ExpertGateUp<Experts>, e: usize) -> (&[f32], &[f32]) {
    match w {
        ExpertGateUp::Fused(slabs) => slabs[e].data.split_at(slabs[e].data.len() / 2),
        ExpertGateUp::Separate { gate, up } => (&gate[e].data, &up[e].data),
    }
}

fn add_into(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
}
