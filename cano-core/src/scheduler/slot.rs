//! [`FlowSlot`]: one flow inside the [`SchedulerCore`](super::SchedulerCore), and its
//! planning: when it is due next, what a due entry does, how a wall-clock jump moves it, and
//! the fires it plans to make.
//!
//! A planned fire is a [`FireTime`]: on the monotonic clock for intervals, on the wall clock
//! for cron. The timeline arithmetic of [`Timeline`] works in microseconds of the fire's own
//! clock; only [`FireTime::on_wall`] and [`FireTime::due`] cross between the two clocks,
//! through `time`'s conversions.

use alloc::sync::Arc;
use core::fmt;
use core::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::queue::DeadlineQueue;
use crate::persist::ScheduleHash;
use crate::scheduler::flow::FlowState;
use crate::scheduler::schedule::{
    FirstRun, MissedFirePolicy, OverlapPolicy, RunStart, Schedule, SchedulePolicy, Timeline,
    WallSchedule, choose, keep, micros, stable_jitter,
};
use crate::time::{Instant, instant_at, mono_micros, timestamp_at, wall_micros_at};

/// A flow's settings that most flows leave at their defaults, fixed at start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FlowConfig {
    pub(crate) overlap: OverlapPolicy,
    pub(crate) missed: MissedFirePolicy,
    /// Before start: the largest jitter; after: this flow's fixed offset (µs).
    pub(crate) jitter: i64,
    /// Index into the core's backoff policies.
    pub(crate) backoff: u32,
}

impl FlowConfig {
    /// Every setting at its default.
    const DEFAULT: FlowConfig = FlowConfig {
        overlap: OverlapPolicy::Skip,
        missed: MissedFirePolicy::Skip,
        jitter: 0,
        backoff: 0,
    };
}

/// A [`FlowConfig`] and the skipped-fire count, which most flows leave at their defaults
/// and zero: they take a pointer's room in the slot, and a heap block only while one of
/// them differs (issue 15: inline they were 44 of a slot's bytes). Reads of the config see
/// through it (`Deref`); writes go through [`SlotConfig::set`] / [`SlotConfig::update`],
/// which free the block again once everything is back at its default.
#[derive(Debug, Default)]
pub(crate) struct SlotConfig(Option<alloc::boxed::Box<Rare>>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rare {
    config: FlowConfig,
    /// Fires suppressed inside a backoff window.
    skipped_fires: u32,
}

impl Rare {
    const DEFAULT: Rare = Rare {
        config: FlowConfig::DEFAULT,
        skipped_fires: 0,
    };
}

impl core::ops::Deref for SlotConfig {
    type Target = FlowConfig;

    fn deref(&self) -> &FlowConfig {
        self.0
            .as_deref()
            .map_or(&FlowConfig::DEFAULT, |rare| &rare.config)
    }
}

impl SlotConfig {
    /// Replaces the settings.
    pub(crate) fn set(&mut self, config: FlowConfig) {
        self.change(|rare| rare.config = config);
    }

    /// Changes the settings with `change`.
    pub(crate) fn update(&mut self, change: impl FnOnce(&mut FlowConfig)) {
        self.change(|rare| change(&mut rare.config));
    }

    /// Fires suppressed inside a backoff window so far.
    pub(crate) fn skipped_fires(&self) -> u32 {
        self.0.as_deref().map_or(0, |rare| rare.skipped_fires)
    }

    /// Counts `n` more suppressed fires (saturating).
    fn add_skipped_fires(&mut self, n: u64) {
        if n > 0 {
            self.change(|rare| rare.skipped_fires = saturating_add(rare.skipped_fires, n));
        }
    }

    fn change(&mut self, change: impl FnOnce(&mut Rare)) {
        let mut rare = self.0.as_deref().copied().unwrap_or(Rare::DEFAULT);
        change(&mut rare);
        if rare == Rare::DEFAULT {
            self.0 = None;
        } else if let Some(kept) = self.0.as_deref_mut() {
            *kept = rare;
        } else {
            self.0 = Some(alloc::boxed::Box::new(rare));
        }
    }
}

/// What a due queue entry asks of the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Nothing more (the slot re-planned itself or is waiting).
    Nothing,
    /// No run, but plan the next fire.
    Replan,
    /// Start a run for this scheduled wall time (µs since the Unix epoch: fire ids count
    /// in microseconds, whatever the wall clock's resolution), then plan the next fire.
    Start(i64),
}

