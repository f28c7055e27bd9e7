//! Run history: the last few runs of each flow ([`RunningScheduler::history`](super::RunningScheduler::history)),
//! kept by the core as runs end, bounded per flow
//! ([`Scheduler::set_history_limit`](super::Scheduler::set_history_limit), default
//! [`DEFAULT_HISTORY_LIMIT`]; 0 keeps none and allocates nothing).

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;

use jiff::Timestamp;

use super::core::RunOutcome;
use super::job::FireId;
use super::runs::RunEntry;
use crate::time::{Instant, timestamp_at, wall_micros_at};

/// How many runs per flow the history keeps by default: 16 with feature `std`, 4 without
/// (a microcontroller's heap is a few KiB; each kept run is about 48 bytes).
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

/// A run as kept: times in µs since the Unix epoch, the flow id left to the caller.
#[derive(Debug, Clone)]
struct Kept {
    scheduled: i64,
    started: i64,
    ended: i64,
    outcome: RunOutcome,
}

/// Per flow (by slot), its last `limit` runs, oldest first.
#[derive(Debug)]
pub(crate) struct History {
    flows: Vec<VecDeque<Kept>>,
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
            while runs.len() > limit {
                runs.pop_front();
            }
        }
    }

    /// Keeps run `entry` of slot `i`, ended at `now` / `wall` with `outcome`.
    #[inline]
    pub(crate) fn record(
        &mut self,
        i: usize,
        entry: &RunEntry,
        outcome: &RunOutcome,
        now: Instant,
        wall: Timestamp,
    ) {
        if self.limit == 0 {
            return;
        }
        if self.flows.len() <= i {
            self.flows.resize_with(i + 1, VecDeque::new);
        }
        let runs = &mut self.flows[i];
        if runs.len() >= self.limit {
            runs.pop_front();
        } else if runs.len() == runs.capacity() {
            // Grows by doubling up to the limit, never past it: a flow that ran twice
            // holds two.
            let room = (runs.capacity().max(1) * 2).min(self.limit) - runs.len();
            runs.reserve_exact(room);
        }
        runs.push_back(Kept {
            scheduled: entry.scheduled,
            started: wall_micros_at(entry.started, now, wall),
            ended: wall.as_microsecond(),
            outcome: outcome.clone(),
        });
    }

    /// Forgets slot `i`'s runs (its flow was removed, or the slot is reused).
    pub(crate) fn forget(&mut self, i: usize) {
        if let Some(runs) = self.flows.get_mut(i) {
            *runs = VecDeque::new();
        }
    }

    /// Slot `i`'s runs, oldest first, named by `id`.
    pub(crate) fn of(&self, i: usize, id: &Arc<str>) -> Vec<RunRecord> {
        self.flows.get(i).map_or_else(Vec::new, |runs| {
            runs.iter()
                .map(|kept| RunRecord {
                    fire: FireId::new(id.clone(), timestamp_at(kept.scheduled)),
                    started: timestamp_at(kept.started),
                    ended: timestamp_at(kept.ended),
                    outcome: kept.outcome.clone(),
                })
                .collect()
        })
    }
}
