//! What one sequence carries between steps, resident in VRAM: the KV cache of each attention
//! layer (and of nothing else) and the conv and delta states of each Gated DeltaNet layer.
//! A model can serve several sequences, each with its own `SequenceState`.

use crate::error::GpuError;
use crate::loader::config::{self, LayerKind, ModelConfig};
use crate::model::algebra::KvDtype;
use crate::runtime::gpu::GpuContext;
use crate::runtime::tensor::f32_buffer;

/// One layer's share of the state in VRAM: the KV cache ([capacity, n_head_kv, head_dim]
/// each, f16 packed in pairs or f32) or the conv and delta states (f32).
pub type LayerState = config::LayerState<wgpu::Buffer>;

pub struct SequenceState {
    pub layers: Vec<LayerState>,
    /// Positions each attention layer's cache holds.
    pub capacity: u32,
    pub kv_dtype: KvDtype,
    /// Tokens processed so far: the next token's position.
    pub pos: u32,
}

/// A zeroed buffer of `bytes` (a multiple of 4: f32 states, f16 pairs or f32 KV elements).
fn zeroed(ctx: &GpuContext, label: &str, bytes: u64) -> wgpu::Buffer {
    f32_buffer(ctx, label, bytes.div_ceil(4) as usize)
}

/// Bytes of one attention layer's K (or V) cache for `capacity` positions.
pub fn kv_buffer_bytes(config: &ModelConfig, capacity: u32, dtype: KvDtype) -> u64 {
    let a = &config.attention;
    capacity as u64 * a.kv_width() * dtype.bytes()
}

/// Refuses a context whose per-layer K (or V) cache would exceed one buffer binding, naming
/// the longest context that fits.
pub fn check_kv_binding(
    ctx: &GpuContext,
    config: &ModelConfig,
    capacity: u32,
    kv_dtype: KvDtype,
) -> Result<(), GpuError> {
    let kv = kv_buffer_bytes(config, capacity, kv_dtype);
    let limit = crate::runtime::weights::max_piece_bytes(ctx);
    if kv > limit && config.n_attention_layers() > 0 {
        let fits = limit / (kv / capacity.max(1) as u64).max(1);
        return Err(GpuError::OutOfMemory(format!(
            "one attention layer's K cache for {capacity} positions is {kv} bytes, over the \
             adapter's {limit}-byte buffer limit; use a context of at most {fits} tokens (--ctx)"
        )));
    }
    Ok(())
}

impl SequenceState {
    /// Zeroed caches for `capacity` positions (wgpu zero-initialises new buffers).
    pub fn new(
        ctx: &GpuContext,
        config: &ModelConfig,
        capacity: u32,
        kv_dtype: KvDtype,
    ) -> Result<SequenceState, GpuError> {
        let a = &config.attention;
        if kv_dtype == KvDtype::F16 && a.kv_width() % 2 != 0 {
            return Err(GpuError::Shape(format!(
                "an f16 KV cache packs pairs: {} KV heads x {} is odd",
                a.n_head_kv, a.head_dim
            )));
        }
        check_kv_binding(ctx, config, capacity, kv_dtype)?;
        let kv = kv_buffer_bytes(config, capacity, kv_dtype);
        let layers = config
            .layers
            .iter()
            .enumerate()
            .map(|(i, kind)| match (kind, &config.gdn) {
                (LayerKind::Linear, Some(g)) => LayerState::Linear {
                    conv: zeroed(ctx, &format!("blk.{i}.conv_state"), g.conv_ring_len() * 4),
                    delta: zeroed(
                        ctx,
                        &format!("blk.{i}.delta_state"),
                        g.delta_state_len() * 4,
                    ),
                },
                _ => LayerState::Attention {
                    keys: zeroed(ctx, &format!("blk.{i}.k_cache"), kv),
                    values: zeroed(ctx, &format!("blk.{i}.v_cache"), kv),
                },
            })
            .collect();
        Ok(SequenceState {
            layers,
            capacity,
            kv_dtype,
            pos: 0,
        })
    }

    /// Bytes allocated for the KV caches.
    pub fn kv_bytes(&self) -> u64 {
        self.layers
            .iter()
            .map(|l| match l {
                LayerState::Attention { keys, values } => keys.size() + values.size(),
                LayerState::Linear { .. } => 0,
            })
            .sum()
    }

    /// Bytes allocated for the recurrent states.
    pub fn recurrent_bytes(&self) -> u64 {
        self.layers
            .iter()
            .map(|l| match l {
                LayerState::Linear { conv, delta } => conv.size() + delta.size(),
                LayerState::Attention { .. } => 0,
            })
            .sum()
    }

    /// Forgets the sequence: position 0, recurrent states zero. The KV cache needs no
    /// clearing, since attention never reads past the current position.
    pub fn reset(&mut self, encoder: &mut wgpu::CommandEncoder) {
        for l in &self.layers {
            if let LayerState::Linear { conv, delta } = l {
                encoder.clear_buffer(conv, 0, None);
                encoder.clear_buffer(delta, 0, None);
            }
        }
        self.pos = 0;
    }

    /// Records copies of the recurrent states (the attention caches need none: past the
    /// position they are overwritten, never read) into new buffers.
    pub fn snapshot(
        &self,
        ctx: &GpuContext,
        tokens: Vec<u32>,
        encoder: &mut wgpu::CommandEncoder,
    ) -> StateSnapshot {
        let mut copy = |from: &wgpu::Buffer| {
            let to = zeroed(ctx, "recurrent_snapshot", from.size());
            encoder.copy_buffer_to_buffer(from, 0, &to, 0, from.size());
            to
        };
        let layers = self
            .layers
            .iter()
            .map(|l| match l {
                LayerState::Linear { conv, delta } => Some((copy(conv), copy(delta))),
                LayerState::Attention { .. } => None,
            })
            .collect();
        StateSnapshot {
            pos: self.pos,
            tokens,
            layers,
            bytes: self.recurrent_bytes(),
        }
    }

    /// Records the copy of `snapshot`'s recurrent states back and moves to its position.
    /// The caller vouches that the attention caches still hold the snapshot's tokens below
    /// it (the sequence has not been rewound past it since).
    pub fn restore(&mut self, snapshot: &StateSnapshot, encoder: &mut wgpu::CommandEncoder) {
        for (live, saved) in self.layers.iter().zip(&snapshot.layers) {
            if let (LayerState::Linear { conv, delta }, Some((c, d))) = (live, saved) {
                encoder.copy_buffer_to_buffer(c, 0, conv, 0, c.size());
                encoder.copy_buffer_to_buffer(d, 0, delta, 0, d.size());
            }
        }
        self.pos = snapshot.pos;
    }
}

/// A sequence's recurrent state at a position, kept in VRAM so the sequence can resume
/// there: attention layers can drop a suffix of their cache, a Gated DeltaNet state cannot
/// go back.
pub struct StateSnapshot {
    pos: u32,
    /// The tokens the sequence held when it was taken.
    tokens: Vec<u32>,
    /// Each layer's (conv, delta) copies; `None` for attention layers.
    layers: Vec<Option<(wgpu::Buffer, wgpu::Buffer)>>,
    bytes: u64,
}

impl StateSnapshot {
    /// The position the sequence resumes at.
    pub fn pos(&self) -> u32 {
        self.pos
    }

    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// VRAM the copies take.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}
