//! [`SchedulerCore`]: every flow's schedule and status, and one deadline queue for all of
//! them. Pure and synchronous: each call takes the monotonic and wall time as arguments;
//! [`SchedulerCore::poll`] says which runs to start and when to call it again; run outcomes,
//! triggers and commands come back in as method calls. The async driver
//! ([`Scheduler::start`](super::Scheduler::start)) is a thin loop around it, and a test or
//! benchmark can drive it directly without any runtime.

use alloc::boxed::Box;
use alloc::collections::BinaryHeap;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::hash::BuildHasher;
use core::time::Duration;

use hashbrown::DefaultHashBuilder;
use hashbrown::HashTable;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::info::FlowInfo;
use super::job::FireId;
use crate::error::{CanoError, CanoResult};
use crate::random::SplitMix64;
use crate::scheduler::backoff::BackoffPolicy;
use crate::scheduler::flow::{FlowState, StartRefusal, Transition, to_wall};
#[cfg(test)]
use crate::scheduler::schedule::WallSchedule;
use crate::scheduler::schedule::{
    CronSchedule, FirstRun, IntervalMode, MissedFirePolicy, OverlapPolicy, Schedule,
    SchedulePolicy, Timeline, choose, keep, micros, stable_jitter,
};
use crate::time::Instant;

/// "No pending fire".
const NO_FIRE: i64 = i64::MAX;

/// A wall-minus-monotonic change larger than this between two polls is a wall-clock jump
/// (NTP step, suspend, manual change): cron flows are re-planned.
const WALL_JUMP_TOLERANCE: i64 = 1_000_000;

/// A backward wall-clock step at least this large is a correction, not a wobble: cron flows
/// restart from the new wall time (Vixie cron's 3-hour rule) instead of waiting for the wall
/// clock to catch up with their last fire.
const WALL_CORRECTION: i64 = 3 * 3600 * 1_000_000;

/// The default grace: how late a fire may start and still be on time.
pub const DEFAULT_MISFIRE_GRACE: Duration = Duration::from_secs(1);

/// The default interval of the wall-clock check for cron flows (see
/// [`SchedulerCore::set_wall_clock_check`]).
pub const DEFAULT_WALL_CLOCK_CHECK: Duration = Duration::from_secs(60);

/// A flow's position in registration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowIndex(u32);

impl FlowIndex {
    /// The position in registration order.
    pub fn get(self) -> usize {
        self.0 as usize
    }

    pub(crate) fn from_usize(i: usize) -> Self {
        FlowIndex(i as u32)
    }
}

/// A run to start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch {
    /// The flow.
    pub flow: FlowIndex,
    /// The run's fire id.
    pub fire: FireId,
}

/// What [`SchedulerCore::poll`] wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start this run now, then poll again.
    Start(Dispatch),
    /// Nothing to start before this monotonic instant (or an earlier event).
    WakeAt(Instant),
    /// Nothing is scheduled: wait for an event.
    Idle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Registering,
    Running,
    Stopped,
}

#[derive(Debug)]
struct FlowSlot {
    id: Arc<str>,
    timeline: Timeline,
    overlap: OverlapPolicy,
    missed: MissedFirePolicy,
    /// Before start: the largest jitter; after: this flow's fixed offset (µs).
    jitter: i64,
    backoff: u32,
    state: FlowState,
    /// The pending fire, in the timeline's base (for fixed delay: the nominal next fire).
    next_fire: i64,
    /// The last fire id's time (µs): fire ids strictly increase.
    last_fire_id: i64,
    missed_fires: u32,
    skipped_fires: u32,
    generation: u32,
    armed: bool,
    /// Was due while at its overlap limit (the run's end re-plans it).
    blocked: bool,
    buffered_trigger: bool,
    first_after_interval: bool,
}

/// The pure scheduler state machine: every flow and one deadline queue. See the
/// [scheduler module docs](crate::scheduler).
///
/// ```
/// use cano_core::scheduler::{Action, SchedulerCore};
/// use cano_core::schedule::Schedule;
/// use cano_core::Instant;
/// use cano_core::jiff::Timestamp;
/// use core::time::Duration;
///
/// let mut core = SchedulerCore::new();
/// let every = core.add_flow("tick", Schedule::Every(Duration::from_secs(10))).unwrap();
/// let wall = Timestamp::UNIX_EPOCH;
/// core.start(Instant::ZERO, wall);
/// let Action::Start(run) = core.poll(Instant::ZERO, wall) else { panic!() };
/// assert_eq!(run.flow, every);
/// assert_eq!(core.poll(Instant::ZERO, wall), Action::Idle); // fixed delay: waits for the end
/// let end = Instant::from_secs(2);
/// core.finish(run.flow, end, wall, Ok(())).unwrap();
/// assert_eq!(core.poll(end, wall), Action::WakeAt(Instant::from_secs(12)));
/// ```
#[derive(Debug)]
pub struct SchedulerCore {
    flows: Vec<FlowSlot>,
    by_id: HashTable<u32>,
    hasher: DefaultHashBuilder,
    queue: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    stale: usize,
    backoffs: Vec<BackoffPolicy>,
    rng: SplitMix64,
    seed: u64,
    grace: i64,
    wall_check: Option<Duration>,
    next_wall_check: Instant,
    wall_offset: Option<i64>,
    /// When the core last read the clocks (monotonic), to bound when a wall jump happened.
    last_poll: Instant,
    /// After a forward wall-clock jump noticed by the wall-clock check: the wall times (µs)
    /// from the earliest the jump can have ended (the previous poll, at most one check
    /// interval back, read with the new offset) to when it was noticed. A fire in this span
    /// may have come due while the machine was awake, made late only by the check's
    /// polling, so it is on time (see `on_due`) rather than lost.
    awake_after_jump: Option<(i64, i64)>,
    wall_flows: usize,
    time_zone: TimeZone,
    phase: Phase,
}

