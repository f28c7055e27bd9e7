//! [`DeadlineQueue`]: one min-heap of due instants for every flow, so a scheduler needs one
//! timer however many flows it has.
//!
//! Re-planning a flow does not search the heap: it bumps the flow's generation and pushes a
//! new entry, and the old one becomes stale (skipped when it reaches the top). Stale entries
//! are counted; once they are the majority (and more than a few), the heap is rebuilt
//! without them, so a flow re-planned over and over cannot grow it without bound.

use alloc::collections::BinaryHeap;
use alloc::vec::Vec;
use core::cmp::Reverse;

use crate::time::Instant;

/// Stale entries tolerated before a compaction is considered.
const STALE_KEPT: usize = 64;

/// Whether a flow has a live entry, and which generation it carries.
#[derive(Debug, Clone, Copy, Default)]
struct Ticket {
    generation: u32,
    armed: bool,
}

/// Due instants of flows `0..n`, at most one live entry per flow.
#[derive(Debug, Default)]
pub(crate) struct DeadlineQueue {
    heap: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    tickets: Vec<Ticket>,
    stale: usize,
}

impl DeadlineQueue {
    /// Makes room for flow `flow` (registration).
    pub(crate) fn add_flow(&mut self) {
        self.tickets.push(Ticket::default());
    }

    /// Sizes the heap for one entry per flow (start).
    pub(crate) fn settle(&mut self) {
        self.tickets.shrink_to_fit();
        self.heap.reserve_exact(self.tickets.len());
    }

    /// Whether `flow` has a live entry.
    pub(crate) fn is_armed(&self, flow: u32) -> bool {
        self.tickets[flow as usize].armed
    }

    /// Plans `flow` for `due`, replacing its live entry if it has one.
    pub(crate) fn arm(&mut self, flow: u32, due: Instant) {
        let ticket = &mut self.tickets[flow as usize];
        if ticket.armed {
            self.stale += 1;
        }
        ticket.generation = ticket.generation.wrapping_add(1);
        ticket.armed = true;
        self.heap.push(Reverse((due, flow, ticket.generation)));
        self.compact();
    }

    /// Forgets `flow`'s live entry, if any.
    pub(crate) fn disarm(&mut self, flow: u32) {
        let ticket = &mut self.tickets[flow as usize];
        if ticket.armed {
            ticket.armed = false;
            self.stale += 1;
            self.compact();
        }
    }

    /// Forgets every entry.
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
        self.stale = 0;
        for ticket in &mut self.tickets {
            ticket.armed = false;
        }
    }

    /// The flow whose live entry is due at `now` (earliest first), taken off the queue.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<u32> {
        while let Some(&Reverse((due, flow, generation))) = self.heap.peek() {
            if due > now {
                break;
            }
            self.heap.pop();
            let ticket = &mut self.tickets[flow as usize];
            if ticket.generation != generation || !ticket.armed {
                self.stale = self.stale.saturating_sub(1);
                continue;
            }
            ticket.armed = false;
            return Some(flow);
        }
        self.drop_stale_top();
        None
    }

    /// The earliest due instant (after [`pop_due`](Self::pop_due) it is a live entry's).
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((due, ..))| *due)
    }

    fn is_live(&self, flow: u32, generation: u32) -> bool {
        let ticket = &self.tickets[flow as usize];
        ticket.armed && ticket.generation == generation
    }

    fn drop_stale_top(&mut self) {
        while let Some(&Reverse((_, flow, generation))) = self.heap.peek() {
            if self.is_live(flow, generation) {
                break;
            }
            self.heap.pop();
            self.stale = self.stale.saturating_sub(1);
        }
    }

    fn compact(&mut self) {
        if self.stale > STALE_KEPT && self.stale > self.heap.len() / 2 {
            let tickets = &self.tickets;
            self.heap.retain(|Reverse((_, flow, generation))| {
                let ticket = &tickets[*flow as usize];
                ticket.armed && ticket.generation == *generation
            });
            self.stale = 0;
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(flows: u32) -> DeadlineQueue {
        let mut q = DeadlineQueue::default();
        for _ in 0..flows {
            q.add_flow();
        }
        q
    }

    #[test]
    fn pops_live_entries_in_due_order_and_skips_replaced_ones() {
        let mut q = queue(3);
        q.arm(0, Instant::from_secs(5));
        q.arm(1, Instant::from_secs(3));
        q.arm(2, Instant::from_secs(4));
        q.arm(1, Instant::from_secs(6)); // re-planned: the entry at 3 is stale
        q.disarm(2);
        assert_eq!(q.pop_due(Instant::from_secs(4)), None);
        assert_eq!(q.next_due(), Some(Instant::from_secs(5)));
        assert_eq!(q.pop_due(Instant::from_secs(10)), Some(0));
        assert!(!q.is_armed(0));
        assert_eq!(q.pop_due(Instant::from_secs(10)), Some(1));
        assert_eq!(q.pop_due(Instant::from_secs(10)), None);
        assert_eq!(q.next_due(), None);
    }

    /// A flow re-planned a million times keeps the heap small.
    #[test]
    fn replanning_forever_does_not_grow_the_heap() {
        let mut q = queue(2);
        q.arm(1, Instant::MAX);
        for i in 0..1_000_000u64 {
            q.arm(0, Instant::from_micros(i));
            assert!(q.len() <= 2 * STALE_KEPT + 4, "{} entries", q.len());
        }
        assert_eq!(q.pop_due(Instant::from_secs(100)), Some(0));
        assert_eq!(q.next_due(), Some(Instant::MAX));
    }
}
