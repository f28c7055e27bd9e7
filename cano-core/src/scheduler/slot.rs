//! [`FlowSlot`]: one flow inside the [`SchedulerCore`](super::SchedulerCore), and its
//! planning: when it is due next, what a due entry does, how a wall-clock jump moves it, and
//! the fires it plans to make.
//!
//! Fire times are in the flow's timeline base (see [`Timeline`]): monotonic µs for
//! intervals, wall µs since the Unix epoch for cron. Only [`FlowSlot::fire_wall`] and
//! [`FlowSlot::due_instant`] cross between the two, through `time`'s conversions.

use alloc::sync::Arc;
use core::fmt;
use core::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::queue::DeadlineQueue;
use crate::scheduler::flow::FlowState;
use crate::scheduler::schedule::{
    FirstRun, MissedFirePolicy, OverlapPolicy, Timeline, WallSchedule, choose, keep, micros,
    stable_jitter,
};
use crate::time::{Instant, instant_at, mono_micros, timestamp_at, to_wall};

/// A flow's settings, fixed at start.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FlowConfig {
    pub(crate) overlap: OverlapPolicy,
    pub(crate) missed: MissedFirePolicy,
    pub(crate) first_run: FirstRun,
    /// Before start: the largest jitter; after: this flow's fixed offset (µs).
    pub(crate) jitter: i64,
    /// Index into the core's backoff policies.
    pub(crate) backoff: u32,
}

/// What a due queue entry asks of the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Nothing more (the slot re-planned itself or is waiting).
    Nothing,
    /// No run, but plan the next fire.
    Replan,
    /// Start a run for this scheduled wall time (µs), then plan the next fire.
    Start(i64),
}

#[derive(Debug)]
pub(crate) struct FlowSlot {
    pub(crate) id: Arc<str>,
    pub(crate) timeline: Timeline,
    pub(crate) config: FlowConfig,
    pub(crate) state: FlowState,
    /// The pending fire, in the timeline's base (for fixed delay: the nominal next fire,
    /// before a backoff window moves it).
    pub(crate) next_fire: Option<i64>,
    /// The last fire id's time (wall µs): fire ids strictly increase.
    pub(crate) last_fire_id: Option<i64>,
    pub(crate) missed_fires: u32,
    pub(crate) skipped_fires: u32,
    /// A fire came due while the flow was at its overlap limit (the run's end re-plans it;
    /// under `BufferOne` the fires that passed are coalesced into one run).
    pub(crate) due_at_limit: bool,
    /// A `trigger` is held under `BufferOne`, to start when the run in flight ends.
    pub(crate) held_trigger: bool,
}

pub(crate) fn saturating_add(counter: u32, n: u64) -> u32 {
    u32::try_from(u64::from(counter).saturating_add(n)).unwrap_or(u32::MAX)
}

impl FlowSlot {
    pub(crate) fn new(id: &str, timeline: Timeline) -> Self {
        FlowSlot {
            id: Arc::from(id),
            timeline,
            config: FlowConfig::default(),
            state: FlowState::new(),
            next_fire: None,
            last_fire_id: None,
            missed_fires: 0,
            skipped_fires: 0,
            due_at_limit: false,
            held_trigger: false,
        }
    }

    fn base_now(&self, now: Instant, wall: Timestamp) -> i64 {
        if self.timeline.is_wall() {
            wall.as_microsecond()
        } else {
            mono_micros(now)
        }
    }

    /// The time `fire` is scheduled for: for a fixed-delay flow the later of the fire and
    /// the end of its backoff window (other timelines suppress fires inside a window
    /// instead of moving them). The one place the backoff moves a fire.
    pub(crate) fn scheduled_fire(&self, fire: i64) -> i64 {
        match (&self.timeline, self.state.backoff_end()) {
            (Timeline::FixedDelay { .. }, Some(until)) => fire.max(mono_micros(until)),
            _ => fire,
        }
    }

    /// `fire` on the wall clock (µs since the Unix epoch).
    pub(crate) fn fire_wall(&self, fire: i64, now: Instant, wall: Timestamp) -> i64 {
        if self.timeline.is_wall() {
            fire
        } else {
            to_wall(instant_at(fire), now, wall).as_microsecond()
        }
    }

    /// The monotonic instant to wake for `fire`, jitter included.
    pub(crate) fn due_instant(&self, fire: i64, now: Instant, wall: Timestamp) -> Instant {
        let scheduled = self.scheduled_fire(fire);
        let jitter = self.timeline.jitter_for(fire, self.config.jitter);
        let due = if self.timeline.is_wall() {
            let ahead = scheduled.saturating_sub(wall.as_microsecond());
            now + Duration::from_micros(u64::try_from(ahead).unwrap_or(0))
        } else {
            instant_at(scheduled)
        };
        due + Duration::from_micros(jitter as u64)
    }