impl Default for SchedulerCore {
    fn default() -> Self {
        SchedulerCore::new()
    }
}

fn mono(t: Instant) -> i64 {
    i64::try_from(t.as_micros()).unwrap_or(i64::MAX)
}

fn instant(base: i64) -> Instant {
    Instant::from_micros(u64::try_from(base).unwrap_or(0))
}

fn timestamp(micros: i64) -> Timestamp {
    Timestamp::from_microsecond(micros).unwrap_or(if micros > 0 {
        Timestamp::MAX
    } else {
        Timestamp::MIN
    })
}

fn saturating_add(counter: u32, n: u64) -> u32 {
    u32::try_from(u64::from(counter).saturating_add(n)).unwrap_or(u32::MAX)
}

fn slot_in_flight(flows: &mut [FlowSlot], flow: FlowIndex) -> CanoResult<&mut FlowSlot> {
    flows
        .get_mut(flow.get())
        .filter(|s| s.state.running() > 0)
        .ok_or_else(|| CanoError::workflow("a run ended for a flow with no run in flight"))
}

fn not_found(id: &str) -> CanoError {
    CanoError::workflow(format!("No workflow registered with id '{id}'"))
}

fn not_running() -> CanoError {
    CanoError::workflow("Scheduler not running — call start() before trigger()")
}

impl SchedulerCore {
    /// An empty core: seed 0, [`DEFAULT_MISFIRE_GRACE`], [`DEFAULT_WALL_CLOCK_CHECK`].
    pub fn new() -> Self {
        SchedulerCore {
            flows: Vec::new(),
            by_id: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            queue: BinaryHeap::new(),
            stale: 0,
            backoffs: alloc::vec![BackoffPolicy::default()],
            rng: SplitMix64::new(0),
            seed: 0,
            grace: micros(DEFAULT_MISFIRE_GRACE),
            wall_check: Some(DEFAULT_WALL_CLOCK_CHECK),
            next_wall_check: Instant::MAX,
            wall_offset: None,
            last_poll: Instant::ZERO,
            awake_after_jump: None,
            wall_flows: 0,
            time_zone: TimeZone::UTC,
            phase: Phase::Registering,
        }
    }

    /// Seeds backoff jitter and schedule jitter offsets (before `start`).
    pub fn set_seed(&mut self, seed: u64) {
        self.seed = seed;
        self.rng = SplitMix64::new(seed);
    }

    /// How late a fire may start and still count as on time (see
    /// [`crate::scheduler::schedule`]).
    pub fn set_misfire_grace(&mut self, grace: Duration) {
        self.grace = micros(grace);
    }

    /// How often the core asks to be woken to compare the wall clock with the monotonic one
    /// while cron flows exist (`None`: never). A suspended machine's monotonic clock stands
    /// still, so without this check a cron flow notices a suspend only at its next planned
    /// wake-up. The check is O(1) unless the wall clock jumped.
    ///
    /// A forward jump is noticed up to one check interval after it ended, so a cron fire
    /// that came due in between (a wake-up just before a fire, or just before a DST gap
    /// whose fixed-time fire is the gap's end) is on time, however small the misfire grace:
    /// it runs once, at most one interval late. Fires the jump skipped over go through the
    /// missed-fire policy. Without the check such a fire is noticed at the planned wake-up
    /// and counts as missed.
    pub fn set_wall_clock_check(&mut self, every: Option<Duration>) {
        self.wall_check = every.filter(|d| !d.is_zero());
    }

    /// The time zone of cron expressions without a `CRON_TZ=` prefix (default UTC; the
    /// reference's cron was UTC only).
    pub fn set_time_zone(&mut self, zone: TimeZone) {
        self.time_zone = zone;
    }

    /// Registered flows.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether no flow is registered.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// The index of flow `id`.
    pub fn index_of(&self, id: &str) -> Option<FlowIndex> {
        let hash = self.hasher.hash_one(id);
        self.by_id
            .find(hash, |&i| &*self.flows[i as usize].id == id)
            .map(|&i| FlowIndex(i))
    }

    /// Whether flow `id` is registered.
    pub fn contains(&self, id: &str) -> bool {
        self.index_of(id).is_some()
    }

    /// The id of flow `flow`.
    ///
    /// # Panics
    ///
    /// If `flow` did not come from this core.
    pub fn flow_id(&self, flow: FlowIndex) -> &str {
        &self.flows[flow.get()].id
    }