/// A planned fire, on the clock its timeline runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FireTime {
    /// An interval's fire.
    Monotonic(Instant),
    /// A cron fire, in microseconds since the Unix epoch (not a `Timestamp`: half the
    /// size, and exact for cron's whole-second fires).
    Wall {
        /// µs since the Unix epoch.
        micros: i64,
    },
}

impl FireTime {
    /// The fire `micros` in `timeline`'s base.
    fn of(timeline: &Timeline, micros: i64) -> FireTime {
        if timeline.is_wall() {
            FireTime::Wall { micros }
        } else {
            FireTime::Monotonic(instant_at(micros))
        }
    }

    /// Microseconds on its own clock (since the origin, or since the Unix epoch), for the
    /// timeline's arithmetic.
    fn micros(self) -> i64 {
        match self {
            FireTime::Monotonic(t) => mono_micros(t),
            FireTime::Wall { micros } => micros,
        }
    }

    /// "Now" on the same clock, in the same unit.
    fn now_micros(self, now: Instant, wall: Timestamp) -> i64 {
        match self {
            FireTime::Monotonic(_) => mono_micros(now),
            FireTime::Wall { .. } => wall.as_microsecond(),
        }
    }

    /// When it is on the wall clock (`now` and `wall` being the same moment), in µs since
    /// the Unix epoch: integer arithmetic, as this is on every run's path.
    pub(crate) fn wall_micros(self, now: Instant, wall: Timestamp) -> i64 {
        match self {
            FireTime::Monotonic(t) => wall_micros_at(t, now, wall),
            FireTime::Wall { micros } => micros,
        }
    }

    /// When it is on the wall clock (`now` and `wall` being the same moment), to the
    /// microsecond.
    pub(crate) fn on_wall(self, now: Instant, wall: Timestamp) -> Timestamp {
        timestamp_at(self.wall_micros(now, wall))
    }

    /// When to wake for it on the monotonic clock: a wall fire is slept for on the
    /// monotonic clock and checked against the wall clock again on waking.
    pub(crate) fn due(self, now: Instant, wall: Timestamp) -> Instant {
        match self {
            FireTime::Monotonic(t) => t,
            FireTime::Wall { micros } => {
                let ahead = micros.saturating_sub(wall.as_microsecond());
                now + Duration::from_micros(u64::try_from(ahead).unwrap_or(0))
            }
        }
    }
}

/// What a [`OverlapPolicy::BufferOne`] flow holds, to start when its run in flight ends.
/// (Other policies hold nothing: a fire due at their limit goes to the missed-fire policy.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Held {
    #[default]
    Nothing,
    /// Fires came due at the limit: the next scheduled start coalesces them into one run.
    Fire,
    /// A `trigger` is held.
    Trigger,
    /// A trigger is held, and fires came due at the limit too: the trigger runs first.
    TriggerAndFire,
}

impl Held {
    fn with_fire(self) -> Held {
        match self {
            Held::Nothing | Held::Fire => Held::Fire,
            Held::Trigger | Held::TriggerAndFire => Held::TriggerAndFire,
        }
    }

    pub(crate) fn has_trigger(self) -> bool {
        matches!(self, Held::Trigger | Held::TriggerAndFire)
    }

    fn has_fire(self) -> bool {
        matches!(self, Held::Fire | Held::TriggerAndFire)
    }

    /// The same, without its trigger.
    pub(crate) fn without_trigger(self) -> Held {
        match self {
            Held::Trigger | Held::Nothing => Held::Nothing,
            Held::TriggerAndFire | Held::Fire => Held::Fire,
        }
    }

