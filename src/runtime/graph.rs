//! The dispatch plan of one forward step over `n_tokens` tokens, built once from the config's
//! layer schedule: per layer the mixer (gated attention or Gated DeltaNet) and the FFN (MoE
//! or dense).
//!
//! One token (decode) uses the matvec kernels and split-KV attention. On a GPU
//! ([`GpuFeatures::fused_decode`](crate::runtime::GpuFeatures)) they are fused for few
//! dispatches: each block's RMSNorm is folded into the matvecs that read the normed row,
//! the projections of one input are one dispatch, the output projection adds into the
//! residual stream, and a MoE block is the router, `moe_gate_up` (with the top-k) and
//! `moe_down`. A CPU device's decode, and every prefill chunk, take the staged plan: a normed
//! copy of the stream, one matvec (or tiled matmul and tiled attention, for a chunk) per
//! matrix, the residual adds fused into the next RMSNorm.
//!
//! Every bind group is made here. A step afterwards only moves the plan to its position
//! ([`Graph::set_position`]: rotary angles, cache rows, KV length) and records it.

use crate::error::{Error, GpuError};
use crate::loader::config::{ExpertGateUp, FfnConfig, GdnConfig, ModelConfig, MoeConfig};
use crate::model::activations::{
    moe_h_stride, AttentionActivations, LinearActivations, RouterActivations,
};
use crate::model::algebra::KvDtype;
use crate::runtime::experts::ExpertTensor;
use crate::runtime::gpu::GpuContext;
use crate::runtime::ops::attention::{
    flash_prefill, qk_norm_rope, AttentionStep, FlashDecode, FlashDecodeBuffers, FlashPrefill,
    FlashPrefillIo, QkNormRope, QkNormRopeIo,
};
use crate::runtime::ops::copy_floats::copy_floats;
use crate::runtime::ops::gdn::{
    causal_conv1d, conv_delta_rule, delta_chunk_state, delta_chunk_wy, delta_rule, CausalConv1dIo,
    ConvDeltaRuleIo, ConvShape, DeltaChunkStateIo, DeltaChunkWyIo, DeltaRuleIo,
};
use crate::runtime::ops::linear::matvec_batch::MAX_TOKENS as BATCH_TOKENS;
use crate::runtime::ops::linear::{
    embed, matmul, matmul_experts, matvec_batch, matvec_batch_experts, matvec_experts,
    ExpertGroups, ExpertWeights, GatedHeadNorm, InputNorm, Matvec, MatvecInput, Projection,
    RowNorm, SlotInput, SlotOutput, Strided,
};
use crate::runtime::ops::moe::{
    moe_combine, moe_down, moe_gate_up, moe_group, moe_route, swiglu, CombineShape, DownBuffers,
    ExpertRows, GateUpBuffers, MoeGroupIo, MoeRouteIo, RouteShape, RoutedOutputs, SharedDown,
    SharedGateUp, SharedOutput, SwigluIo, SwigluShape,
};
use crate::runtime::ops::norm::{
    add_rms_norm, gated_rms_norm, rms_norm, AddRmsNormIo, GatedRmsNormIo, RmsNormIo, Rows,
};
use crate::runtime::ops::step::write_step;
use crate::runtime::ops::{record_stages, Dispatch, Record};
use crate::runtime::pipeline::PipelineCache;
use crate::runtime::scratch::Scratch;
use crate::runtime::state::{LayerState, SequenceState};
use crate::runtime::tensor::QuantMatrix;
use crate::runtime::weights::{
    AttentionWeights, FfnWeights, LinearWeights, MixerWeights, ModelWeights, MoeWeights,
};

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
    /// The routed experts' matvecs (one token) or grouped matmuls (a prompt chunk).
    Experts(Vec<Dispatch>),
    QkNormRope(QkNormRope),
    FlashDecode(FlashDecode),
    FlashPrefill(FlashPrefill),
}

/// An operation with what it computes, for profiles.
pub struct Node {
    pub label: &'static str,
    pub layer: Option<usize>,
    pub op: Op,
}

impl Node {
    pub fn bind_direct(&mut self, ctx: &GpuContext) -> Result<(), GpuError> {
        match &mut self.op {
            Op::Dispatches(ds) | Op::Experts(ds) => {
                ds.iter_mut().try_for_each(|d| d.bind_direct(ctx))
            }
            Op::Matvec(m) => m.bind_direct(ctx),
            Op::QkNormRope(d) | Op::FlashPrefill(d) => d.bind_direct(ctx),
            Op::FlashDecode(f) => f.bind_direct(ctx),
        }
    }

    pub fn encode<R: Record>(&self, pass: &mut R) {
        match &self.op {
            Op::Dispatches(ds) | Op::Experts(ds) => ds.iter().for_each(|d| d.encode(pass)),
            Op::Matvec(m) => m.encode(pass),
            Op::QkNormRope(d) | Op::FlashPrefill(d) => d.encode(pass),
            Op::FlashDecode(f) => f.encode(pass),
        }
    }

    /// The node's dispatches in recording order.
    fn dispatches(&self) -> Vec<&Dispatch> {
        match &self.op {
            Op::Dispatches(ds) | Op::Experts(ds) => ds.iter().collect(),
            Op::Matvec(m) => m.dispatches().collect(),
            Op::QkNormRope(d) | Op::FlashPrefill(d) => vec![d],
            Op::FlashDecode(f) => vec![&f.partial, &f.combine],
        }
    }

    /// The fewest workgroups one of this node's matvec dispatches launches, if it is a
    /// matvec (a dense one, or the experts' in a one-token plan).
    pub fn matvec_workgroups(&self) -> Option<u64> {
        match &self.op {
            Op::Matvec(m) => m.min_workgroups(),
            Op::Experts(ds) => ds.iter().map(Dispatch::workgroups).min(),
            _ => None,
        }
    }

    pub fn dispatch_count(&self) -> usize {
        match &self.op {
            Op::Dispatches(ds) | Op::Experts(ds) => ds.len(),
            Op::Matvec(m) => m.dispatch_count(),
            Op::QkNormRope(_) | Op::FlashPrefill(_) => 1,
            Op::FlashDecode(_) => 2,
        }
    }
}

pub struct Graph {
    pub nodes: Vec<Node>,
    /// The attention kernels' position (`common/step.wgsl`).
    step: wgpu::Buffer,
    n_tokens: u32,
    /// A batched decode step's sequences, in row order (empty for one sequence's step).
    rows: Vec<RowSteps>,
    /// Runs of nodes that repeat once per row of a batched step (see [`RowSpan`]).
    row_spans: Vec<RowSpan>,
}

