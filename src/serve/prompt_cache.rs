//! The prompt cache of a hybrid model: a request whose prompt starts with what a slot
//! already holds resumes there instead of prefilling it again.
//!
//! Attention layers can drop a suffix of their KV cache, but a Gated DeltaNet state cannot
//! go back, so a slot keeps copies of its recurrent state ([`StateSnapshot`]s) at message
//! boundaries, before a prompt's last token and every few thousand tokens of a long prompt,
//! and resumes from the longest one the new prompt shares. Copies are kept within a VRAM
//! budget, least recently used dropped first.

use crate::runtime::state::StateSnapshot;

/// How a slot takes up a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// The slot's whole history starts the prompt: go on from it.
    Continue(usize),
    /// Go back to the slot's snapshot `index`, at `pos` tokens.
    Snapshot { index: usize, pos: usize },
    /// Drop the history past `len` (a model without recurrent state).
    Truncate(usize),
    /// Start from nothing.
    Cold,
}

impl Resume {
    /// Prompt tokens that need no prefill.
    pub fn reused(&self) -> usize {
        match *self {
            Resume::Continue(n) | Resume::Truncate(n) => n,
            Resume::Snapshot { pos, .. } => pos,
            Resume::Cold => 0,
        }
    }
}

/// Length of the common start of `a` and `b`.
pub fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The best way for a slot holding `history`, with snapshots at `snapshots` (positions), to
/// take up `prompt`. At least the prompt's last token is left to prefill: its logits start
/// the reply. `rewindable`: the model has no recurrent state, so any prefix can be kept.
pub fn plan_resume(
    history: &[u32],
    snapshots: &[usize],
    prompt: &[u32],
    rewindable: bool,
) -> Resume {
    let usable = common_prefix(history, prompt).min(prompt.len().saturating_sub(1));
    if usable == 0 {
        return Resume::Cold;
    }
    if usable == history.len() {
        return Resume::Continue(usable);
    }
    if rewindable {
        return Resume::Truncate(usable);
    }
    snapshots
        .iter()
        .enumerate()
        .filter(|&(_, &pos)| pos > 0 && pos <= usable)
        .max_by_key(|&(_, &pos)| pos)
        .map_or(Resume::Cold, |(index, &pos)| Resume::Snapshot {
            index,
            pos,
        })
}

/// Marks closer than this to the next one are skipped: each mark splits a prefill step.
const MIN_MARK_GAP: usize = 32;

/// Where to snapshot while prefilling `prompt` from `from`: before each message (a
/// `boundary` token, `<|im_start|>`), before the last token (a request re-sent as is, or
/// regenerated, resumes there), and at least every `interval` tokens.
pub fn snapshot_marks(
    prompt: &[u32],
    from: usize,
    boundary: Option<u32>,
    interval: usize,
) -> Vec<usize> {
    let last = prompt.len().saturating_sub(1);
    let mut wanted: Vec<usize> = (from + 1..last)
        .filter(|&p| Some(prompt[p]) == boundary)
        .collect();
    if last > from {
        wanted.push(last);
    }
    let mut marks: Vec<usize> = Vec::new();
    let mut previous = from;
    for (i, &mark) in wanted.iter().enumerate() {
        while mark - previous > interval {
            previous += interval;
            marks.push(previous);
        }
        let next = wanted.get(i + 1).copied();
        if next.is_some_and(|n| n - mark < MIN_MARK_GAP) {
            continue;
        }
        marks.push(mark);
        previous = mark;
    }
    marks
}

/// What a kept copy must say about itself.
pub trait Snapshot {
    fn pos(&self) -> usize;
    fn bytes(&self) -> u64;
}

impl Snapshot for StateSnapshot {
    fn pos(&self) -> usize {
        StateSnapshot::pos(self) as usize
    }
    fn bytes(&self) -> u64 {
        StateSnapshot::bytes(self)
    }
}

struct Kept<S> {
    snapshot: S,
    last_used: u64,
}

/// Every slot's snapshots, within a budget of bytes.
pub struct SnapshotStore<S> {
    slots: Vec<Vec<Kept<S>>>,
    budget: u64,
    clock: u64,
}

impl<S: Snapshot> SnapshotStore<S> {
    pub fn new(slots: usize, budget: u64) -> SnapshotStore<S> {
        SnapshotStore {
            slots: (0..slots).map(|_| Vec::new()).collect(),
            budget,
            clock: 0,
        }
    }

    /// Positions of `slot`'s snapshots, in the order [`Resume::Snapshot`] indexes them.
    pub fn positions(&self, slot: usize) -> Vec<usize> {
        self.slots[slot].iter().map(|k| k.snapshot.pos()).collect()
    }

    /// Snapshot `index` of `slot`, marked as just used.
    pub fn get(&mut self, slot: usize, index: usize) -> Option<&S> {
        self.clock += 1;
        let kept = self.slots.get_mut(slot)?.get_mut(index)?;
        kept.last_used = self.clock;
        Some(&kept.snapshot)
    }

