//! Activation buffers of one sequence, sized once for the largest step (a prefill chunk of
//! `ubatch` tokens) and reused by every step: no allocation on the per-token path.

use crate::error::GpuError;
use crate::loader::config::ModelConfig;
use crate::model::activations::{activation_slots, Activations, Slot};
use crate::runtime::gpu::GpuContext;
use crate::runtime::ops::sample::SampleBuffers;
use crate::runtime::tensor::{f32_buffer, read_back_buffer};

/// A sequence's activation buffers ([`Activations`], the list the memory algebra sums) and
/// how they were sized. Reads as the list itself: `scratch.normed`, `scratch.attention`.
pub struct Scratch {
    pub ubatch: u32,
    /// Rows of logits kept per step.
    pub logit_rows: u32,
    /// Bytes allocated.
    pub bytes: u64,
    pub buffers: Activations<wgpu::Buffer>,
}

impl std::ops::Deref for Scratch {
    type Target = Activations<wgpu::Buffer>;

    fn deref(&self) -> &Self::Target {
        &self.buffers
    }
}

impl Scratch {
    /// Buffers for steps of up to `ubatch` tokens, logits for `logit_rows` of them, and
    /// decode attention over up to `capacity` positions: each slot of
    /// [`activation_slots`] allocated zeroed, within one binding.
    pub fn new(
        ctx: &GpuContext,
        config: &ModelConfig,
        ubatch: u32,
        logit_rows: u32,
        capacity: u32,
    ) -> Result<Scratch, GpuError> {
        let slots = activation_slots(config, ubatch as u64, logit_rows as u64, capacity as u64);
        let limit = crate::runtime::weights::max_piece_bytes(ctx);
        let buffers = slots.try_map(&mut |slot: &Slot| {
            let size = 4 * slot.words.max(1);
            if size > limit {
                return Err(GpuError::OutOfMemory(format!(
                    "the {} buffer needs {size} bytes, over the adapter's {limit}-byte binding \
                     limit; use a smaller batch (ubatch)",
                    slot.name
                )));
            }
            Ok(if slot.read_back {
                read_back_buffer(ctx, slot.name, size)
            } else {
                f32_buffer(ctx, slot.name, slot.words as usize)
            })
        })?;
        Ok(Scratch {
            ubatch,
            logit_rows,
            bytes: slots.bytes(),
            buffers,
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