/// Nodes `first..first + rows * per_row` of a batched step: each row's `per_row` nodes in
/// turn, doing the same work on its own sequence. A row reads and writes only its own
/// caches, state and scratch and its own row of the batch's buffers, so rows need no order
/// among themselves: a direct step records them stage by stage (every row's first dispatch,
/// then every row's second, ...), one barrier a stage where a buffer-wide rule would put one
/// between every two rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RowSpan {
    first: usize,
    rows: usize,
    per_row: usize,
}

/// What moves with one sequence of a batched decode step: its step buffer and the nodes of
/// its decode attention.
struct RowSteps {
    step: wgpu::Buffer,
    flash: Vec<usize>,
}

impl Graph {
    /// Moves the step to positions `pos0..pos0 + n_tokens`: one write for every layer, and
    /// the decode attention's grids.
    pub fn set_position(&mut self, queue: &wgpu::Queue, pos0: u32) -> Result<(), GpuError> {
        for node in &mut self.nodes {
            if let Op::FlashDecode(f) = &mut node.op {
                f.set_position(pos0)?;
            }
        }
        write_step(queue, &self.step, pos0, self.n_tokens);
        Ok(())
    }

    /// Moves a batched decode step's rows to their sequences' positions.
    pub fn set_row_positions(
        &mut self,
        queue: &wgpu::Queue,
        positions: &[u32],
    ) -> Result<(), GpuError> {
        if positions.len() != self.rows.len() {
            return Err(GpuError::Shape(format!(
                "{} positions for a step of {} sequences",
                positions.len(),
                self.rows.len()
            )));
        }
        for (row, &pos) in self.rows.iter().zip(positions) {
            write_step(queue, &row.step, pos, 1);
            for &i in &row.flash {
                if let Op::FlashDecode(f) = &mut self.nodes[i].op {
                    f.set_position(pos)?;
                }
            }
        }
        Ok(())
    }

    /// Readies every dispatch for direct recording (see [`Dispatch::bind_direct`]).
    pub fn bind_direct(&mut self, ctx: &GpuContext) -> Result<(), GpuError> {
        self.nodes.iter_mut().try_for_each(|n| n.bind_direct(ctx))
    }

    pub fn encode<R: Record>(&self, pass: &mut R) {
        let mut next = 0;
        for span in &self.row_spans {
            self.nodes[next..span.first]
                .iter()
                .for_each(|n| n.encode(pass));
            self.encode_rows(*span, pass);
            next = span.first + span.rows * span.per_row;
        }
        self.nodes[next..].iter().for_each(|n| n.encode(pass));
    }

    /// A span's rows stage by stage (see [`RowSpan`]).
    fn encode_rows<R: Record>(&self, span: RowSpan, pass: &mut R) {
        let rows: Vec<Vec<&Dispatch>> = (0..span.rows)
            .map(|r| {
                let first = span.first + r * span.per_row;
                self.nodes[first..first + span.per_row]
                    .iter()
                    .flat_map(Node::dispatches)
                    .collect()
            })
            .collect();
        record_stages(pass, &rows);
    }

    pub fn dispatch_count(&self) -> usize {
        self.nodes.iter().map(Node::dispatch_count).sum()
    }

    /// The matvec node launching the fewest workgroups, and how many: on a large GPU, a grid
    /// that cannot give every SM several workgroups leaves it idle.
    pub fn min_matvec_workgroups(&self) -> Option<(&Node, u64)> {
        self.nodes
            .iter()
            .filter_map(|n| n.matvec_workgroups().map(|w| (n, w)))
            .min_by_key(|&(_, w)| w)
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

/// One sequence of a batched decode step: its caches and recurrent state, and its own
/// activation buffers, through which its attention, delta rule and sampling run.
pub struct RowBindings<'a> {
    pub state: &'a SequenceState,
    pub scratch: &'a Scratch,
}

/// Builds the plan node by node.
struct Builder<'a> {
    b: &'a Bindings<'a>,
    n_tokens: u32,
    layer: Option<usize>,
    nodes: Vec<Node>,
    /// A batched decode step's sequences (empty for one sequence's step).
    rows: &'a [RowBindings<'a>],
    /// Per row, the indices of its decode-attention nodes.
    row_flash: Vec<Vec<usize>>,
    row_spans: Vec<RowSpan>,
}