    /// Registers a flow.
    ///
    /// # Errors
    ///
    /// [`CanoError::Configuration`] for a duplicate id, a zero interval, or a call after
    /// `start`. (A bad cron expression is an error of [`Cron::parse`](crate::cron::Cron::parse).)
    pub fn add_flow(&mut self, id: &str, schedule: Schedule) -> CanoResult<FlowIndex> {
        let timeline = match schedule {
            Schedule::Every(interval) => {
                let interval = micros(interval);
                if interval == 0 {
                    return Err(CanoError::configuration(format!(
                        "Flow '{id}': interval must be greater than zero"
                    )));
                }
                Timeline::FixedDelay { interval }
            }
            Schedule::Cron(cron) => Timeline::Wall(Box::new(CronSchedule {
                cron,
                zone: TimeZone::UTC,
            })),
            Schedule::Manual => Timeline::Manual,
        };
        self.add_timeline(id, timeline)
    }

    #[cfg(test)]
    pub(crate) fn add_wall_flow(
        &mut self,
        id: &str,
        schedule: Box<dyn WallSchedule>,
    ) -> CanoResult<FlowIndex> {
        self.add_timeline(id, Timeline::Wall(schedule))
    }

    fn add_timeline(&mut self, id: &str, timeline: Timeline) -> CanoResult<FlowIndex> {
        if self.phase != Phase::Registering {
            return Err(CanoError::configuration(
                "flows can only be added before start()",
            ));
        }
        if self.contains(id) {
            return Err(CanoError::configuration(format!(
                "Flow '{id}' already exists"
            )));
        }
        let index = u32::try_from(self.flows.len())
            .map_err(|_| CanoError::configuration("too many flows"))?;
        if timeline.is_wall() {
            self.wall_flows += 1;
        }
        self.flows.push(FlowSlot {
            id: Arc::from(id),
            timeline,
            overlap: OverlapPolicy::default(),
            missed: MissedFirePolicy::default(),
            jitter: 0,
            backoff: 0,
            state: FlowState::new(),
            next_fire: NO_FIRE,
            last_fire_id: i64::MIN,
            missed_fires: 0,
            skipped_fires: 0,
            generation: 0,
            armed: false,
            blocked: false,
            buffered_trigger: false,
            first_after_interval: false,
        });
        let hash = self.hasher.hash_one(id);
        let (flows, hasher) = (&self.flows, &self.hasher);
        self.by_id
            .insert_unique(hash, index, |&i| hasher.hash_one(&*flows[i as usize].id));
        Ok(FlowIndex(index))
    }

    fn registered(&self, id: &str, what: &str) -> CanoResult<usize> {
        if self.phase != Phase::Registering {
            return Err(CanoError::configuration(format!(
                "cannot set {what} after start()"
            )));
        }
        self.index_of(id).map(FlowIndex::get).ok_or_else(|| {
            CanoError::configuration(format!("Flow '{id}' not found — cannot set {what}"))
        })
    }

    /// Sets flow `id`'s backoff policy.
    ///
    /// # Errors
    ///
    /// [`CanoError::Configuration`] for an unknown id, an invalid policy, or a call after
    /// `start`.
    pub fn set_backoff(&mut self, id: &str, policy: BackoffPolicy) -> CanoResult<()> {
        let i = self.registered(id, "backoff")?;
        policy.validate()?;
        let slot = match self.backoffs.iter().position(|p| *p == policy) {
            Some(existing) => existing,
            None => {
                self.backoffs.push(policy);
                self.backoffs.len() - 1
            }
        };
        self.flows[i].backoff = slot as u32;
        Ok(())
    }

    /// Flow `id`'s scheduling policies (before `start`).
    ///
    /// # Errors
    ///
    /// [`CanoError::Configuration`] for an unknown id or a call after `start`.
    pub fn policy(&self, id: &str) -> CanoResult<SchedulePolicy> {
        let slot = &self.flows[self.registered(id, "schedule policy")?];
        Ok(SchedulePolicy {
            overlap: slot.overlap,
            missed: slot.missed,
            interval_mode: match slot.timeline {
                Timeline::FixedRate { .. } => IntervalMode::FixedRate,
                _ => IntervalMode::FixedDelay,
            },
            first_run: if slot.first_after_interval {
                FirstRun::AfterInterval
            } else {
                FirstRun::AtStart
            },
            jitter: Duration::from_micros(slot.jitter as u64),
        })
    }

    /// Sets flow `id`'s scheduling policies.
    ///
    /// # Errors
    ///
    /// [`CanoError::Configuration`] for an unknown id, an invalid policy (see
    /// [`SchedulePolicy::validate`]), or a call after `start`.
    pub fn set_policy(&mut self, id: &str, policy: SchedulePolicy) -> CanoResult<()> {
        let i = self.registered(id, "schedule policy")?;
        policy.validate()?;
        let slot = &mut self.flows[i];
        slot.overlap = policy.overlap;
        slot.missed = policy.missed;
        slot.jitter = micros(policy.jitter);
        slot.first_after_interval = policy.first_run == FirstRun::AfterInterval;
        if let Timeline::FixedDelay { interval } | Timeline::FixedRate { interval, .. } =
            slot.timeline
        {
            slot.timeline = match policy.interval_mode {
                IntervalMode::FixedDelay => Timeline::FixedDelay { interval },
                IntervalMode::FixedRate => Timeline::FixedRate {
                    interval,
                    anchor: 0,
                },
            };
        }
        Ok(())
    }

