//! Activation buffers of one sequence, sized once for the largest step (a prefill chunk of
//! `ubatch` tokens) and reused by every step: no allocation on the per-token path.

use crate::error::GpuError;
use crate::loader::config::{FfnConfig, ModelConfig};
use crate::runtime::gpu::GpuContext;
use crate::runtime::ops::attention::FLASH_CHUNK;
use crate::runtime::ops::sample::{
    argmax_partials_bytes, top_k_partials_bytes, SampleBuffers, MAX_PENALTY_WINDOW, MAX_TOP_K,
};
use crate::runtime::tensor::{f32_buffer, read_back_buffer};

/// Buffers of the attention layers, [ubatch, width] each.
pub struct AttentionScratch {
    /// attn_q's output (query and gate per head).
    pub q_in: wgpu::Buffer,
    pub k_in: wgpu::Buffer,
    pub v_in: wgpu::Buffer,
    /// Normalised, rotated queries.
    pub q: wgpu::Buffer,
    pub out: wgpu::Buffer,
    /// Split-KV partials of one decode token over the whole context.
    pub partials: wgpu::Buffer,
}

/// Buffers of the Gated DeltaNet layers.
pub struct LinearScratch {
    pub qkv: wgpu::Buffer,
    pub conv_out: wgpu::Buffer,
    pub z: wgpu::Buffer,
    pub beta: wgpu::Buffer,
    pub alpha: wgpu::Buffer,
    pub delta_out: wgpu::Buffer,
    pub normed: wgpu::Buffer,
}

/// Buffers of the FFN: dense, or routed experts plus the shared expert.
pub struct FfnScratch {
    /// [slots, 2 * width]: gate then up per slot (slots = tokens * k for MoE).
    pub gate_up: wgpu::Buffer,
    /// [slots, width]: silu(gate) * up.
    pub h: wgpu::Buffer,
    pub router: Option<RouterScratch>,
    pub shared: Option<SharedScratch>,
}

pub struct RouterScratch {
    pub logits: wgpu::Buffer,
    /// [ubatch, k] u32 expert ids and f32 weights.
    pub ids: wgpu::Buffer,
    pub weights: wgpu::Buffer,
    /// [ubatch * k, n_embd]: each routed expert's output.
    pub expert_out: wgpu::Buffer,
    /// Prefill: the slots grouped by expert ([ubatch * k] u32) and each expert's range
    /// ([n_expert + 1] u32).
    pub order: wgpu::Buffer,
    pub offsets: wgpu::Buffer,
}

pub struct SharedScratch {
    pub gate_up: wgpu::Buffer,
    pub h: wgpu::Buffer,
    pub out: wgpu::Buffer,
    pub logit: wgpu::Buffer,
}

pub struct Scratch {
    pub ubatch: u32,
    /// [ubatch] u32 token ids of this step.
    pub tokens: wgpu::Buffer,
    /// The residual stream, its normed copy and a block's output, [ubatch, n_embd].
    pub stream: wgpu::Buffer,
    pub normed: wgpu::Buffer,
    pub block_out: wgpu::Buffer,
    pub attention: Option<AttentionScratch>,
    pub linear: Option<LinearScratch>,
    pub ffn: FfnScratch,
    /// [logit_rows, n_vocab].
    pub logits: wgpu::Buffer,
    pub logit_rows: u32,
    pub sample_partials: wgpu::Buffer,
    /// The sampled token id, and its mappable copy for the 4-byte read-back.
    pub sampled: wgpu::Buffer,
    pub sampled_read: wgpu::Buffer,
    /// The ids the repetition penalty looks back over.
    pub recent: wgpu::Buffer,
    /// Bytes allocated.
    pub bytes: u64,
}

/// Allocates zeroed buffers and adds up their sizes.
struct Alloc<'a> {
    ctx: &'a GpuContext,
    bytes: u64,
    limit: u64,
}

impl Alloc<'_> {
    /// A zeroed storage buffer of `n` f32 (or u32) values, within one binding.
    fn floats(&mut self, label: &str, n: u64) -> Result<wgpu::Buffer, GpuError> {
        let size = 4 * n.max(1);
        if size > self.limit {
            return Err(GpuError::OutOfMemory(format!(
                "the {label} buffer needs {size} bytes, over the adapter's {}-byte binding \
                 limit; use a smaller batch (ubatch)",
                self.limit
            )));
        }
        self.bytes += size;
        Ok(f32_buffer(self.ctx, label, n as usize))
    }
}