impl Builder<'_> {
    /// Marks the nodes pushed since `first` as a [`RowSpan`]: `ends` holds where each row's
    /// nodes end, in row order. Rows that pushed different numbers of nodes are left one
    /// after another.
    fn rows_from(&mut self, first: usize, ends: &[usize]) {
        let per_row = ends.first().map_or(0, |&e| e - first);
        let same = ends
            .iter()
            .scan(first, |start, &end| {
                let n = end - *start;
                *start = end;
                Some(n)
            })
            .all(|n| n == per_row);
        if ends.len() > 1 && per_row > 0 && same {
            self.row_spans.push(RowSpan {
                first,
                rows: ends.len(),
                per_row,
            });
        }
    }

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

    /// `y[t] = W x[t]` for the step's tokens: matvec for one token, batched matvecs for a
    /// few (and for any number where the device runs them faster), tiled matmul for more.
    fn project(
        &mut self,
        label: &'static str,
        w: &QuantMatrix,
        x: Strided<'_>,
        y: Strided<'_>,
    ) -> Result<(), GpuError> {
        let (ctx, cache) = (self.b.ctx, self.b.cache);
        let op = if self.n_tokens == 1 {
            Op::Matvec(Matvec::single(
                ctx, cache, w, x.buffer, x.offset, y.buffer, y.offset,
            )?)
        } else if self.n_tokens <= BATCH_TOKENS || ctx.features.batched_prompt_steps {
            Op::Dispatches(matvec_batch(ctx, cache, w, self.n_tokens, x, y)?)
        } else {
            Op::Dispatches(matmul(ctx, cache, w, self.n_tokens, x, y)?)
        };
        self.push(label, op);
        Ok(())
    }

    /// One token on a device that takes the fused decode plan
    /// ([`GpuFeatures::fused_decode`](crate::runtime::GpuFeatures)).
    fn fused(&self) -> bool {
        self.n_tokens == 1 && self.b.ctx.features.fused_decode
    }

    /// The projections of one block input by `outputs`: in decode one matvec dispatch that
    /// folds the block's RMSNorm (`norm`) in and reads the stream; in prefill one matmul
    /// each over the normed copy.
    fn project_normed(
        &mut self,
        labels: (&'static str, &[&'static str]),
        norm: &wgpu::Buffer,
        outputs: &[(&QuantMatrix, Strided<'_>)],
    ) -> Result<(), GpuError> {
        let b = self.b;
        if !self.fused() {
            let x = Strided::rows(&b.scratch.normed, b.config.n_embd);
            for (&label, &(w, y)) in labels.1.iter().zip(outputs) {
                self.project(label, w, x, y)?;
            }
            return Ok(());
        }
        let input = MatvecInput {
            x: &b.scratch.stream,
            x_offset: 0,
            norm: Some(InputNorm::Row(RowNorm {
                w: norm,
                eps: b.config.rms_eps,
            })),
        };
        let outs: Vec<Projection<'_>> = outputs
            .iter()
            .map(|&(w, y)| Projection {
                w,
                y: y.buffer,
                y_offset: y.offset,
            })
            .collect();
        let m = Matvec::new(b.ctx, b.cache, input, &outs, false)?;
        self.push(labels.0, Op::Matvec(m));
        Ok(())
    }

    /// A block's output projection: in decode added straight into the residual stream, in
    /// prefill into `block_out` (the next add_rms_norm adds it).
    fn project_out(
        &mut self,
        label: &'static str,
        w: &QuantMatrix,
        x: Strided<'_>,
    ) -> Result<(), GpuError> {
        let b = self.b;
        let e = b.config.n_embd;
        if !self.fused() {
            return self.project(label, w, x, Strided::rows(&b.scratch.block_out, e));
        }
        let out = Projection {
            w,
            y: &b.scratch.stream,
            y_offset: 0,
        };
        let input = MatvecInput::plain(x.buffer, x.offset);
        let m = Matvec::new(b.ctx, b.cache, input, &[out], true)?;
        self.push(label, Op::Matvec(m));
        Ok(())
    }

    /// The stream's RMSNorm into `normed`, for a decode block that reads the normed copy.
    fn rms_norm(&mut self, w: &wgpu::Buffer) -> Result<(), GpuError> {
        let s = self.b.scratch;
        let io = RmsNormIo {
            src: &s.stream,
            w,
            y: &s.normed,
        };
        let r = self.rows(self.b.config.n_embd, self.n_tokens);
        let d = rms_norm(self.b.ctx, self.b.cache, r, io);
        self.one("rms_norm", d)
    }

    /// The residual add of a block's output, then the norm of the next block's input.
    fn add_rms_norm(&mut self, w: &wgpu::Buffer) -> Result<(), GpuError> {
        let s = self.b.scratch;
        let io = AddRmsNormIo {
            src: &s.block_out,
            w,
            y: &s.normed,
            x: &s.stream,
        };
        let r = self.rows(self.b.config.n_embd, self.n_tokens);
        let d = add_rms_norm(self.b.ctx, self.b.cache, r, io);
        self.one("add_rms_norm", d)
    }

    /// `n` floats between a batched step's buffers and one sequence's.
    fn copy(
        &mut self,
        label: &'static str,
        n: u32,
        src: (&wgpu::Buffer, u32),
        dst: (&wgpu::Buffer, u32),
    ) -> Result<(), GpuError> {
        let d = copy_floats(self.b.ctx, self.b.cache, n, src, dst);
        self.one(label, d)
    }

    fn batched(&self) -> bool {
        !self.rows.is_empty()
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
    let mut g = Builder {
        b,
        n_tokens,
        layer: None,
        nodes: Vec::new(),
        rows: &[],
        row_flash: Vec::new(),
        row_spans: Vec::new(),
    };
    forward(&mut g, logits)?;
    Ok(Graph {
        nodes: g.nodes,
        step: s.step.clone(),
        n_tokens,
        rows: Vec::new(),
        row_spans: Vec::new(),
    })
}

/// The plan of one decode step of several sequences, one token each, row `r` of the step
/// being `rows[r]`'s: the projections, FFNs and output head run over all rows at once (each
/// weight read once for all), while each row's attention or delta rule runs on its own
/// caches and state. `b.scratch` holds the step's rows (its batch at least `rows.len()`,
/// and as many logit rows); `b.state` is unused. Each row's logits end in its own scratch,
/// for its sampler.
pub fn build_batch(b: &Bindings<'_>, rows: &[RowBindings<'_>]) -> Result<Graph, Error> {
    let s = b.scratch;
    let n = rows.len() as u32;
    if n == 0 || n > s.ubatch || n > s.logit_rows {
        return Err(GpuError::Shape(format!(
            "a batched step of {n} sequences (the batch's scratch holds 1 to {} rows)",
            s.ubatch.min(s.logit_rows)
        ))
        .into());
    }
    let mut g = Builder {
        b,
        n_tokens: n,
        layer: None,
        nodes: Vec::new(),
        rows,
        row_flash: vec![Vec::new(); rows.len()],
        row_spans: Vec::new(),
    };
    forward(&mut g, LogitRows::All)?;
    let v = b.config.n_vocab;
    let (first, mut ends) = (g.nodes.len(), Vec::with_capacity(rows.len()));
    for (r, row) in rows.iter().enumerate() {
        let from = (&s.logits, r as u32 * v);
        g.copy("logits_row", v, from, (&row.scratch.logits, 0))?;
        ends.push(g.nodes.len());
    }
    g.rows_from(first, &ends);
    let steps = rows
        .iter()
        .zip(g.row_flash)
        .map(|(row, flash)| RowSteps {
            step: row.scratch.step.clone(),
            flash,
        })
        .collect();
    Ok(Graph {
        nodes: g.nodes,
        step: s.step.clone(),
        n_tokens: n,
        rows: steps,
        row_spans: g.row_spans,
    })
}

/// Embedding, the layers and the output head.
fn forward(g: &mut Builder<'_>, logits: LogitRows) -> Result<(), GpuError> {
    let (b, s, n_tokens) = (g.b, g.b.scratch, g.n_tokens);
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
    if !g.fused() {
        let first_norm = w.layers.first().map_or(&w.output_norm, |l| &l.attn_norm);
        g.rms_norm(first_norm)?;
    }
    for i in 0..w.layers.len() {
        g.layer = Some(i);
        layer(g, i)?;
    }
    g.layer = None;
    lm_head(g, logits)
}

