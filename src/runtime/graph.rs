//! The dispatch plan of one forward step over `n_tokens` tokens, built once from the config's
//! layer schedule: per layer the mixer (gated attention or Gated DeltaNet) and the FFN (MoE
//! or dense), residual adds fused into the next RMSNorm. One token uses the matvec kernels
//! and split-KV attention; more tokens (prefill) the tiled matmul and tiled attention.
//!
//! Every bind group is made here. A step afterwards only moves the plan to its position
//! ([`Graph::set_position`]: rotary angles, cache rows, KV length) and records it.

use crate::error::{Error, GpuError};
use crate::loader::config::{FfnConfig, ModelConfig};
use crate::model::algebra::KvDtype;
use crate::runtime::gpu::GpuContext;
use crate::runtime::ops::attention::{
    flash_prefill, qk_norm_rope, FlashAttention, FlashPrefill, QkNormRope,
};
use crate::runtime::ops::gdn::{causal_conv1d, delta_rule};
use crate::runtime::ops::linear::{embed, matmul, Matvec, Strided};
use crate::runtime::ops::moe::{
    expert_matmul, expert_matvec, moe_combine, moe_group, moe_route, swiglu, SlotInput, SlotOutput,
};
use crate::runtime::ops::norm::{add_rms_norm, gated_rms_norm, rms_norm, Rows};
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::PipelineCache;
use crate::runtime::scratch::Scratch;
use crate::runtime::state::{LayerState, SequenceState};
use crate::runtime::tensor::QuantMatrix;
use crate::runtime::weights::{ExpertGateUp, FfnWeights, MixerWeights, ModelWeights};

/// Which tokens' logits a step computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogitRows {
    /// None: a prefill chunk before the last.
    None,
    /// The last token's, into logits row 0 (generation).
    Last,
    /// Every token's, rows 0..n_tokens (perplexity, scoring).
    All,
}

/// One recorded operation of the plan.
pub enum Op {
    Dispatches(Vec<Dispatch>),
    Matvec(Matvec),
    QkNormRope(QkNormRope),
    FlashDecode(FlashAttention),
    FlashPrefill(FlashPrefill),
}

/// An operation with what it computes, for profiles.
pub struct Node {
    pub label: &'static str,
    pub layer: Option<usize>,
    pub op: Op,
}

impl Node {
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        match &self.op {
            Op::Dispatches(ds) => ds.iter().for_each(|d| d.encode(pass)),
            Op::Matvec(m) => m.encode(pass),
            Op::QkNormRope(r) => r.dispatch.encode(pass),
            Op::FlashDecode(f) => {
                f.partial.encode(pass);
                f.combine.encode(pass);
            }
            Op::FlashPrefill(f) => f.dispatch.encode(pass),
        }
    }

    pub fn dispatch_count(&self) -> usize {
        match &self.op {
            Op::Dispatches(ds) => ds.len(),
            Op::Matvec(m) => m.dispatch_count(),
            Op::QkNormRope(_) | Op::FlashPrefill(_) => 1,
            Op::FlashDecode(_) => 2,
        }
    }
}

pub struct Graph {
    pub nodes: Vec<Node>,
}

impl Graph {
    /// Moves the step to positions `pos0..pos0 + n_tokens`.
    pub fn set_position(&mut self, queue: &wgpu::Queue, pos0: u32) -> Result<(), GpuError> {
        for node in &mut self.nodes {
            match &mut node.op {
                Op::QkNormRope(r) => r.set_position(queue, pos0),
                Op::FlashDecode(f) => f.set_position(queue, pos0)?,
                Op::FlashPrefill(f) => f.set_position(queue, pos0),
                Op::Dispatches(_) | Op::Matvec(_) => {}
            }
        }
        Ok(())
    }

    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        self.nodes.iter().for_each(|n| n.encode(pass));
    }

    pub fn dispatch_count(&self) -> usize {
        self.nodes.iter().map(Node::dispatch_count).sum()
    }
}