    /// Queues flow `flow` (this slot) for its pending fire, if it has one.
    pub(crate) fn arm(&self, flow: u32, queue: &mut DeadlineQueue, now: Instant, wall: Timestamp) {
        if let Some(fire) = self.next_fire {
            queue.arm(flow, self.due_instant(fire, now, wall));
        }
    }

    /// Fixes the jitter offset and plans the first fire, at monotonic `now` / wall `wall`.
    pub(crate) fn start(&mut self, seed: u64, zone: &TimeZone, now: Instant, wall: Timestamp) {
        self.config.jitter = micros(stable_jitter(
            seed,
            &self.id,
            Duration::from_micros(self.config.jitter as u64),
        ));
        let after_interval = self.config.first_run == FirstRun::AfterInterval;
        let now_base = mono_micros(now);
        self.next_fire = match &mut self.timeline {
            // Saturating: `every(Duration::MAX)` means "effectively never", not "now".
            Timeline::FixedDelay { interval } => {
                Some(now_base.saturating_add(if after_interval { *interval } else { 0 }))
            }
            Timeline::FixedRate { interval, anchor } => {
                *anchor = now_base.saturating_add(if after_interval { *interval } else { 0 });
                Some(*anchor)
            }
            Timeline::Wall(schedule) => {
                // Not shared before start: plans of upcoming fires need a running core.
                if let Some(schedule) = Arc::get_mut(schedule) {
                    schedule.set_zone(zone);
                }
                schedule.next_after(wall.as_microsecond())
            }
            Timeline::Manual => None,
        };
    }

    /// Re-plans this flow (index `flow`) after its state changed, while the scheduler runs.
    /// `fresh` (reset, resume) forgets fires that passed while it was off.
    pub(crate) fn rearm(
        &mut self,
        flow: u32,
        queue: &mut DeadlineQueue,
        now: Instant,
        wall: Timestamp,
        fresh: bool,
    ) {
        if self.state.is_paused() || self.state.is_tripped() {
            queue.disarm(flow);
            return;
        }
        let can_start = self.state.check_start(self.config.overlap.limit()).is_ok();
        if self.held_trigger {
            if can_start {
                queue.arm(flow, now);
            } else {
                self.due_at_limit = true;
                queue.disarm(flow);
            }
            return;
        }
        match self.timeline {
            Timeline::Manual => {}
            Timeline::FixedDelay { interval } => {
                if self.state.running() > 0 {
                    self.next_fire = None;
                    queue.disarm(flow);
                    return;
                }
                let fire = self
                    .next_fire
                    .get_or_insert(mono_micros(now).saturating_add(interval));
                if fresh {
                    *fire = (*fire).max(mono_micros(now));
                }
                self.arm(flow, queue, now, wall);
            }
            Timeline::FixedRate { .. } | Timeline::Wall(_) => {
                if fresh {
                    self.next_fire = self.timeline.next_after(self.base_now(now, wall));
                }
                if self.next_fire.is_none() {
                    queue.disarm(flow);
                } else if can_start {
                    if !queue.is_armed(flow) || fresh {
                        self.arm(flow, queue, now, wall);
                    }
                } else {
                    self.due_at_limit = true;
                    queue.disarm(flow);
                }
            }
        }
    }

    /// This flow's queue entry came due at `now` / `wall`; `grace` is how late a fire may
    /// be and still be on time (µs).
    pub(crate) fn on_due(
        &mut self,
        flow: u32,
        queue: &mut DeadlineQueue,
        now: Instant,
        wall: Timestamp,
        grace: i64,
    ) -> Due {
        if self.state.is_paused() || self.state.is_tripped() {
            return Due::Nothing;
        }
        let limit = self.config.overlap.limit();
        if self.held_trigger {
            if self.state.check_start(limit).is_err() {
                self.due_at_limit = true;
                return Due::Nothing;
            }
            self.held_trigger = false;
            return Due::Start(wall.as_microsecond());
        }
        let Some(fire) = self.next_fire else {
            return Due::Nothing;
        };
        let base_now = self.base_now(now, wall);
        if fire > base_now {
            // The wall clock is behind the plan (stepped back, or drifted): plan again.
            self.arm(flow, queue, now, wall);
            return Due::Nothing;
        }
        if self.state.check_start(limit).is_err() {
            self.due_at_limit = true;
            return Due::Nothing;
        }
        if let Timeline::FixedDelay { .. } = self.timeline {
            let scheduled = self.scheduled_fire(fire);
            self.next_fire = None;
            return Due::Start(self.fire_wall(scheduled, now, wall));
        }
        if self.state.backoff_until(now).is_some() {
            // Suppressed one by one (as cano 0.12's loops do), so the count is exact.
            let passed = self.timeline.passed(fire, base_now, 1);
            self.skipped_fires = saturating_add(self.skipped_fires, passed.count);
            self.next_fire = self.timeline.next_after(passed.latest);
            self.arm(flow, queue, now, wall);
            return Due::Nothing;
        }
        let passed = self
            .timeline
            .passed(fire, base_now, keep(self.config.missed));
        let coalesce = self.due_at_limit && self.config.overlap == OverlapPolicy::BufferOne;
        let choice = choose(
            self.config.missed,
            &passed,
            base_now,
            grace.saturating_add(self.config.jitter),
            coalesce,
        );
        self.due_at_limit = false;
        self.missed_fires = saturating_add(self.missed_fires, choice.dropped);
        self.next_fire = self
            .timeline
            .next_after(choice.run.unwrap_or(passed.latest));
        match choice.run {
            Some(run) => Due::Start(self.fire_wall(run, now, wall)),
            None => Due::Replan,
        }
    }

