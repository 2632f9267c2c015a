//! Every activation buffer of one sequence, with its shape: the one list that the memory
//! algebra sums ([`crate::model::algebra::sequence_activation_bytes`]) and the runtime
//! allocates (`runtime::scratch::Scratch`), sized once for the largest step (a prefill chunk
//! of `ubatch` tokens).
//!
//! The structs are generic over what a buffer is: a [`Slot`] (name and size) here, a
//! `wgpu::Buffer` in the runtime.

use crate::loader::config::{FfnConfig, ModelConfig};

/// Kernel constants the buffer sizes depend on, defined here (the model knows no GPU code)
/// and used by the kernels' declarations in `runtime::ops`.
pub mod kernel_sizes {
    /// KV positions per split-KV attention chunk (one partial per chunk and head).
    pub const ATTENTION_CHUNK: u32 = 64;
    /// Tokens per chunk of the chunked (WY) gated delta rule of a prompt step.
    pub const DELTA_CHUNK: u32 = 64;
    /// Largest key head dim the chunked delta rule takes (its state kernel keeps a block of
    /// `d_k` rows in workgroup memory); wider heads run the sequential rule.
    pub const DELTA_CHUNK_MAX_D_K: u32 = 128;
    /// Logits per argmax and top-k partial workgroup.
    pub const SAMPLE_CHUNK: u32 = 4096;
    /// Candidates the top-k sampler keeps.
    pub const MAX_TOP_K: u32 = 64;
    /// Token ids the repetition penalty can look back over.
    pub const PENALTY_WINDOW: u32 = 1024;
}

/// One buffer: its label, its length in 4-byte words (f32 or u32), and whether it is the
/// host-readable copy of the sampled id rather than a storage buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub name: &'static str,
    pub words: u64,
    pub read_back: bool,
}

fn slot(name: &'static str, words: u64) -> Slot {
    Slot {
        name,
        words,
        read_back: false,
    }
}

/// Buffers of the attention layers.
pub struct AttentionActivations<T> {
    /// `[ubatch, q_rows]`: attn_q's output (query and gate per head).
    pub q_in: T,
    /// `[ubatch, kv_width]`.
    pub k_in: T,
    pub v_in: T,
    /// `[ubatch, n_head, head_dim]`: normalised, rotated queries.
    pub q: T,
    /// `[ubatch, n_head, head_dim]`.
    pub out: T,
    /// `[n_head, ceil(context / ATTENTION_CHUNK), head_dim + 2]`: split-KV partials of one
    /// decode token over the whole context.
    pub partials: T,
}

/// Buffers of the Gated DeltaNet layers.
pub struct LinearActivations<T> {
    /// `[ubatch, conv_channels]`: the qkv projection, and the conv's output.
    pub qkv: T,
    pub conv_out: T,
    /// `[ubatch, value_dim]`: the output gate.
    pub z: T,
    /// `[ubatch, n_v_heads]`.
    pub beta: T,
    pub alpha: T,
    /// `[ubatch, value_dim]`: the delta rule's output, and it normed and gated.
    pub delta_out: T,
    pub normed: T,
    /// A prompt step's chunked delta rule, over the step's `DELTA_CHUNK`-token chunks
    /// (`chunks` = ubatch / DELTA_CHUNK rounded up; one word each where the key heads are
    /// too wide for it): `[chunks, n_v_heads, DELTA_CHUNK, d_k]` for w, kd and qg,
    /// `[.., d_v]` for u, `[.., DELTA_CHUNK]` for mqk, `[chunks, n_v_heads]` for decay.
    pub chunk_w: T,
    pub chunk_u: T,
    pub chunk_kd: T,
    pub chunk_qg: T,
    pub chunk_mqk: T,
    pub chunk_decay: T,
}

/// Buffers of the router and the routed experts.
pub struct RouterActivations<T> {
    /// `[ubatch, n_expert]`.
    pub logits: T,
    /// `[ubatch, k]` u32 expert ids and f32 weights.
    pub ids: T,
    pub weights: T,
    /// `[ubatch * k, n_embd]`: each routed expert's output.
    pub expert_out: T,
    /// Grouped steps: the slots grouped by expert (`[ubatch * k]` u32) and each expert's range
    /// (`[n_expert + 1]` u32).
    pub order: T,
    pub offsets: T,
}

