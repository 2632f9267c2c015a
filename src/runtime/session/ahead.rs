//! Pipelined decode: a step's embedding reads the id the previous step sampled on the GPU,
//! so step N+1 is recorded and submitted before step N's id is read back, and the GPU
//! never waits for the host between tokens.
//!
//! The sequence: [`Session::sample_ahead`] submits the first draw; each
//! [`Session::decode_ahead`] submits the step that feeds the drawn token and draws the next,
//! then reads the drawn token. The caller ends with [`Session::read_ahead`] when it knows the
//! token it reads is the last one (a token limit, a full context: that token is not fed), or
//! with [`Session::discard_ahead`] after a stop it could not foresee (an end token, Ctrl-C):
//! the last token read was then fed, exactly as [`Session::decode`] of it would have, and the
//! draw after it is dropped. Either way the session is as after the unpipelined loop, up to
//! whether that last token was fed, which [`Session::history`] tells.

use crate::error::Error;
use crate::rng::SplitMix64;
use crate::runtime::graph::LogitRows;
use crate::runtime::host_clock::thread_cpu_seconds;
use crate::runtime::session::{Session, StepInput, Submitted};

/// A submitted step whose sampled id the host has not read.
#[derive(Debug, Clone)]
pub(super) struct Ahead {
    pub(super) step: Submitted,
    /// The generator before this step's draw: a dropped draw gives its number back, so the
    /// draws after a stop are the ones the unpipelined loop would make.
    pub(super) rng_before: SplitMix64,
}

impl Session {
    /// Whether a step's sampled id is still unread.
    pub fn has_ahead(&self) -> bool {
        self.ahead.is_some()
    }

    /// Submits a draw from the logits the last prefill or step left, without waiting: the id
    /// stays on the GPU for [`Session::decode_ahead`] to feed.
    pub fn sample_ahead(&mut self) -> Result<(), Error> {
        self.check_settled()?;
        if self.last_row != Some(0) {
            return Err(Error::InvalidArgument(
                "sampling needs a prefill or decode step's last logits".into(),
            ));
        }
        let rng_before = self.rng.clone();
        let step = self.record_and_submit(StepInput::Logits).inspect_err(|_| {
            self.rng = rng_before.clone();
        })?;
        self.ahead = Some(Ahead { step, rng_before });
        Ok(())
    }

    /// Submits the step that feeds the token drawn ahead (at the next position) and draws
    /// the one after it, then waits for the drawn token alone and returns it: the new step
    /// runs while the caller handles the token. An error before the submit leaves the
    /// session as it was; an error reading the token back (a lost device) leaves it holding
    /// a token it cannot name, and only [`Session::reset`] recovers it.
    pub fn decode_ahead(&mut self) -> Result<u32, Error> {
        let started = thread_cpu_seconds();
        let pending = self.ahead.take().ok_or_else(|| {
            Error::InvalidArgument("decode_ahead needs a token drawn ahead (sample_ahead)".into())
        })?;
        let needed = self.state.pos as u64 + 1;
        if needed > self.options.context as u64 {
            self.ahead = Some(pending);
            return Err(Error::ContextFull {
                needed,
                capacity: self.options.context,
            });
        }
        let rng_before = self.rng.clone();
        let submitted = self
            .place_plan(1, LogitRows::Last)
            .map(|_| ())
            .and_then(|()| self.record_and_submit(StepInput::Sampled));
        let step = match submitted {
            Ok(step) => step,
            Err(e) => {
                // Nothing was submitted: the session is as before the call.
                self.rng = rng_before;
                self.ahead = Some(pending);
                return Err(e);
            }
        };
        let next = Ahead { step, rng_before };
        self.host.seconds += thread_cpu_seconds() - started;
        self.host.steps += 1;
        // From here the step that feeds the token is on the queue: the sequence holds it
        // whether or not the read below succeeds.
        self.state.pos += 1;
        self.last_row = Some(0);
        self.ahead = Some(next);
        let token = self.read_sampled(pending.step)?;
        self.history.push(token);
        Ok(token)
    }

    /// Reads the token drawn ahead without feeding it: the end of a generation that stops
    /// at this token whatever it is. It stays unfed, as [`Session::sample`]'s result.
    pub fn read_ahead(&mut self) -> Result<u32, Error> {
        let pending = self.ahead.take().ok_or_else(|| {
            Error::InvalidArgument("read_ahead needs a token drawn ahead (sample_ahead)".into())
        })?;
        self.read_sampled(pending.step)
    }

    /// Drops the draw in flight after a stop the caller could not foresee. The token the
    /// last [`Session::decode_ahead`] returned stays fed (it is the last of
    /// [`Session::history`]), and its logits are [`Session::logits`]; the generator is
    /// rewound so the next draw is the one the dropped draw would have been.
    pub fn discard_ahead(&mut self) {
        if let Some(pending) = self.ahead.take() {
            self.rng = pending.rng_before;
        }
    }
}
