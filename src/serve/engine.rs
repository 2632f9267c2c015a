//! The engine: one thread owns the model on the GPU and `--parallel` slots (sessions, each
//! with its own KV cache and recurrent state in VRAM), fed jobs through a channel.
//!
//! Each round it admits waiting jobs to free slots (resuming from the prompt cache where a
//! slot holds a prefix of the prompt), prefills one chunk of one prompt, then runs one
//! decode step of every generating slot, so a new prompt stalls running streams by one
//! chunk at most. The generating slots step together in one submit ([`DecodeBatch`]: each
//! weight read once for all of them), pipelined: the step feeding each slot's token is on
//! the GPU while the host hands out the token before it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc::{self, error::TryRecvError, UnboundedReceiver, UnboundedSender};

use crate::error::Error;
use crate::loader::tokenizer::GgufTokenizer;
use crate::runtime::state::StateSnapshot;
use crate::runtime::{DecodeBatch, GpuModel, Session, SessionOptions};
use crate::serve::job::{Event, Job, Usage};
use crate::serve::logprobs::logprobs;
use crate::serve::metrics::Metrics;
use crate::serve::prompt_cache::{plan_resume, snapshot_marks, Resume, SnapshotStore};
use crate::serve::reply::{Next, ReplyStream};

/// A long prompt is snapshotted at least this often, so a request sharing most of it
/// resumes near its end.
pub const SNAPSHOT_INTERVAL: usize = 4096;

pub enum Command {
    Run(Job),
    /// Fail every job (in-flight streams end with an error event) and stop.
    Shutdown,
}

/// Counts a job while it waits or runs; dropping the job releases it.
pub struct Ticket(Arc<AtomicUsize>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The HTTP side's end of the engine's channel.
#[derive(Clone)]
pub struct EngineHandle {
    tx: UnboundedSender<Command>,
    in_flight: Arc<AtomicUsize>,
    limit: usize,
}

impl EngineHandle {
    /// A channel for an engine that takes at most `limit` jobs waiting or running.
    pub fn channel(limit: usize) -> (EngineHandle, UnboundedReceiver<Command>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = EngineHandle {
            tx,
            in_flight: Arc::new(AtomicUsize::new(0)),
            limit,
        };
        (handle, rx)
    }

    /// Hands a job to the engine; `None` when the queue is full or the engine has stopped.
    /// `make` gets the ticket the job must hold.
    pub fn submit(&self, make: impl FnOnce(Ticket) -> Job) -> Option<()> {
        let taken = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            });
        taken.ok()?;
        let job = make(Ticket(Arc::clone(&self.in_flight)));
        self.tx.send(Command::Run(job)).ok()
    }

    pub fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown);
    }

    /// Jobs waiting or running.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
}

/// How the engine is sized.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    pub slots: usize,
    pub session: SessionOptions,
    /// VRAM the prompt cache's snapshots may take.
    pub cache_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Prefill,
    Decode,
}

/// A job on a slot.
struct Work {
    job: Job,
    reply: ReplyStream,
    phase: Phase,
    /// Prompt positions to snapshot at, ascending.
    marks: VecDeque<usize>,
    /// Prompt tokens the session holds.
    prefilled: usize,
    cached: usize,
    generated: u32,
    /// A job reporting log probabilities steps unpipelined, alone, reading each step's
    /// logits: the last token drawn, which its next step feeds.
    drawn: Option<u32>,
    /// Admission order: prompts are prefilled first come, first served.
    admitted: u64,
}

struct Slot {
    session: Session,
    work: Option<Work>,
    last_used: u64,
}

pub struct Engine {
    tokenizer: Arc<GgufTokenizer>,
    slots: Vec<Slot>,
    /// One submit for every generating slot (none with one slot).
    batch: Option<DecodeBatch>,
    store: SnapshotStore<StateSnapshot>,
    waiting: VecDeque<Job>,
    inbox: UnboundedReceiver<Command>,
    metrics: Arc<Metrics>,
    /// The token that opens a message (`<|im_start|>`): snapshots go before it.
    boundary: Option<u32>,
    /// No recurrent state: a slot can drop any suffix without snapshots.
    rewindable: bool,
    clock: u64,
}

