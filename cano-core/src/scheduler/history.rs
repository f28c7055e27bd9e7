//! Run history: the last few runs of each flow ([`RunningScheduler::history`](super::RunningScheduler::history)),
//! kept by the core as runs end, bounded per flow
//! ([`Scheduler::set_history_limit`](super::Scheduler::set_history_limit), default
//! [`DEFAULT_HISTORY_LIMIT`]; 0 keeps none and allocates nothing).

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::num::NonZeroU64;

use jiff::Timestamp;

use super::core::{RunFailure, RunOutcome};
use super::job::FireId;
use super::runs::RunEntry;
use crate::time::{Instant, timestamp_at, wall_micros_at};

/// How many runs per flow the history keeps by default: 16 with feature `std`, 4 without
/// (a microcontroller's heap is a few KiB; each kept run is 24 bytes,
/// one inline per flow and the rest in a ring).
pub const DEFAULT_HISTORY_LIMIT: usize = if cfg!(feature = "std") { 16 } else { 4 };

/// One finished run, as the history keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunRecord {
    /// The run's fire id.
    pub fire: FireId,
    /// When it started (wall clock, as seen at its end: its monotonic duration before the end).
    pub started: Timestamp,
    /// When it ended (wall clock).
    pub ended: Timestamp,
    /// How it ended.
    pub outcome: RunOutcome,
}

impl RunRecord {
    /// The failure's error text, if the run failed.
    pub fn error(&self) -> Option<&str> {
        match &self.outcome {
            RunOutcome::Failed(failure) => Some(failure.message()),
            _ => None,
        }
    }
}

/// A run as kept, in 24 bytes (it was 48, then 32; issue 15): times in µs since the Unix
/// epoch, the flow id left to the caller, and the run's length and how it ended in one
/// word. A failure's text is kept beside it, in its flow's [`Ring`].
#[derive(Debug, Clone, Copy)]
struct Kept {
    scheduled: i64,
    ended: i64,
    /// `(ended − started) << 3 | failed << 2 | cancelled << 1 | 1`: never zero, so a
    /// flow's [`Runs`] keeps its one run inline in these 24 bytes, its tag in this word.
    took: NonZeroU64,
}

const CANCELLED: u64 = 0b010;
const FAILED: u64 = 0b100;

impl Kept {
    fn new(scheduled: i64, started: i64, ended: i64, outcome: &RunOutcome) -> Self {
        // A run's start is never after its end (both are read off one clock reading).
        let length = u64::try_from(ended.saturating_sub(started)).unwrap_or(0);
        let flags = match outcome {
            RunOutcome::Succeeded => 0,
            RunOutcome::Cancelled => CANCELLED,
            RunOutcome::Failed(_) => FAILED,
        };
        Kept {
            scheduled,
            ended,
            took: NonZeroU64::MIN | (length.min(u64::MAX >> 3) << 3 | flags),
        }
    }

    fn failed(self) -> bool {
        self.took.get() & FAILED != 0
    }

    fn started(self) -> i64 {
        // `took >> 3` is below 2⁶¹: it fits an `i64`.
        self.ended.saturating_sub((self.took.get() >> 3) as i64)
    }

    /// Its outcome; `failure` is its failure's text, if it failed.
    fn outcome(self, failure: Option<&RunFailure>) -> RunOutcome {
        match failure {
            Some(failure) if self.failed() => RunOutcome::Failed(failure.clone()),
            _ if self.took.get() & CANCELLED != 0 => RunOutcome::Cancelled,
            _ => RunOutcome::Succeeded,
        }
    }
}

/// The runs of a flow that keeps more than one, or whose one run failed: oldest first,
/// and the failed ones' texts in the same order (one per run with the failed flag).
#[derive(Debug, Default)]
struct Ring {
    runs: VecDeque<Kept>,
    failures: VecDeque<RunFailure>,
}

impl Ring {
    fn pop_oldest(&mut self) {
        if self.runs.pop_front().is_some_and(Kept::failed) {
            self.failures.pop_front();
        }
    }

    /// Its one run, if it keeps one that did not fail (it can then be kept inline).
    fn only_success(&self) -> Option<Kept> {
        match (self.runs.len(), self.failures.is_empty()) {
            (1, true) => self.runs.front().copied(),
            _ => None,
        }
    }
}

/// One flow's kept runs, in 24 bytes. Most flows keep one run that did not fail (a flow
/// that ran once, or a limit of 1): it is kept inline, with no block of its own; two or
/// more, or a failed one, go to one [`Ring`] behind a pointer.
#[derive(Debug)]
enum Runs {
    One(Kept),
    /// None: no run kept.
    Rest(Option<Box<Ring>>),
}