    /// Holds a trigger, unless one is held already.
    pub(crate) fn with_trigger(self) -> Option<Held> {
        match self {
            Held::Nothing => Some(Held::Trigger),
            Held::Fire => Some(Held::TriggerAndFire),
            Held::Trigger | Held::TriggerAndFire => None,
        }
    }
}

/// A slot's pending fire: an `Option<FireTime>` in 8 bytes instead of 16 (issue 15). Its
/// clock is the slot's timeline's (monotonic for intervals, wall for cron: every planned
/// fire is made on it, see [`FireTime::of`]), so only its microseconds are kept, `i64::MIN`
/// meaning none. A monotonic fire's microseconds are never negative (`instant_at`); a wall
/// fire's that low is kept as `i64::MIN + 1`: both are before [`Timestamp::MIN`] and due at
/// once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PendingFire(i64);

impl PendingFire {
    const NONE: PendingFire = PendingFire(i64::MIN);

    fn of(fire: Option<FireTime>) -> PendingFire {
        fire.map_or(Self::NONE, |fire| {
            PendingFire(fire.micros().max(i64::MIN + 1))
        })
    }
}

/// A flow's last fire id time (µs since the Unix epoch), if it made one: an `Option<i64>`
/// in 8 bytes instead of 16 (issue 15), `i64::MIN` meaning none. `i64::MIN` is far below
/// any [`Timestamp`] (a fire id's time is one), so a time that low is kept as
/// `i64::MIN + 1`: both name [`Timestamp::MIN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LastFireId(i64);

impl LastFireId {
    /// No fire id yet.
    pub(crate) const NONE: LastFireId = LastFireId(i64::MIN);

    /// The time, if a fire id was made.
    pub(crate) fn get(self) -> Option<i64> {
        (self != Self::NONE).then_some(self.0)
    }

    /// Replaces the time.
    pub(crate) fn set(&mut self, micros: Option<i64>) {
        *self = micros.map_or(Self::NONE, |micros| LastFireId(micros.max(i64::MIN + 1)));
    }

    /// Keeps `micros` if it is later than the time kept (or none is).
    pub(crate) fn raise_to(&mut self, micros: i64) {
        self.set(Some(self.get().map_or(micros, |last| last.max(micros))));
    }
}

#[derive(Debug)]
pub(crate) struct FlowSlot {
    pub(crate) id: Arc<str>,
    pub(crate) timeline: Timeline,
    pub(crate) config: SlotConfig,
    /// Outside `config`: the one setting a whole scheduler often sets for every flow.
    pub(crate) first_run: FirstRun,
    pub(crate) state: FlowState,
    /// The pending fire (for fixed delay: the nominal next fire, before a backoff window
    /// moves it).
    next_fire: PendingFire,
    /// The last fire id's time, in µs since the Unix epoch: fire ids strictly increase.
    pub(crate) last_fire_id: LastFireId,
    pub(crate) missed_fires: u32,
    pub(crate) held: Held,
    /// Removed while running: no longer known by id; its slot is reused once its runs end.
    pub(crate) removed: bool,
    pub(crate) run_start: RunStart,
}

pub(crate) fn saturating_add(counter: u32, n: u64) -> u32 {
    u32::try_from(u64::from(counter).saturating_add(n)).unwrap_or(u32::MAX)
}

impl FlowSlot {
    pub(crate) fn new(id: &str, timeline: Timeline) -> Self {
        FlowSlot {
            id: Arc::from(id),
            timeline,
            config: SlotConfig::default(),
            first_run: FirstRun::AtStart,
            state: FlowState::new(),
            next_fire: PendingFire::NONE,
            last_fire_id: LastFireId::NONE,
            missed_fires: 0,
            held: Held::Nothing,
            removed: false,
            run_start: RunStart::Inline,
        }
    }

