//! Continuous batching's decode step: one submit advances several sessions by one token
//! each, every session at its own position. The projections, FFNs and output head run over
//! all of them at once, so each weight is read once for the step rather than once per
//! session; each session's attention or delta rule runs on its own caches and state, and
//! each draws its next token with its own sampler ([`graph::build_batch`]).
//!
//! It is [`Session::decode_ahead`] for many: each session must have a draw ahead; the step
//! feeds it (on the GPU) and draws the next, then the drawn tokens are read. A session
//! leaves the batch as it entered it, one token further: its own steps go on from there.

use std::sync::{Arc, Weak};

use crate::error::{Error, GpuError};
use crate::runtime::direct::Replays;
use crate::runtime::graph::{self, Bindings, Graph, RowBindings};
use crate::runtime::host_clock::thread_cpu_seconds;
use crate::runtime::scratch::Scratch;
use crate::runtime::session::ahead::Ahead;
use crate::runtime::session::{record, GpuModel, Session, StepInput, Submitted};

/// Plans kept, each for one set of sessions (the set changes only when a request starts or
/// ends).
const PLANS_KEPT: usize = 8;

/// A plan binding the buffers of some sessions.
struct Plan {
    /// The sessions' ids, in row order.
    key: Vec<u64>,
    /// Whether each session still exists: a plan of a dropped one is dropped, and with it
    /// the last hold on that session's caches and state.
    sessions: Vec<Weak<()>>,
    graph: Graph,
}

pub struct DecodeBatch {
    model: Arc<GpuModel>,
    /// The step's rows: tokens, activations and logits of up to `rows` sessions.
    scratch: Scratch,
    /// Plans of the sets of sessions stepped lately.
    plans: Vec<Plan>,
    /// Barriers within the last step ([`DecodeBatch::step_barriers`]).
    barriers: Option<u32>,
    /// Directly recorded steps, kept for replay: about one per plan.
    replays: Replays,
}

impl DecodeBatch {
    /// A batch of up to `rows` sessions of `model`, their contexts at most `context`.
    pub fn new(model: Arc<GpuModel>, rows: u32, context: u32) -> Result<DecodeBatch, Error> {
        let scratch = Scratch::new(&model.ctx, &model.config, rows, rows, context)?;
        Ok(DecodeBatch {
            model,
            scratch,
            plans: Vec::new(),
            barriers: None,
            replays: Replays::new(PLANS_KEPT),
        })
    }

    /// Sessions one step takes at most.
    pub fn rows(&self) -> usize {
        self.scratch.ubatch as usize
    }

    /// Memory barriers within the last step, where steps are recorded directly (wgpu's pass
    /// places its own, uncounted). The rows' feeds, attention and delta-rule dispatches,
    /// logits copies and draws share them stage by stage, so a row adds none.
    pub fn step_barriers(&self) -> Option<u32> {
        self.barriers
    }

    /// Steps recorded and steps replayed so far, where steps are recorded directly (both
    /// zero elsewhere): a step is recorded again only when its sessions or one of their
    /// attention grids change.
    pub fn step_replays(&self) -> (u64, u64) {
        self.replays.counts()
    }

    /// Bytes of the batch's own buffers.
    pub fn scratch_bytes(&self) -> u64 {
        self.scratch.bytes
    }