/// Everything a plan binds.
pub struct Bindings<'a> {
    pub ctx: &'a GpuContext,
    pub cache: &'a PipelineCache,
    pub config: &'a ModelConfig,
    pub weights: &'a ModelWeights,
    pub state: &'a SequenceState,
    pub scratch: &'a Scratch,
}

/// Builds the plan node by node.
struct Builder<'a> {
    b: &'a Bindings<'a>,
    n_tokens: u32,
    layer: Option<usize>,
    nodes: Vec<Node>,
}

impl Builder<'_> {
    fn push(&mut self, label: &'static str, op: Op) {
        self.nodes.push(Node {
            label,
            layer: self.layer,
            op,
        });
    }

    fn one(&mut self, label: &'static str, d: Result<Dispatch, GpuError>) -> Result<(), GpuError> {
        self.push(label, Op::Dispatches(vec![d?]));
        Ok(())
    }

    /// `y[t] = W x[t]` for the step's tokens: matvec for one token, tiled matmul for more.
    fn project(
        &mut self,
        label: &'static str,
        w: &QuantMatrix,
        x: Strided<'_>,
        y: Strided<'_>,
    ) -> Result<(), GpuError> {
        let (ctx, cache) = (self.b.ctx, self.b.cache);
        let op = if self.n_tokens == 1 {
            Op::Matvec(Matvec::new(
                ctx, cache, w, x.buffer, x.offset, y.buffer, y.offset,
            )?)
        } else {
            Op::Dispatches(matmul(ctx, cache, w, self.n_tokens, x, y)?)
        };
        self.push(label, op);
        Ok(())
    }

    fn rows(&self, n: u32, rows: u32) -> Rows {
        Rows {
            n,
            rows,
            eps: self.b.config.rms_eps,
        }
    }
}

/// The plan of a step over `n_tokens` tokens computing `logits` (`n_tokens` at most the
/// scratch's batch; `All` at most its logit rows).
pub fn build(b: &Bindings<'_>, n_tokens: u32, logits: LogitRows) -> Result<Graph, Error> {
    let s = b.scratch;
    if n_tokens == 0 || n_tokens > s.ubatch {
        return Err(GpuError::Shape(format!(
            "a step of {n_tokens} tokens (the session's batch holds 1 to {})",
            s.ubatch
        ))
        .into());
    }
    if logits == LogitRows::All && n_tokens > s.logit_rows {
        return Err(GpuError::Shape(format!(
            "logits of {n_tokens} tokens (the session keeps {} rows)",
            s.logit_rows
        ))
        .into());
    }
    let c = b.config;
    let e = c.n_embd;
    let mut g = Builder {
        b,
        n_tokens,
        layer: None,
        nodes: Vec::new(),
    };
    let w = b.weights;
    let ds = embed(
        b.ctx,
        b.cache,
        &w.token_embd,
        n_tokens,
        &s.tokens,
        &s.stream,
    )?;
    g.push("embed", Op::Dispatches(ds));
    let first_norm = w.layers.first().map_or(&w.output_norm, |l| &l.attn_norm);
    let r = g.rows(e, n_tokens);
    g.one(
        "rms_norm",
        rms_norm(b.ctx, b.cache, r, &s.stream, first_norm, &s.normed),
    )?;
    for (i, (layer, layer_state)) in w.layers.iter().zip(&b.state.layers).enumerate() {
        g.layer = Some(i);
        match (&layer.mixer, layer_state) {
            (MixerWeights::Attention(aw), LayerState::Attention { keys, values }) => {
                attention(&mut g, aw, keys, values)?
            }
            (MixerWeights::Linear(lw), LayerState::Linear { conv, delta }) => {
                gated_delta_net(&mut g, lw, conv, delta)?
            }
            _ => {
                return Err(GpuError::Shape(format!(
                    "layer {i}: the state was built for another schedule"
                ))
                .into())
            }
        }
        g.one(
            "add_rms_norm",
            add_rms_norm(
                b.ctx,
                b.cache,
                r,
                &s.block_out,
                &layer.ffn_norm,
                &s.stream,
                &s.normed,
            ),
        )?;
        ffn(&mut g, &layer.ffn)?;
        let next_norm = w.layers.get(i + 1).map_or(&w.output_norm, |l| &l.attn_norm);
        g.one(
            "add_rms_norm",
            add_rms_norm(
                b.ctx,
                b.cache,
                r,
                &s.block_out,
                next_norm,
                &s.stream,
                &s.normed,
            ),
        )?;
    }
    g.layer = None;
    let head = w.lm_head();
    let v = c.n_vocab;
    match logits {
        LogitRows::None => {}
        LogitRows::Last => {
            let m = Matvec::new(
                b.ctx,
                b.cache,
                head,
                &s.normed,
                (n_tokens - 1) * e,
                &s.logits,
                0,
            )?;
            g.push("lm_head", Op::Matvec(m));
        }
        LogitRows::All => g.project(
            "lm_head",
            head,
            Strided::rows(&s.normed, e),
            Strided::rows(&s.logits, v),
        )?,
    }
    Ok(Graph { nodes: g.nodes })
}