impl Engine {
    /// Opens the slots' sessions on `model`.
    pub fn new(
        model: Arc<GpuModel>,
        tokenizer: Arc<GgufTokenizer>,
        options: EngineOptions,
        inbox: UnboundedReceiver<Command>,
        metrics: Arc<Metrics>,
    ) -> Result<Engine, Error> {
        let slots = (0..options.slots.max(1))
            .map(|_| {
                Ok(Slot {
                    session: Session::new(Arc::clone(&model), options.session)?,
                    work: None,
                    last_used: 0,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let rewindable = slots[0].session.state().recurrent_bytes() == 0;
        let batch = if slots.len() > 1 {
            let rows = slots.len() as u32;
            Some(DecodeBatch::new(model, rows, options.session.context)?)
        } else {
            None
        };
        Ok(Engine {
            batch,
            boundary: tokenizer.token_to_id("<|im_start|>"),
            tokenizer,
            store: SnapshotStore::new(slots.len(), options.cache_bytes),
            slots,
            waiting: VecDeque::new(),
            inbox,
            metrics,
            rewindable,
            clock: 0,
        })
    }

    /// Serves jobs until told to stop or every handle is gone.
    pub fn run(mut self) {
        loop {
            let idle = self.waiting.is_empty() && self.slots.iter().all(|s| s.work.is_none());
            if idle {
                match self.inbox.blocking_recv() {
                    Some(Command::Run(job)) => self.waiting.push_back(job),
                    Some(Command::Shutdown) | None => break,
                }
            }
            if !self.take_commands() {
                break;
            }
            let started = Instant::now();
            self.admit();
            self.prefill_one();
            let generated = self.decode_all();
            if generated > 0 {
                self.metrics
                    .record_round(generated, started.elapsed().as_secs_f64());
            }
            self.publish();
        }
        self.shutdown();
    }

    /// Moves new jobs to the queue; `false` when the engine must stop.
    fn take_commands(&mut self) -> bool {
        loop {
            match self.inbox.try_recv() {
                Ok(Command::Run(job)) => self.waiting.push_back(job),
                Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => return false,
                Err(TryRecvError::Empty) => break,
            }
        }
        // A client that left while waiting needs no slot.
        self.waiting.retain(|job| !job.events.is_closed());
        true
    }

    fn publish(&self) {
        let busy = self.slots.iter().filter(|s| s.work.is_some()).count();
        let m = &self.metrics;
        m.busy_slots.store(busy as u64, Ordering::Relaxed);
        m.queued.store(self.waiting.len() as u64, Ordering::Relaxed);
        m.snapshots
            .store(self.store.len() as u64, Ordering::Relaxed);
        m.snapshot_bytes.store(self.store.used(), Ordering::Relaxed);
    }

    /// Gives waiting jobs free slots, each the one that holds most of its prompt.
    fn admit(&mut self) {
        while self.slots.iter().any(|s| s.work.is_none()) {
            let Some(job) = self.waiting.pop_front() else {
                break;
            };
            let (slot, resume) = self.choose(&job.prompt);
            if let Err(e) = self.start(slot, job, resume) {
                log::warn!("slot {slot}: {e}");
            }
        }
    }

    fn choose(&self, prompt: &[u32]) -> (usize, Resume) {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.work.is_none())
            .map(|(i, s)| {
                let history = s.session.history();
                let resume =
                    plan_resume(history, &self.store.positions(i), prompt, self.rewindable);
                (i, resume, s.last_used)
            })
            // Most tokens reused, then the least recently used slot.
            .max_by(|a, b| a.1.reused().cmp(&b.1.reused()).then(b.2.cmp(&a.2)))
            .map_or((0, Resume::Cold), |(i, r, _)| (i, r))
    }

    /// Moves `slot` to where `resume` says and starts `job` there.
    fn start(&mut self, index: usize, job: Job, resume: Resume) -> Result<(), Error> {
        let slot = &mut self.slots[index];
        let moved = match resume {
            Resume::Continue(_) => Ok(()),
            Resume::Truncate(len) => slot.session.truncate(len).map(|_| ()),
            Resume::Snapshot { index: i, pos } => match self.store.get(index, i) {
                Some(snapshot) => slot.session.restore(snapshot).map(|()| {
                    self.store.drop_after(index, pos);
                }),
                None => Err(Error::InvalidArgument(format!("no snapshot {i}"))),
            },
            Resume::Cold => {
                slot.session.reset();
                self.store.clear(index);
                Ok(())
            }
        };
        let set = moved.and_then(|()| slot.session.set_sampling(job.sampling, job.seed));
        if let Err(e) = set {
            // The slot's state is unknown now: start it over.
            slot.session.reset();
            self.store.clear(index);
            fail(&job, 500, &e, &self.metrics);
            return Err(e);
        }
        let reused = resume.reused();
        self.store.drop_after(index, reused);
        let marks = if self.rewindable {
            VecDeque::new()
        } else {
            snapshot_marks(&job.prompt, reused, self.boundary, SNAPSHOT_INTERVAL).into()
        };
        let m = &self.metrics;
        m.prompt_tokens
            .fetch_add(job.prompt.len() as u64, Ordering::Relaxed);
        if reused > 0 {
            m.cached_tokens.fetch_add(reused as u64, Ordering::Relaxed);
            m.cache_hits.fetch_add(1, Ordering::Relaxed);
        }
        log::info!(
            "request {}: slot {index}, {} prompt tokens, {reused} from the cache ({resume:?})",
            job.id,
            job.prompt.len()
        );
        let _ = job.events.send(Event::Started {
            cached_tokens: reused as u32,
        });
        self.clock += 1;
        slot.work = Some(Work {
            reply: ReplyStream::new(&job),
            job,
            phase: Phase::Prefill,
            marks,
            prefilled: reused,
            cached: reused,
            generated: 0,
            drawn: None,
            admitted: self.clock,
        });
        Ok(())
    }

    /// Prefills one chunk of the earliest admitted prompt, up to its next snapshot mark.
    fn prefill_one(&mut self) {
        let next = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.work.as_ref().map(|w| (i, w)))
            .filter(|(_, w)| w.phase == Phase::Prefill)
            .min_by_key(|(_, w)| w.admitted)
            .map(|(i, _)| i);
        let Some(index) = next else {
            return;
        };
        if let Err(e) = self.prefill_chunk(index) {
            self.abort(index, &e);
        }
    }

    fn prefill_chunk(&mut self, index: usize) -> Result<(), Error> {
        let slot = &mut self.slots[index];
        let Some(work) = slot.work.as_mut() else {
            return Ok(());
        };
        if work.job.events.is_closed() {
            self.release(index);
            return Ok(());
        }
        let prompt = &work.job.prompt;
        let ubatch = slot.session.options.ubatch as usize;
        let mark = work.marks.front().copied().unwrap_or(prompt.len());
        let end = mark.min(work.prefilled + ubatch).min(prompt.len());
        slot.session.prefill(&prompt[work.prefilled..end])?;
        work.prefilled = end;
        if work.marks.front() == Some(&end) {
            work.marks.pop_front();
            let bytes = slot.session.state().recurrent_bytes();
            if self.store.admits(bytes) {
                let snapshot = slot.session.snapshot()?;
                self.store.insert(index, snapshot);
            }
        }
        if work.prefilled == work.job.prompt.len() {
            if work.job.logprobs.is_none() {
                slot.session.sample_ahead()?;
            }
            work.phase = Phase::Decode;
        }
        Ok(())
    }

    /// One decode step of every generating slot, those that go on in one batched submit;
    /// returns the tokens generated.
    fn decode_all(&mut self) -> u64 {
        let mut going = Vec::new();
        let mut ending = Vec::new();
        let mut reporting = Vec::new();
        for (i, slot) in self.slots.iter().enumerate() {
            let Some(work) = slot.work.as_ref().filter(|w| w.phase == Phase::Decode) else {
                continue;
            };
            let session = &slot.session;
            // The token about to be read is the last whatever it is: no step feeds it.
            let last = work.generated + 1 >= work.job.max_tokens
                || session.position() >= session.options.context;
            match (work.job.logprobs.is_some(), last) {
                (true, _) => reporting.push((i, last)),
                (false, true) => ending.push(i),
                (false, false) => going.push(i),
            }
        }
        let mut tokens: Vec<(usize, Result<u32, Error>, bool)> = ending
            .iter()
            .map(|&i| (i, self.slots[i].session.read_ahead(), true))
            .collect();
        for (i, last) in reporting {
            tokens.push((i, self.draw_reporting(i), last));
        }
        match (going.len(), self.batch.as_mut()) {
            (0, _) => {}
            (1, _) | (_, None) => tokens.extend(
                going
                    .iter()
                    .map(|&i| (i, self.slots[i].session.decode_ahead(), false)),
            ),
            (_, Some(batch)) => {
                let mut sessions: Vec<&mut Session> = self
                    .slots
                    .iter_mut()
                    .enumerate()
                    .filter(|(i, _)| going.contains(i))
                    .map(|(_, s)| &mut s.session)
                    .collect();
                match batch.decode_ahead(&mut sessions) {
                    Ok(ids) => {
                        tokens.extend(going.iter().zip(ids).map(|(&i, t)| (i, Ok(t), false)))
                    }
                    Err(e) => {
                        for &i in &going {
                            self.abort(i, &e);
                        }
                    }
                }
            }
        }
        let mut generated = 0;
        for (index, token, last) in tokens {
            match token.and_then(|t| self.take_token(index, t, last)) {
                Ok(()) => generated += 1,
                Err(e) => self.abort(index, &e),
            }
        }
        generated
    }

    /// The next token of a job reporting log probabilities: drawn from the prompt's logits
    /// first, then each step feeds the last one; the step's logits give the report, sent
    /// before the token's text.
    fn draw_reporting(&mut self, index: usize) -> Result<u32, Error> {
        let slot = &mut self.slots[index];
        let Some(work) = slot.work.as_mut() else {
            return Err(Error::InvalidArgument("no job on the slot".into()));
        };
        let token = match work.drawn {
            None => slot.session.sample()?,
            Some(t) => slot.session.decode(t)?,
        };
        work.drawn = Some(token);
        let top = work.job.logprobs.unwrap_or(0);
        let logits = slot.session.logits()?;
        let report = logprobs(&logits, token, top, &self.tokenizer);
        let _ = work.job.events.send(Event::Logprobs(report));
        Ok(token)
    }

    /// Hands a generated token to the slot's reply and ends the job when it is over.
    fn take_token(&mut self, index: usize, token: u32, last: bool) -> Result<(), Error> {
        let Some(work) = self.slots[index].work.as_mut() else {
            return Ok(());
        };
        work.generated += 1;
        let next = if self.tokenizer.is_end_of_generation(token) {
            Next::Stopped
        } else {
            work.reply.push_token(&self.tokenizer, token, &work.job)?
        };
        match next {
            Next::Gone => self.release(index),
            Next::Stopped => self.finish(index, false),
            Next::Continue if last => self.finish(index, true),
            Next::Continue => {}
        }
        Ok(())
    }

    /// Ends the slot's job with its finish reason and usage.
    fn finish(&mut self, index: usize, hit_limit: bool) {
        self.clock += 1;
        let slot = &mut self.slots[index];
        slot.session.discard_ahead();
        slot.last_used = self.clock;
        if let Some(work) = slot.work.take() {
            let usage = Usage {
                prompt_tokens: work.job.prompt.len() as u32,
                cached_tokens: work.cached as u32,
                completion_tokens: work.generated,
            };
            self.metrics
                .completion_tokens
                .fetch_add(work.generated as u64, Ordering::Relaxed);
            self.metrics.requests_ok.fetch_add(1, Ordering::Relaxed);
            log::info!(
                "request {}: {} tokens in {:.2} s",
                work.job.id,
                work.generated,
                work.job.received.elapsed().as_secs_f64()
            );
            work.reply.finish(hit_limit, usage, &work.job);
        }
    }

    /// Frees the slot of a job whose client is gone; what the slot holds stays usable.
    fn release(&mut self, index: usize) {
        self.clock += 1;
        let slot = &mut self.slots[index];
        slot.session.discard_ahead();
        slot.last_used = self.clock;
        if let Some(work) = slot.work.take() {
            log::info!(
                "request {}: client gone after {} tokens",
                work.job.id,
                work.generated
            );
        }
    }

    /// Fails the slot's job after an error and starts the slot over.
    fn abort(&mut self, index: usize, error: &Error) {
        let slot = &mut self.slots[index];
        slot.session.discard_ahead();
        slot.session.reset();
        self.store.clear(index);
        if let Some(work) = slot.work.take() {
            fail(&work.job, 500, error, &self.metrics);
        }
    }

    fn shutdown(&mut self) {
        let stopping = Error::InvalidArgument("the server is shutting down".into());
        for index in 0..self.slots.len() {
            self.slots[index].session.discard_ahead();
            if let Some(work) = self.slots[index].work.take() {
                fail(&work.job, 503, &stopping, &self.metrics);
            }
        }
        for job in self.waiting.drain(..) {
            fail(&job, 503, &stopping, &self.metrics);
        }
        self.publish();
    }
}

fn fail(job: &Job, status: u16, error: &Error, metrics: &Metrics) {
    metrics.requests_failed.fetch_add(1, Ordering::Relaxed);
    let message = match error {
        Error::InvalidArgument(m) => m.clone(),
        other => other.to_string(),
    };
    log::warn!("request {}: {message}", job.id);
    let _ = job.events.send(Event::Failed { status, message });
}