/// Buffers of the shared expert.
pub struct SharedActivations<T> {
    /// `[ubatch, 2 * shared_ffn]`, `[ubatch, shared_ffn]`, `[ubatch, n_embd]`, `[ubatch]`.
    pub gate_up: T,
    pub h: T,
    pub out: T,
    pub logit: T,
}

/// Buffers of the FFN: dense, or routed experts plus the shared expert.
pub struct FfnActivations<T> {
    /// `[slots, 2 * width]`: gate then up per slot (slots = tokens * k for MoE).
    pub gate_up: T,
    /// `[slots, width]`: silu(gate) * up.
    pub h: T,
    pub router: Option<RouterActivations<T>>,
    pub shared: Option<SharedActivations<T>>,
}

/// Every activation buffer of one sequence.
pub struct Activations<T> {
    /// `[ubatch]` u32 token ids of this step.
    pub tokens: T,
    /// `[ubatch, n_embd]`: the residual stream, its normed copy and a block's output.
    pub stream: T,
    pub normed: T,
    pub block_out: T,
    pub attention: Option<AttentionActivations<T>>,
    pub linear: Option<LinearActivations<T>>,
    pub ffn: FfnActivations<T>,
    /// `[logit_rows, n_vocab]`.
    pub logits: T,
    /// The samplers' partials: the larger of argmax's and top-k's.
    pub sample_partials: T,
    /// `[1]` u32: the sampled token id.
    pub sampled: T,
    /// Two mappable copies of it for the 4-byte read-back, used in turn: the host reads one
    /// step's id while the next step, already submitted, writes the other.
    pub sampled_reads: [T; 2],
    /// `[PENALTY_WINDOW]` u32: the ids the repetition penalty looks back over.
    pub recent: T,
    /// `[2]` u32: the step's first position and split-KV chunk count, which the attention
    /// kernels and the Gated DeltaNet conv read (`common/step.wgsl`).
    pub step: T,
}

/// The sizes of a sequence's buffers for steps of up to `ubatch` tokens, logits for
/// `logit_rows` of them, and decode attention over up to `context` positions.
pub fn activation_slots(
    config: &ModelConfig,
    ubatch: u64,
    logit_rows: u64,
    context: u64,
) -> Activations<Slot> {
    use kernel_sizes::*;
    let (t, e) = (ubatch, config.n_embd as u64);
    let v = config.n_vocab as u64;
    let chunks = v.div_ceil(SAMPLE_CHUNK as u64);
    let argmax_partials = 2 * chunks;
    let top_k_partials = 2 * chunks * MAX_TOP_K as u64;
    Activations {
        tokens: slot("tokens", t),
        stream: slot("stream", t * e),
        normed: slot("normed", t * e),
        block_out: slot("block_out", t * e),
        attention: attention_slots(config, t, context),
        linear: linear_slots(config, t),
        ffn: ffn_slots(config, t),
        logits: slot("logits", logit_rows * v),
        sample_partials: slot("sample_partials", argmax_partials.max(top_k_partials)),
        sampled: slot("sampled", 1),
        sampled_reads: ["sampled_read_0", "sampled_read_1"].map(|name| Slot {
            name,
            words: 1,
            read_back: true,
        }),
        recent: slot("recent", PENALTY_WINDOW as u64),
        step: slot("step", 2),
    }
}

fn attention_slots(
    config: &ModelConfig,
    t: u64,
    context: u64,
) -> Option<AttentionActivations<Slot>> {
    if config.n_attention_layers() == 0 {
        return None;
    }
    let a = &config.attention;
    let (nh, hd) = (a.n_head as u64, a.head_dim as u64);
    let chunks = context.div_ceil(kernel_sizes::ATTENTION_CHUNK as u64);
    Some(AttentionActivations {
        q_in: slot("q_in", t * a.q_rows()),
        k_in: slot("k_in", t * a.kv_width()),
        v_in: slot("v_in", t * a.kv_width()),
        q: slot("q", t * nh * hd),
        out: slot("attn_out", t * nh * hd),
        partials: slot("partials", nh * chunks * (hd + 2)),
    })
}