fn attention(
    g: &mut Builder<'_>,
    w: &crate::runtime::weights::AttentionWeights,
    keys: &wgpu::Buffer,
    values: &wgpu::Buffer,
) -> Result<(), GpuError> {
    let b = g.b;
    let s = b.scratch;
    let a = &b.config.attention;
    let Some(sa) = &s.attention else {
        return Err(GpuError::Shape(
            "attention layer without attention scratch".into(),
        ));
    };
    let e = b.config.n_embd;
    let x = Strided::rows(&s.normed, e);
    g.project("attn_q", &w.q, x, Strided::rows(&sa.q_in, w.q.rows))?;
    g.project("attn_k", &w.k, x, Strided::rows(&sa.k_in, w.k.rows))?;
    g.project("attn_v", &w.v, x, Strided::rows(&sa.v_in, w.v.rows))?;
    let kv_f16 = b.state.kv_dtype == KvDtype::F16;
    let t = g.n_tokens;
    let rope = qk_norm_rope(
        b.ctx,
        b.cache,
        a,
        kv_f16,
        t,
        0,
        b.config.rms_eps,
        [
            &sa.q_in,
            &sa.k_in,
            &sa.v_in,
            &w.q_norm,
            &w.k_norm,
            &b.weights.rope_freqs,
        ],
        &sa.q,
        keys,
        values,
    )?;
    g.push("qk_norm_rope", Op::QkNormRope(rope));
    if t == 1 {
        let f = FlashAttention::new(
            b.ctx,
            b.cache,
            a,
            kv_f16,
            1,
            0,
            &sa.q,
            keys,
            values,
            &sa.partials,
            &sa.q_in,
            &sa.out,
        )?;
        g.push("flash_attention", Op::FlashDecode(f));
    } else {
        let f = flash_prefill(
            b.ctx, b.cache, a, kv_f16, t, 0, &sa.q, keys, values, &sa.q_in, &sa.out,
        )?;
        g.push("flash_prefill", Op::FlashPrefill(f));
    }
    g.project(
        "attn_output",
        &w.o,
        Strided::rows(&sa.out, w.o.cols),
        Strided::rows(&s.block_out, e),
    )
}