    /// Starts scheduling at monotonic `now` / wall `wall`: interval flows fire at once (or
    /// after one interval), cron flows at their next match. Does nothing if already started.
    pub fn start(&mut self, now: Instant, wall: Timestamp) {
        if self.phase != Phase::Registering {
            return;
        }
        self.phase = Phase::Running;
        self.flows.shrink_to_fit();
        self.backoffs.shrink_to_fit();
        self.queue.reserve_exact(self.flows.len());
        let (now_base, wall_base) = (mono(now), wall.as_microsecond());
        for i in 0..self.flows.len() {
            let seed = self.seed;
            let slot = &mut self.flows[i];
            slot.jitter = micros(stable_jitter(
                seed,
                &slot.id,
                Duration::from_micros(slot.jitter as u64),
            ));
            let first = match &mut slot.timeline {
                // Saturating: `every(Duration::MAX)` means "effectively never", not "now".
                Timeline::FixedDelay { interval } => {
                    now_base.saturating_add(if slot.first_after_interval {
                        *interval
                    } else {
                        0
                    })
                }
                Timeline::FixedRate { interval, anchor } => {
                    *anchor = now_base.saturating_add(if slot.first_after_interval {
                        *interval
                    } else {
                        0
                    });
                    *anchor
                }
                Timeline::Wall(schedule) => {
                    schedule.set_zone(&self.time_zone);
                    schedule.next_after(wall_base).unwrap_or(NO_FIRE)
                }
                Timeline::Manual => NO_FIRE,
            };
            slot.next_fire = first;
            if first != NO_FIRE {
                self.arm(i, now, wall);
            }
        }
        self.wall_offset = Some(wall_base - now_base);
        self.last_poll = now;
        self.next_wall_check = self.wall_check_after(now);
    }

    fn wall_check_after(&self, now: Instant) -> Instant {
        match self.wall_check {
            Some(every) if self.wall_flows > 0 => now + every,
            _ => Instant::MAX,
        }
    }

    /// Whether `start` has been called and `stop` has not.
    pub fn is_running(&self) -> bool {
        self.phase == Phase::Running
    }

    /// Stops: nothing is dispatched any more and commands are refused. Runs in flight may
    /// still report their outcome (for the record).
    pub fn stop(&mut self) {
        self.phase = Phase::Stopped;
        self.queue.clear();
        self.stale = 0;
        for slot in &mut self.flows {
            slot.armed = false;
            slot.buffered_trigger = false;
        }
    }

    /// The next run to start at `now` / `wall`, or when to poll again. Call it until it
    /// returns [`Action::WakeAt`] or [`Action::Idle`].
    pub fn poll(&mut self, now: Instant, wall: Timestamp) -> Action {
        if self.phase != Phase::Running {
            return Action::Idle;
        }
        self.check_wall_clock(now, wall);
        while let Some(&Reverse((due, flow, generation))) = self.queue.peek() {
            if due > now {
                break;
            }
            self.queue.pop();
            let i = flow as usize;
            let slot = &mut self.flows[i];
            if slot.generation != generation || !slot.armed {
                self.stale = self.stale.saturating_sub(1);
                continue;
            }
            slot.armed = false;
            if let Some(dispatch) = self.on_due(i, now, wall) {
                return Action::Start(dispatch);
            }
        }
        self.drop_stale_top();
        match self.next_wake() {
            Some(t) => Action::WakeAt(t),
            None => Action::Idle,
        }
    }

    /// The wall time at monotonic `now`, as of the last [`SchedulerCore::poll`] (or `start`):
    /// good enough for bookkeeping that the next poll re-checks against the real wall clock,
    /// and one clock read cheaper. [`Timestamp::UNIX_EPOCH`] + `now` before `start`.
    pub fn wall_estimate(&self, now: Instant) -> Timestamp {
        timestamp(self.wall_offset.unwrap_or(0).saturating_add(mono(now)))
    }