impl Default for Runs {
    fn default() -> Self {
        Runs::Rest(None)
    }
}

/// Makes room for one more in `ring`, if it is full: double its capacity (from one), at
/// most `limit`.
fn grow_within<T>(ring: &mut VecDeque<T>, limit: usize) {
    if ring.len() == ring.capacity() {
        let room = (ring.capacity().max(1) * 2).min(limit.max(1)) - ring.len();
        ring.reserve_exact(room.max(1));
    }
}

/// Per flow (by slot), its last `limit` runs, oldest first.
#[derive(Debug)]
pub(crate) struct History {
    flows: Vec<Runs>,
    limit: usize,
}

impl Default for History {
    fn default() -> Self {
        History {
            flows: Vec::new(),
            limit: DEFAULT_HISTORY_LIMIT,
        }
    }
}

impl History {
    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
        if limit == 0 {
            self.flows = Vec::new();
        }
        for runs in &mut self.flows {
            if let Runs::Rest(Some(ring)) = runs {
                while ring.runs.len() > limit {
                    ring.pop_oldest();
                }
                if let Some(only) = ring.only_success() {
                    *runs = Runs::One(only);
                }
            }
        }
    }

    /// Keeps run `entry` of slot `i` (of `flows` slots), ended at `now` / `wall` with
    /// `outcome`.
    #[inline]
    pub(crate) fn record(
        &mut self,
        i: usize,
        flows: usize,
        entry: &RunEntry,
        outcome: &RunOutcome,
        now: Instant,
        wall: Timestamp,
    ) {
        if self.limit == 0 {
            return;
        }
        if self.flows.len() <= i {
            // Room for every slot at once: every flow's first run at start fills it in
            // order, and growing one slot at a time by doubling would leave up to half of
            // it unused for good. (Later growth, for flows added at run time, doubles.)
            let more = flows.max(i + 1) - self.flows.len();
            if self.flows.capacity() == 0 {
                self.flows.reserve_exact(more);
            } else {
                self.flows.reserve(more);
            }
            self.flows.resize_with(i + 1, Runs::default);
        }
        let kept = Kept::new(
            entry.scheduled,
            wall_micros_at(entry.started, now, wall),
            wall.as_microsecond(),
            outcome,
        );
        let failure = match outcome {
            RunOutcome::Failed(failure) => Some(failure),
            _ => None,
        };
        let limit = self.limit;
        let runs = &mut self.flows[i];
        *runs = match (core::mem::take(runs), failure) {
            // A run that did not fail, the only one kept: inline.
            (Runs::Rest(None), None) => Runs::One(kept),
            (_, None) if limit == 1 => Runs::One(kept),
            (earlier, failure) => {
                let mut ring = match earlier {
                    Runs::Rest(Some(ring)) => ring,
                    Runs::Rest(None) => Box::default(),
                    Runs::One(first) => {
                        let mut ring = Box::new(Ring {
                            runs: VecDeque::with_capacity(2.min(limit)),
                            failures: VecDeque::new(),
                        });
                        ring.runs.push_back(first);
                        ring
                    }
                };
                while ring.runs.len() >= limit {
                    ring.pop_oldest();
                }
                // Both grow by doubling up to the limit, never past it: a flow that ran
                // three times holds four.
                grow_within(&mut ring.runs, limit);
                ring.runs.push_back(kept);
                if let Some(failure) = failure {
                    grow_within(&mut ring.failures, limit);
                    ring.failures.push_back(failure.clone());
                }
                Runs::Rest(Some(ring))
            }
        };
    }

    /// Forgets slot `i`'s runs (its flow was removed, or the slot is reused).
    pub(crate) fn forget(&mut self, i: usize) {
        if let Some(runs) = self.flows.get_mut(i) {
            *runs = Runs::default();
        }
    }

    /// Slot `i`'s runs, oldest first, named by `id`.
    pub(crate) fn of(&self, i: usize, id: &Arc<str>) -> Vec<RunRecord> {
        let record = |kept: Kept, failure: Option<&RunFailure>| RunRecord {
            fire: FireId::new(id.clone(), timestamp_at(kept.scheduled)),
            started: timestamp_at(kept.started()),
            ended: timestamp_at(kept.ended),
            outcome: kept.outcome(failure),
        };
        match self.flows.get(i) {
            None | Some(Runs::Rest(None)) => Vec::new(),
            Some(Runs::One(kept)) => alloc::vec![record(*kept, None)],
            Some(Runs::Rest(Some(ring))) => {
                let mut failures = ring.failures.iter();
                ring.runs
                    .iter()
                    .map(|&kept| record(kept, kept.failed().then(|| failures.next()).flatten()))
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(scheduled: i64) -> RunEntry {
        RunEntry {
            flow: 0,
            scheduled,
            cancelling: false,
            dropped: false,
            started: Instant::ZERO,
        }
    }

    fn scheduled(history: &History, i: usize) -> Vec<i64> {
        let id: Arc<str> = "f".into();
        history
            .of(i, &id)
            .iter()
            .map(|r| r.fire.scheduled().as_microsecond())
            .collect()
    }

    #[test]
    fn keeps_the_last_runs_up_to_the_limit_oldest_first() {
        let wall = Timestamp::from_second(1_767_225_600).unwrap();
        for limit in [1, 2, 3, 16] {
            let mut history = History::default();
            history.set_limit(limit);
            for run in 0..5 {
                history.record(
                    1,
                    3,
                    &entry(run),
                    &RunOutcome::Succeeded,
                    Instant::ZERO,
                    wall,
                );
                let kept = (run + 1).min(limit as i64);
                let want: Vec<i64> = (run + 1 - kept..=run).collect();
                assert_eq!(scheduled(&history, 1), want, "limit {limit}, run {run}");
            }
            assert!(scheduled(&history, 0).is_empty());
            assert!(scheduled(&history, 2).is_empty());
            history.set_limit(1);
            assert_eq!(scheduled(&history, 1), [4], "limit {limit} lowered to 1");
            history.forget(1);
            assert!(scheduled(&history, 1).is_empty());
        }
    }

    #[test]
    fn a_kept_run_keeps_its_outcome_and_takes_no_block_of_its_own() {
        let wall = Timestamp::from_second(1_767_225_600).unwrap();
        let failed = RunOutcome::Failed(RunFailure::new(&crate::CanoError::task_execution("x")));
        let mut history = History::default();
        let started = Instant::from_secs(5);
        let ended = Instant::from_millis(7_250);
        for outcome in [RunOutcome::Succeeded, RunOutcome::Cancelled, failed] {
            let run = RunEntry {
                started,
                ..entry(0)
            };
            history.record(0, 1, &run, &outcome, ended, wall);
            let id: Arc<str> = "f".into();
            let kept = history.of(0, &id).pop().unwrap();
            assert_eq!(kept.outcome, outcome);
            assert_eq!(kept.ended, wall);
            assert_eq!(
                kept.started.as_microsecond(),
                wall.as_microsecond() - 2_250_000
            );
        }
        if cfg!(target_pointer_width = "64") {
            assert_eq!(core::mem::size_of::<Kept>(), 24);
            assert_eq!(core::mem::size_of::<Runs>(), 24, "one run inline");
        }
        let mut three = History::default();
        for i in 0..3 {
            three.record(i, 3, &entry(0), &RunOutcome::Succeeded, Instant::ZERO, wall);
        }
        assert_eq!(
            three.flows.capacity(),
            3,
            "sized for the flows, not doubled"
        );
    }

    #[test]
    fn failures_keep_their_texts_in_order_whatever_the_limit() {
        let wall = Timestamp::from_second(1_767_225_600).unwrap();
        let failed = |text: &'static str| {
            RunOutcome::Failed(RunFailure::new(&crate::CanoError::task_execution(text)))
        };
        let outcomes = [
            failed("a"),
            RunOutcome::Succeeded,
            failed("b"),
            failed("c"),
            RunOutcome::Cancelled,
            RunOutcome::Succeeded,
            failed("d"),
        ];
        let id: Arc<str> = "f".into();
        for limit in [1, 2, 3, 16] {
            let mut history = History::default();
            history.set_limit(limit);
            for (run, outcome) in outcomes.iter().enumerate() {
                history.record(0, 1, &entry(run as i64), outcome, Instant::ZERO, wall);
                let kept: Vec<RunOutcome> =
                    history.of(0, &id).into_iter().map(|r| r.outcome).collect();
                let from = (run + 1).saturating_sub(limit);
                assert_eq!(kept, outcomes[from..=run], "limit {limit}, run {run}");
                let inline = matches!(history.flows[0], Runs::One(_));
                assert_eq!(
                    inline,
                    kept.len() == 1 && !matches!(kept[0], RunOutcome::Failed(_)),
                    "one run that did not fail is kept inline (limit {limit}, run {run})"
                );
            }
            history.set_limit(1);
            assert_eq!(
                history.of(0, &id).pop().map(|r| r.outcome),
                Some(failed("d")),
                "limit {limit} lowered to 1"
            );
        }
    }
}