impl Scratch {
    /// Buffers for steps of up to `ubatch` tokens, logits for `logit_rows` of them, and
    /// decode attention over up to `capacity` positions.
    pub fn new(
        ctx: &GpuContext,
        config: &ModelConfig,
        ubatch: u32,
        logit_rows: u32,
        capacity: u32,
    ) -> Result<Scratch, GpuError> {
        let mut al = Alloc {
            ctx,
            bytes: 0,
            limit: crate::runtime::weights::max_piece_bytes(ctx),
        };
        let t = ubatch as u64;
        let e = config.n_embd as u64;
        let a = &config.attention;
        let hd = a.head_dim as u64;
        let attention = if config.n_attention_layers() > 0 {
            let (q_width, kv_width) = (a.q_rows(), a.kv_width());
            let chunks = capacity.div_ceil(FLASH_CHUNK) as u64;
            Some(AttentionScratch {
                q_in: al.floats("q_in", t * q_width)?,
                k_in: al.floats("k_in", t * kv_width)?,
                v_in: al.floats("v_in", t * kv_width)?,
                q: al.floats("q", t * a.n_head as u64 * hd)?,
                out: al.floats("attn_out", t * a.n_head as u64 * hd)?,
                partials: al.floats("partials", a.n_head as u64 * chunks * (hd + 2))?,
            })
        } else {
            None
        };
        let linear = match &config.gdn {
            Some(g) if config.n_linear_layers() > 0 => {
                let c = g.conv_channels();
                let vd = g.value_dim();
                let nv = g.n_v_heads as u64;
                Some(LinearScratch {
                    qkv: al.floats("qkv", t * c)?,
                    conv_out: al.floats("conv_out", t * c)?,
                    z: al.floats("z", t * vd)?,
                    beta: al.floats("beta", t * nv)?,
                    alpha: al.floats("alpha", t * nv)?,
                    delta_out: al.floats("delta_out", t * vd)?,
                    normed: al.floats("gdn_normed", t * vd)?,
                })
            }
            _ => None,
        };
        let ffn = match &config.ffn {
            FfnConfig::Dense { n_ff } => {
                let f = *n_ff as u64;
                FfnScratch {
                    gate_up: al.floats("gate_up", t * 2 * f)?,
                    h: al.floats("ffn_h", t * f)?,
                    router: None,
                    shared: None,
                }
            }
            FfnConfig::Moe(m) => {
                let slots = t * m.n_expert_used as u64;
                let fe = m.expert_ffn as u64;
                FfnScratch {
                    gate_up: al.floats("expert_gate_up", slots * 2 * fe)?,
                    h: al.floats("expert_h", slots * fe)?,
                    router: Some(RouterScratch {
                        logits: al.floats("router_logits", t * m.n_expert as u64)?,
                        ids: al.floats("expert_ids", slots)?,
                        weights: al.floats("expert_weights", slots)?,
                        expert_out: al.floats("expert_out", slots * e)?,
                        order: al.floats("expert_order", slots)?,
                        offsets: al.floats("expert_offsets", m.n_expert as u64 + 1)?,
                    }),
                    shared: match m.shared_ffn {
                        Some(fs) => {
                            let fs = fs as u64;
                            Some(SharedScratch {
                                gate_up: al.floats("shared_gate_up", t * 2 * fs)?,
                                h: al.floats("shared_h", t * fs)?,
                                out: al.floats("shared_out", t * e)?,
                                logit: al.floats("shared_logit", t)?,
                            })
                        }
                        None => None,
                    },
                }
            }
        };
        let v = config.n_vocab;
        let partials = argmax_partials_bytes(v).max(top_k_partials_bytes(v, MAX_TOP_K));
        Ok(Scratch {
            ubatch,
            tokens: al.floats("tokens", t)?,
            stream: al.floats("stream", t * e)?,
            normed: al.floats("normed", t * e)?,
            block_out: al.floats("block_out", t * e)?,
            attention,
            linear,
            ffn,
            logits: al.floats("logits", logit_rows as u64 * v as u64)?,
            logit_rows,
            sample_partials: al.floats("sample_partials", partials / 4)?,
            sampled: al.floats("sampled", 1)?,
            sampled_read: {
                al.bytes += 4;
                read_back_buffer(ctx, "sampled_read", 4)
            },
            recent: al.floats("recent", MAX_PENALTY_WINDOW as u64)?,
            bytes: al.bytes,
        })
    }
}

impl Scratch {
    /// What the samplers read and write: the logits, their partials, the sampled id.
    pub fn sample_buffers(&self) -> SampleBuffers<'_> {
        SampleBuffers {
            logits: &self.logits,
            partials: &self.sample_partials,
            token: &self.sampled,
        }
    }
}
