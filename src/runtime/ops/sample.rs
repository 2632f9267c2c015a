//! Launchers of `shaders/sample/`.

use crate::error::GpuError;
use crate::runtime::gpu::GpuContext;
use crate::runtime::ops::Dispatch;
use crate::runtime::params::ArgmaxParams;
use crate::runtime::pipeline::{Kernel, PipelineCache};

/// Logits per argmax partial workgroup (the shader's CHUNK).
pub const ARGMAX_CHUNK: u32 = 4096;

/// Bytes of the partials buffer the argmax of `n` logits needs.
pub fn argmax_partials_bytes(n: u32) -> u64 {
    n.div_ceil(ARGMAX_CHUNK) as u64 * 8
}

/// The two passes of a greedy pick: `token[0] = argmax(logits[..n])`.
pub struct Argmax {
    pub partial: Dispatch,
    pub reduce: Dispatch,
}

impl Argmax {
    pub fn new(
        ctx: &GpuContext,
        cache: &PipelineCache,
        n: u32,
        logits: &wgpu::Buffer,
        partials: &wgpu::Buffer,
        token: &wgpu::Buffer,
    ) -> Result<Argmax, GpuError> {
        if n == 0 || partials.size() < argmax_partials_bytes(n) {
            return Err(GpuError::Shape(format!(
                "argmax of {n} logits needs {} bytes of partials, {} given",
                argmax_partials_bytes(n),
                partials.size()
            )));
        }
        let n_partials = n.div_ceil(ARGMAX_CHUNK);
        let params = ArgmaxParams {
            n,
            n_partials,
            _pad: [0; 2],
        };
        Ok(Argmax {
            partial: Dispatch::with_bindings(
                ctx,
                cache,
                Kernel::ArgmaxPartial,
                &params,
                &[(1, logits), (2, partials)],
                [n_partials, 1, 1],
            )?,
            reduce: Dispatch::with_bindings(
                ctx,
                cache,
                Kernel::ArgmaxFinal,
                &params,
                &[(2, partials), (3, token)],
                [1, 1, 1],
            )?,
        })
    }
}
