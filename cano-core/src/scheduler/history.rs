//! Run history: the last few runs of each flow ([`RunningScheduler::history`](super::RunningScheduler::history)),
//! kept by the core as runs end, bounded per flow
//! ([`Scheduler::set_history_limit`](super::Scheduler::set_history_limit), default
//! [`DEFAULT_HISTORY_LIMIT`]; 0 keeps none and allocates nothing).

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;

use jiff::Timestamp;

use super::core::{RunFailure, RunOutcome};
use super::job::FireId;
use super::runs::RunEntry;
use crate::time::{Instant, timestamp_at, wall_micros_at};

/// How many runs per flow the history keeps by default: 16 with feature `std`, 4 without
/// (a microcontroller's heap is a few KiB; each kept run is 32 bytes,
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

/// A run as kept, in 32 bytes (it was 48; issue 15): times in µs since the Unix epoch, the
/// flow id left to the caller, the run's length and whether it was cancelled in one word,
/// a failure's text behind a pointer.
#[derive(Debug, Clone)]
struct Kept {
    scheduled: i64,
    ended: i64,
    /// `(ended − started) << 1 | cancelled`.
    took: u64,
    failure: Option<Box<RunFailure>>,
}

impl Kept {
    fn new(scheduled: i64, started: i64, ended: i64, outcome: &RunOutcome) -> Self {
        // A run's start is never after its end (both are read off one clock reading).
        let length = u64::try_from(ended.saturating_sub(started)).unwrap_or(0);
        let (cancelled, failure) = match outcome {
            RunOutcome::Succeeded => (false, None),
            RunOutcome::Cancelled => (true, None),
            RunOutcome::Failed(failure) => (false, Some(Box::new(failure.clone()))),
        };
        Kept {
            scheduled,
            ended,
            took: length.min(u64::MAX >> 1) << 1 | u64::from(cancelled),
            failure,
        }
    }

    fn started(&self) -> i64 {
        // `took >> 1` is below 2⁶³: it fits an `i64`.
        self.ended.saturating_sub((self.took >> 1) as i64)
    }

    fn outcome(&self) -> RunOutcome {
        match &self.failure {
            Some(failure) => RunOutcome::Failed(RunFailure::clone(failure)),
            None if self.took & 1 == 1 => RunOutcome::Cancelled,
            None => RunOutcome::Succeeded,
        }
    }
}

/// One flow's kept runs, oldest first. Most flows keep one (a flow that ran once, or a
/// limit of 1): it is kept inline, with no block of its own; two or more share one ring.
#[derive(Debug, Default)]
enum Runs {
    #[default]
    None,
    One(Kept),
    Many(VecDeque<Kept>),
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
            if let Runs::Many(ring) = runs {
                while ring.len() > limit {
                    ring.pop_front();
                }
                if limit == 1
                    && let Some(last) = ring.pop_back()
                {
                    *runs = Runs::One(last);
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
        let limit = self.limit;
        let runs = &mut self.flows[i];
        *runs = match core::mem::take(runs) {
            Runs::None => Runs::One(kept),
            Runs::One(_) if limit == 1 => Runs::One(kept),
            Runs::One(first) => {
                let mut ring = VecDeque::with_capacity(2);
                ring.push_back(first);
                ring.push_back(kept);
                Runs::Many(ring)
            }
            Runs::Many(mut ring) => {
                if ring.len() >= limit {
                    ring.pop_front();
                } else if ring.len() == ring.capacity() {
                    // Grows by doubling up to the limit, never past it: a flow that ran
                    // three times holds four.
                    let room = (ring.capacity().max(1) * 2).min(limit) - ring.len();
                    ring.reserve_exact(room);
                }
                ring.push_back(kept);
                Runs::Many(ring)
            }
        };
    }

    /// Forgets slot `i`'s runs (its flow was removed, or the slot is reused).
    pub(crate) fn forget(&mut self, i: usize) {
        if let Some(runs) = self.flows.get_mut(i) {
            *runs = Runs::None;
        }
    }

    /// Slot `i`'s runs, oldest first, named by `id`.
    pub(crate) fn of(&self, i: usize, id: &Arc<str>) -> Vec<RunRecord> {
        let record = |kept: &Kept| RunRecord {
            fire: FireId::new(id.clone(), timestamp_at(kept.scheduled)),
            started: timestamp_at(kept.started()),
            ended: timestamp_at(kept.ended),
            outcome: kept.outcome(),
        };
        match self.flows.get(i) {
            None | Some(Runs::None) => Vec::new(),
            Some(Runs::One(kept)) => alloc::vec![record(kept)],
            Some(Runs::Many(ring)) => ring.iter().map(record).collect(),
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
            assert_eq!(core::mem::size_of::<Kept>(), 32);
            assert_eq!(core::mem::size_of::<Runs>(), 40, "one run inline");
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
}