    /// The wall clock jumped (the wall-minus-monotonic offset moved) while this wall flow
    /// (index `flow`) was planned; `correction` (a large backward step) restarts it from the
    /// new wall time, fire ids included.
    pub(crate) fn wall_jumped(
        &mut self,
        flow: u32,
        queue: &mut DeadlineQueue,
        now: Instant,
        wall: Timestamp,
        correction: bool,
    ) {
        if correction {
            // This applies to flows that are not armed too (a run in flight): they re-arm
            // from this fire.
            self.next_fire = self.timeline.next_at_or_after(wall.as_microsecond());
            self.last_fire_id = None;
        }
        if queue.is_armed(flow) {
            queue.disarm(flow);
            self.arm(flow, queue, now, wall);
        }
    }

    /// The next fire as planned (backoff applied, before jitter), on the wall clock.
    pub(crate) fn planned_fire(&self, now: Instant, wall: Timestamp) -> Option<Timestamp> {
        if self.state.is_paused() || self.state.is_tripped() {
            return None;
        }
        let fire = self.scheduled_fire(self.next_fire?);
        Some(timestamp_at(self.fire_wall(fire, now, wall)))
    }

    /// The fires this flow plans to make from now on (see [`UpcomingFires`]).
    pub(crate) fn upcoming(&self, now: Instant, wall: Timestamp) -> UpcomingFires {
        let none = UpcomingFires {
            next: None,
            offset: 0,
            step: Step::Interval(0),
        };
        if self.state.is_paused() || self.state.is_tripped() {
            return none;
        }
        let Some(fire) = self.next_fire else {
            return none;
        };
        let next = Some(self.scheduled_fire(fire));
        match &self.timeline {
            Timeline::FixedDelay { interval } | Timeline::FixedRate { interval, .. } => {
                UpcomingFires {
                    next,
                    offset: wall.as_microsecond().saturating_sub(mono_micros(now)),
                    step: Step::Interval(*interval),
                }
            }
            Timeline::Wall(schedule) => UpcomingFires {
                next,
                offset: 0,
                step: Step::Wall(schedule.clone()),
            },
            Timeline::Manual => none,
        }
    }
}

#[derive(Clone)]
enum Step {
    Interval(i64),
    Wall(Arc<dyn WallSchedule>),
}

/// A flow's planned fire times (wall clock, before jitter), computed lazily: take as many as
/// needed. Owns what it needs, so walking it holds no lock of the scheduler. For a fixed-delay
/// flow it assumes each run takes no time; it ends for a cron expression with no further
/// match, and is empty for manual, paused, tripped or stopped flows.
#[derive(Clone)]
pub struct UpcomingFires {
    /// In the timeline's base.
    next: Option<i64>,
    /// Added to a monotonic fire to put it on the wall clock.
    offset: i64,
    step: Step,
}

impl UpcomingFires {
    pub(crate) fn empty() -> Self {
        UpcomingFires {
            next: None,
            offset: 0,
            step: Step::Interval(0),
        }
    }
}

impl Iterator for UpcomingFires {
    type Item = Timestamp;

    fn next(&mut self) -> Option<Timestamp> {
        let fire = self.next?;
        self.next = match &self.step {
            Step::Interval(interval) => fire.checked_add(*interval),
            Step::Wall(schedule) => schedule.next_after(fire),
        };
        Some(timestamp_at(fire.saturating_add(self.offset)))
    }
}

impl core::iter::FusedIterator for UpcomingFires {}

impl fmt::Debug for UpcomingFires {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpcomingFires")
            .field(
                "next",
                &self
                    .next
                    .map(|n| timestamp_at(n.saturating_add(self.offset))),
            )
            .finish_non_exhaustive()
    }
}