/// Layer `i`: its mixer, the FFN, each followed by the residual add fused into the next norm.
fn layer(g: &mut Builder<'_>, i: usize) -> Result<(), GpuError> {
    let w = g.b.weights;
    let layer = &w.layers[i];
    let norm = &layer.attn_norm;
    match (&layer.mixer, &g.b.state.layers[i]) {
        (MixerWeights::Attention(aw), _) if g.batched() => attention_rows(g, i, aw, norm)?,
        (MixerWeights::Linear(lw), _) if g.batched() => gated_delta_net_rows(g, i, lw, norm)?,
        (MixerWeights::Attention(aw), LayerState::Attention { keys, values }) => {
            attention(g, aw, norm, keys, values)?
        }
        (MixerWeights::Linear(lw), LayerState::Linear { conv, delta }) => {
            gated_delta_net(g, lw, norm, conv, delta)?
        }
        _ => {
            return Err(GpuError::Shape(format!(
                "layer {i}: the state was built for another schedule"
            )))
        }
    }
    let next_norm = w.layers.get(i + 1).map_or(&w.output_norm, |l| &l.attn_norm);
    if !g.fused() {
        g.add_rms_norm(&layer.ffn_norm)?;
        ffn(g, &layer.ffn, &layer.ffn_norm)?;
        return g.add_rms_norm(next_norm);
    }
    if !ffn(g, &layer.ffn, &layer.ffn_norm)? {
        // A decode FFN that could not fuse wrote block_out from the normed copy.
        g.add_rms_norm(next_norm)?;
    }
    Ok(())
}

/// The output head over the normed last token (generation) or every token (scoring).
fn lm_head(g: &mut Builder<'_>, logits: LogitRows) -> Result<(), GpuError> {
    let (b, s) = (g.b, g.b.scratch);
    let head = b.weights.lm_head();
    let e = b.config.n_embd;
    match logits {
        LogitRows::None => Ok(()),
        LogitRows::Last | LogitRows::All if g.fused() => {
            let input = MatvecInput {
                x: &s.stream,
                x_offset: 0,
                norm: Some(InputNorm::Row(RowNorm {
                    w: &b.weights.output_norm,
                    eps: b.config.rms_eps,
                })),
            };
            let out = Projection {
                w: head,
                y: &s.logits,
                y_offset: 0,
            };
            let m = Matvec::new(b.ctx, b.cache, input, &[out], false)?;
            g.push("lm_head", Op::Matvec(m));
            Ok(())
        }
        LogitRows::Last => {
            let x_offset = (g.n_tokens - 1) * e;
            let m = Matvec::single(b.ctx, b.cache, head, &s.normed, x_offset, &s.logits, 0)?;
            g.push("lm_head", Op::Matvec(m));
            Ok(())
        }
        LogitRows::All => g.project(
            "lm_head",
            head,
            Strided::rows(&s.normed, e),
            Strided::rows(&s.logits, b.config.n_vocab),
        ),
    }
}

/// A step's gated attention: the q, k, v projections, then norm, rope, cache write and
/// attention over the step's own cache, then the output projection.
fn attention(
    g: &mut Builder<'_>,
    w: &AttentionWeights,
    norm: &wgpu::Buffer,
    keys: &wgpu::Buffer,
    values: &wgpu::Buffer,
) -> Result<(), GpuError> {
    let b = g.b;
    let sa = attention_scratch(b.scratch)?;
    attention_projections(g, w, norm, sa)?;
    let seq = Sequence {
        step: &b.scratch.step,
        kv_f16: b.state.kv_dtype == KvDtype::F16,
        n_tokens: g.n_tokens,
        first_row: 0,
    };
    attention_core(g, w, (sa, sa), seq, keys, values)?;
    g.project_out("attn_output", &w.o, Strided::rows(&sa.out, w.o.cols))
}

/// A batched decode step's gated attention: the q, k, v projections of every row at once,
/// then each row's norm, rope, cache write and attention on its own cache (reading its rows
/// of q/k/v and writing its output in the batch's scratch), then the output projection of
/// all.
fn attention_rows(
    g: &mut Builder<'_>,
    i: usize,
    w: &AttentionWeights,
    norm: &wgpu::Buffer,
) -> Result<(), GpuError> {
    let sa = attention_scratch(g.b.scratch)?;
    attention_projections(g, w, norm, sa)?;
    let rows = g.rows;
    let (first, mut ends) = (g.nodes.len(), Vec::with_capacity(rows.len()));
    for (r, row) in rows.iter().enumerate() {
        let (LayerState::Attention { keys, values }, Ok(ra)) =
            (&row.state.layers[i], attention_scratch(row.scratch))
        else {
            return Err(GpuError::Shape(format!(
                "layer {i}: batched row {r} has no attention cache"
            )));
        };
        // The row reads its q, k and v from the batch's projections and writes its output
        // there, in place; its roped query and split-KV partials live in its own scratch.
        let seq = Sequence {
            step: &row.scratch.step,
            kv_f16: row.state.kv_dtype == KvDtype::F16,
            n_tokens: 1,
            first_row: r as u32,
        };
        let flash = attention_core(g, w, (sa, ra), seq, keys, values)?;
        g.row_flash[r].extend(flash);
        ends.push(g.nodes.len());
    }
    g.rows_from(first, &ends);
    g.project_out("attn_output", &w.o, Strided::rows(&sa.out, w.o.cols))
}

fn attention_scratch(s: &Scratch) -> Result<&AttentionActivations<wgpu::Buffer>, GpuError> {
    s.attention
        .as_ref()
        .ok_or_else(|| GpuError::Shape("attention layer without attention scratch".into()))
}

/// One sequence's share of a mixer step: where its position is, its KV element type, its
/// tokens in the step and the row of its first token in the step's inputs and outputs.
#[derive(Clone, Copy)]
struct Sequence<'a> {
    step: &'a wgpu::Buffer,
    kv_f16: bool,
    n_tokens: u32,
    first_row: u32,
}

/// The q, k and v projections of the step's normed rows into `sa`.
fn attention_projections(
    g: &mut Builder<'_>,
    w: &AttentionWeights,
    norm: &wgpu::Buffer,
    sa: &AttentionActivations<wgpu::Buffer>,
) -> Result<(), GpuError> {
    let outputs = [
        (&w.q, Strided::rows(&sa.q_in, w.q.rows)),
        (&w.k, Strided::rows(&sa.k_in, w.k.rows)),
        (&w.v, Strided::rows(&sa.v_in, w.v.rows)),
    ];
    let labels = ("attn_qkv", &["attn_q", "attn_k", "attn_v"][..]);
    g.project_normed(labels, norm, &outputs)
}

