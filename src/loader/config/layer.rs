//! One trunk layer, described once. [`ModelConfig::layer_tensors`] fills the structs below
//! with [`TensorSpec`]s (name, ggml-order shape, role); each consumer maps that description
//! through its own [`TensorSource`] into the same structs holding its kind of tensor: the
//! GPU runtime's block-format matrices and f32 buffers, the CPU reference's f32 matrices and
//! vectors. The structs are generic over a matrix `M`, a 3-D expert tensor `E` and a small
//! vector `V` (norms, conv taps, dt bias, A). [`LayerState`] is, in the same way, what a
//! layer carries between steps, generic over the buffer that holds it.
//!
//! [`ModelConfig::layer_tensors`]: crate::loader::config::ModelConfig::layer_tensors

use std::convert::Infallible;

use crate::loader::config::TensorSpec;

/// Full softmax attention: gated in qwen35* (attn_q emits `[query | gate]` per head), plain
/// GQA with q/k norm in qwen3moe.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionTensors<M, V> {
    /// attn_q {n_embd, n_head * q_head_stride}.
    pub q: M,
    /// attn_k {n_embd, n_head_kv * head_dim}.
    pub k: M,
    /// attn_v {n_embd, n_head_kv * head_dim}.
    pub v: M,
    /// attn_output {n_head * head_dim, n_embd}.
    pub o: M,
    /// attn_q_norm {head_dim}: RMSNorm weight of every query head.
    pub q_norm: V,
    /// attn_k_norm {head_dim}: RMSNorm weight of every key head.
    pub k_norm: V,
}

/// Gated DeltaNet, fields in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearTensors<M, V> {
    /// attn_qkv {n_embd, conv_channels}: q, k and v stacked.
    pub qkv: M,
    /// attn_gate {n_embd, value_dim}: z of the gated output norm.
    pub gate: M,
    /// ssm_conv1d {conv_kernel, conv_channels}: [conv_channels, conv_kernel] taps.
    pub conv: V,
    /// ssm_dt.bias {n_v_heads}.
    pub dt_bias: V,
    /// ssm_a {n_v_heads}: -exp(A_log).
    pub a: V,
    /// ssm_beta {n_embd, n_v_heads}.
    pub beta: M,
    /// ssm_alpha {n_embd, n_v_heads}.
    pub alpha: M,
    /// ssm_norm {d_v}: the gated RMSNorm weight of every value head.
    pub norm: V,
    /// ssm_out {value_dim, n_embd}.
    pub out: M,
}

/// A block's token mixer, by the layer's [`LayerKind`](crate::loader::config::LayerKind).
#[derive(Debug, Clone, PartialEq)]
pub enum MixerTensors<M, V> {
    Attention(AttentionTensors<M, V>),
    Linear(LinearTensors<M, V>),
}

/// The routed experts' gate and up projections, as the file stores them.
#[derive(Debug, Clone, PartialEq)]
pub enum ExpertGateUp<E> {
    /// ffn_gate_up_exps {n_embd, 2 * expert_ffn, n_expert}: each expert's slab is
    /// `[gate rows | up rows]`.
    Fused(E),
    /// ffn_gate_exps and ffn_up_exps, {n_embd, expert_ffn, n_expert} each.
    Separate { gate: E, up: E },
}

/// qwen35moe's always-on shared expert, a SwiGLU scaled by `sigmoid(gate_inp . x)`.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedExpertTensors<M> {
    /// ffn_gate_inp_shexp {n_embd}: one row, the logit of the shared expert's gate.
    pub gate_inp: M,
    /// ffn_gate_shexp and ffn_up_shexp {n_embd, shared_ffn}.
    pub gate: M,
    pub up: M,
    /// ffn_down_shexp {shared_ffn, n_embd}.
    pub down: M,
}

/// A mixture of experts: router, routed experts, optional shared expert.
#[derive(Debug, Clone, PartialEq)]
pub struct MoeTensors<M, E> {
    /// ffn_gate_inp {n_embd, n_expert}.
    pub router: M,
    pub gate_up: ExpertGateUp<E>,
    /// ffn_down_exps {expert_ffn, n_embd, n_expert}.
    pub down: E,
    pub shared: Option<SharedExpertTensors<M>>,
}

/// A block's feed-forward network, by the config's [`FfnConfig`](crate::loader::config::FfnConfig).
#[derive(Debug, Clone, PartialEq)]
pub enum FfnTensors<M, E> {
    /// SwiGLU: ffn_gate and ffn_up {n_embd, n_ff}, ffn_down {n_ff, n_embd}.
    Dense {
        gate: M,
        up: M,
        down: M,
    },
    Moe(MoeTensors<M, E>),
}

/// Every tensor of one trunk layer, fields in file order:
/// `h = x + mixer(rms(x) * attn_norm)`, `x = h + ffn(rms(h) * ffn_norm)`.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerTensors<M, E, V> {
    /// attn_norm {n_embd}.
    pub attn_norm: V,
    pub mixer: MixerTensors<M, V>,
    /// The pre-FFN norm {n_embd}: post_attention_norm in qwen35*, ffn_norm in qwen3moe.
    pub ffn_norm: V,
    pub ffn: FfnTensors<M, E>,
}

/// A layer described by its tensors' specs: what [`ModelConfig::layer_tensors`] returns.
///
/// [`ModelConfig::layer_tensors`]: crate::loader::config::ModelConfig::layer_tensors
pub type LayerSpecs = LayerTensors<TensorSpec, TensorSpec, TensorSpec>;