fn linear_slots(config: &ModelConfig, t: u64) -> Option<LinearActivations<Slot>> {
    let g = config
        .gdn
        .as_ref()
        .filter(|_| config.n_linear_layers() > 0)?;
    let (c, vd, nv) = (g.conv_channels(), g.value_dim(), g.n_v_heads as u64);
    let chunked = g.d_k <= kernel_sizes::DELTA_CHUNK_MAX_D_K;
    let chunk = kernel_sizes::DELTA_CHUNK as u64;
    // Rows of the factors: the step's tokens rounded up to whole chunks, per value head.
    let rows = if chunked {
        t.div_ceil(chunk) * chunk * nv
    } else {
        0
    };
    Some(LinearActivations {
        qkv: slot("qkv", t * c),
        conv_out: slot("conv_out", t * c),
        z: slot("z", t * vd),
        beta: slot("beta", t * nv),
        alpha: slot("alpha", t * nv),
        delta_out: slot("delta_out", t * vd),
        normed: slot("gdn_normed", t * vd),
        chunk_w: slot("chunk_w", rows * g.d_k as u64),
        chunk_u: slot("chunk_u", rows * g.d_v as u64),
        chunk_kd: slot("chunk_kd", rows * g.d_k as u64),
        chunk_qg: slot("chunk_qg", rows * g.d_k as u64),
        chunk_mqk: slot("chunk_mqk", rows * chunk),
        chunk_decay: slot("chunk_decay", rows / chunk),
    })
}

fn ffn_slots(config: &ModelConfig, t: u64) -> FfnActivations<Slot> {
    let e = config.n_embd as u64;
    match &config.ffn {
        FfnConfig::Dense { n_ff } => FfnActivations {
            gate_up: slot("gate_up", t * 2 * *n_ff as u64),
            h: slot("ffn_h", t * *n_ff as u64),
            router: None,
            shared: None,
        },
        FfnConfig::Moe(m) => {
            let slots = t * m.n_expert_used as u64;
            let fe = m.expert_ffn as u64;
            FfnActivations {
                gate_up: slot("expert_gate_up", slots * 2 * fe),
                // Decode also keeps the shared expert's row after the k routed ones.
                h: slot(
                    "expert_h",
                    (slots * fe).max(moe_h_slots(m) * moe_h_stride(m)),
                ),
                router: Some(RouterActivations {
                    logits: slot("router_logits", t * m.n_expert as u64),
                    ids: slot("expert_ids", slots),
                    weights: slot("expert_weights", slots),
                    expert_out: slot("expert_out", slots * e),
                    order: slot("expert_order", slots),
                    offsets: slot("expert_offsets", m.n_expert as u64 + 1),
                }),
                shared: m.shared_ffn.map(|fs| SharedActivations {
                    gate_up: slot("shared_gate_up", t * 2 * fs as u64),
                    h: slot("shared_h", t * fs as u64),
                    out: slot("shared_out", t * e),
                    logit: slot("shared_logit", t),
                }),
            }
        }
    }
}

impl<T> AttentionActivations<T> {
    pub fn try_map<U, E>(
        &self,
        f: &mut impl FnMut(&T) -> Result<U, E>,
    ) -> Result<AttentionActivations<U>, E> {
        Ok(AttentionActivations {
            q_in: f(&self.q_in)?,
            k_in: f(&self.k_in)?,
            v_in: f(&self.v_in)?,
            q: f(&self.q)?,
            out: f(&self.out)?,
            partials: f(&self.partials)?,
        })
    }
}

