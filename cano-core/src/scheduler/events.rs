//! What a running scheduler tells the outside: [`SchedulerEvent`]s, made by the pure
//! [`SchedulerCore`](super::SchedulerCore) as it decides, read through a subscription
//! ([`RunningScheduler::subscribe`](super::RunningScheduler::subscribe), an async
//! [`Stream`]) or a synchronous [`SchedulerObserver`].
//!
//! # How events travel
//!
//! The core keeps the events in one bounded ring ([`Scheduler::set_event_capacity`](super::Scheduler::set_event_capacity),
//! default [`DEFAULT_EVENT_CAPACITY`]) that it overwrites oldest-first, like a broadcast
//! channel: each subscriber reads it at its own pace through its own cursor, so the ring's
//! capacity is how far each subscriber may fall behind. A subscriber that falls further
//! behind is never waited for: its next item is [`SchedulerEvent::Lagged`] with the number
//! of events it missed, and it goes on from the oldest event still kept. The scheduler is
//! never slowed or blocked by a slow (or stuck) subscriber.
//!
//! While nobody subscribes and no observer is registered, the core makes no event at all
//! (one branch per decision) and the ring holds no memory. Events hold shared text (the
//! flow's id, a failure's message), so making one allocates nothing.
//!
//! Subscribers are woken by the scheduler's loop, outside its lock, after each batch of
//! decisions; observers are called there too, in order, also outside the lock.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use futures::Stream;

use super::core::RunOutcome;
use super::driver::Runs;
use super::job::FireId;
use super::runs::{RunEntry, RunId};
use super::slot::FlowSlot;
use crate::scheduler::flow::Transition;
use crate::time::{Instant, timestamp_at};

/// How many events the core keeps for its subscribers by default: how far a subscriber may
/// fall behind before it gets [`SchedulerEvent::Lagged`]. 256 with feature `std`, 16 without
/// (a microcontroller's heap is a few KiB; an event is at most about 80 bytes).
pub const DEFAULT_EVENT_CAPACITY: usize = if cfg!(feature = "std") { 256 } else { 16 };

/// Events a subscription takes from the scheduler per lock section.
const BATCH: usize = 32;

/// One thing that happened in a scheduler, in the order the core decided it.
///
/// Flow ids are shared (`Arc<str>`), so events are cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchedulerEvent {
    /// A run started (a scheduled fire, a catch-up fire or a trigger).
    FireStarted {
        /// The run's fire id.
        fire: FireId,
        /// The run, as its end names it.
        run: RunId,
    },
    /// A run ended.
    FireEnded {
        /// The run's fire id.
        fire: FireId,
        /// The run.
        run: RunId,
        /// How it ended (a failure carries its error text).
        outcome: RunOutcome,
        /// How long it ran, on the monotonic clock.
        duration: Duration,
    },
    /// Fires the missed-fire policy dropped (they came due too late, e.g. after a suspend).
    FiresMissed {
        /// The flow.
        flow: Arc<str>,
        /// How many.
        count: u64,
    },
    /// Fires that came due inside a backoff window and were suppressed.
    FiresSkipped {
        /// The flow.
        flow: Arc<str>,
        /// How many.
        count: u64,
    },
    /// A failure put the flow into backoff: scheduled fires wait `delay`.
    Backoff {
        /// The flow.
        flow: Arc<str>,
        /// Consecutive failures so far.
        streak: u32,
        /// How long scheduled fires wait.
        delay: Duration,
    },
    /// A failure tripped the flow: nothing runs until `reset_flow`.
    Tripped {
        /// The flow.
        flow: Arc<str>,
        /// Consecutive failures.
        streak: u32,
    },
    /// `reset_flow` cleared the flow's streak, backoff and trip.
    Reset {
        /// The flow.
        flow: Arc<str>,
    },
    /// `pause` stopped the flow's scheduled fires.
    Paused {
        /// The flow.
        flow: Arc<str>,
    },
    /// `resume` restarted the flow's scheduled fires.
    Resumed {
        /// The flow.
        flow: Arc<str>,
    },
    /// A flow was added while running.
    FlowAdded {
        /// The flow.
        flow: Arc<str>,
    },
    /// A flow was removed (its runs in flight end as the removal said).
    FlowRemoved {
        /// The flow.
        flow: Arc<str>,
    },
    /// A flow's schedule, policies and job were replaced.
    FlowReplaced {
        /// The flow.
        flow: Arc<str>,
    },
    /// A stop began: nothing new starts.
    Stopping,
    /// The stop is complete: no run is in flight. The last event of a scheduler.
    Stopped,
    /// Only in a subscription: this subscriber fell so far behind that `missed` events were
    /// overwritten before it read them. The next item is the oldest event still kept.
    Lagged {
        /// Events this subscriber will never see.
        missed: u64,
    },
}

