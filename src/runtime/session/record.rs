//! Recording one decode step, for one session or a batch of them: each session's feed (the
//! id its previous step drew, copied on the GPU into the step's token row and into the
//! penalty's window), the plan, and each session's draw. On Vulkan the step is recorded
//! directly ([`crate::runtime::direct`]); elsewhere through a wgpu pass. The read-backs
//! stay wgpu copies either way: wgpu must see the read buffers used by the submission to map
//! them after it.

use crate::error::Error;
use crate::runtime::direct::Direct;
use crate::runtime::gpu::GpuContext;
use crate::runtime::graph::Graph;
use crate::runtime::ops::Record;
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
            copies.push((
                &scratch.sampled,
                &scratch.recent,
                4 * self.draw.window_end as u64,
            ));
        }
        copies
    }
}

/// One step: the feeds, the plan (none when the step only draws from the logits there),
/// then the draws.
pub(super) struct Step<'a> {
    pub feeds: Vec<Feed<'a>>,
    pub plan: Option<&'a Graph>,
    pub draws: Vec<(&'a Session, &'a DrawPlan)>,
}

impl Step<'_> {
    /// Records the step. Returns the command buffers to submit first, and the encoder that
    /// the read-backs go into (submitted after them).
    pub fn record(
        &self,
        ctx: &GpuContext,
    ) -> Result<(Vec<wgpu::CommandBuffer>, wgpu::CommandEncoder), Error> {
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        match &ctx.direct {
            Some(direct) => {
                let copies = self.direct_copies(direct)?;
                direct.record(&mut enc, |rec| {
                    for &(src, dst, at) in &copies {
                        rec.copy(src, dst, at, 4);
                    }
                    self.dispatch(rec);
                })?;
                let step = enc.finish();
                Ok((
                    vec![step],
                    ctx.device.create_command_encoder(&Default::default()),
                ))
            }
            None => {
                for feed in &self.feeds {
                    for (src, dst, at) in feed.copies() {
                        enc.copy_buffer_to_buffer(src, 0, dst, at, 4);
                    }
                }
                let mut pass = enc.begin_compute_pass(&Default::default());
                self.dispatch(&mut pass);
                drop(pass);
                Ok((Vec::new(), enc))
            }
        }
    }

    fn dispatch<R: Record>(&self, rec: &mut R) {
        if let Some(plan) = self.plan {
            plan.encode(rec);
        }
        for (session, draw) in &self.draws {
            session.record_draw(rec, draw);
        }
    }

    /// The feeds' copies as raw handles.
    fn direct_copies(&self, direct: &Direct) -> Result<Vec<DirectCopy>, Error> {
        let mut out = Vec::new();
        for feed in &self.feeds {
            for (src, dst, at) in feed.copies() {
                out.push((direct.handle(src)?, direct.handle(dst)?, at));
            }
        }
        Ok(out)
    }
}

/// A copy of 4 bytes in a direct step: source, destination, byte offset in the destination.
type DirectCopy = (ash::vk::Buffer, ash::vk::Buffer, u64);
