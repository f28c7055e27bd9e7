//! [`RunId`] and the core's table of runs in flight: each dispatch is issued a run id, its
//! outcome comes back under it, and a stop's deadline names the runs to cancel by it.

use alloc::vec::Vec;

/// Table capacity kept across bursts (every flow firing at start must not pin its peak).
const KEPT: usize = 64;

/// One run in flight, as issued with its [`Dispatch`](super::Dispatch).
///
/// Its [`slot`](RunId::slot) is a small number, unique among the runs in flight and reused
/// after a run ends, so a driver can keep its per-run data (an abort handle) in a plain
/// vector indexed by it. The generation makes a stale id (a run reported twice) an error
/// instead of a confusion with a later run in the same slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RunId {
    slot: u32,
    generation: u32,
}

impl RunId {
    /// The run's slot: below the largest number of runs in flight at once so far.
    pub fn slot(self) -> usize {
        self.slot as usize
    }
}

/// What the core remembers of a run in flight.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunEntry {
    pub(crate) flow: u32,
    /// The fire id's time (µs since the Unix epoch), to name the run in a stop report
    /// without keeping its id.
    pub(crate) scheduled: i64,
    /// Its cancellation was signalled (by a stop's deadline or a cancel request).
    pub(crate) cancelling: bool,
    /// Its drop was asked for (the wind-down after its cancellation passed, or its fleet
    /// lease was lost).
    pub(crate) dropped: bool,
    /// When it started (monotonic), for its duration.
    pub(crate) started: crate::time::Instant,
}

/// `RunSlot::flow` of a free slot.
const FREE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct RunSlot {
    generation: u32,
    entry: RunEntry,
}

#[derive(Debug, Default)]
pub(crate) struct RunTable {
    slots: Vec<RunSlot>,
    free: Vec<u32>,
    live: usize,
    /// Issued to each run in turn, so ids are unique over the table's life (until `u32`
    /// wraps), even when the table shrinks after a burst.
    next_generation: u32,
    /// Where the search for runs to cancel resumes (no run starts once a stop began).
    cancel_from: usize,
    /// Where the search for runs to drop at a stop's wind-down deadline resumes.
    drop_from: usize,
}

impl RunTable {
    pub(crate) fn insert(
        &mut self,
        flow: u32,
        scheduled: i64,
        started: crate::time::Instant,
    ) -> RunId {
        self.live += 1;
        let generation = self.next_generation;
        self.next_generation = generation.wrapping_add(1);
        let place = RunSlot {
            generation,
            entry: RunEntry {
                flow,
                scheduled,
                cancelling: false,
                dropped: false,
                started,
            },
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = place;
                slot
            }
            None => {
                self.slots.push(place);
                (self.slots.len() - 1) as u32
            }
        };
        RunId { slot, generation }
    }

    fn live_slot(&self, run: RunId) -> Option<&RunSlot> {
        self.slots
            .get(run.slot as usize)
            .filter(|s| s.generation == run.generation && s.entry.flow != FREE)
    }

    pub(crate) fn get(&self, run: RunId) -> Option<&RunEntry> {
        self.live_slot(run).map(|s| &s.entry)
    }

    /// Ends run `run`: its flow, or `None` if it is not in flight.
    pub(crate) fn remove(&mut self, run: RunId) -> Option<u32> {
        let place = self
            .slots
            .get_mut(run.slot as usize)
            .filter(|s| s.generation == run.generation && s.entry.flow != FREE)?;
        let flow = core::mem::replace(&mut place.entry.flow, FREE);
        self.live -= 1;
        if self.live == 0 {
            self.cancel_from = 0;
            self.drop_from = 0;
            if self.slots.len() > KEPT {
                self.slots = Vec::new();
                self.free = Vec::new();
                return Some(flow);
            }
        }
        self.free.push(run.slot);
        Some(flow)
    }

    /// The runs in flight of `flow`.
    pub(crate) fn of_flow(&self, flow: u32) -> impl Iterator<Item = RunId> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.entry.flow == flow)
            .map(|(slot, s)| RunId {
                slot: slot as u32,
                generation: s.generation,
            })
    }

    fn live_entry_mut(&mut self, run: RunId) -> Option<&mut RunEntry> {
        self.slots
            .get_mut(run.slot as usize)
            .filter(|s| s.generation == run.generation && s.entry.flow != FREE)
            .map(|s| &mut s.entry)
    }

    /// Marks run `run` as signalled to cancel (a stop's deadline then skips it).
    pub(crate) fn mark_cancelling(&mut self, run: RunId) {
        if let Some(entry) = self.live_entry_mut(run) {
            entry.cancelling = true;
        }
    }

    /// Marks run `run` as asked to be dropped; whether it was in flight and not yet asked.
    pub(crate) fn mark_dropped(&mut self, run: RunId) -> bool {
        match self.live_entry_mut(run) {
            Some(entry) if !entry.dropped => {
                entry.dropped = true;
                true
            }
            _ => false,
        }
    }

    /// Runs in flight.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// A run of `flow` in flight that is not in `except`.
    pub(crate) fn next_of(&self, flow: u32, except: &[RunId]) -> Option<RunId> {
        self.slots.iter().enumerate().find_map(|(slot, place)| {
            let run = RunId {
                slot: slot as u32,
                generation: place.generation,
            };
            (place.entry.flow == flow && !except.contains(&run)).then_some(run)
        })
    }

    /// The next run in flight not yet asked to cancel, marked as asked.
    pub(crate) fn next_to_cancel(&mut self) -> Option<(RunId, RunEntry)> {
        while let Some(place) = self.slots.get_mut(self.cancel_from) {
            let slot = self.cancel_from as u32;
            self.cancel_from += 1;
            if place.entry.flow != FREE && !place.entry.cancelling {
                place.entry.cancelling = true;
                let run = RunId {
                    slot,
                    generation: place.generation,
                };
                return Some((run, place.entry));
            }
        }
        None
    }
}

impl RunTable {
    /// The next run in flight not yet asked to be dropped, marked as asked.
    pub(crate) fn next_to_drop(&mut self) -> Option<RunId> {
        while let Some(place) = self.slots.get_mut(self.drop_from) {
            let slot = self.drop_from as u32;
            self.drop_from += 1;
            if place.entry.flow != FREE && !place.entry.dropped {
                place.entry.dropped = true;
                return Some(RunId {
                    slot,
                    generation: place.generation,
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_and_stale_ids_refused() {
        let mut t = RunTable::default();
        let at = 0;
        let now = crate::time::Instant::ZERO;
        let a = t.insert(0, at, now);
        let b = t.insert(1, at, now);
        assert_eq!((a.slot(), b.slot()), (0, 1));
        assert_eq!(t.remove(a), Some(0));
        assert!(t.remove(a).is_none(), "reported twice");
        let c = t.insert(2, at, now);
        assert_eq!(c.slot(), 0);
        assert!(t.get(a).is_none(), "a stale id does not name the new run");
        assert_eq!(t.get(c).map(|e| e.flow), Some(2));
        assert_eq!(t.live(), 2);
        let (first, _) = t.next_to_cancel().unwrap();
        let (second, _) = t.next_to_cancel().unwrap();
        assert_eq!((first, second), (c, b));
        assert!(t.next_to_cancel().is_none());
    }
}