impl SchedulerEvent {
    /// The flow the event is about, if it is about one.
    pub fn flow(&self) -> Option<&str> {
        match self {
            SchedulerEvent::FireStarted { fire, .. } | SchedulerEvent::FireEnded { fire, .. } => {
                Some(fire.flow())
            }
            SchedulerEvent::FiresMissed { flow, .. }
            | SchedulerEvent::FiresSkipped { flow, .. }
            | SchedulerEvent::Backoff { flow, .. }
            | SchedulerEvent::Tripped { flow, .. }
            | SchedulerEvent::Reset { flow }
            | SchedulerEvent::Paused { flow }
            | SchedulerEvent::Resumed { flow }
            | SchedulerEvent::FlowAdded { flow }
            | SchedulerEvent::FlowRemoved { flow }
            | SchedulerEvent::FlowReplaced { flow } => Some(flow),
            SchedulerEvent::Stopping | SchedulerEvent::Stopped | SchedulerEvent::Lagged { .. } => {
                None
            }
        }
    }
}

/// A synchronous hook called with every [`SchedulerEvent`], in order, on the scheduler's
/// loop task and outside its lock (register with
/// [`Scheduler::observe`](super::Scheduler::observe)).
///
/// Keep it quick and never block in it: while it runs, the loop starts nothing. An
/// observer that falls more than the event capacity behind (the loop was busy) sees
/// [`SchedulerEvent::Lagged`] too. For slow consumers, use a subscription.
pub trait SchedulerObserver: Send + Sync + 'static {
    /// Called with each event.
    fn on_event(&self, event: &SchedulerEvent);
}

impl<F> SchedulerObserver for F
where
    F: Fn(&SchedulerEvent) + Send + Sync + 'static,
{
    fn on_event(&self, event: &SchedulerEvent) {
        self(event);
    }
}

/// A reader's place in a core's events ([`SchedulerCore::subscribe_events`](super::SchedulerCore::subscribe_events)).
/// Give it back with [`SchedulerCore::unsubscribe_events`](super::SchedulerCore::unsubscribe_events):
/// while it is out, the core keeps making events.
#[derive(Debug, PartialEq, Eq)]
pub struct EventCursor {
    next: u64,
}

/// The core's bounded ring of events (see the [module docs](self)).
#[derive(Debug)]
pub(crate) struct EventLog {
    ring: VecDeque<SchedulerEvent>,
    capacity: usize,
    /// The sequence number the next event gets.
    next: u64,
    readers: usize,
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog {
            ring: VecDeque::new(),
            capacity: DEFAULT_EVENT_CAPACITY,
            next: 0,
            readers: 0,
        }
    }
}

impl EventLog {
    /// Keeps the event `make` builds, if anybody reads events.
    #[inline(always)]
    pub(crate) fn push(&mut self, make: impl FnOnce() -> SchedulerEvent) {
        if self.readers > 0 {
            self.keep(make());
        }
    }

