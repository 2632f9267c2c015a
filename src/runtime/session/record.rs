//! Recording one step (a decode token, a batched decode step, a prompt chunk): each
//! session's feed (the id its previous step drew, copied on the GPU into the step's token
//! row and into the first slot of the penalty's window), the plan, and each session's draw.
//! On Vulkan the step is recorded directly ([`crate::runtime::direct`]) and replayed while
//! it stays the same; elsewhere through a wgpu pass. The read-backs stay wgpu copies either
//! way: wgpu must see the read buffers used by the submission to map them after it.

use crate::error::Error;
use crate::runtime::direct::Replays;
use crate::runtime::gpu::GpuContext;
use crate::runtime::graph::Graph;
use crate::runtime::ops::{record_stages, Record};
use crate::runtime::session::{DrawPlan, Session};

/// A session's feed: its drawn id copied into `tokens` at byte `at`.
pub(super) struct Feed<'a> {
    pub session: &'a Session,
    pub draw: &'a DrawPlan,
    pub tokens: &'a wgpu::Buffer,
    pub at: u64,
}

impl Feed<'_> {
    /// The copies (source, destination, byte offset in the destination).
    fn copies(&self) -> Vec<(&wgpu::Buffer, &wgpu::Buffer, u64)> {
        let scratch = &self.session.scratch;
        let mut copies = vec![(&scratch.sampled, self.tokens, self.at)];
        if self.draw.penalise {
            // Slot 0 of the window (see `Session::prepare_draw`).
            copies.push((&scratch.sampled, &scratch.recent, 0));
        }
        copies
    }
}

/// A recorded step.
pub(super) struct Recorded {
    /// Command buffers to submit first.
    pub commands: Vec<wgpu::CommandBuffer>,
    /// The encoder the read-backs go into, submitted after them.
    pub encoder: wgpu::CommandEncoder,
    /// Memory barriers within a directly recorded step (its two ends aside); wgpu's pass
    /// places its own, uncounted.
    pub barriers: Option<u32>,
}

impl Recorded {
    /// Submits the step, then what was recorded into [`Recorded::encoder`] after it.
    pub fn submit(self, queue: &wgpu::Queue) -> wgpu::SubmissionIndex {
        queue.submit(self.commands.into_iter().chain([self.encoder.finish()]))
    }
}

/// One step: the feeds, the plan (none when the step only draws from the logits there),
/// then the draws.
pub(super) struct Step<'a> {
    pub feeds: Vec<Feed<'a>>,
    pub plan: Option<&'a Graph>,
    pub draws: Vec<(&'a Session, &'a DrawPlan)>,
    /// Where a directly recorded step is kept for replay: its owner's.
    pub replays: &'a Replays,
}

impl Step<'_> {
    /// Records the step: see [`Recorded`]. A step that cannot be recorded directly (a
    /// kernel the driver refused to build that way) goes through wgpu's pass.
    pub fn record(&self, ctx: &GpuContext) -> Result<Recorded, Error> {
        if let Some(direct) = &ctx.direct {
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            let copies: Vec<_> = self.feeds.iter().flat_map(Feed::copies).collect();
            let recorded = direct.record(&mut enc, self.replays, |rec| {
                // Each feed writes its own row of the tokens and its own window.
                rec.copies_together(&copies, 4);
                self.dispatch(rec);
            });
            match recorded {
                Ok(barriers) => {
                    return Ok(Recorded {
                        commands: vec![enc.finish()],
                        encoder: ctx.device.create_command_encoder(&Default::default()),
                        barriers: Some(barriers),
                    })
                }
                // Nothing was written into the encoder; it is dropped unsubmitted.
                Err(e) => direct.fall_back(&e),
            }
        }
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        for feed in &self.feeds {
            for (src, dst, at) in feed.copies() {
                enc.copy_buffer_to_buffer(src, 0, dst, at, 4);
            }
        }
        let mut pass = enc.begin_compute_pass(&Default::default());
        self.dispatch(&mut pass);
        drop(pass);
        Ok(Recorded {
            commands: Vec::new(),
            encoder: enc,
            barriers: None,
        })
    }

    fn dispatch<R: Record>(&self, rec: &mut R) {
        if let Some(plan) = self.plan {
            plan.encode(rec);
        }
        // Each session's draw reads and writes only its own buffers.
        let draws: Vec<_> = self
            .draws
            .iter()
            .map(|(session, draw)| session.draw_dispatches(draw))
            .collect();
        record_stages(rec, &draws);
    }
}
