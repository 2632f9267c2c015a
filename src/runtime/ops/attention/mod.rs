//! Launchers of `shaders/attention/`: q/k preparation with the KV append, split-KV
//! attention for decode and tiled attention for prefill.

pub mod flash_decode;
pub mod flash_prefill;
pub mod qk_norm_rope;

pub use flash_decode::{FlashDecode, FlashDecodeBuffers, FLASH_CHUNK};
pub use flash_prefill::{flash_prefill, FlashPrefill, FlashPrefillIo};
pub use qk_norm_rope::{qk_norm_rope, QkNormRope, QkNormRopeIo};

use crate::error::GpuError;
use crate::loader::config::AttentionConfig;
use crate::runtime::ops::step::write_step;

/// Largest head dim the attention kernels stage in workgroup memory.
pub const MAX_HEAD_DIM: u32 = 512;

/// The attention of one step: its layer geometry, KV element type, and the `n_tokens`
/// queries at positions `pos0..`. The kernels read the position from `step`
/// (`common/step.wgsl`), which [`write_step`] moves for all layers at once.
#[derive(Clone, Copy)]
pub struct AttentionStep<'a> {
    pub config: &'a AttentionConfig,
    pub kv_f16: bool,
    pub n_tokens: u32,
    pub pos0: u32,
    /// The row of the step's first token in the q/k/v inputs and the attention output: a
    /// batched step's sequence reads and writes its row of the batch's buffers in place.
    pub first_row: u32,
    /// `[2]` u32: the step's first position and split-KV chunk count.
    pub step: &'a wgpu::Buffer,
}

impl AttentionStep<'_> {
    /// Writes this step's position, so a kernel built from it runs there until moved.
    fn write(&self, queue: &wgpu::Queue) {
        write_step(queue, self.step, self.pos0, self.n_tokens);
    }

    fn check_geometry(&self) -> Result<(), GpuError> {
        let a = self.config;
        if a.head_dim > MAX_HEAD_DIM || a.head_dim % 2 != 0 || a.n_rot > a.head_dim {
            return Err(GpuError::Shape(format!(
                "attention: head dim {} (even, at most {MAX_HEAD_DIM}) with {} rotary dims",
                a.head_dim, a.n_rot
            )));
        }
        Ok(())
    }

    /// Floats per token and per head of attn_q's output (which carries the gate).
    fn q_strides(&self) -> (u32, u32) {
        let per_head = self.config.q_head_stride();
        (self.config.n_head * per_head, per_head)
    }
}
