//! Launchers of `shaders/sample/`.

use crate::error::GpuError;
use crate::model::reference::sample::Draw;
use crate::runtime::gpu::GpuContext;
use crate::runtime::ops::Dispatch;
use crate::runtime::params::{ArgmaxParams, PenaltyParams, TopKParams};
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

/// Logits per top-k partial workgroup, and the largest k the kernels keep.
pub const TOP_K_CHUNK: u32 = 4096;
pub const MAX_TOP_K: u32 = 64;

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
        logits: &wgpu::Buffer,
        partials: &wgpu::Buffer,
        token: &wgpu::Buffer,
    ) -> Result<TopKSampler, GpuError> {
        if n == 0 || k == 0 || k > MAX_TOP_K || partials.size() < top_k_partials_bytes(n, k) {
            return Err(GpuError::Shape(format!(
                "top-k sampling: k = {k} (1..={MAX_TOP_K}) of {n} logits with {} bytes of partials",
                partials.size()
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
        Ok(TopKSampler {
            partial: Dispatch::with_bindings(
                ctx,
                cache,
                Kernel::TopKPartial,
                &params,
                &[(1, logits), (2, partials)],
                [n_partials, 1, 1],
            )?,
            sample: Dispatch::with_bindings(
                ctx,
                cache,
                Kernel::TopKSample,
                &params,
                &[(2, partials), (3, token)],
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

/// Most recent tokens the repetition penalty looks back over.
pub const MAX_PENALTY_WINDOW: u32 = 1024;

/// The repetition penalty over the last tokens, applied to the logits before sampling. The
/// window of recent ids is a buffer the session rewrites (4 bytes per token) each step.
pub struct RepetitionPenalty {
    pub dispatch: Dispatch,
    params: PenaltyParams,
    window: u32,
}

impl RepetitionPenalty {
    /// `recent` must hold `window` u32 ids.
    pub fn new(
        ctx: &GpuContext,
        cache: &PipelineCache,
        n_vocab: u32,
        window: u32,
        logits: &wgpu::Buffer,
        recent: &wgpu::Buffer,
    ) -> Result<RepetitionPenalty, GpuError> {
        if window == 0 || window > MAX_PENALTY_WINDOW || recent.size() < 4 * window as u64 {
            return Err(GpuError::Shape(format!(
                "repetition penalty over {window} tokens (1..={MAX_PENALTY_WINDOW}) with a {}-byte window buffer",
                recent.size()
            )));
        }
        let params = PenaltyParams {
            n_recent: 0,
            n_vocab,
            penalty: 1.0,
            _pad: 0,
        };
        let dispatch = Dispatch::with_bindings(
            ctx,
            cache,
            Kernel::RepetitionPenalty,
            &params,
            &[(1, logits), (2, recent)],
            [1, 1, 1],
        )?;
        Ok(RepetitionPenalty {
            dispatch,
            params,
            window,
        })
    }

    /// Sets the penalty and how many ids of the window buffer are in use.
    pub fn set(
        &mut self,
        queue: &wgpu::Queue,
        penalty: f32,
        n_recent: u32,
    ) -> Result<(), GpuError> {
        if penalty.is_nan() || penalty <= 0.0 || n_recent > self.window {
            return Err(GpuError::Shape(format!(
                "repetition penalty {penalty} (> 0) over {n_recent} of {} tokens",
                self.window
            )));
        }
        self.params.penalty = penalty;
        self.params.n_recent = n_recent;
        self.dispatch.write_params(queue, &self.params);
        Ok(())
    }
}