    /// Whether the flow's runs may be polled once on the loop before they are spawned.
    pub(crate) fn starts_inline(&self) -> bool {
        self.run_start == RunStart::Inline
    }

    /// The flow's policies as set (the jitter is its fixed offset once started).
    pub(crate) fn policy(&self) -> SchedulePolicy {
        SchedulePolicy {
            overlap: self.config.overlap,
            missed: self.config.missed,
            interval_mode: self.timeline.interval_mode(),
            first_run: self.first_run,
            jitter: Duration::from_micros(self.config.jitter.max(0) as u64),
            run_start: self.run_start,
        }
    }

    /// The schedule this flow was registered with (a wall schedule that is not a cron
    /// expression, which only tests make, counts as manual).
    pub(crate) fn schedule(&self) -> Schedule {
        match &self.timeline {
            Timeline::FixedDelay { interval } | Timeline::FixedRate { interval, .. } => {
                Schedule::Every(Duration::from_micros(*interval as u64))
            }
            Timeline::Wall(schedule) => match (schedule.cron(), schedule.epoch_grid()) {
                (Some(cron), _) => Schedule::Cron(cron.clone()),
                (None, Some(grid)) => Schedule::Every(Duration::from_micros(grid.interval as u64)),
                (None, None) => Schedule::Manual,
            },
            Timeline::Manual => Schedule::Manual,
        }
    }

    /// The hash of what decides this flow's fire times.
    pub(crate) fn schedule_hash(&self, zone: &TimeZone) -> ScheduleHash {
        ScheduleHash::of(&self.schedule(), &self.policy(), zone)
    }

    /// "Now" in the timeline's base.
    fn base_now(&self, now: Instant, wall: Timestamp) -> i64 {
        if self.timeline.is_wall() {
            wall.as_microsecond()
        } else {
            mono_micros(now)
        }
    }

    /// A fire came due while the flow was at its overlap limit (its run's end re-plans it).
    fn due_at_limit(&mut self) {
        if self.config.overlap == OverlapPolicy::BufferOne {
            self.held = self.held.with_fire();
        }
    }

    /// The time `fire` is scheduled for: for a fixed-delay flow the later of the fire and
    /// the end of its backoff window (other timelines suppress fires inside a window
    /// instead of moving them). The one place the backoff moves a fire.
    pub(crate) fn scheduled_fire(&self, fire: FireTime) -> FireTime {
        match (&self.timeline, fire, self.state.backoff_end()) {
            (Timeline::FixedDelay { .. }, FireTime::Monotonic(t), Some(until)) => {
                FireTime::Monotonic(t.max(until))
            }
            _ => fire,
        }
    }

    /// The monotonic instant to wake for `fire`, jitter included.
    pub(crate) fn due_instant(&self, fire: FireTime, now: Instant, wall: Timestamp) -> Instant {
        let jitter = self.timeline.jitter_for(fire.micros(), self.config.jitter);
        self.scheduled_fire(fire).due(now, wall) + Duration::from_micros(jitter as u64)
    }

    /// The fire `micros` in this flow's timeline base, on the wall clock.
    fn wall_of(&self, micros: i64, now: Instant, wall: Timestamp) -> i64 {
        FireTime::of(&self.timeline, micros).wall_micros(now, wall)
    }

    /// The pending fire (for fixed delay: the nominal next fire, before a backoff window
    /// moves it).
    pub(crate) fn next_fire(&self) -> Option<FireTime> {
        (self.next_fire != PendingFire::NONE)
            .then(|| FireTime::of(&self.timeline, self.next_fire.0))
    }

    /// Replaces the pending fire; `fire` is on the timeline's clock (as [`FireTime::of`]
    /// makes it).
    pub(crate) fn set_next_fire(&mut self, fire: Option<FireTime>) {
        debug_assert!(fire.is_none_or(|fire| matches!(fire, FireTime::Wall { .. }) == self.timeline.is_wall()));
        self.next_fire = PendingFire::of(fire);
    }