/// One sequence's q/k norm, rope and cache write, then its attention (split-KV decode for
/// one token, the tiled form for a chunk): q, k and v from `sa`'s rows from `seq.first_row`,
/// the output into `sa.out` there, the roped query and the partials in `own` (the batch's
/// scratch and the row's own in a batched step, one scratch otherwise). Returns the decode
/// attention's node, which moves with the sequence's position.
fn attention_core(
    g: &mut Builder<'_>,
    w: &AttentionWeights,
    (sa, own): (
        &AttentionActivations<wgpu::Buffer>,
        &AttentionActivations<wgpu::Buffer>,
    ),
    seq: Sequence<'_>,
    keys: &wgpu::Buffer,
    values: &wgpu::Buffer,
) -> Result<Option<usize>, GpuError> {
    let b = g.b;
    let step = AttentionStep {
        config: &b.config.attention,
        kv_f16: seq.kv_f16,
        n_tokens: seq.n_tokens,
        pos0: 0,
        first_row: seq.first_row,
        step: seq.step,
    };
    let io = QkNormRopeIo {
        q_in: &sa.q_in,
        k_in: &sa.k_in,
        v_in: &sa.v_in,
        q_norm: &w.q_norm,
        k_norm: &w.k_norm,
        freqs: &b.weights.rope_freqs,
        q_out: &own.q,
        k_cache: keys,
        v_cache: values,
        step: seq.step,
    };
    let rope = qk_norm_rope(b.ctx, b.cache, step, b.config.rms_eps, io)?;
    g.push("qk_norm_rope", Op::QkNormRope(rope));
    if seq.n_tokens == 1 {
        let buffers = FlashDecodeBuffers {
            q: &own.q,
            k_cache: keys,
            v_cache: values,
            partials: &own.partials,
            q_in: &sa.q_in,
            out: &sa.out,
        };
        let f = FlashDecode::new(b.ctx, b.cache, step, buffers)?;
        g.push("flash_decode", Op::FlashDecode(f));
        return Ok(Some(g.nodes.len() - 1));
    }
    let io = FlashPrefillIo {
        q: &own.q,
        k_cache: keys,
        v_cache: values,
        q_in: &sa.q_in,
        out: &sa.out,
        step: seq.step,
    };
    let f = flash_prefill(b.ctx, b.cache, step, io)?;
    g.push("flash_prefill", Op::FlashPrefill(f));
    Ok(None)
}

fn gated_delta_net(
    g: &mut Builder<'_>,
    w: &LinearWeights,
    norm: &wgpu::Buffer,
    conv_state: &wgpu::Buffer,
    delta_state: &wgpu::Buffer,
) -> Result<(), GpuError> {
    let b = g.b;
    let s = b.scratch;
    let (sl, gc) = linear_scratch(s, b.config)?;
    let t = g.n_tokens;
    gdn_projections(g, w, norm, sl)?;
    let eps = b.config.rms_eps;
    if t == 1 {
        // A decode step: the conv runs inside the delta rule, each workgroup convolving the
        // channels it reads.
        conv_delta_step(g, w, (sl, 0), &s.step, conv_state, delta_state)?;
    } else {
        let shape = ConvShape {
            channels: gc.conv_channels() as u32,
            n_tokens: t,
            taps: gc.conv_kernel,
        };
        let io = CausalConv1dIo {
            x: &sl.qkv,
            w: &w.conv,
            out: &sl.conv_out,
            state: conv_state,
            step: &s.step,
        };
        g.one("causal_conv1d", causal_conv1d(b.ctx, b.cache, shape, io))?;
        if b.ctx.features.chunked_delta_rule && delta_chunk_wy::fits_key_dim(gc.d_k) {
            chunked_delta_rule(g, w, sl, delta_state)?;
        } else {
            let io = DeltaRuleIo {
                conv_out: &sl.conv_out,
                beta_raw: &sl.beta,
                alpha: &sl.alpha,
                dt_bias: &w.dt_bias,
                a_neg: &w.a,
                out: &sl.delta_out,
                state: delta_state,
            };
            g.one("delta_rule", delta_rule(b.ctx, b.cache, gc, t, eps, io))?;
        }
    }
    if g.fused() {
        // The output norm folded into ssm_out, which adds into the stream.
        let input = MatvecInput {
            x: &sl.delta_out,
            x_offset: 0,
            norm: Some(InputNorm::GatedHeads(GatedHeadNorm {
                w: &w.norm,
                z: &sl.z,
                head_dim: gc.d_v,
                eps,
            })),
        };
        let out = Projection {
            w: &w.out,
            y: &s.stream,
            y_offset: 0,
        };
        let m = Matvec::new(b.ctx, b.cache, input, &[out], true)?;
        g.push("ssm_out", Op::Matvec(m));
        return Ok(());
    }
    gdn_output(g, w, sl)
}

/// A batched decode step's Gated DeltaNet: the input projections of every row at once,
/// then each row's conv and delta rule on its own state (reading its rows of qkv, beta and
/// alpha and writing its output in the batch's scratch), then the gated norm and the
/// output projection of all.
fn gated_delta_net_rows(
    g: &mut Builder<'_>,
    i: usize,
    w: &LinearWeights,
    norm: &wgpu::Buffer,
) -> Result<(), GpuError> {
    let (sl, _) = linear_scratch(g.b.scratch, g.b.config)?;
    gdn_projections(g, w, norm, sl)?;
    let rows = g.rows;
    let (first, mut ends) = (g.nodes.len(), Vec::with_capacity(rows.len()));
    for (r, row) in rows.iter().enumerate() {
        let LayerState::Linear { conv, delta } = &row.state.layers[i] else {
            return Err(GpuError::Shape(format!(
                "layer {i}: batched row {r} has no recurrent state"
            )));
        };
        // The row reads its projections from the batch's scratch and writes its output
        // there, in place, with its own conv ring and state.
        conv_delta_step(g, w, (sl, r as u32), &row.scratch.step, conv, delta)?;
        ends.push(g.nodes.len());
    }
    g.rows_from(first, &ends);
    gdn_output(g, w, sl)
}