fn gated_delta_net(
    g: &mut Builder<'_>,
    w: &crate::runtime::weights::LinearWeights,
    conv_state: &wgpu::Buffer,
    delta_state: &wgpu::Buffer,
) -> Result<(), GpuError> {
    let b = g.b;
    let s = b.scratch;
    let (Some(sl), Some(gc)) = (&s.linear, &b.config.gdn) else {
        return Err(GpuError::Shape("linear layer without its geometry".into()));
    };
    let e = b.config.n_embd;
    let t = g.n_tokens;
    let x = Strided::rows(&s.normed, e);
    g.project("attn_qkv", &w.qkv, x, Strided::rows(&sl.qkv, w.qkv.rows))?;
    g.project("attn_gate", &w.gate, x, Strided::rows(&sl.z, w.gate.rows))?;
    g.project("ssm_beta", &w.beta, x, Strided::rows(&sl.beta, w.beta.rows))?;
    g.project(
        "ssm_alpha",
        &w.alpha,
        x,
        Strided::rows(&sl.alpha, w.alpha.rows),
    )?;
    let channels = gc.conv_channels() as u32;
    g.one(
        "causal_conv1d",
        causal_conv1d(
            b.ctx,
            b.cache,
            channels,
            t,
            gc.conv_kernel,
            &sl.qkv,
            &w.conv,
            &sl.conv_out,
            conv_state,
        ),
    )?;
    g.one(
        "delta_rule",
        delta_rule(
            b.ctx,
            b.cache,
            gc,
            t,
            b.config.rms_eps,
            &sl.conv_out,
            &sl.beta,
            &sl.alpha,
            &w.dt_bias,
            &w.a,
            &sl.delta_out,
            delta_state,
        ),
    )?;
    let r = g.rows(gc.d_v, t * gc.n_v_heads);
    g.one(
        "gated_rms_norm",
        gated_rms_norm(b.ctx, b.cache, r, &sl.delta_out, &sl.z, &w.norm, &sl.normed),
    )?;
    g.project(
        "ssm_out",
        &w.out,
        Strided::rows(&sl.normed, w.out.cols),
        Strided::rows(&s.block_out, e),
    )
}