/// Turns tensor specs into loaded tensors of one consumer's kinds.
pub trait TensorSource {
    /// A 2-D weight (1-D ones, such as the shared expert's gate, as one row).
    type Matrix;
    /// A 3-D expert tensor {cols, rows_per_expert, n_experts}.
    type Experts;
    /// A small parameter read as f32 values (norms, conv taps, dt bias, A).
    type Vector;
    type Error;

    fn matrix(&mut self, spec: &TensorSpec) -> Result<Self::Matrix, Self::Error>;
    fn experts(&mut self, spec: &TensorSpec) -> Result<Self::Experts, Self::Error>;
    fn vector(&mut self, spec: &TensorSpec) -> Result<Self::Vector, Self::Error>;
}

/// The tensors `S` loads a layer into.
pub type Loaded<S> = LayerTensors<
    <S as TensorSource>::Matrix,
    <S as TensorSource>::Experts,
    <S as TensorSource>::Vector,
>;

impl LayerSpecs {
    /// Loads every tensor of the layer through `source`, in file order (the order of the
    /// struct fields; [`Self::specs`] lists them in the same order by calling this).
    pub fn load<S: TensorSource>(&self, source: &mut S) -> Result<Loaded<S>, S::Error> {
        Ok(LayerTensors {
            attn_norm: source.vector(&self.attn_norm)?,
            mixer: match &self.mixer {
                MixerTensors::Attention(a) => MixerTensors::Attention(a.load(source)?),
                MixerTensors::Linear(l) => MixerTensors::Linear(l.load(source)?),
            },
            ffn_norm: source.vector(&self.ffn_norm)?,
            ffn: match &self.ffn {
                FfnTensors::Dense { gate, up, down } => FfnTensors::Dense {
                    gate: source.matrix(gate)?,
                    up: source.matrix(up)?,
                    down: source.matrix(down)?,
                },
                FfnTensors::Moe(m) => FfnTensors::Moe(m.load(source)?),
            },
        })
    }

    /// The layer's specs in file order.
    pub fn specs(&self) -> Vec<TensorSpec> {
        let mut specs = Specs(Vec::new());
        let Ok(_) = self.load(&mut specs);
        specs.0
    }
}

impl AttentionTensors<TensorSpec, TensorSpec> {
    fn load<S: TensorSource>(
        &self,
        source: &mut S,
    ) -> Result<AttentionTensors<S::Matrix, S::Vector>, S::Error> {
        Ok(AttentionTensors {
            q: source.matrix(&self.q)?,
            k: source.matrix(&self.k)?,
            v: source.matrix(&self.v)?,
            o: source.matrix(&self.o)?,
            q_norm: source.vector(&self.q_norm)?,
            k_norm: source.vector(&self.k_norm)?,
        })
    }
}

impl LinearTensors<TensorSpec, TensorSpec> {
    fn load<S: TensorSource>(
        &self,
        source: &mut S,
    ) -> Result<LinearTensors<S::Matrix, S::Vector>, S::Error> {
        Ok(LinearTensors {
            qkv: source.matrix(&self.qkv)?,
            gate: source.matrix(&self.gate)?,
            conv: source.vector(&self.conv)?,
            dt_bias: source.vector(&self.dt_bias)?,
            a: source.vector(&self.a)?,
            beta: source.matrix(&self.beta)?,
            alpha: source.matrix(&self.alpha)?,
            norm: source.vector(&self.norm)?,
            out: source.matrix(&self.out)?,
        })
    }
}

impl MoeTensors<TensorSpec, TensorSpec> {
    fn load<S: TensorSource>(
        &self,
        source: &mut S,
    ) -> Result<MoeTensors<S::Matrix, S::Experts>, S::Error> {
        Ok(MoeTensors {
            router: source.matrix(&self.router)?,
            gate_up: match &self.gate_up {
                ExpertGateUp::Fused(gate_up) => ExpertGateUp::Fused(source.experts(gate_up)?),
                ExpertGateUp::Separate { gate, up } => ExpertGateUp::Separate {
                    gate: source.experts(gate)?,
                    up: source.experts(up)?,
                },
            },
            down: source.experts(&self.down)?,
            shared: match &self.shared {
                Some(s) => Some(SharedExpertTensors {
                    gate_inp: source.matrix(&s.gate_inp)?,
                    gate: source.matrix(&s.gate)?,
                    up: source.matrix(&s.up)?,
                    down: source.matrix(&s.down)?,
                }),
                None => None,
            },
        })
    }
}

/// A source that loads nothing and records the specs in the order it is asked for them.
struct Specs(Vec<TensorSpec>);

impl TensorSource for Specs {
    type Matrix = ();
    type Experts = ();
    type Vector = ();
    type Error = Infallible;

    fn matrix(&mut self, spec: &TensorSpec) -> Result<(), Infallible> {
        self.0.push(spec.clone());
        Ok(())
    }

    fn experts(&mut self, spec: &TensorSpec) -> Result<(), Infallible> {
        self.matrix(spec)
    }

    fn vector(&mut self, spec: &TensorSpec) -> Result<(), Infallible> {
        self.matrix(spec)
    }
}

/// What one layer carries between steps, in buffers of type `B` (VRAM buffers on the GPU,
/// `Vec<f32>` in the reference).
#[derive(Debug, Clone, PartialEq)]
pub enum LayerState<B> {
    /// The KV cache: [positions, n_head_kv, head_dim] each (the GPU's f16 packed in pairs
    /// or f32 for its capacity; the reference's f32 for the positions seen).
    Attention { keys: B, values: B },
    /// conv: [conv_kernel - 1, conv_channels] f32, the last inputs of every conv channel;
    /// delta: [n_v_heads, d_k, d_v] f32, one delta-rule memory per value head.
    Linear { conv: B, delta: B },
}