    /// Whether a copy of `bytes` can be kept at all.
    pub fn admits(&self, bytes: u64) -> bool {
        bytes <= self.budget
    }

    /// Keeps `snapshot` for `slot`, dropping the least recently used copies (of any slot)
    /// until it fits; `false` when it alone is over the budget.
    pub fn insert(&mut self, slot: usize, snapshot: S) -> bool {
        let bytes = snapshot.bytes();
        if !self.admits(bytes) {
            return false;
        }
        // A copy at the same position is replaced.
        self.slots[slot].retain(|k| k.snapshot.pos() != snapshot.pos());
        while self.used() + bytes > self.budget {
            let oldest = self
                .slots
                .iter()
                .enumerate()
                .flat_map(|(s, kept)| kept.iter().enumerate().map(move |(i, k)| (s, i, k)))
                .min_by_key(|(_, _, k)| k.last_used)
                .map(|(s, i, _)| (s, i));
            match oldest {
                Some((s, i)) => {
                    self.slots[s].remove(i);
                }
                None => break,
            }
        }
        self.clock += 1;
        self.slots[slot].push(Kept {
            snapshot,
            last_used: self.clock,
        });
        true
    }

    /// Drops `slot`'s snapshots past `pos`: the slot is about to overwrite what follows.
    pub fn drop_after(&mut self, slot: usize, pos: usize) {
        self.slots[slot].retain(|k| k.snapshot.pos() <= pos);
    }

    pub fn clear(&mut self, slot: usize) {
        self.slots[slot].clear();
    }

    /// Bytes kept.
    pub fn used(&self) -> u64 {
        self.slots
            .iter()
            .flatten()
            .map(|k| k.snapshot.bytes())
            .sum()
    }

    pub fn len(&self) -> usize {
        self.slots.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(usize, u64);

    impl Snapshot for Fake {
        fn pos(&self) -> usize {
            self.0
        }
        fn bytes(&self) -> u64 {
            self.1
        }
    }

    #[test]
    fn a_slot_resumes_from_the_longest_prefix_it_can_reach() {
        let history = [1, 2, 3, 4, 5, 6];
        // The whole history starts the prompt: go on.
        assert_eq!(
            plan_resume(&history, &[], &[1, 2, 3, 4, 5, 6, 7], false),
            Resume::Continue(6)
        );
        // The same prompt again: all but the last token, from the snapshot before it.
        assert_eq!(
            plan_resume(&history, &[2, 5], &history, false),
            Resume::Snapshot { index: 1, pos: 5 }
        );
        // Diverging at 4: the snapshot at 2, not the one at 5.
        assert_eq!(
            plan_resume(&history, &[2, 5], &[1, 2, 3, 4, 9], false),
            Resume::Snapshot { index: 0, pos: 2 }
        );
        // No snapshot below the divergence: cold, unless the model can drop a suffix.
        assert_eq!(plan_resume(&history, &[5], &[1, 2, 9], false), Resume::Cold);
        assert_eq!(
            plan_resume(&history, &[], &[1, 2, 9], true),
            Resume::Truncate(2)
        );
        assert_eq!(plan_resume(&history, &[2], &[7, 8], false), Resume::Cold);
        assert_eq!(plan_resume(&[], &[], &[1], false), Resume::Cold);
    }

    #[test]
    fn marks_fall_before_messages_and_the_last_token_and_within_the_interval() {
        const B: u32 = 100;
        let mut prompt = vec![B, 1, 2];
        prompt.extend(std::iter::repeat_n(3, 60));
        prompt.push(B); // 63
        prompt.extend(std::iter::repeat_n(4, 40));
        prompt.extend([B, 6, 7]); // a boundary at 104, 2 tokens before the last one
        assert_eq!(snapshot_marks(&prompt, 0, Some(B), 4096), [63, 106]);
        // Resuming past the first boundary: only what is prefilled gets marks.
        assert_eq!(snapshot_marks(&prompt, 64, Some(B), 4096), [106]);
        // A long stretch without boundaries gets one every interval.
        let long = vec![1u32; 10_000];
        assert_eq!(snapshot_marks(&long, 0, Some(B), 4096), [4096, 8192, 9999]);
        assert!(snapshot_marks(&[5], 0, Some(B), 4096).is_empty());
    }

    #[test]
    fn the_store_keeps_to_its_budget_dropping_the_least_recently_used() {
        let mut store = SnapshotStore::new(2, 100);
        assert!(store.insert(0, Fake(10, 40)));
        assert!(store.insert(1, Fake(20, 40)));
        assert!(store.get(0, 0).is_some()); // slot 0's copy is now the newer
        assert!(store.insert(1, Fake(30, 40)));
        assert_eq!(store.positions(0), [10]);
        assert_eq!(store.positions(1), [30]);
        assert_eq!(store.used(), 80);
        assert!(!store.insert(0, Fake(5, 101)));
        store.drop_after(0, 9);
        assert_eq!(store.positions(0), Vec::<usize>::new());
        assert_eq!(store.used(), 40);
        store.clear(1);
        assert!(store.is_empty());
    }
}
