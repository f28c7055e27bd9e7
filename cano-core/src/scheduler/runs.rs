//! [`RunId`] and the core's table of runs in flight: each dispatch is issued a run id, its
//! outcome comes back under it, and a stop's deadline names the runs to cancel by it.

use alloc::vec::Vec;

use jiff::Timestamp;

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
    /// The fire id's time, to name the run in a stop report without keeping its id.
    pub(crate) scheduled: Timestamp,
    /// A stop's deadline asked for it to be cancelled.
    pub(crate) cancelling: bool,
}

#[derive(Debug, Default)]
pub(crate) struct RunTable {
    slots: Vec<(u32, Option<RunEntry>)>,
    free: Vec<u32>,
    live: usize,
    /// Issued to each run in turn, so ids are unique over the table's life (until `u32`
    /// wraps), even when the table shrinks after a burst.
    next_generation: u32,
}

impl RunTable {
    pub(crate) fn insert(&mut self, flow: u32, scheduled: Timestamp) -> RunId {
        self.live += 1;
        let generation = self.next_generation;
        self.next_generation = generation.wrapping_add(1);
        let entry = RunEntry {
            flow,
            scheduled,
            cancelling: false,
        };
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = (generation, Some(entry));
                RunId { slot, generation }
            }
            None => {
                let slot = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                self.slots.push((generation, Some(entry)));
                RunId { slot, generation }
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn get(&self, run: RunId) -> Option<&RunEntry> {
        match self.slots.get(run.slot as usize) {
            Some((generation, Some(entry))) if *generation == run.generation => Some(entry),
            _ => None,
        }
    }

    pub(crate) fn remove(&mut self, run: RunId) -> Option<RunEntry> {
        let (generation, place) = self.slots.get_mut(run.slot as usize)?;
        if *generation != run.generation {
            return None;
        }
        let entry = place.take()?;
        self.live -= 1;
        self.free.push(run.slot);
        if self.live == 0 && self.slots.len() > KEPT {
            self.slots = Vec::new();
            self.free = Vec::new();
        }
        Some(entry)
    }

    /// Runs in flight.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// The first run in flight not yet asked to cancel, marked as asked.
    pub(crate) fn next_to_cancel(&mut self) -> Option<(RunId, RunEntry)> {
        self.slots
            .iter_mut()
            .enumerate()
            .find_map(|(slot, (generation, place))| {
                let entry = place.as_mut().filter(|e| !e.cancelling)?;
                entry.cancelling = true;
                Some((
                    RunId {
                        slot: slot as u32,
                        generation: *generation,
                    },
                    *entry,
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_and_stale_ids_refused() {
        let mut t = RunTable::default();
        let at = Timestamp::UNIX_EPOCH;
        let a = t.insert(0, at);
        let b = t.insert(1, at);
        assert_eq!((a.slot(), b.slot()), (0, 1));
        assert_eq!(t.remove(a).map(|e| e.flow), Some(0));
        assert!(t.remove(a).is_none(), "reported twice");
        let c = t.insert(2, at);
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