    /// Queues flow `flow` (this slot) for its pending fire, if it has one.
    pub(crate) fn arm(&self, flow: u32, queue: &mut DeadlineQueue, now: Instant, wall: Timestamp) {
        if let Some(fire) = self.next_fire() {
            queue.arm(flow, self.due_instant(fire, now, wall));
        }
    }

    /// Fixes the jitter offset and plans the first fire, at monotonic `now` / wall `wall`.
    pub(crate) fn start(&mut self, seed: u64, zone: &TimeZone, now: Instant, wall: Timestamp) {
        let jitter = micros(stable_jitter(
            seed,
            &self.id,
            Duration::from_micros(self.config.jitter as u64),
        ));
        self.config.update(|config| config.jitter = jitter);
        let after_interval = self.first_run == FirstRun::AfterInterval;
        let now_base = mono_micros(now);
        let first = match &mut self.timeline {
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
        self.set_next_fire(first.map(|micros| FireTime::of(&self.timeline, micros)));
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
        if self.held.has_trigger() {
            if can_start {
                queue.arm(flow, now);
            } else {
                self.due_at_limit();
                queue.disarm(flow);
            }
            return;
        }
        match self.timeline {
            Timeline::Manual => {}
            Timeline::FixedDelay { interval } => {
                if self.state.running() > 0 {
                    self.set_next_fire(None);
                    queue.disarm(flow);
                    return;
                }
                let mut fire = self.next_fire().unwrap_or(FireTime::Monotonic(instant_at(
                    mono_micros(now).saturating_add(interval),
                )));
                if fresh && let FireTime::Monotonic(t) = &mut fire {
                    *t = (*t).max(now);
                }
                self.set_next_fire(Some(fire));
                self.arm(flow, queue, now, wall);
            }
            Timeline::FixedRate { .. } | Timeline::Wall(_) => {
                if fresh {
                    self.set_next_fire(self.next_after(self.base_now(now, wall)));
                }
                if self.next_fire().is_none() {
                    queue.disarm(flow);
                } else if can_start {
                    if !queue.is_armed(flow) || fresh {
                        self.arm(flow, queue, now, wall);
                    }
                } else {
                    self.due_at_limit();
                    queue.disarm(flow);
                }
            }
        }
    }

    /// This flow's queue entry came due at `now` / `wall`; `grace` is how late a fire may
    /// be and still be on time (µs); a wall fire inside `awake_after_jump` (see
    /// `SchedulerCore::check_wall_clock`) is on time however late.
    pub(crate) fn on_due(
        &mut self,
        flow: u32,
        queue: &mut DeadlineQueue,
        now: Instant,
        wall: Timestamp,
        grace: i64,
        awake_after_jump: Option<(i64, i64)>,
    ) -> Due {
        if self.state.is_paused() || self.state.is_tripped() {
            return Due::Nothing;
        }
        let limit = self.config.overlap.limit();
        if self.held.has_trigger() {
            if self.state.check_start(limit).is_err() {
                self.due_at_limit();
                return Due::Nothing;
            }
            self.held = self.held.without_trigger();
            return Due::Start(wall.as_microsecond());
        }
        let Some(next) = self.next_fire() else {
            return Due::Nothing;
        };
        let (fire, base_now) = (next.micros(), next.now_micros(now, wall));
        if fire > base_now {
            // The wall clock is behind the plan (stepped back, or drifted): plan again.
            self.arm(flow, queue, now, wall);
            return Due::Nothing;
        }
        if self.state.check_start(limit).is_err() {
            self.due_at_limit();
            return Due::Nothing;
        }
        if let Timeline::FixedDelay { .. } = self.timeline {
            self.set_next_fire(None);
            return Due::Start(self.scheduled_fire(next).wall_micros(now, wall));
        }
        if self.state.backoff_until(now).is_some() {
            // Suppressed one by one (as cano 0.12's loops do), so the count is exact.
            let passed = self.timeline.passed(fire, base_now, 1);
            self.config.add_skipped_fires(passed.count);
            self.set_next_fire(self.next_after(passed.latest));
            self.arm(flow, queue, now, wall);
            return Due::Nothing;
        }
        let passed = self
            .timeline
            .passed(fire, base_now, keep(self.config.missed));
        let mut grace = grace.saturating_add(self.config.jitter);
        if self.timeline.is_wall()
            && let Some((from, to)) = awake_after_jump
            && (from..=to).contains(&passed.latest)
        {
            // Due after a wall-clock jump ended, late only because the jump was noticed at
            // the next poll (at most one wall-clock check later): on time.
            grace = grace.max(base_now.saturating_sub(passed.latest));
        }
        let choice = choose(
            self.config.missed,
            &passed,
            base_now,
            grace,
            self.held.has_fire(),
        );
        self.held = Held::Nothing;
        self.missed_fires = saturating_add(self.missed_fires, choice.dropped);
        self.set_next_fire(self.next_after(choice.run.unwrap_or(passed.latest)));
        match choice.run {
            Some(run) => Due::Start(self.wall_of(run, now, wall)),
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
            let fire = self
                .timeline
                .next_at_or_after(wall.as_microsecond())
                .map(|micros| FireTime::of(&self.timeline, micros));
            self.set_next_fire(fire);
            self.last_fire_id = LastFireId::NONE;
        }
        if queue.is_armed(flow) {
            queue.disarm(flow);
            self.arm(flow, queue, now, wall);
        }
    }

    /// The timeline's first fire strictly after `micros` (in its base).
    fn next_after(&self, micros: i64) -> Option<FireTime> {
        self.timeline
            .next_after(micros)
            .map(|next| FireTime::of(&self.timeline, next))
    }

    /// The fire id time of a run scheduled for `scheduled`: fire ids strictly increase, so
    /// a trigger after a backward wall-clock step moves a microsecond past the last one.
    pub(crate) fn next_fire_id(&mut self, scheduled: i64) -> i64 {
        let id = match self.last_fire_id.get() {
            Some(last) => scheduled.max(last.saturating_add(1)),
            None => scheduled,
        };
        self.last_fire_id.set(Some(id));
        id
    }

    /// The next fire as planned (backoff applied, before jitter), on the wall clock.
    pub(crate) fn planned_fire(&self, now: Instant, wall: Timestamp) -> Option<Timestamp> {
        if self.state.is_paused() || self.state.is_tripped() {
            return None;
        }
        Some(self.scheduled_fire(self.next_fire()?).on_wall(now, wall))
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
        let Some(fire) = self.next_fire() else {
            return none;
        };
        let next = Some(self.scheduled_fire(fire).micros());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A flow's slot is most of what a registered flow costs (issue 15: it was 184 bytes).
    #[test]
    fn a_slot_stays_small() {
        if cfg!(target_pointer_width = "64") {
            assert_eq!(core::mem::size_of::<FlowSlot>(), 104);
            assert_eq!(core::mem::size_of::<FlowState>(), 32);
        }
    }

    #[test]
    fn rarely_set_parts_take_a_block_only_while_set() {
        let mut config = SlotConfig::default();
        assert_eq!(*config, FlowConfig::DEFAULT);
        config.update(|c| c.jitter = 5);
        config.add_skipped_fires(2);
        assert!(config.0.is_some());
        assert_eq!((config.jitter, config.skipped_fires()), (5, 2));
        config.set(FlowConfig::DEFAULT);
        assert_eq!(
            config.skipped_fires(),
            2,
            "the count outlives a policy change"
        );
        assert!(config.0.is_some());
        let mut plain = SlotConfig::default();
        plain.update(|c| c.jitter = 0);
        plain.add_skipped_fires(0);
        assert!(plain.0.is_none(), "defaults take no block");
        plain.update(|c| c.backoff = 1);
        plain.set(FlowConfig::DEFAULT);
        assert!(plain.0.is_none(), "freed once back at the defaults");
    }
}
