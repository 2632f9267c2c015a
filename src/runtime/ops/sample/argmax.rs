//! `shaders/sample/argmax_partial.wgsl` and `argmax_final.wgsl`: the greedy pick,
//! `token[0] = argmax(logits[..n])`.

use crate::error::GpuError;
use crate::model::activations::kernel_sizes;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};

/// Logits per partial workgroup (the activation list sizes the partials by it).
pub const ARGMAX_CHUNK: u32 = kernel_sizes::SAMPLE_CHUNK;
const WG: u32 = 256;

kernel_params! {
    /// `shaders/sample/argmax_reduce.wgsl`'s `Params`, shared by both passes.
    pub struct ArgmaxParams {
        pub n: u32,
        pub n_partials: u32,
        pub _pad: [u32; 2],
    }
}

kernel_io! {
    /// The buffers of the first pass.
    pub struct ArgmaxPartialIo {
        logits: Read "[n] f32",
        partials: ReadWrite "[n_partials] (value, index as f32 bits)",
    }
}

kernel_io! {
    /// The buffers of the second pass.
    pub struct ArgmaxFinalIo {
        partials: Read "[n_partials] (value, index as f32 bits)",
        token: ReadWrite "[1] u32",
    }
}

fn with_reduce(decl: Declaration) -> Declaration {
    decl.include(["sample/argmax_reduce.wgsl"])
        .constant("WG", WG)
        .constant("CHUNK", ARGMAX_CHUNK)
}

pub fn partial_declaration() -> Declaration {
    with_reduce(Declaration::of::<ArgmaxParams, ArgmaxPartialIo>(
        "argmax_partial",
        "sample/argmax_partial.wgsl",
    ))
}

pub fn final_declaration() -> Declaration {
    with_reduce(Declaration::of::<ArgmaxParams, ArgmaxFinalIo>(
        "argmax_final",
        "sample/argmax_final.wgsl",
    ))
}

/// Bytes of the partials buffer the argmax of `n` logits needs.
pub fn argmax_partials_bytes(n: u32) -> u64 {
    n.div_ceil(ARGMAX_CHUNK) as u64 * 8
}

/// The buffers of a two-pass sampler: the logits it reads, its partials, the token it
/// writes.
#[derive(Clone, Copy)]
pub struct SampleBuffers<'a> {
    pub logits: &'a wgpu::Buffer,
    pub partials: &'a wgpu::Buffer,
    pub token: &'a wgpu::Buffer,
}

/// The two passes of a greedy pick.
pub struct Argmax {
    pub partial: Dispatch,
    pub reduce: Dispatch,
}

impl Argmax {
    pub fn new(
        ctx: &GpuContext,
        cache: &PipelineCache,
        n: u32,
        b: SampleBuffers<'_>,
    ) -> Result<Argmax, GpuError> {
        if n == 0 || b.partials.size() < argmax_partials_bytes(n) {
            return Err(GpuError::Shape(format!(
                "argmax of {n} logits needs {} bytes of partials, {} given",
                argmax_partials_bytes(n),
                b.partials.size()
            )));
        }
        let n_partials = n.div_ceil(ARGMAX_CHUNK);
        let params = ArgmaxParams {
            n,
            n_partials,
            _pad: [0; 2],
        };
        let partial_io = ArgmaxPartialIo {
            logits: b.logits,
            partials: b.partials,
        };
        let final_io = ArgmaxFinalIo {
            partials: b.partials,
            token: b.token,
        };
        Ok(Argmax {
            partial: Dispatch::new(
                ctx,
                cache,
                Kernel::ArgmaxPartial,
                &params,
                &partial_io,
                [n_partials, 1, 1],
            )?,
            reduce: Dispatch::new(
                ctx,
                cache,
                Kernel::ArgmaxFinal,
                &params,
                &final_io,
                [1, 1, 1],
            )?,
        })
    }
}