impl<T> LinearActivations<T> {
    pub fn try_map<U, E>(
        &self,
        f: &mut impl FnMut(&T) -> Result<U, E>,
    ) -> Result<LinearActivations<U>, E> {
        Ok(LinearActivations {
            qkv: f(&self.qkv)?,
            conv_out: f(&self.conv_out)?,
            z: f(&self.z)?,
            beta: f(&self.beta)?,
            alpha: f(&self.alpha)?,
            delta_out: f(&self.delta_out)?,
            normed: f(&self.normed)?,
            chunk_w: f(&self.chunk_w)?,
            chunk_u: f(&self.chunk_u)?,
            chunk_kd: f(&self.chunk_kd)?,
            chunk_qg: f(&self.chunk_qg)?,
            chunk_mqk: f(&self.chunk_mqk)?,
            chunk_decay: f(&self.chunk_decay)?,
        })
    }
}

impl<T> RouterActivations<T> {
    pub fn try_map<U, E>(
        &self,
        f: &mut impl FnMut(&T) -> Result<U, E>,
    ) -> Result<RouterActivations<U>, E> {
        Ok(RouterActivations {
            logits: f(&self.logits)?,
            ids: f(&self.ids)?,
            weights: f(&self.weights)?,
            expert_out: f(&self.expert_out)?,
            order: f(&self.order)?,
            offsets: f(&self.offsets)?,
        })
    }
}

impl<T> SharedActivations<T> {
    pub fn try_map<U, E>(
        &self,
        f: &mut impl FnMut(&T) -> Result<U, E>,
    ) -> Result<SharedActivations<U>, E> {
        Ok(SharedActivations {
            gate_up: f(&self.gate_up)?,
            h: f(&self.h)?,
            out: f(&self.out)?,
            logit: f(&self.logit)?,
        })
    }
}

impl<T> FfnActivations<T> {
    pub fn try_map<U, E>(
        &self,
        f: &mut impl FnMut(&T) -> Result<U, E>,
    ) -> Result<FfnActivations<U>, E> {
        Ok(FfnActivations {
            gate_up: f(&self.gate_up)?,
            h: f(&self.h)?,
            router: self.router.as_ref().map(|r| r.try_map(f)).transpose()?,
            shared: self.shared.as_ref().map(|s| s.try_map(f)).transpose()?,
        })
    }
}

impl<T> Activations<T> {
    /// Each buffer through `f`, in the order of the fields.
    pub fn try_map<U, E>(
        &self,
        f: &mut impl FnMut(&T) -> Result<U, E>,
    ) -> Result<Activations<U>, E> {
        Ok(Activations {
            tokens: f(&self.tokens)?,
            stream: f(&self.stream)?,
            normed: f(&self.normed)?,
            block_out: f(&self.block_out)?,
            attention: self.attention.as_ref().map(|a| a.try_map(f)).transpose()?,
            linear: self.linear.as_ref().map(|l| l.try_map(f)).transpose()?,
            ffn: self.ffn.try_map(f)?,
            logits: f(&self.logits)?,
            sample_partials: f(&self.sample_partials)?,
            sampled: f(&self.sampled)?,
            sampled_reads: [f(&self.sampled_reads[0])?, f(&self.sampled_reads[1])?],
            recent: f(&self.recent)?,
            step: f(&self.step)?,
        })
    }
}

impl Activations<Slot> {
    /// Bytes of every buffer (an empty one still takes a word: wgpu has no empty bindings).
    pub fn bytes(&self) -> u64 {
        let mut total = 0;
        let Ok(_) = self.try_map(&mut |s: &Slot| {
            total += 4 * s.words.max(1);
            Ok::<(), std::convert::Infallible>(())
        });
        total
    }
}

/// Rows of one decode token's expert hidden buffer: the k routed experts, then the shared
/// expert where the model has one (`moe_gate_up` writes them, `moe_down` reads them).
pub fn moe_h_slots(m: &crate::loader::config::MoeConfig) -> u64 {
    m.n_expert_used as u64 + u64::from(m.shared_ffn.is_some())
}

/// Floats per row of that buffer: the wider of the routed and shared experts.
pub fn moe_h_stride(m: &crate::loader::config::MoeConfig) -> u64 {
    m.expert_ffn.max(m.shared_ffn.unwrap_or(0)) as u64
}
