//! `shaders/sample/top_k_partial.wgsl` and `top_k_sample.wgsl`: top-k + top-p + min-p
//! sampling at a temperature, `token[0]` drawn from the `k` best logits.

use crate::error::GpuError;
use crate::model::activations::kernel_sizes;
use crate::model::reference::sample::Draw;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::sample::SampleBuffers;
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};

/// Logits per partial workgroup, and the largest k the kernels keep (the activation list
/// sizes the partials by both).
pub const TOP_K_CHUNK: u32 = kernel_sizes::SAMPLE_CHUNK;
pub const MAX_TOP_K: u32 = kernel_sizes::MAX_TOP_K;
/// Each of the k rounds ends in a workgroup reduction, log2(WG) barriers; on a CPU device a
/// barrier switches through every 8-lane batch of the workgroup, so a narrow workgroup is
/// what pays (256 -> 64 took sampled decode of the demo from 10.6 to 14.4 tok/s on
/// lavapipe).
const WG: u32 = 64;

kernel_params! {
    /// `shaders/sample/top_k_pick.wgsl`'s `Params`, shared by both passes.
    pub struct TopKParams {
        pub n: u32,
        pub n_partials: u32,
        pub k: u32,
        pub _pad: u32,
        pub temperature: f32,
        pub top_p: f32,
        /// The host's uniform draw in [0, 1).
        pub u: f32,
        pub min_p: f32,
    }
}

kernel_io! {
    /// The buffers of the first pass.
    pub struct TopKPartialIo {
        logits: Read "[n] f32",
        partials: ReadWrite "[n_partials, k] (value, index as f32 bits), best first",
    }
}

kernel_io! {
    /// The buffers of the second pass.
    pub struct TopKSampleIo {
        partials: Read "[n_partials, k] (value, index as f32 bits), best first",
        token: ReadWrite "[1] u32",
    }
}

fn with_pick(decl: Declaration) -> Declaration {
    decl.include(["common/rank.wgsl", "sample/top_k_pick.wgsl"])
        .constant("WG", WG)
        .constant("CHUNK", TOP_K_CHUNK)
        .constant("MAX_K", MAX_TOP_K)
}

pub fn partial_declaration() -> Declaration {
    with_pick(Declaration::of::<TopKParams, TopKPartialIo>(
        "top_k_partial",
        "sample/top_k_partial.wgsl",
    ))
}

pub fn sample_declaration() -> Declaration {
    with_pick(Declaration::of::<TopKParams, TopKSampleIo>(
        "top_k_sample",
        "sample/top_k_sample.wgsl",
    ))
}

/// Bytes of the partials buffer top-k sampling of `n` logits with `k` candidates needs.
pub fn top_k_partials_bytes(n: u32, k: u32) -> u64 {
    n.div_ceil(TOP_K_CHUNK) as u64 * k as u64 * 8
}

/// Top-k + top-p sampling: `token[0]` drawn from the `k` best logits at a temperature.
pub struct TopKSampler {
    pub partial: Dispatch,
    pub sample: Dispatch,
    params: TopKParams,
}

impl TopKSampler {
    pub fn new(
        ctx: &GpuContext,
        cache: &PipelineCache,
        n: u32,
        k: u32,
        b: SampleBuffers<'_>,
    ) -> Result<TopKSampler, GpuError> {
        if n == 0 || k == 0 || k > MAX_TOP_K || b.partials.size() < top_k_partials_bytes(n, k) {
            return Err(GpuError::Shape(format!(
                "top-k sampling: k = {k} (1..={MAX_TOP_K}) of {n} logits with {} bytes of partials",
                b.partials.size()
            )));
        }
        let n_partials = n.div_ceil(TOP_K_CHUNK);
        let params = TopKParams {
            n,
            n_partials,
            k,
            _pad: 0,
            temperature: 1.0,
            top_p: 1.0,
            u: 0.0,
            min_p: 0.0,
        };
        let partial_io = TopKPartialIo {
            logits: b.logits,
            partials: b.partials,
        };
        let sample_io = TopKSampleIo {
            partials: b.partials,
            token: b.token,
        };
        Ok(TopKSampler {
            partial: Dispatch::new(
                ctx,
                cache,
                Kernel::TopKPartial,
                &params,
                &partial_io,
                [n_partials, 1, 1],
            )?,
            sample: Dispatch::new(
                ctx,
                cache,
                Kernel::TopKSample,
                &params,
                &sample_io,
                [1, 1, 1],
            )?,
            params,
        })
    }

    /// Sets this step's draw (temperature > 0, top-p in (0, 1], min-p in [0, 1], u in [0, 1)).
    pub fn set_draw(&mut self, queue: &wgpu::Queue, d: &Draw) -> Result<(), GpuError> {
        let valid = d.temperature > 0.0
            && (0.0..1.0).contains(&d.u)
            && d.top_p > 0.0
            && d.top_p <= 1.0
            && (0.0..=1.0).contains(&d.min_p);
        if !valid {
            return Err(GpuError::Shape(format!(
                "sampling: temperature {} must be > 0, top_p {} in (0, 1], min_p {} in [0, 1], u {} in [0, 1)",
                d.temperature, d.top_p, d.min_p, d.u
            )));
        }
        self.params.temperature = d.temperature;
        self.params.top_p = d.top_p;
        self.params.min_p = d.min_p;
        self.params.u = d.u;
        self.sample.write_params(queue, &self.params);
        Ok(())
    }
}