    /// Submits one step feeding each session its token drawn ahead and drawing the next,
    /// then reads the drawn tokens (in `sessions` order). Refused, with nothing submitted,
    /// when a session has no draw ahead, is of another model or has a full context.
    pub fn decode_ahead(&mut self, sessions: &mut [&mut Session]) -> Result<Vec<u32>, Error> {
        let started = thread_cpu_seconds();
        self.check(sessions)?;
        let key: Vec<u64> = sessions.iter().map(|s| s.id).collect();
        let plan = self.plan(&key, sessions)?;
        let positions: Vec<u32> = sessions.iter().map(|s| s.state.pos).collect();
        self.plans[plan]
            .graph
            .set_row_positions(&self.model.ctx.queue, &positions)?;
        let before: Vec<_> = sessions.iter().map(|s| s.rng.clone()).collect();
        let mut draws = Vec::with_capacity(sessions.len());
        for s in sessions.iter_mut() {
            match s.prepare_draw(StepInput::Sampled) {
                Ok(d) => draws.push(d),
                Err(e) => {
                    // Nothing was submitted: every session is as before the call.
                    for (s, rng) in sessions.iter_mut().zip(&before) {
                        s.rng = rng.clone();
                    }
                    return Err(e);
                }
            }
        }
        let ctx = &self.model.ctx;
        let recorded = {
            let step = record::Step {
                feeds: sessions
                    .iter()
                    .zip(&draws)
                    .enumerate()
                    .map(|(r, (s, draw))| record::Feed {
                        session: s,
                        draw,
                        tokens: &self.scratch.tokens,
                        at: 4 * r as u64,
                    })
                    .collect(),
                plan: Some(&self.plans[plan].graph),
                draws: sessions.iter().map(|s| &**s).zip(&draws).collect(),
                replays: &self.replays,
            };
            step.record(ctx)
        };
        let mut recorded = match recorded {
            Ok(recorded) => recorded,
            Err(e) => {
                // Nothing was submitted: every session is as before the call.
                for (s, rng) in sessions.iter_mut().zip(&before) {
                    s.rng = rng.clone();
                }
                return Err(e);
            }
        };
        self.barriers = recorded.barriers;
        let reads: Vec<usize> = sessions
            .iter_mut()
            .map(|s| s.record_read(&mut recorded.encoder))
            .collect();
        let submission = recorded.submit(&ctx.queue);
        if let Some(s) = sessions.first() {
            s.model.tend_experts(sessions.len() as u64);
        }
        let share = (thread_cpu_seconds() - started) / sessions.len() as f64;
        let mut pending = Vec::with_capacity(sessions.len());
        for ((s, read), rng_before) in sessions.iter_mut().zip(reads).zip(before) {
            let step = Submitted {
                read,
                submission: submission.clone(),
            };
            // `check` saw every draw ahead.
            pending.extend(s.ahead.replace(Ahead { step, rng_before }));
            s.state.pos += 1;
            s.last_row = Some(0);
            s.host.seconds += share;
            s.host.steps += 1;
        }
        sessions
            .iter_mut()
            .zip(pending)
            .map(|(s, p)| {
                let token = s.read_sampled(p.step)?;
                s.history.push(token);
                Ok(token)
            })
            .collect()
    }

    fn check(&self, sessions: &[&mut Session]) -> Result<(), Error> {
        if sessions.is_empty() || sessions.len() > self.rows() {
            return Err(Error::InvalidArgument(format!(
                "a batched step of {} sessions (this batch takes 1 to {})",
                sessions.len(),
                self.rows()
            )));
        }
        for (i, s) in sessions.iter().enumerate() {
            if !Arc::ptr_eq(&s.model, &self.model) {
                return Err(Error::InvalidArgument(format!(
                    "batched session {i} runs another model"
                )));
            }
            if s.ahead.is_none() {
                return Err(Error::InvalidArgument(format!(
                    "batched session {i} has no token drawn ahead (sample_ahead)"
                )));
            }
            let needed = s.state.pos as u64 + 1;
            if needed > s.options.context as u64 {
                return Err(Error::ContextFull {
                    needed,
                    capacity: s.options.context,
                });
            }
            if sessions[..i].iter().any(|o| o.id == s.id) {
                return Err(Error::InvalidArgument(format!(
                    "batched session {i} is in the batch twice"
                )));
            }
        }
        Ok(())
    }

    /// Plans kept: of the sets of sessions stepped lately that all still exist.
    pub fn plans_kept(&self) -> usize {
        self.plans.len()
    }

    /// The index of the plan for the sessions `key` names, built on first use.
    fn plan(&mut self, key: &[u64], sessions: &[&mut Session]) -> Result<usize, Error> {
        self.plans
            .retain(|p| p.sessions.iter().all(|s| s.strong_count() > 0));
        if let Some(i) = self.plans.iter().position(|p| p.key == key) {
            return Ok(i);
        }
        if self.plans.len() >= PLANS_KEPT {
            self.plans.remove(0);
        }
        let rows: Vec<RowBindings<'_>> = sessions
            .iter()
            .map(|s| RowBindings {
                state: &s.state,
                scratch: &s.scratch,
            })
            .collect();
        let first = sessions
            .first()
            .ok_or_else(|| GpuError::Shape("a batched step of no sessions".into()))?;
        let m = &self.model;
        let bindings = Bindings {
            ctx: &m.ctx,
            cache: &m.cache,
            config: &m.config,
            weights: &m.weights,
            state: &first.state,
            scratch: &self.scratch,
        };
        let mut graph = graph::build_batch(&bindings, &rows)?;
        graph.bind_direct(&m.ctx)?;
        self.plans.push(Plan {
            key: key.to_vec(),
            sessions: sessions.iter().map(|s| Arc::downgrade(&s.alive)).collect(),
            graph,
        });
        Ok(self.plans.len() - 1)
    }
}