    #[inline(never)]
    fn keep(&mut self, event: SchedulerEvent) {
        if self.ring.len() >= self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back(event);
        self.next += 1;
    }

    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        while self.ring.len() > self.capacity {
            self.ring.pop_front();
        }
    }

    pub(crate) fn subscribe(&mut self) -> EventCursor {
        if self.readers == 0 {
            self.ring.reserve_exact(self.capacity);
        }
        self.readers += 1;
        EventCursor { next: self.next }
    }

    pub(crate) fn unsubscribe(&mut self, cursor: EventCursor) {
        let _ = cursor;
        self.readers = self.readers.saturating_sub(1);
        if self.readers == 0 {
            // Nobody reads: the ring's memory goes back.
            self.ring = VecDeque::new();
        }
    }

    /// The sequence number of the oldest event kept.
    fn oldest(&self) -> u64 {
        self.next - self.ring.len() as u64
    }

    /// The event after `cursor` (a [`SchedulerEvent::Lagged`] first if the cursor's next
    /// events were overwritten), moving the cursor on.
    pub(crate) fn read(&self, cursor: &mut EventCursor) -> Option<SchedulerEvent> {
        let oldest = self.oldest();
        if cursor.next < oldest {
            let missed = oldest - cursor.next;
            cursor.next = oldest;
            return Some(SchedulerEvent::Lagged { missed });
        }
        let event = self.ring.get((cursor.next - oldest) as usize)?.clone();
        cursor.next += 1;
        Some(event)
    }

    /// A flow's missed and skipped counters, to compare after a decision
    /// ([`fires_dropped`](Self::fires_dropped)).
    #[inline(always)]
    pub(crate) fn counts(slot: &FlowSlot) -> (u32, u32) {
        (slot.missed_fires, slot.config.skipped_fires())
    }

    /// The fires a due entry of `slot` dropped, since its counters were `before`.
    #[inline(always)]
    pub(crate) fn fires_dropped(&mut self, slot: &FlowSlot, before: (u32, u32)) {
        if self.readers == 0 {
            return;
        }
        let (missed, skipped) = (slot.missed_fires, slot.config.skipped_fires());
        if missed > before.0 {
            self.keep(SchedulerEvent::FiresMissed {
                flow: slot.id.clone(),
                count: u64::from(missed - before.0),
            });
        }
        if skipped > before.1 {
            self.keep(SchedulerEvent::FiresSkipped {
                flow: slot.id.clone(),
                count: u64::from(skipped - before.1),
            });
        }
    }

    /// An event about `slot` alone.
    #[inline(always)]
    pub(crate) fn flow_event(
        &mut self,
        slot: &FlowSlot,
        make: impl FnOnce(Arc<str>) -> SchedulerEvent,
    ) {
        if self.readers > 0 {
            self.keep(make(slot.id.clone()));
        }
    }

    /// Run `run` of `slot`, started as `entry` says, ended at `now` with `outcome`.
    #[inline(always)]
    pub(crate) fn run_ended(
        &mut self,
        slot: &FlowSlot,
        run: RunId,
        entry: RunEntry,
        outcome: &RunOutcome,
        now: Instant,
    ) {
        if self.readers > 0 {
            self.keep(SchedulerEvent::FireEnded {
                fire: FireId::new(slot.id.clone(), timestamp_at(entry.scheduled)),
                run,
                outcome: outcome.clone(),
                duration: now.saturating_duration_since(entry.started),
            });
        }
    }

    /// What a run's outcome did to `slot`'s status.
    #[inline(always)]
    pub(crate) fn transition(&mut self, slot: &FlowSlot, transition: Transition, now: Instant) {
        if self.readers == 0 {
            return;
        }
        let (flow, streak) = (slot.id.clone(), slot.state.failure_streak());
        match transition {
            Transition::Completed => {}
            Transition::Backoff { until } => self.keep(SchedulerEvent::Backoff {
                flow,
                streak,
                delay: until.saturating_duration_since(now),
            }),
            Transition::Tripped => self.keep(SchedulerEvent::Tripped { flow, streak }),
        }
    }

    /// The sequence number of the next event: it moves whenever an event is made.
    pub(crate) fn sequence(&self) -> u64 {
        self.next
    }
}

/// The driver's side of events: parked subscribers, and the cursor the observers read with.
#[derive(Default)]
pub(crate) struct EventPump {
    waiters: Vec<Waker>,
    /// The event sequence number the parked subscribers were last woken at.
    announced: u64,
    observed: Option<EventCursor>,
}

impl EventPump {
    /// Whether the loop must run to deliver events made since it last did.
    #[inline]
    pub(crate) fn must_wake(&self, log: &EventLog) -> bool {
        log.sequence() != self.announced && (!self.waiters.is_empty() || self.observed.is_some())
    }

    /// Starts reading for the observers (at launch, if there are any).
    pub(crate) fn observe(&mut self, log: &mut EventLog) {
        if self.observed.is_none() {
            self.observed = Some(log.subscribe());
        }
    }

    /// Under the lock: moves the subscribers to wake into `wake` and the events for the
    /// observers into `observed`, both emptied by [`deliver`](Self::deliver) outside it.
    pub(crate) fn collect(
        &mut self,
        log: &EventLog,
        wake: &mut Vec<Waker>,
        observed: &mut Vec<SchedulerEvent>,
    ) {
        if log.sequence() == self.announced {
            return;
        }
        self.announced = log.sequence();
        core::mem::swap(&mut self.waiters, wake);
        if let Some(cursor) = &mut self.observed {
            while let Some(event) = log.read(cursor) {
                observed.push(event);
            }
        }
    }