    /// When [`SchedulerCore::poll`] next has something to do, if ever (events aside).
    pub fn next_wake(&self) -> Option<Instant> {
        if self.phase != Phase::Running {
            return None;
        }
        let queued = self.queue.peek().map(|Reverse((due, ..))| *due);
        let check = (self.next_wall_check != Instant::MAX).then_some(self.next_wall_check);
        match (queued, check) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn drop_stale_top(&mut self) {
        while let Some(&Reverse((_, flow, generation))) = self.queue.peek() {
            let slot = &self.flows[flow as usize];
            if slot.generation == generation && slot.armed {
                break;
            }
            self.queue.pop();
            self.stale = self.stale.saturating_sub(1);
        }
    }

    fn check_wall_clock(&mut self, now: Instant, wall: Timestamp) {
        let offset = wall.as_microsecond() - mono(now);
        let previous = self.wall_offset.replace(offset);
        let previous_poll = core::mem::replace(&mut self.last_poll, now);
        if self.wall_flows == 0 {
            return;
        }
        if now >= self.next_wall_check {
            self.next_wall_check = self.wall_check_after(now);
        }
        let Some(previous) = previous else {
            return;
        };
        let jump = offset - previous;
        if jump.abs() <= WALL_JUMP_TOLERANCE {
            return;
        }
        let wall_base = wall.as_microsecond();
        // A forward jump (a suspend, an NTP step) ended at some point since the previous
        // poll; fires after that point came due while awake. A backward one makes any
        // earlier span meaningless (the wall clock may pass through it again).
        // Only with a wall-clock check, which bounds how late such a fire runs to one check
        // interval; without one the jump is noticed at a planned wake, arbitrarily late.
        self.awake_after_jump = match self.wall_check {
            Some(every) if jump > 0 => {
                let earliest = previous_poll.max(now.saturating_sub(every));
                Some((mono(earliest).saturating_add(offset), wall_base))
            }
            _ => None,
        };
        for i in 0..self.flows.len() {
            let slot = &mut self.flows[i];
            if !slot.timeline.is_wall() {
                continue;
            }
            if jump <= -WALL_CORRECTION {
                // A correction: the flow restarts from the new wall time, and its fire ids
                // with it (they are the real scheduled times again). This applies to flows
                // that are not armed too (a run in flight): they re-arm from this fire.
                slot.next_fire = slot.timeline.next_at_or_after(wall_base).unwrap_or(NO_FIRE);
                slot.last_fire_id = i64::MIN;
            }
            if !slot.armed {
                continue;
            }
            self.disarm(i);
            if self.flows[i].next_fire != NO_FIRE {
                self.arm(i, now, wall);
            }
        }
    }

    fn base_now(slot: &FlowSlot, now: Instant, wall: Timestamp) -> i64 {
        if slot.timeline.is_wall() {
            wall.as_microsecond()
        } else {
            mono(now)
        }
    }

    /// Queues flow `i` for its pending fire.
    fn arm(&mut self, i: usize, now: Instant, wall: Timestamp) {
        let slot = &mut self.flows[i];
        let fire = slot.next_fire;
        let base_due = match &slot.timeline {
            Timeline::FixedDelay { .. } => match slot.state.backoff_until(now) {
                Some(until) => fire.max(mono(until)),
                None => fire,
            },
            _ => fire,
        };
        let jitter = slot.timeline.jitter_for(fire, slot.jitter);
        let due = if slot.timeline.is_wall() {
            let ahead = base_due.saturating_sub(wall.as_microsecond());
            now + Duration::from_micros(u64::try_from(ahead).unwrap_or(0))
        } else {
            instant(base_due)
        } + Duration::from_micros(jitter as u64);
        if slot.armed {
            self.stale += 1;
        }
        slot.generation = slot.generation.wrapping_add(1);
        slot.armed = true;
        self.queue.push(Reverse((due, i as u32, slot.generation)));
        self.compact_queue();
    }

    fn disarm(&mut self, i: usize) {
        let slot = &mut self.flows[i];
        if slot.armed {
            slot.armed = false;
            self.stale += 1;
            self.compact_queue();
        }
    }

    fn compact_queue(&mut self) {
        if self.stale > 64 && self.stale > self.queue.len() / 2 {
            let flows = &self.flows;
            self.queue.retain(|Reverse((_, flow, generation))| {
                let slot = &flows[*flow as usize];
                slot.armed && slot.generation == *generation
            });
            self.stale = 0;
        }
    }

    fn start_run(&mut self, i: usize, scheduled_wall: i64, wall: Timestamp) -> Dispatch {
        let slot = &mut self.flows[i];
        let scheduled = scheduled_wall.max(slot.last_fire_id.saturating_add(1));
        slot.last_fire_id = scheduled;
        slot.state.start(wall);
        Dispatch {
            flow: FlowIndex(i as u32),
            fire: FireId::new(slot.id.clone(), timestamp(scheduled)),
        }
    }

    fn fire_wall(slot: &FlowSlot, fire: i64, now: Instant, wall: Timestamp) -> i64 {
        if slot.timeline.is_wall() {
            fire
        } else {
            to_wall(instant(fire), now, wall).as_microsecond()
        }
    }

    /// Flow `i`'s queue entry came due.
    fn on_due(&mut self, i: usize, now: Instant, wall: Timestamp) -> Option<Dispatch> {
        let slot = &mut self.flows[i];
        if slot.state.is_paused() || slot.state.is_tripped() {
            return None;
        }
        let limit = slot.overlap.limit();
        if slot.buffered_trigger {
            if slot.state.check_start(limit).is_err() {
                slot.blocked = true;
                return None;
            }
            slot.buffered_trigger = false;
            let dispatch = self.start_run(i, wall.as_microsecond(), wall);
            self.rearm(i, now, wall, false);
            return Some(dispatch);
        }
        let fire = slot.next_fire;
        let base_now = Self::base_now(slot, now, wall);
        if fire == NO_FIRE {
            return None;
        }
        if fire > base_now {
            // The wall clock is behind the plan (stepped back, or drifted): plan again.
            self.arm(i, now, wall);
            return None;
        }
        if slot.state.check_start(limit).is_err() {
            slot.blocked = true;
            return None;
        }
        if let Timeline::FixedDelay { .. } = slot.timeline {
            let scheduled = match slot.state.backoff_end() {
                Some(until) => fire.max(mono(until)),
                None => fire,
            };
            slot.next_fire = NO_FIRE;
            let at = Self::fire_wall(slot, scheduled, now, wall);
            return Some(self.start_run(i, at, wall));
        }
        if slot.state.backoff_until(now).is_some() {
            // Suppressed one by one (as the reference's loops do), so the count is exact.
            let passed = slot.timeline.passed(fire, base_now, 1);
            slot.skipped_fires = saturating_add(slot.skipped_fires, passed.count);
            slot.next_fire = slot.timeline.next_after(passed.latest).unwrap_or(NO_FIRE);
            if slot.next_fire != NO_FIRE {
                self.arm(i, now, wall);
            }
            return None;
        }
        let passed = slot.timeline.passed(fire, base_now, keep(slot.missed));
        let coalesce = slot.blocked && slot.overlap == OverlapPolicy::BufferOne;
        let mut grace = self.grace.saturating_add(slot.jitter);
        if slot.timeline.is_wall()
            && let Some((from, to)) = self.awake_after_jump
            && (from..=to).contains(&passed.latest)
        {
            // Due after a wall-clock jump ended, late only because the jump was noticed at
            // the next poll (at most one wall-clock check later): on time.
            grace = grace.max(base_now.saturating_sub(passed.latest));
        }
        let choice = choose(slot.missed, &passed, base_now, grace, coalesce);
        slot.blocked = false;
        slot.missed_fires = saturating_add(slot.missed_fires, choice.dropped);
        let after = choice.run.unwrap_or(passed.latest);
        slot.next_fire = slot.timeline.next_after(after).unwrap_or(NO_FIRE);
        let dispatch = choice.run.map(|run| {
            let at = Self::fire_wall(&self.flows[i], run, now, wall);
            self.start_run(i, at, wall)
        });
        self.rearm(i, now, wall, false);
        dispatch
    }

    /// Re-plans flow `i` after its state changed. `fresh` (reset, resume) forgets fires that
    /// passed while it was off.
    fn rearm(&mut self, i: usize, now: Instant, wall: Timestamp, fresh: bool) {
        let slot = &mut self.flows[i];
        if self.phase != Phase::Running || slot.state.is_paused() || slot.state.is_tripped() {
            self.disarm(i);
            return;
        }
        let limit = slot.overlap.limit();
        let can_start = slot.state.check_start(limit).is_ok();
        if slot.buffered_trigger {
            if can_start {
                self.arm_now(i, now);
            } else {
                slot.blocked = true;
                self.disarm(i);
            }
            return;
        }
        match slot.timeline {
            Timeline::Manual => {}
            Timeline::FixedDelay { interval } => {
                if slot.state.running() > 0 {
                    slot.next_fire = NO_FIRE;
                    self.disarm(i);
                    return;
                }
                if slot.next_fire == NO_FIRE {
                    slot.next_fire = mono(now).saturating_add(interval);
                }
                if fresh {
                    slot.next_fire = slot.next_fire.max(mono(now));
                }
                self.arm(i, now, wall);
            }
            Timeline::FixedRate { .. } | Timeline::Wall(_) => {
                if fresh {
                    let base_now = Self::base_now(slot, now, wall);
                    slot.next_fire = slot.timeline.next_after(base_now).unwrap_or(NO_FIRE);
                }
                if slot.next_fire == NO_FIRE {
                    self.disarm(i);
                } else if can_start {
                    if !slot.armed || fresh {
                        self.arm(i, now, wall);
                    }
                } else {
                    slot.blocked = true;
                    self.disarm(i);
                }
            }
        }
    }

    fn arm_now(&mut self, i: usize, now: Instant) {
        let slot = &mut self.flows[i];
        if slot.armed {
            self.stale += 1;
        }
        slot.generation = slot.generation.wrapping_add(1);
        slot.armed = true;
        self.queue.push(Reverse((now, i as u32, slot.generation)));
    }

    /// Records the outcome of a run of `flow` that ended at `now`. A run that wound down with
    /// [`CanoError::Cancelled`] after [`stop`](Self::stop) is recorded as
    /// [`cancelled`](Self::cancelled), not as a failure of its flow.
    ///
    /// # Errors
    ///
    /// [`CanoError::Workflow`] if `flow` has no run in flight (a driver bug).
    pub fn finish(
        &mut self,
        flow: FlowIndex,
        now: Instant,
        wall: Timestamp,
        outcome: Result<(), &CanoError>,
    ) -> CanoResult<()> {
        if self.phase == Phase::Stopped && matches!(outcome, Err(CanoError::Cancelled(_))) {
            return self.cancelled(flow, now, wall);
        }
        let i = flow.get();
        let slot = slot_in_flight(&mut self.flows, flow)?;
        let policy = &self.backoffs[slot.backoff as usize];
        let transition = slot.state.finish(now, outcome, policy, &self.rng);
        if let Timeline::FixedDelay { interval } = slot.timeline {
            // Fixed delay: measured from the end of this run.
            slot.next_fire = mono(now).saturating_add(interval);
        }
        if transition == Transition::Tripped {
            slot.blocked = false;
            slot.buffered_trigger = false;
        }
        self.rearm(i, now, wall, false);
        Ok(())
    }

    /// Records that a run of `flow` was cancelled (by a stop): neither success nor failure.
    ///
    /// # Errors
    ///
    /// [`CanoError::Workflow`] if `flow` has no run in flight.
    pub fn cancelled(&mut self, flow: FlowIndex, now: Instant, wall: Timestamp) -> CanoResult<()> {
        let i = flow.get();
        let slot = slot_in_flight(&mut self.flows, flow)?;
        slot.state.cancelled();
        self.rearm(i, now, wall, false);
        Ok(())
    }

    /// Starts a run of flow `id` now, bypassing a backoff window. `Ok(None)`: the run was
    /// accepted but buffered ([`OverlapPolicy::BufferOne`]) and starts when the current one
    /// ends (it comes out of [`SchedulerCore::poll`]).
    ///
    /// # Errors
    ///
    /// [`CanoError::Workflow`] when the scheduler is not running, the id is unknown, the flow
    /// is tripped, or it is already running (and cannot buffer).
    pub fn trigger(
        &mut self,
        id: &str,
        now: Instant,
        wall: Timestamp,
    ) -> CanoResult<Option<Dispatch>> {
        if self.phase != Phase::Running {
            return Err(not_running());
        }
        let i = self.index_of(id).ok_or_else(|| not_found(id))?.get();
        let slot = &mut self.flows[i];
        match slot.state.check_start(slot.overlap.limit()) {
            Err(StartRefusal::Tripped) => Err(CanoError::workflow(format!(
                "Flow '{id}' is tripped — call reset_flow before triggering"
            ))),
            Err(StartRefusal::AtLimit) => {
                if slot.overlap == OverlapPolicy::BufferOne && !slot.buffered_trigger {
                    slot.buffered_trigger = true;
                    Ok(None)
                } else {
                    Err(CanoError::workflow(format!(
                        "Flow '{id}' is already running"
                    )))
                }
            }
            Ok(()) => {
                let dispatch = self.start_run(i, wall.as_microsecond(), wall);
                self.rearm(i, now, wall, false);
                Ok(Some(dispatch))
            }
        }
    }

    fn command(&mut self, id: &str) -> CanoResult<usize> {
        if self.phase != Phase::Running {
            return Err(CanoError::workflow(
                "Scheduler not running — call start() first",
            ));
        }
        self.index_of(id)
            .map(FlowIndex::get)
            .ok_or_else(|| not_found(id))
    }

    /// Clears flow `id`'s failure streak, backoff window and trip. A running flow stays
    /// running (a failure of that run starts a new streak at 1). Scheduled fires resume from
    /// now.
    ///
    /// # Errors
    ///
    /// [`CanoError::Workflow`] for an unknown id or a scheduler that is not running.
    pub fn reset_flow(&mut self, id: &str, now: Instant, wall: Timestamp) -> CanoResult<()> {
        let i = self.command(id)?;
        self.flows[i].state.reset();
        self.rearm(i, now, wall, true);
        Ok(())
    }

    /// Pauses flow `id`'s scheduled fires (runs in flight continue; `trigger` still works).
    ///
    /// # Errors
    ///
    /// [`CanoError::Workflow`] for an unknown id or a scheduler that is not running.
    pub fn pause(&mut self, id: &str) -> CanoResult<()> {
        let i = self.command(id)?;
        self.flows[i].state.set_paused(true);
        self.disarm(i);
        Ok(())
    }

    /// Resumes flow `id`'s scheduled fires from now (fires that passed while paused are not
    /// caught up).
    ///
    /// # Errors
    ///
    /// [`CanoError::Workflow`] for an unknown id or a scheduler that is not running.
    pub fn resume(&mut self, id: &str, now: Instant, wall: Timestamp) -> CanoResult<()> {
        let i = self.command(id)?;
        if self.flows[i].state.is_paused() {
            self.flows[i].state.set_paused(false);
            self.rearm(i, now, wall, true);
        }
        Ok(())
    }

    /// Whether any flow has a run in flight.
    pub fn has_running_flows(&self) -> bool {
        self.flows.iter().any(|s| s.state.running() > 0)
    }

    /// A snapshot of flow `flow`.
    ///
    /// # Panics
    ///
    /// If `flow` did not come from this core.
    pub fn info(&self, flow: FlowIndex, now: Instant, wall: Timestamp) -> FlowInfo {
        let slot = &self.flows[flow.get()];
        let next_fire = (self.phase == Phase::Running
            && !slot.state.is_paused()
            && !slot.state.is_tripped()
            && slot.next_fire != NO_FIRE)
            .then(|| {
                let scheduled = match slot.timeline {
                    Timeline::FixedDelay { .. } => match slot.state.backoff_until(now) {
                        Some(until) => slot.next_fire.max(mono(until)),
                        None => slot.next_fire,
                    },
                    _ => slot.next_fire,
                };
                timestamp(Self::fire_wall(slot, scheduled, now, wall))
            });
        FlowInfo {
            id: String::from(&*slot.id),
            status: slot.state.status(now, wall),
            run_count: slot.state.run_count(),
            last_run: slot.state.last_run(),
            failure_streak: slot.state.failure_streak(),
            next_eligible: slot
                .state
                .backoff_until(now)
                .map(|until| to_wall(until, now, wall)),
            next_fire,
            missed_fires: u64::from(slot.missed_fires),
            skipped_fires: u64::from(slot.skipped_fires),
        }
    }

    /// A snapshot of flow `id`, or `None` if unknown.
    pub fn status(&self, id: &str, now: Instant, wall: Timestamp) -> Option<FlowInfo> {
        self.index_of(id).map(|i| self.info(i, now, wall))
    }

    /// Snapshots of every flow, in registration order.
    pub fn list(&self, now: Instant, wall: Timestamp) -> Vec<FlowInfo> {
        (0..self.flows.len())
            .map(|i| self.info(FlowIndex(i as u32), now, wall))
            .collect()
    }

    /// The next `n` scheduled fire times of flow `id` (before jitter), as planned now: for a
    /// fixed-delay flow this assumes each run takes no time. Empty for manual, paused,
    /// tripped or stopped flows.
    ///
    /// # Errors
    ///
    /// [`CanoError::Workflow`] for an unknown id.
    pub fn next_fires(
        &self,
        id: &str,
        n: usize,
        now: Instant,
        wall: Timestamp,
    ) -> CanoResult<Vec<Timestamp>> {
        let flow = self.index_of(id).ok_or_else(|| not_found(id))?;
        let slot = &self.flows[flow.get()];
        let mut out = Vec::new();
        let Some(first) = self.info(flow, now, wall).next_fire else {
            return Ok(out);
        };
        let mut fire = match slot.timeline {
            Timeline::Wall(_) => first.as_microsecond(),
            _ => mono(now) + (first.as_microsecond() - wall.as_microsecond()),
        };
        while out.len() < n {
            out.push(timestamp(Self::fire_wall(slot, fire, now, wall)));
            fire = match slot.timeline {
                Timeline::FixedDelay { interval } => fire.saturating_add(interval),
                _ => match slot.timeline.next_after(fire) {
                    Some(next) => next,
                    None => break,
                },
            };
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::schedule::tests::Aligned;

    fn wall_at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_767_225_600 + secs).unwrap()
    }

    fn secs(s: u64) -> Instant {
        Instant::from_secs(s)
    }

    /// Drives a core by hand: both clocks advance together unless told otherwise.
    struct Harness {
        core: SchedulerCore,
        now: Instant,
        wall: Timestamp,
        started: Vec<FireId>,
    }

    impl Harness {
        fn new(core: SchedulerCore) -> Self {
            let mut h = Harness {
                core,
                now: Instant::ZERO,
                wall: wall_at(0),
                started: Vec::new(),
            };
            h.core.start(h.now, h.wall);
            h
        }

        fn advance_to(&mut self, t: Instant) {
            let d = t - self.now;
            self.now = t;
            self.wall += d;
        }

        fn poll_all(&mut self) -> Vec<Dispatch> {
            let mut out = Vec::new();
            while let Action::Start(d) = self.core.poll(self.now, self.wall) {
                self.started.push(d.fire.clone());
                out.push(d);
            }
            out
        }
    }

    #[test]
    fn fixed_delay_flows_all_fire_at_start_then_wait_for_their_runs() {
        let mut core = SchedulerCore::new();
        for i in 0..1000 {
            core.add_flow(
                &format!("f{i}"),
                Schedule::Every(Duration::from_secs(3600 + i)),
            )
            .unwrap();
        }
        let mut h = Harness::new(core);
        assert_eq!(h.poll_all().len(), 1000);
        assert_eq!(h.core.poll(h.now, h.wall), Action::Idle);
    }

    #[test]
    fn fixed_rate_long_run_under_skip_drops_the_passed_fires() {
        let mut core = SchedulerCore::new();
        let f = core
            .add_flow("r", Schedule::Every(Duration::from_secs(10)))
            .unwrap();
        core.set_policy(
            "r",
            SchedulePolicy {
                interval_mode: IntervalMode::FixedRate,
                ..SchedulePolicy::default()
            },
        )
        .unwrap();
        let mut h = Harness::new(core);
        assert_eq!(h.poll_all().len(), 1);
        // Due at 10 while running: blocked, nothing started.
        h.advance_to(secs(10));
        assert!(h.poll_all().is_empty());
        h.advance_to(secs(25));
        h.core.finish(f, h.now, h.wall, Ok(())).unwrap();
        assert!(h.poll_all().is_empty());
        let info = h.core.info(f, h.now, h.wall);
        assert_eq!(info.missed_fires, 2);
        assert_eq!(info.next_fire, Some(wall_at(30)));
        h.advance_to(secs(30));
        assert_eq!(h.poll_all().len(), 1);
        assert_eq!(h.started[1].scheduled(), wall_at(30));
    }

    #[test]
    fn wall_schedule_sleeps_on_the_monotonic_clock_and_survives_steps() {
        let mut core = SchedulerCore::new();
        core.add_wall_flow("c", Box::new(Aligned(60_000_000)))
            .unwrap();
        let mut h = Harness::new(core);
        assert_eq!(h.core.poll(h.now, h.wall), Action::WakeAt(secs(60)));
        // The wall clock steps back 30 s; the monotonic deadline comes first.
        h.wall -= jiff::SignedDuration::from_secs(30);
        h.advance_to(secs(60));
        assert!(h.poll_all().is_empty());
        assert_eq!(h.core.poll(h.now, h.wall), Action::WakeAt(secs(90)));
        h.advance_to(secs(90));
        assert_eq!(h.poll_all().len(), 1);
        assert_eq!(h.started[0].scheduled(), wall_at(60));
    }
}
