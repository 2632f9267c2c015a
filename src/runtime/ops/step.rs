//! `shaders/common/step.wgsl`: where a step stands, one small buffer every plan shares.
//! The kernels whose work follows the position (the attention kernels, the Gated DeltaNet
//! conv's ring of past inputs) read it, so moving a plan to the next position is one
//! 8-byte write rather than one params write per dispatch.

use crate::runtime::ops::attention::FLASH_CHUNK;

/// The WGSL file declaring `Step`, for kernels to include.
pub const STEP_WGSL: &str = "common/step.wgsl";

/// `common/step.wgsl`'s `Step`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Step {
    pos0: u32,
    n_chunks: u32,
}

/// Moves every kernel bound to `step` to a step of `n_tokens` tokens at `pos0..`.
pub fn write_step(queue: &wgpu::Queue, step: &wgpu::Buffer, pos0: u32, n_tokens: u32) {
    let s = Step {
        pos0,
        n_chunks: (pos0 + n_tokens).div_ceil(FLASH_CHUNK),
    };
    queue.write_buffer(step, 0, bytemuck::bytes_of(&s));
}