fn linear_scratch<'s>(
    s: &'s Scratch,
    config: &'s ModelConfig,
) -> Result<(&'s LinearActivations<wgpu::Buffer>, &'s GdnConfig), GpuError> {
    match (&s.linear, &config.gdn) {
        (Some(sl), Some(gc)) => Ok((sl, gc)),
        _ => Err(GpuError::Shape("linear layer without its geometry".into())),
    }
}

/// The qkv, gate, beta and alpha projections of the step's normed rows into `sl`.
fn gdn_projections(
    g: &mut Builder<'_>,
    w: &LinearWeights,
    norm: &wgpu::Buffer,
    sl: &LinearActivations<wgpu::Buffer>,
) -> Result<(), GpuError> {
    let outputs = [
        (&w.qkv, Strided::rows(&sl.qkv, w.qkv.rows)),
        (&w.gate, Strided::rows(&sl.z, w.gate.rows)),
        (&w.beta, Strided::rows(&sl.beta, w.beta.rows)),
        (&w.alpha, Strided::rows(&sl.alpha, w.alpha.rows)),
    ];
    let names = ["attn_qkv", "attn_gate", "ssm_beta", "ssm_alpha"];
    g.project_normed(("gdn_in", &names), norm, &outputs)
}

/// One sequence's decode step of conv and delta rule in one dispatch, on its own state, its
/// inputs and output at row `row` of `sl` (its row of a batched step's scratch).
fn conv_delta_step(
    g: &mut Builder<'_>,
    w: &LinearWeights,
    (sl, row): (&LinearActivations<wgpu::Buffer>, u32),
    step: &wgpu::Buffer,
    conv_state: &wgpu::Buffer,
    delta_state: &wgpu::Buffer,
) -> Result<(), GpuError> {
    let (b, gc) = (g.b, linear_scratch(g.b.scratch, g.b.config)?.1);
    let io = ConvDeltaRuleIo {
        qkv: &sl.qkv,
        conv_w: &w.conv,
        conv_state,
        step,
        beta_raw: &sl.beta,
        alpha: &sl.alpha,
        dt_bias: &w.dt_bias,
        a_neg: &w.a,
        out: &sl.delta_out,
        state: delta_state,
    };
    let d = conv_delta_rule(b.ctx, b.cache, gc, (b.config.rms_eps, row), io);
    g.one("conv_delta_rule", d)
}

/// The gated output norm of the step's rows, then the output projection into `block_out`.
fn gdn_output(
    g: &mut Builder<'_>,
    w: &LinearWeights,
    sl: &LinearActivations<wgpu::Buffer>,
) -> Result<(), GpuError> {
    let (b, gc) = (g.b, linear_scratch(g.b.scratch, g.b.config)?.1);
    let io = GatedRmsNormIo {
        src: &sl.delta_out,
        w: &w.norm,
        z: &sl.z,
        y: &sl.normed,
    };
    let r = g.rows(gc.d_v, g.n_tokens * gc.n_v_heads);
    g.one("gated_rms_norm", gated_rms_norm(b.ctx, b.cache, r, io))?;
    g.project_out("ssm_out", &w.out, Strided::rows(&sl.normed, w.out.cols))
}

/// A prompt step's gated delta rule in chunks: every chunk's WY factors at once, then the
/// state carried across the chunks (rather than across the tokens).
fn chunked_delta_rule(
    g: &mut Builder<'_>,
    w: &LinearWeights,
    sl: &LinearActivations<wgpu::Buffer>,
    delta_state: &wgpu::Buffer,
) -> Result<(), GpuError> {
    let b = g.b;
    let Some(gc) = &b.config.gdn else {
        return Err(GpuError::Shape("linear layer without its geometry".into()));
    };
    let t = g.n_tokens;
    let io = DeltaChunkWyIo {
        conv_out: &sl.conv_out,
        beta_raw: &sl.beta,
        alpha: &sl.alpha,
        dt_bias: &w.dt_bias,
        a_neg: &w.a,
        w: &sl.chunk_w,
        u: &sl.chunk_u,
        kd: &sl.chunk_kd,
        qg: &sl.chunk_qg,
        mqk: &sl.chunk_mqk,
        decay: &sl.chunk_decay,
    };
    let eps = b.config.rms_eps;
    g.one(
        "delta_chunk_wy",
        delta_chunk_wy(b.ctx, b.cache, gc, t, eps, io),
    )?;
    let io = DeltaChunkStateIo {
        w: &sl.chunk_w,
        u: &sl.chunk_u,
        kd: &sl.chunk_kd,
        qg: &sl.chunk_qg,
        mqk: &sl.chunk_mqk,
        decay: &sl.chunk_decay,
        out: &sl.delta_out,
        state: delta_state,
    };
    g.one(
        "delta_chunk_state",
        delta_chunk_state(b.ctx, b.cache, gc, t, io),
    )
}

/// The FFN of a layer whose input norm is `norm`; whether it added its output into the
/// stream itself (a fused decode block) rather than into `block_out`.
fn ffn(g: &mut Builder<'_>, w: &FfnWeights, norm: &wgpu::Buffer) -> Result<bool, GpuError> {
    match (w, &g.b.config.ffn) {
        (FfnWeights::Dense { gate, up, down }, FfnConfig::Dense { n_ff }) => {
            let f = &g.b.scratch.ffn;
            let gated = GatedFfn {
                labels: ["ffn_gate", "ffn_up", "ffn_down"],
                gate,
                up,
                down,
                width: *n_ff,
                gate_up: &f.gate_up,
                h: &f.h,
            };
            dense_ffn(g, gated, norm)?;
            Ok(g.fused())
        }
        (FfnWeights::Moe(moe), FfnConfig::Moe(m)) => moe_ffn(g, moe, m, norm),
        _ => Err(GpuError::Shape(
            "FFN weights do not match the config's FFN".into(),
        )),
    }
}

/// A gated FFN of one token-wide input: `down(silu(gate x) * up x)`.
struct GatedFfn<'a> {
    /// What the profile calls the gate, up and down projections.
    labels: [&'static str; 3],
    gate: &'a QuantMatrix,
    up: &'a QuantMatrix,
    down: &'a QuantMatrix,
    width: u32,
    /// `[n_tokens, 2 * width]`: gate then up per token.
    gate_up: &'a wgpu::Buffer,
    /// `[n_tokens, width]`.
    h: &'a wgpu::Buffer,
}