fn ffn(g: &mut Builder<'_>, w: &FfnWeights) -> Result<(), GpuError> {
    let b = g.b;
    let s = b.scratch;
    let e = b.config.n_embd;
    let t = g.n_tokens;
    let x = Strided::rows(&s.normed, e);
    let f = &s.ffn;
    match (w, &b.config.ffn) {
        (FfnWeights::Dense { gate, up, down }, FfnConfig::Dense { n_ff }) => {
            let n = *n_ff;
            g.project("ffn_gate", gate, x, Strided::rows(&f.gate_up, 2 * n))?;
            g.project("ffn_up", up, x, Strided::rows(&f.gate_up, 2 * n).at(n))?;
            g.one(
                "swiglu",
                swiglu(b.ctx, b.cache, t, n, 2 * n, n, &f.gate_up, &f.h),
            )?;
            g.project(
                "ffn_down",
                down,
                Strided::rows(&f.h, n),
                Strided::rows(&s.block_out, e),
            )
        }
        (
            FfnWeights::Moe {
                router,
                gate_up,
                down,
                shared,
            },
            FfnConfig::Moe(m),
        ) => {
            let Some(rs) = &f.router else {
                return Err(GpuError::Shape("MoE layer without router scratch".into()));
            };
            let (k, fe) = (m.n_expert_used, m.expert_ffn);
            let slots = t * k;
            g.project(
                "ffn_gate_inp",
                router,
                x,
                Strided::rows(&rs.logits, m.n_expert),
            )?;
            g.one(
                "moe_route",
                moe_route(
                    b.ctx,
                    b.cache,
                    m.n_expert,
                    k,
                    t,
                    m.norm_top_k,
                    &rs.logits,
                    &rs.ids,
                    &rs.weights,
                ),
            )?;
            // A prompt chunk's slots grouped by expert read each expert's weights once per
            // tile of its tokens instead of once per slot: the bandwidth a GPU is bound by.
            // A CPU device is bound by arithmetic instead, where the half-empty tiles of
            // random routing cost more than the reads they save (pp128 of bench-qwen35moe
            // on lavapipe: 5.5 tok/s per slot, 3.3 grouped), so it keeps the per-slot form.
            let grouped = t > 1 && b.ctx.features.grouped_expert_prefill;
            if grouped {
                g.one(
                    "moe_group",
                    moe_group(
                        b.ctx,
                        b.cache,
                        m.n_expert,
                        slots,
                        &rs.ids,
                        &rs.order,
                        &rs.offsets,
                    ),
                )?;
            }
            let token_input = SlotInput {
                stride: e,
                group: k,
            };
            let experts = |w: &QuantMatrix, rows: u32, input, xb, y, out| {
                if grouped {
                    let (order, offsets) = (&rs.order, &rs.offsets);
                    expert_matmul(
                        b.ctx, b.cache, w, rows, t, order, offsets, xb, input, y, out,
                    )
                } else {
                    expert_matvec(b.ctx, b.cache, w, rows, slots, &rs.ids, xb, input, y, out)
                }
            };
            let gate_up_out = |offset| SlotOutput {
                stride: 2 * fe,
                offset,
            };
            match gate_up {
                ExpertGateUp::Fused(wgu) => {
                    let ds = experts(
                        wgu,
                        2 * fe,
                        token_input,
                        &s.normed,
                        &f.gate_up,
                        gate_up_out(0),
                    )?;
                    g.push("ffn_gate_up_exps", Op::Dispatches(ds));
                }
                ExpertGateUp::Separate { gate, up } => {
                    let ds = experts(gate, fe, token_input, &s.normed, &f.gate_up, gate_up_out(0))?;
                    g.push("ffn_gate_exps", Op::Dispatches(ds));
                    let ds = experts(up, fe, token_input, &s.normed, &f.gate_up, gate_up_out(fe))?;
                    g.push("ffn_up_exps", Op::Dispatches(ds));
                }
            }
            g.one(
                "swiglu",
                swiglu(b.ctx, b.cache, slots, fe, 2 * fe, fe, &f.gate_up, &f.h),
            )?;
            let ds = experts(
                down,
                e,
                SlotInput {
                    stride: fe,
                    group: 1,
                },
                &f.h,
                &rs.expert_out,
                SlotOutput {
                    stride: e,
                    offset: 0,
                },
            )?;
            g.push("ffn_down_exps", Op::Dispatches(ds));
            let shared_out = match (shared, &f.shared, m.shared_ffn) {
                (Some(sw), Some(ss), Some(fs)) => {
                    g.project(
                        "ffn_gate_inp_shexp",
                        &sw.gate_inp,
                        x,
                        Strided::rows(&ss.logit, 1),
                    )?;
                    g.project(
                        "ffn_gate_shexp",
                        &sw.gate,
                        x,
                        Strided::rows(&ss.gate_up, 2 * fs),
                    )?;
                    g.project(
                        "ffn_up_shexp",
                        &sw.up,
                        x,
                        Strided::rows(&ss.gate_up, 2 * fs).at(fs),
                    )?;
                    g.one(
                        "swiglu",
                        swiglu(b.ctx, b.cache, t, fs, 2 * fs, fs, &ss.gate_up, &ss.h),
                    )?;
                    g.project(
                        "ffn_down_shexp",
                        &sw.down,
                        Strided::rows(&ss.h, fs),
                        Strided::rows(&ss.out, e),
                    )?;
                    Some((&ss.out, &ss.logit))
                }
                _ => None,
            };
            g.one(
                "moe_combine",
                moe_combine(
                    b.ctx,
                    b.cache,
                    t,
                    e,
                    k,
                    &rs.expert_out,
                    &rs.weights,
                    shared_out,
                    &s.block_out,
                ),
            )
        }
        _ => Err(GpuError::Shape(
            "FFN weights do not match the config's FFN".into(),
        )),
    }
}