    /// Outside the lock: wakes the subscribers and calls the observers.
    pub(crate) fn deliver(
        wake: &mut Vec<Waker>,
        observed: &mut Vec<SchedulerEvent>,
        observers: &[Arc<dyn SchedulerObserver>],
    ) {
        wake.drain(..).for_each(Waker::wake);
        for event in observed.drain(..) {
            for observer in observers {
                observer.on_event(&event);
            }
        }
    }

    pub(crate) fn park(&mut self, waker: &Waker) {
        if !self.waiters.iter().any(|w| w.will_wake(waker)) {
            self.waiters.push(waker.clone());
        }
    }
}

/// A subscription to a running scheduler's events
/// ([`RunningScheduler::subscribe`](super::RunningScheduler::subscribe)): a [`Stream`] of
/// [`SchedulerEvent`]s from the moment it was made. It ends after
/// [`SchedulerEvent::Stopped`] (at once if the scheduler had stopped already).
///
/// It never slows the scheduler: if it falls more than the event capacity behind, its next
/// item is [`SchedulerEvent::Lagged`]. Dropping it unsubscribes.
pub struct SchedulerEvents {
    runs: Arc<dyn Runs>,
    cursor: Option<EventCursor>,
    buffer: VecDeque<SchedulerEvent>,
}

impl SchedulerEvents {
    pub(crate) fn new(runs: Arc<dyn Runs>) -> Self {
        let cursor = runs
            .common()
            .state
            .with(|st| (!st.core.is_stopped()).then(|| st.core.subscribe_events()));
        SchedulerEvents {
            runs,
            cursor,
            buffer: VecDeque::new(),
        }
    }
}

impl Stream for SchedulerEvents {
    type Item = SchedulerEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SchedulerEvent>> {
        let this = &mut *self;
        if let Some(event) = this.buffer.pop_front() {
            return Poll::Ready(Some(event));
        }
        let Some(cursor) = this.cursor.as_mut() else {
            return Poll::Ready(None);
        };
        let buffer = &mut this.buffer;
        let ended = this.runs.common().state.with(|st| {
            while buffer.len() < BATCH {
                match st.core.next_event(cursor) {
                    Some(event) => buffer.push_back(event),
                    None => break,
                }
            }
            if buffer.is_empty() {
                if st.core.is_stopped() {
                    return true;
                }
                st.pump.park(cx.waker());
            }
            false
        });
        if ended {
            if let Some(cursor) = this.cursor.take() {
                this.runs
                    .common()
                    .state
                    .with(|st| st.core.unsubscribe_events(cursor));
            }
            return Poll::Ready(None);
        }
        match this.buffer.pop_front() {
            Some(event) => Poll::Ready(Some(event)),
            None => Poll::Pending,
        }
    }
}

impl Drop for SchedulerEvents {
    fn drop(&mut self) {
        if let Some(cursor) = self.cursor.take() {
            self.runs
                .common()
                .state
                .with(|st| st.core.unsubscribe_events(cursor));
        }
    }
}

impl core::fmt::Debug for SchedulerEvents {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SchedulerEvents")
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paused(i: u32) -> SchedulerEvent {
        SchedulerEvent::Paused {
            flow: alloc::format!("f{i}").into(),
        }
    }

    #[test]
    fn no_reader_no_event_and_a_slow_reader_gets_lagged_then_continues() {
        let mut log = EventLog::default();
        log.set_capacity(4);
        log.push(|| unreachable!("nobody reads: the event is never made"));
        assert_eq!(log.sequence(), 0);
        let mut fast = log.subscribe();
        let mut slow = log.subscribe();
        for i in 0..3 {
            log.push(|| paused(i));
        }
        for i in 0..3 {
            assert_eq!(log.read(&mut fast), Some(paused(i)));
        }
        assert_eq!(log.read(&mut fast), None);
        for i in 3..10 {
            log.push(|| paused(i));
        }
        assert_eq!(
            log.read(&mut slow),
            Some(SchedulerEvent::Lagged { missed: 6 })
        );
        for i in 6..10 {
            assert_eq!(log.read(&mut slow), Some(paused(i)));
        }
        assert_eq!(log.read(&mut slow), None);
        assert_eq!(
            log.read(&mut fast),
            Some(SchedulerEvent::Lagged { missed: 3 })
        );
        log.unsubscribe(fast);
        log.unsubscribe(slow);
        log.push(|| unreachable!("the last reader left"));
        assert_eq!(log.ring.capacity(), 0, "no memory kept without readers");
    }
}
