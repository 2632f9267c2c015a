//! `shaders/sample/repetition_penalty.wgsl`: the repetition, presence and frequency
//! penalties over the last tokens, applied to the logits before sampling.

use crate::error::GpuError;
use crate::model::activations::kernel_sizes;
use crate::model::reference::sample::Penalties;
use crate::runtime::gpu::GpuContext;
use crate::runtime::kernel::{kernel_io, kernel_params, Declaration};
use crate::runtime::ops::Dispatch;
use crate::runtime::pipeline::{Kernel, PipelineCache};

const WG: u32 = 64;

kernel_params! {
    /// `shaders/sample/repetition_penalty.wgsl`'s `Params`.
    pub struct PenaltyParams {
        pub n_recent: u32,
        pub n_vocab: u32,
        pub penalty: f32,
        pub presence: f32,
        pub frequency: f32,
        pub _pad: [u32; 3],
    }
}

kernel_io! {
    /// The buffers of [`RepetitionPenalty`].
    pub struct RepetitionPenaltyIo {
        logits: ReadWrite "[n_vocab] f32, penalised in place",
        recent: Read "[window] u32: the most recent token ids",
    }
}

pub fn declaration() -> Declaration {
    Declaration::of::<PenaltyParams, RepetitionPenaltyIo>(
        "repetition_penalty",
        "sample/repetition_penalty.wgsl",
    )
    .constant("WG", WG)
}

/// Most recent tokens the repetition penalty looks back over (the activation list sizes the
/// window buffer by it).
pub const MAX_PENALTY_WINDOW: u32 = kernel_sizes::PENALTY_WINDOW;

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
            presence: 0.0,
            frequency: 0.0,
            _pad: [0; 3],
        };
        let io = RepetitionPenaltyIo { logits, recent };
        let kernel = Kernel::RepetitionPenalty;
        let dispatch = Dispatch::new(ctx, cache, kernel, &params, &io, [1, 1, 1])?;
        Ok(RepetitionPenalty {
            dispatch,
            params,
            window,
        })
    }

    /// Sets the penalties and how many ids of the window buffer are in use.
    pub fn set(
        &mut self,
        queue: &wgpu::Queue,
        penalties: Penalties,
        n_recent: u32,
    ) -> Result<(), GpuError> {
        let Penalties {
            repeat,
            presence,
            frequency,
        } = penalties;
        let finite = presence.is_finite() && frequency.is_finite();
        if repeat.is_nan() || repeat <= 0.0 || !finite || n_recent > self.window {
            return Err(GpuError::Shape(format!(
                "penalties: repeat {repeat} (> 0), presence {presence}, frequency {frequency} \
                 over {n_recent} of {} tokens",
                self.window
            )));
        }
        self.params.penalty = repeat;
        self.params.presence = presence;
        self.params.frequency = frequency;
        self.params.n_recent = n_recent;
        self.dispatch.write_params(queue, &self.params);
        Ok(())
    }
}