impl GatedFfn<'_> {
    fn swiglu(&self, g: &mut Builder<'_>) -> Result<(), GpuError> {
        let n = self.width;
        let shape = SwigluShape {
            slots: g.n_tokens,
            width: n,
            slot_stride: 2 * n,
            up_offset: n,
        };
        let io = SwigluIo {
            gate_up: self.gate_up,
            h: self.h,
        };
        g.one("swiglu", swiglu(g.b.ctx, g.b.cache, shape, io))
    }
}

/// The dense FFN: gate and up of the block input, SwiGLU, the output projection.
fn dense_ffn(g: &mut Builder<'_>, f: GatedFfn<'_>, norm: &wgpu::Buffer) -> Result<(), GpuError> {
    let n = f.width;
    let gate_up = Strided::rows(f.gate_up, 2 * n);
    let [gate_label, up_label, down_label] = f.labels;
    let outputs = [(f.gate, gate_up), (f.up, gate_up.at(n))];
    g.project_normed(("ffn_gate_up", &[gate_label, up_label]), norm, &outputs)?;
    f.swiglu(g)?;
    g.project_out(down_label, f.down, Strided::rows(f.h, n))
}

/// The shared expert over the normed copy, into `out`.
fn shared_ffn(g: &mut Builder<'_>, f: GatedFfn<'_>, out: Strided<'_>) -> Result<(), GpuError> {
    let (b, n) = (g.b, f.width);
    let x = Strided::rows(&b.scratch.normed, b.config.n_embd);
    let gate_up = Strided::rows(f.gate_up, 2 * n);
    let [gate_label, up_label, down_label] = f.labels;
    g.project(gate_label, f.gate, x, gate_up)?;
    g.project(up_label, f.up, x, gate_up.at(n))?;
    f.swiglu(g)?;
    g.project(down_label, f.down, Strided::rows(f.h, n), out)
}

/// A MoE block: router (with the shared expert's gate), then in decode the two fused expert
/// kernels (the first choosing the experts); otherwise top-k, the routed experts (per slot, or grouped by expert for a
/// prompt chunk on a GPU), the shared expert, and their weighted sum into `block_out`.
/// Whether it added into the stream itself.
fn moe_ffn(
    g: &mut Builder<'_>,
    w: &MoeWeights,
    m: &MoeConfig,
    norm: &wgpu::Buffer,
) -> Result<bool, GpuError> {
    let b = g.b;
    let (s, t, e) = (b.scratch, g.n_tokens, b.config.n_embd);
    let Some(rs) = &s.ffn.router else {
        return Err(GpuError::Shape("MoE layer without router scratch".into()));
    };
    let shared = match (&w.shared, &s.ffn.shared, m.shared_ffn) {
        (Some(sw), Some(ss), Some(fs)) => Some((sw, ss, fs)),
        _ => None,
    };
    let mut outputs = vec![(&w.router, Strided::rows(&rs.logits, m.n_expert))];
    if let Some((sw, ss, _)) = shared {
        outputs.push((&sw.gate_inp, Strided::rows(&ss.logit, 1)));
    }
    let labels = ("ffn_router", &["ffn_gate_inp", "ffn_gate_inp_shexp"][..]);
    g.project_normed(labels, norm, &outputs)?;
    let shape = RouteShape {
        n_expert: m.n_expert,
        k: m.n_expert_used,
        n_tokens: t,
        renormalise: m.norm_top_k,
    };
    if g.fused() && fits_fused_experts(w) {
        fused_experts(g, w, m, norm, shape)?;
        return Ok(true);
    }
    let io = MoeRouteIo {
        logits: &rs.logits,
        ids: &rs.ids,
        weights: &rs.weights,
        location: &w.down.table.location,
        counts: &w.down.table.counts,
    };
    g.one("moe_route", moe_route(b.ctx, b.cache, shape, io))?;
    if g.fused() {
        // The staged experts read the normed copy.
        g.rms_norm(norm)?;
    }
    routed_experts(g, w, m)?;
    let shared = match shared {
        Some((sw, ss, fs)) => {
            let gated = GatedFfn {
                labels: ["ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"],
                gate: &sw.gate,
                up: &sw.up,
                down: &sw.down,
                width: fs,
                gate_up: &ss.gate_up,
                h: &ss.h,
            };
            shared_ffn(g, gated, Strided::rows(&ss.out, e))?;
            Some(SharedOutput {
                out: &ss.out,
                logit: &ss.logit,
            })
        }
        None => None,
    };
    let shape = CombineShape {
        n_tokens: t,
        width: e,
        k: m.n_expert_used,
    };
    let routed = RoutedOutputs {
        expert_out: &rs.expert_out,
        expert_w: &rs.weights,
    };
    let d = moe_combine(b.ctx, b.cache, shape, routed, shared, &s.block_out);
    g.one("moe_combine", d)?;
    Ok(false)
}

/// Whether every expert matrix sits in one binding (pool and host copy each), as the fused
/// decode kernels read them (a tensor over the adapter's storage binding limit is split, and
/// takes the staged form).
fn fits_fused_experts(w: &MoeWeights) -> bool {
    let whole = |m: &QuantMatrix| m.pieces.len() == 1;
    let whole_experts = |t: &ExpertTensor| t.whole().is_some();
    let gate_up = match &w.gate_up {
        ExpertGateUp::Fused(gu) => whole_experts(gu),
        ExpertGateUp::Separate { gate, up } => whole_experts(gate) && whole_experts(up),
    };
    let shared = w
        .shared
        .as_ref()
        .is_none_or(|s| whole(&s.gate) && whole(&s.up) && whole(&s.down));
    gate_up && whole_experts(&w.down) && shared
}

/// A decode token's experts from the router's logits: `moe_gate_up` (top-k, norm, every
/// expert's gate and up, SwiGLU; the shared expert as one more slot) and `moe_down` (down
/// projections, weighted sum, residual add).
fn fused_experts(
    g: &mut Builder<'_>,
    w: &MoeWeights,
    m: &MoeConfig,
    norm: &wgpu::Buffer,
    route: RouteShape,
) -> Result<(), GpuError> {
    let b = g.b;
    let (s, fe, k) = (b.scratch, m.expert_ffn, m.n_expert_used);
    let Some(rs) = &s.ffn.router else {
        return Err(GpuError::Shape("MoE layer without router scratch".into()));
    };
    let rows = |w, first_row| ExpertRows {
        w,
        first_row,
        rows: fe,
    };
    let gate_up = match &w.gate_up {
        ExpertGateUp::Fused(gu) => (rows(gu, 0), rows(gu, fe)),
        ExpertGateUp::Separate { gate, up } => (rows(gate, 0), rows(up, 0)),
    };
    let h_stride = moe_h_stride(m) as u32;
    let buffers = GateUpBuffers {
        x: &s.stream,
        norm_w: norm,
        eps: b.config.rms_eps,
        logits: &rs.logits,
        ids: &rs.ids,
        route_w: &rs.weights,
        h: &s.ffn.h,
        h_stride,
    };
    let shared = w.shared.as_ref().map(|sw| SharedGateUp {
        gate: &sw.gate,
        up: &sw.up,
    });
    let d = moe_gate_up(b.ctx, b.cache, route, gate_up, shared, buffers);
    g.one("moe_gate_up", d)?;
    let shared = match (&w.shared, &s.ffn.shared) {
        (Some(sw), Some(ss)) => Some(SharedDown {
            down: &sw.down,
            logit: &ss.logit,
        }),
        _ => None,
    };
    let buffers = DownBuffers {
        h: &s.ffn.h,
        h_stride,
        ids: &rs.ids,
        route_w: &rs.weights,
        y: &s.stream,
    };
    let down = ExpertWeights { w: &w.down };
    let d = moe_down(b.ctx, b.cache, k, down, shared, buffers);
    g.one("moe_down", d)
}

/// How a step's routed experts run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ExpertForm {
    /// One matvec per slot (`matvec_experts`).
    PerSlot,
    /// Grouped by expert, each expert's units decoded once for its few slots
    /// (`matvec_batch_experts`).
    Batched,
    /// Grouped by expert, a tiled matmul per expert (`matmul_experts`).
    Tiled,
}

/// How the step's routed experts run, recording the grouping of its slots (`moe_group`)
/// when they run grouped.
///
/// A prompt chunk's slots grouped by expert read each expert's weights once per tile of its
/// tokens instead of once per slot: the bandwidth a GPU is bound by. A CPU device is bound
/// by arithmetic instead, where the half-empty tiles of random routing cost more than the
/// reads they save (pp128 of bench-qwen35moe on lavapipe: 7.47 tok/s per slot, 5.84
/// grouped), so it does not take the tiles.
///
/// A step of a few tokens (a batched decode step, a short chunk), and any prompt step on a
/// device that runs batched matvecs faster than tiles (`GpuFeatures::batched_prompt_steps`),
/// is grouped where its slots are at least half the experts, so that tokens share experts:
/// each shared expert is then read and decoded once for every 8 of its slots. With fewer slots than that
/// (8 sequences of 8 of 256 experts pick about 57 distinct ones) the per-slot form reads
/// nearly as much and launches no workgroups for unpicked experts.
fn expert_form(
    g: &mut Builder<'_>,
    rs: &RouterActivations<wgpu::Buffer>,
    m: &MoeConfig,
) -> Result<ExpertForm, GpuError> {
    let b = g.b;
    let slots = g.n_tokens * m.n_expert_used;
    let form = if g.n_tokens == 1 {
        ExpertForm::PerSlot
    } else if g.n_tokens <= BATCH_TOKENS || b.ctx.features.batched_prompt_steps {
        if 2 * slots >= m.n_expert {
            ExpertForm::Batched
        } else {
            ExpertForm::PerSlot
        }
    } else if b.ctx.features.grouped_expert_prefill {
        ExpertForm::Tiled
    } else {
        ExpertForm::PerSlot
    };
    if form != ExpertForm::PerSlot {
        let io = MoeGroupIo {
            ids: &rs.ids,
            order: &rs.order,
            offsets: &rs.offsets,
        };
        g.one(
            "moe_group",
            moe_group(b.ctx, b.cache, m.n_expert, slots, io),
        )?;
    }
    Ok(form)
}

/// The routed experts' gate/up, SwiGLU and down over the step's `n_tokens * k` slots.
fn routed_experts(g: &mut Builder<'_>, w: &MoeWeights, m: &MoeConfig) -> Result<(), GpuError> {
    let b = g.b;
    let (s, t, e) = (b.scratch, g.n_tokens, b.config.n_embd);
    let (f, k, fe) = (&s.ffn, m.n_expert_used, m.expert_ffn);
    let Some(rs) = &f.router else {
        return Err(GpuError::Shape("MoE layer without router scratch".into()));
    };
    let slots = t * k;
    let form = expert_form(g, rs, m)?;
    let groups = ExpertGroups {
        order: &rs.order,
        offsets: &rs.offsets,
        token_tile: matmul_experts::token_tile(t, k, m.n_expert),
    };
    let experts = |w: &ExpertTensor, x: SlotInput<'_>, y: SlotOutput<'_>| {
        let ew = ExpertWeights { w };
        match form {
            ExpertForm::Tiled => matmul_experts(b.ctx, b.cache, ew, t, groups, x, y),
            ExpertForm::Batched => matvec_batch_experts(b.ctx, b.cache, ew, t, groups, x, y),
            ExpertForm::PerSlot => matvec_experts(b.ctx, b.cache, ew, slots, &rs.ids, x, y),
        }
    };
    let token_input = SlotInput {
        buffer: &s.normed,
        stride: e,
        group: k,
    };
    let gate_up_out = |offset| SlotOutput {
        buffer: &f.gate_up,
        stride: 2 * fe,
        offset,
    };
    match &w.gate_up {
        ExpertGateUp::Fused(wgu) => {
            let ds = experts(wgu, token_input, gate_up_out(0))?;
            g.push("ffn_gate_up_exps", Op::Experts(ds));
        }
        ExpertGateUp::Separate { gate, up } => {
            let ds = experts(gate, token_input, gate_up_out(0))?;
            g.push("ffn_gate_exps", Op::Experts(ds));
            let ds = experts(up, token_input, gate_up_out(fe))?;
            g.push("ffn_up_exps", Op::Experts(ds));
        }
    }
    let shape = SwigluShape {
        slots,
        width: fe,
        slot_stride: 2 * fe,
        up_offset: fe,
    };
    let io = SwigluIo {
        gate_up: &f.gate_up,
        h: &f.h,
    };
    g.one("swiglu", swiglu(b.ctx, b.cache, shape, io))?;
    let h = SlotInput {
        buffer: &f.h,
        stride: fe,
        group: 1,
    };
    let out = SlotOutput {
        buffer: &rs.expert_out,
        stride: e,
        offset: 0,
    };
    let ds = experts(&w.down, h, out)?;
    g.push("ffn_down_exps", Op::Experts(ds));
    Ok(())
}
