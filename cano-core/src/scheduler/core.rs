//! [`SchedulerCore`]: every flow's schedule and status, the runs in flight, the stop, and
//! one deadline queue for all of it. Pure and synchronous: each call takes the monotonic and
//! wall time as arguments; [`SchedulerCore::poll`] says what to do (start a run, cancel a
//! run, report the stop) and when to call it again; run outcomes, triggers and commands come
//! back in as method calls. The async driver ([`Scheduler::start`](super::Scheduler::start))
//! is a thin loop around it, and a test or benchmark can drive it directly without any
//! runtime.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::hash::BuildHasher;
use core::time::Duration;

use hashbrown::DefaultHashBuilder;
use hashbrown::HashTable;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::error::SchedulerError;
use super::events::{EventCursor, EventLog, SchedulerEvent};
use super::history::{History, RunRecord};
use super::info::FlowInfo;
use super::job::FireId;
use super::queue::DeadlineQueue;
use super::runs::{RunId, RunTable};
use super::slot::{Due, FireTime, FlowSlot, Held, UpcomingFires, saturating_add};
use crate::error::CanoError;
use crate::persist::{
    CatchUpReason, Fence, FleetCommandKind, FlowRecord, PersistError, PersistResult, ScheduleHash,
    StoredFlow, plan_catch_up,
};
use crate::random::SplitMix64;
use crate::scheduler::backoff::BackoffPolicy;
use crate::scheduler::flow::{FlowState, StartRefusal, Transition};
#[cfg(test)]
use crate::scheduler::schedule::WallSchedule;
use crate::scheduler::schedule::{
    CronSchedule, OverlapPolicy, Schedule, SchedulePolicy, Timeline, micros,
};
use crate::time::{Instant, instant_at, mono_micros, timestamp_at, to_wall};
use alloc::collections::VecDeque;

mod fleet_hooks;
pub(crate) mod inline_start;
mod recovery;
mod steer;
pub use steer::InFlight;
use steer::Steering;
#[path = "fleet.rs"]
pub(super) mod fleet;
use fleet::{Fleet, FleetAction, FleetDue, FleetEnd};

/// A wall-minus-monotonic change larger than this between two polls is a wall-clock jump
/// (NTP step, suspend, manual change): cron flows are re-planned.
const WALL_JUMP_TOLERANCE: i64 = 1_000_000;

/// A backward wall-clock step at least this large is a correction, not a wobble: cron flows
/// restart from the new wall time (Vixie cron's 3-hour rule) instead of waiting for the wall
/// clock to catch up with their last fire.
const WALL_CORRECTION: i64 = 3 * 3600 * 1_000_000;

/// The default grace: how late a fire may start and still be on time.
pub const DEFAULT_MISFIRE_GRACE: Duration = Duration::from_secs(1);

/// The default cancellation wind-down: how long a run whose cancellation was signalled may
/// still take to end before it is dropped (see [`SchedulerCore::set_cancel_wind_down`]).
///
/// Two default compensation budgets
/// ([`Workflow::with_compensation_timeout`](crate::Workflow::with_compensation_timeout),
/// 30 s each): a cancelled saga may let its compensatable task in flight finish within one
/// budget, then drain its compensations within another, so a scheduled saga with default
/// settings compensates completely before it would be dropped.
pub const DEFAULT_CANCEL_WIND_DOWN: Duration = Duration::from_secs(60);

/// The default interval of the wall-clock check for cron flows (see
/// [`SchedulerCore::set_wall_clock_check`]).
pub const DEFAULT_WALL_CLOCK_CHECK: Duration = Duration::from_secs(60);

/// The most fire times [`SchedulerCore::next_fires`] (and
/// [`RunningScheduler::next_fires`](super::RunningScheduler::next_fires)) return at once;
/// walk [`SchedulerCore::upcoming_fires`] for more.
pub const NEXT_FIRES_LIMIT: usize = 1024;

/// A flow of one core: its position in registration order. Commands, outcomes and queries
/// all name a flow by it ([`SchedulerCore::flow`] finds it from the id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowIndex(u32);

impl FlowIndex {
    /// The position in registration order.
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

/// A run to start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch {
    /// The run, to report its outcome under ([`SchedulerCore::finish`]).
    pub run: RunId,
    /// The flow.
    pub flow: FlowIndex,
    /// The run's fire id.
    pub fire: FireId,
    /// The fence the run writes with: its fleet claim's (or the flow's ownership lease's),
    /// [`Fence::ZERO`] outside a fleet.
    pub fence: Fence,
    /// Whether the run takes over a fire another node claimed and did not finish (a
    /// checkpointed workflow resumes from its log).
    pub takeover: bool,
    /// Whether the driver may poll the run once on its own task before it spawns it (the
    /// flow's [`RunStart`](crate::schedule::RunStart) is `Inline`). A driver that finds
    /// such a poll slow reports it with [`SchedulerCore::spawn_later_runs`].
    pub inline: bool,
}

/// What [`SchedulerCore::poll`] wants done. Call `poll` again after `Start` and `Cancel`,
/// until it returns `WakeAt`, `Idle` or `Stopped`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Start this run now.
    Start(Dispatch),
    /// Resume this run now: an unfinished run of its flow that a previous process left in
    /// the job's store, found by the recovery scan at start ([`SchedulerCore::recover`]).
    /// Run it with the job's resume (not as a fresh run); its outcome comes back with
    /// [`SchedulerCore::finish`] like any run's.
    Resume(Dispatch),
    /// Drop this run's future now (at its current `.await`): the cancellation wind-down
    /// after its [`Action::Cancel`] passed and it has not ended
    /// ([`SchedulerCore::set_cancel_wind_down`]), or, on a fleet node, the run's lease is no
    /// longer trusted (this run alone, at once: it must stop writing now; nothing of its
    /// outcome is written). Its end comes back as [`RunOutcome::Cancelled`] (or whatever it
    /// returned first).
    Abort(RunId),
    /// Signal this run's cancellation (cancel its token, [`Fire::cancellation`]) and let it
    /// wind down: a workflow stops before its next state and drains its compensations. Asked
    /// at a stop's deadline ([`Stage::Draining`], every run in flight) and for
    /// [`SchedulerCore::cancel_flow`] or a removal or replacement that gave its runs a grace
    /// ([`InFlight::Cancel`]). If the run has not ended one wind-down later,
    /// [`Action::Abort`] follows. Its end comes back as [`RunOutcome::Cancelled`] (a run
    /// that returns [`CanoError::Cancelled`] counts as cancelled, not failed).
    ///
    /// [`Fire::cancellation`]: super::Fire::cancellation
    Cancel(RunId),
    /// Make this call to the fleet's ledger (only for a fleet node,
    /// [`SchedulerCore::join_fleet`]), then report its answer with
    /// [`SchedulerCore::fleet_done`]. The driver may make several at once.
    Fleet(FleetAction),
    /// Write this flow's record to the schedule store (only with
    /// [`SchedulerCore::persist_schedules`]), then report the result with
    /// [`SchedulerCore::save_done`]. Asked after a fire, an outcome or a command, never for a
    /// poll that changed nothing.
    Save(ScheduleWrite),
    /// Nothing to do before this monotonic instant (or an earlier event).
    WakeAt(Instant),
    /// Nothing is scheduled: wait for an event (an outcome, a trigger, a command).
    Idle,
    /// The stop is complete: no run is in flight, and none will start. Tear down and report
    /// (the runs cancelled at the deadline are [`SchedulerCore::cancelled_fires`]). A driver
    /// that sleeps learns of it from [`SchedulerCore::stage`] after an outcome.
    Stopped,
}

/// A write of one flow's [`FlowRecord`] that the core asks its driver for
/// ([`Action::Save`], [`SchedulerCore::take_save`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleWrite {
    /// The flow.
    pub flow: FlowIndex,
    /// Its id (the store's key).
    pub id: Arc<str>,
    /// Its state now.
    pub record: FlowRecord,
    /// The fence to write with: the highest this node holds for the flow in a fleet,
    /// [`Fence::ZERO`] otherwise.
    pub fence: Fence,
}

/// The first delay before a failed schedule-store write is retried; it doubles up to
/// [`SAVE_RETRY_MAX`] while writes keep failing.
pub const SAVE_RETRY: Duration = Duration::from_secs(1);

/// The longest delay between retries of a failing schedule-store write.
pub const SAVE_RETRY_MAX: Duration = Duration::from_secs(60);

/// What a core with a schedule store keeps beside its flows. Boxed in an `Option`: a core
/// without a store pays one pointer and one branch per fire, outcome and command.
#[derive(Debug, Default)]
struct Persisting {
    /// Per flow: the hash of its schedule (set at start).
    hashes: Vec<ScheduleHash>,
    /// Per flow: whether it waits in `pending`.
    dirty: Vec<bool>,
    /// Flows whose record must be written, oldest change first.
    pending: VecDeque<u32>,
    /// Writes handed out and not reported yet.
    in_flight: usize,
    /// Failed writes are retried from then on.
    retry_at: Instant,
    retry_delay: Duration,
    /// Writes that failed (ever), for `flush`-style waiters.
    failed: u64,
    /// Flows refused by the store with a higher fence: written no more.
    fenced: Vec<bool>,
    /// Flows whose last write failed after the stop completed.
    unsaved: Vec<u32>,
    /// Records loaded before start, by flow.
    restored: Vec<Option<FlowRecord>>,
    /// Stored records of flows not registered any more.
    unknown: usize,
    /// Catch-up fires (flow, wall µs) still to start, oldest first.
    catch_up: Vec<(u32, i64)>,
}

impl Persisting {
    fn mark(&mut self, i: usize) {
        if !self.dirty[i] && !self.fenced[i] {
            self.dirty[i] = true;
            self.pending.push_back(i as u32);
        }
    }
}

/// Where a core is in its life.
///
/// ```text
///  Registering ──start──▶ Running ──begin_stop(now, grace)──▶ Stopping { deadline }
///                                                               │ deadline passes
///                                                               ▼
///                            Stopped ◀──last run ended── Draining (poll: Cancel(run) each,
///                                                                 Abort(run) one wind-down later)
/// ```
///
/// `Stopping` and `Draining` become `Stopped` as soon as no run is in flight. Nothing new
/// starts once stopping began (triggers and commands are refused with
/// [`SchedulerError::Stopped`]); outcomes of the runs still in flight are recorded, and a
/// run that winds down with [`CanoError::Cancelled`] then is cancelled, not failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Flows and settings may be added; nothing runs.
    Registering,
    /// Flows fire; commands are accepted.
    Running,
    /// A stop began: nothing new starts; runs in flight may finish until `deadline`.
    Stopping {
        /// When the runs still in flight are cancelled.
        deadline: Instant,
    },
    /// The deadline passed: the runs left were signalled to cancel; waiting for them to
    /// end, and dropping those still in flight once the cancellation wind-down passed.
    Draining,
    /// No run is in flight and none will start.
    Stopped,
}

/// How a run ended, as reported to [`SchedulerCore::finish`].
///
/// Built from the job's result with `From<Result<(), &CanoError>>`, which renders a failure's
/// text once (do it before taking any lock: the text is user-sized).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunOutcome {
    /// The run returned `Ok`.
    Succeeded,
    /// The run returned an error.
    Failed(RunFailure),
    /// The run was cancelled (at a stop's deadline or on request) and wound down with
    /// [`CanoError::Cancelled`], or was dropped before it finished (past its wind-down,
    /// refused or dropped by its runtime): neither success nor failure.
    Cancelled,
}

/// A failed run's error, as its flow keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFailure {
    message: Arc<str>,
    cancellation: bool,
}

impl RunFailure {
    /// Renders `error`'s text.
    pub fn new(error: &CanoError) -> Self {
        RunFailure {
            message: alloc::string::ToString::to_string(error).into(),
            cancellation: matches!(error, CanoError::Cancelled(_)),
        }
    }

    /// The error's `Display` text.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether it was a [`CanoError::Cancelled`] (a cancelled run during a stop).
    pub fn is_cancellation(&self) -> bool {
        self.cancellation
    }
}

impl From<Result<(), &CanoError>> for RunOutcome {
    #[inline]
    fn from(result: Result<(), &CanoError>) -> Self {
        match result {
            Ok(()) => RunOutcome::Succeeded,
            Err(error) => RunOutcome::Failed(RunFailure::new(error)),
        }
    }
}

/// The pure scheduler state machine: every flow, the runs in flight and one deadline queue.
/// See the [scheduler module docs](crate::scheduler) and [`Stage`] for its life.
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
/// core.finish(run.run, end, wall, Ok(())).unwrap();
/// assert_eq!(core.poll(end, wall), Action::WakeAt(Instant::from_secs(12)));
///
/// // Stop with 5 s of grace: nothing runs, so it is stopped at once.
/// assert!(core.begin_stop(end, Duration::from_secs(5)));
/// assert_eq!(core.poll(end, wall), Action::Stopped);
/// ```
#[derive(Debug)]
pub struct SchedulerCore {
    flows: Vec<FlowSlot>,
    by_id: HashTable<u32>,
    hasher: DefaultHashBuilder,
    queue: DeadlineQueue,
    runs: RunTable,
    /// Runs cancelled at the stop's deadline.
    cancelled: Vec<FireId>,
    backoffs: Vec<BackoffPolicy>,
    rng: SplitMix64,
    seed: u64,
    grace: i64,
    /// How long a run signalled to cancel may take to end before it is dropped.
    wind_down: Duration,
    /// While draining: when the runs signalled at the stop's deadline are dropped if still
    /// in flight (`None` once they were).
    stop_drop_at: Option<Instant>,
    wall_check: Option<Duration>,
    next_wall_check: Instant,
    wall_offset: Option<i64>,
    /// When the core last read the clocks (monotonic), to bound when a wall jump happened.
    last_poll: Instant,
    /// After a forward wall-clock jump noticed by the wall-clock check: the wall times (µs)
    /// from the earliest the jump can have ended (the previous poll, at most one check
    /// interval back, read with the new offset) to when it was noticed. A fire in this span
    /// may have come due while the machine was awake, made late only by the check's
    /// polling, so it is on time (see `FlowSlot::on_due`) rather than lost.
    awake_after_jump: Option<(i64, i64)>,
    wall_flows: usize,
    time_zone: TimeZone,
    stage: Stage,
    persist: Option<Box<Persisting>>,
    recovery: Option<Box<recovery::Recovering>>,
    /// What happened, for subscribers and observers (nothing is kept without readers).
    events: EventLog,
    /// The last runs of each flow.
    history: History,
    /// Flows removed while running, and runs asked to cancel.
    steer: Steering,
    fleet: Option<Box<Fleet>>,
    /// How the core reaches the fleet code; installed with `fleet` by
    /// [`join_fleet`](Self::join_fleet), so a core without a fleet links none of it.
    fleet_hooks: Option<&'static fleet_hooks::FleetHooks>,
}

impl Default for SchedulerCore {
    fn default() -> Self {
        SchedulerCore::new()
    }
}

impl SchedulerCore {
    /// An empty core: seed 0, [`DEFAULT_MISFIRE_GRACE`], [`DEFAULT_WALL_CLOCK_CHECK`].
    pub fn new() -> Self {
        SchedulerCore {
            flows: Vec::new(),
            by_id: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            queue: DeadlineQueue::default(),
            runs: RunTable::default(),
            cancelled: Vec::new(),
            backoffs: alloc::vec![BackoffPolicy::default()],
            rng: SplitMix64::new(0),
            seed: 0,
            grace: micros(DEFAULT_MISFIRE_GRACE),
            wind_down: DEFAULT_CANCEL_WIND_DOWN,
            stop_drop_at: None,
            wall_check: Some(DEFAULT_WALL_CLOCK_CHECK),
            next_wall_check: Instant::MAX,
            wall_offset: None,
            last_poll: Instant::ZERO,
            awake_after_jump: None,
            wall_flows: 0,
            time_zone: TimeZone::UTC,
            stage: Stage::Registering,
            persist: None,
            recovery: None,
            events: EventLog::default(),
            history: History::default(),
            steer: Steering::default(),
            fleet: None,
            fleet_hooks: None,
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

    /// How long a run whose cancellation was signalled ([`Action::Cancel`]: at a stop's
    /// deadline, by [`cancel_flow`](Self::cancel_flow), or by a removal or replacement with
    /// [`InFlight::Cancel`]) may still take to end before the core asks to drop it
    /// ([`Action::Abort`]). Default [`DEFAULT_CANCEL_WIND_DOWN`] (60 s: two default
    /// compensation budgets, so a saga compensates); `Duration::ZERO` drops at once, with
    /// the signal. A run that ends sooner is not waited for.
    pub fn set_cancel_wind_down(&mut self, wind_down: Duration) {
        self.wind_down = wind_down;
    }

    /// The cancellation wind-down ([`set_cancel_wind_down`](Self::set_cancel_wind_down)).
    pub fn cancel_wind_down(&self) -> Duration {
        self.wind_down
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

    /// The time zone of cron expressions without a `CRON_TZ=` prefix (default UTC; cano
    /// 0.12's cron was UTC only).
    pub fn set_time_zone(&mut self, zone: TimeZone) {
        self.time_zone = zone;
    }

    /// Registered flows.
    pub fn len(&self) -> usize {
        self.flows.len() - self.steer.removed()
    }

    /// Whether no flow is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The flow registered as `id`.
    pub fn index_of(&self, id: &str) -> Option<FlowIndex> {
        let hash = self.hasher.hash_one(id);
        self.by_id
            .find(hash, |&i| &*self.flows[i as usize].id == id)
            .map(|&i| FlowIndex(i))
    }

    /// The flow registered as `id`.
    ///
    /// # Errors
    ///
    /// [`SchedulerError::UnknownFlow`].
    pub fn flow(&self, id: &str) -> Result<FlowIndex, SchedulerError> {
        self.index_of(id)
            .ok_or_else(|| SchedulerError::unknown_flow(id))
    }

    /// Whether flow `id` is registered.
    pub fn contains(&self, id: &str) -> bool {
        self.index_of(id).is_some()
    }

    /// Every flow, in registration order (a flow added while running may take the place
    /// of a removed one).
    pub fn flows(&self) -> impl DoubleEndedIterator<Item = FlowIndex> + '_ {
        (0..self.flows.len() as u32)
            .filter(|&i| !self.flows[i as usize].removed)
            .map(FlowIndex)
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
    /// [`SchedulerError::EmptyFlowId`], [`SchedulerError::DuplicateFlow`],
    /// [`SchedulerError::ZeroInterval`], [`SchedulerError::TooManyFlows`], or
    /// [`SchedulerError::AddAfterStart`]. (A bad cron expression is an error of
    /// [`Cron::parse`](crate::cron::Cron::parse).)
    pub fn add_flow(&mut self, id: &str, schedule: Schedule) -> Result<FlowIndex, SchedulerError> {
        let timeline = timeline_of(id, schedule)?;
        self.add_timeline(id, timeline)
    }

    #[cfg(test)]
    pub(crate) fn add_wall_flow(
        &mut self,
        id: &str,
        schedule: alloc::boxed::Box<dyn WallSchedule>,
    ) -> Result<FlowIndex, SchedulerError> {
        self.add_timeline(id, Timeline::Wall(Arc::from(schedule)))
    }

    fn add_timeline(&mut self, id: &str, timeline: Timeline) -> Result<FlowIndex, SchedulerError> {
        if self.stage != Stage::Registering {
            return Err(SchedulerError::AddAfterStart);
        }
        if id.is_empty() {
            return Err(SchedulerError::EmptyFlowId);
        }
        if self.contains(id) {
            return Err(SchedulerError::DuplicateFlow { id: id.into() });
        }
        let index = u32::try_from(self.flows.len()).map_err(|_| SchedulerError::TooManyFlows)?;
        if timeline.is_wall() {
            self.wall_flows += 1;
        }
        self.flows.push(FlowSlot::new(id, timeline));
        self.queue.add_flow();
        let hash = self.hasher.hash_one(id);
        let (flows, hasher) = (&self.flows, &self.hasher);
        self.by_id
            .insert_unique(hash, index, |&i| hasher.hash_one(&*flows[i as usize].id));
        Ok(FlowIndex(index))
    }

    /// The slot of `flow`, for a setting (before `start`).
    fn registered(&self, flow: FlowIndex, setting: &'static str) -> Result<usize, SchedulerError> {
        if self.stage != Stage::Registering {
            return Err(SchedulerError::SetAfterStart { setting });
        }
        self.slot_index(flow)
    }

    fn slot_index(&self, flow: FlowIndex) -> Result<usize, SchedulerError> {
        if flow.get() < self.flows.len() {
            Ok(flow.get())
        } else {
            Err(SchedulerError::unknown_flow(&alloc::format!(
                "#{}",
                flow.get()
            )))
        }
    }

    /// Sets flow `flow`'s backoff policy.
    ///
    /// # Errors
    ///
    /// [`SchedulerError::InvalidPolicy`], or [`SchedulerError::SetAfterStart`].
    pub fn set_backoff(
        &mut self,
        flow: FlowIndex,
        policy: BackoffPolicy,
    ) -> Result<(), SchedulerError> {
        let i = self.registered(flow, "backoff")?;
        policy.validate().map_err(SchedulerError::invalid_policy)?;
        let slot = match self.backoffs.iter().position(|p| *p == policy) {
            Some(existing) => existing,
            None => {
                self.backoffs.push(policy);
                self.backoffs.len() - 1
            }
        };
        self.flows[i]
            .config
            .update(|config| config.backoff = slot as u32);
        Ok(())
    }

    /// Flow `flow`'s scheduling policies (before `start`).
    ///
    /// # Errors
    ///
    /// [`SchedulerError::SetAfterStart`].
    pub fn policy(&self, flow: FlowIndex) -> Result<SchedulePolicy, SchedulerError> {
        let slot = &self.flows[self.registered(flow, "schedule policy")?];
        Ok(SchedulePolicy {
            overlap: slot.config.overlap,
            missed: slot.config.missed,
            interval_mode: slot.timeline.interval_mode(),
            first_run: slot.first_run,
            jitter: Duration::from_micros(slot.config.jitter as u64),
            run_start: slot.run_start,
        })
    }

    /// Sets flow `flow`'s scheduling policies.
    ///
    /// # Errors
    ///
    /// [`SchedulerError::InvalidPolicy`] (see [`SchedulePolicy::validate`]), or
    /// [`SchedulerError::SetAfterStart`].
    pub fn set_policy(
        &mut self,
        flow: FlowIndex,
        policy: SchedulePolicy,
    ) -> Result<(), SchedulerError> {
        let i = self.registered(flow, "schedule policy")?;
        policy.validate().map_err(SchedulerError::invalid_policy)?;
        let slot = &mut self.flows[i];
        slot.config.update(|config| {
            config.overlap = policy.overlap;
            config.missed = policy.missed;
            config.jitter = micros(policy.jitter);
        });
        slot.first_run = policy.first_run;
        slot.run_start = policy.run_start;
        if let Some(interval) = slot.timeline.every() {
            let was_wall = slot.timeline.is_wall();
            slot.timeline = Timeline::every_in(interval, policy.interval_mode);
            match (was_wall, slot.timeline.is_wall()) {
                (false, true) => self.wall_flows += 1,
                (true, false) => self.wall_flows -= 1,
                _ => {}
            }
        }
        Ok(())
    }

    /// Starts scheduling at monotonic `now` / wall `wall`: interval flows fire at once (or
    /// after one interval), cron flows at their next match. Does nothing unless the core is
    /// [`Stage::Registering`].
    pub fn start(&mut self, now: Instant, wall: Timestamp) {
        if self.stage != Stage::Registering {
            return;
        }
        self.stage = Stage::Running;
        self.flows.shrink_to_fit();
        self.backoffs.shrink_to_fit();
        self.queue.settle();
        if let Some(persist) = &mut self.persist {
            persist.hashes = self
                .flows
                .iter()
                .map(|slot| slot.schedule_hash(&self.time_zone))
                .collect();
        }
        for slot in &mut self.flows {
            slot.start(self.seed, &self.time_zone, now, wall);
        }
        self.wall_offset = Some(wall.as_microsecond() - mono_micros(now));
        self.last_poll = now;
        if self.persist.is_some() {
            for i in 0..self.flows.len() {
                self.restore_flow(i, now, wall);
            }
        }
        self.via_fleet_start(now);
        for (i, slot) in self.flows.iter_mut().enumerate() {
            if !slot.state.is_paused() && !slot.state.is_tripped() {
                slot.arm(i as u32, &mut self.queue, now, wall);
            }
            if slot.held.has_trigger() {
                self.queue.arm(i as u32, now);
            }
        }
        self.next_wall_check = self.wall_check_after(now);
    }

    /// Applies flow `i`'s restored record at start: its status, and the fires it missed
    /// while the scheduler was down per its [`MissedFirePolicy`](crate::schedule::MissedFirePolicy)
    /// ([`plan_catch_up`]).
    fn restore_flow(&mut self, i: usize, now: Instant, wall: Timestamp) {
        let Some(persist) = self.persist.as_deref_mut() else {
            return;
        };
        let Some(record) = persist.restored.get_mut(i).and_then(Option::take) else {
            return;
        };
        let slot = &mut self.flows[i];
        let policy = slot.policy();
        let schedule = slot.schedule();
        let plan = plan_catch_up(
            Some(&record),
            &schedule,
            &policy,
            &self.time_zone,
            wall,
            Duration::from_micros(self.grace as u64),
        );
        let wall_us = wall.as_microsecond();
        let mono_of = |wall_micros: i64| {
            instant_at(mono_micros(now).saturating_add(wall_micros.saturating_sub(wall_us).max(0)))
        };
        let backoff_until = record.next_eligible.map(|t| mono_of(t.as_microsecond()));
        slot.state.restore(
            record.streak,
            record.tripped,
            record.paused,
            backoff_until,
            record.last_error.clone(),
            record.last_fire,
        );
        // Fire ids keep increasing across the restart.
        slot.last_fire_id
            .set(record.last_fire.map(Timestamp::as_microsecond));
        if plan.buffered_trigger {
            slot.held = Held::Trigger;
        }
        slot.missed_fires = saturating_add(slot.missed_fires, plan.dropped);
        let caught_up = plan.reason.is_none() || plan.reason == Some(CatchUpReason::Paused);
        if let (true, Some(last)) = (caught_up, record.last_fire) {
            let last = last.as_microsecond();
            match slot.timeline {
                Timeline::FixedDelay { interval } => {
                    // No grid: the next fire is one interval after the last (or the end of
                    // its backoff window), at once if that passed.
                    let due = last.saturating_add(interval).max(
                        record
                            .next_eligible
                            .map_or(i64::MIN, |t| t.as_microsecond()),
                    );
                    slot.set_next_fire(Some(FireTime::Monotonic(mono_of(due))));
                    return;
                }
                Timeline::FixedRate {
                    interval,
                    ref mut anchor,
                } => {
                    // The grid continues from the last fire: its next point after now.
                    let steps = wall_us.saturating_sub(last).max(0) / interval.max(1) + 1;
                    let next = last.saturating_add(steps.saturating_mul(interval));
                    *anchor = mono_micros(mono_of(next));
                    let fire = FireTime::Monotonic(instant_at(*anchor));
                    slot.set_next_fire(Some(fire));
                }
                Timeline::Wall(_) | Timeline::Manual => {}
            }
        }
        persist
            .catch_up
            .extend(plan.fires.iter().map(|f| (i as u32, f.as_microsecond())));
    }

    fn wall_check_after(&self, now: Instant) -> Instant {
        match self.wall_check {
            Some(every) if self.wall_flows > 0 => now + every,
            _ => Instant::MAX,
        }
    }

    /// Where the core is in its life.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// Whether `start` has been called and no stop has begun.
    pub fn is_running(&self) -> bool {
        self.stage == Stage::Running
    }

    /// Whether the stop is complete ([`Stage::Stopped`]).
    pub fn is_stopped(&self) -> bool {
        self.stage == Stage::Stopped
    }

    /// Begins a stop at `now`: nothing is dispatched any more and commands are refused; runs
    /// in flight may finish until `now + grace`, then [`poll`](Self::poll) signals their
    /// cancellation ([`Action::Cancel`]) and, for those still in flight one cancellation
    /// wind-down later, asks to drop them ([`Action::Abort`]). Returns whether this call began the stop: a later call changes nothing (its
    /// grace is ignored). A core that never started is stopped at once.
    pub fn begin_stop(&mut self, now: Instant, grace: Duration) -> bool {
        if !matches!(self.stage, Stage::Registering | Stage::Running) {
            return false;
        }
        self.stage = Stage::Stopping {
            deadline: now.saturating_add(grace),
        };
        self.events.push(|| SchedulerEvent::Stopping);
        self.queue.clear();
        for slot in &mut self.flows {
            slot.held = slot.held.without_trigger();
        }
        self.settle_stop();
        true
    }

    /// A stopping core with no run in flight is stopped.
    fn settle_stop(&mut self) {
        if matches!(self.stage, Stage::Stopping { .. } | Stage::Draining) && self.runs.live() == 0 {
            self.stage = Stage::Stopped;
            self.events.push(|| SchedulerEvent::Stopped);
        }
    }

    /// What to do at `now` / `wall`. Call it until it returns [`Action::WakeAt`],
    /// [`Action::Idle`] or [`Action::Stopped`].
    pub fn poll(&mut self, now: Instant, wall: Timestamp) -> Action {
        if self.persist.is_some()
            && self.stage != Stage::Registering
            && let Some(write) = self.take_save(now, wall)
        {
            return Action::Save(write);
        }
        if let Some(run) = self.due_drop(now) {
            return Action::Abort(run);
        }
        if let Some(run) = self.due_signal(now) {
            return Action::Cancel(run);
        }
        if self.fleet.is_some()
            && self.stage != Stage::Registering
            && let Some(action) = self.via_fleet_poll(now, wall)
        {
            return action;
        }
        match self.stage {
            Stage::Registering => Action::Idle,
            Stage::Running => self.poll_running(now, wall),
            Stage::Stopping { deadline } if now < deadline => {
                Action::WakeAt(self.via_fleet_wake().map_or(deadline, |t| t.min(deadline)))
            }
            Stage::Stopping { .. } | Stage::Draining => {
                if self.stage != Stage::Draining {
                    self.stage = Stage::Draining;
                    self.stop_drop_at = Some(now.saturating_add(self.wind_down));
                }
                if let Some((run, entry)) = self.runs.next_to_cancel() {
                    let id = self.flows[entry.flow as usize].id.clone();
                    self.cancelled
                        .push(FireId::new(id, timestamp_at(entry.scheduled)));
                    return Action::Cancel(run);
                }
                if let Some(at) = self.stop_drop_at
                    && at <= now
                {
                    match self.runs.next_to_drop() {
                        Some(run) => return Action::Abort(run),
                        None => self.stop_drop_at = None,
                    }
                }
                // Every run left was signalled: wait for their ends, or the wind-down.
                let wake = match (self.stop_drop_at, self.via_fleet_wake()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                wake.map_or(Action::Idle, Action::WakeAt)
            }
            Stage::Stopped => Action::Stopped,
        }
    }

    fn poll_running(&mut self, now: Instant, wall: Timestamp) -> Action {
        self.check_wall_clock(now, wall);
        if self.recovery.is_some()
            && let Some(dispatch) = self.start_recovery(now, wall)
        {
            return Action::Resume(dispatch);
        }
        if self.persist.is_some()
            && let Some(action) = self.start_catch_up(now, wall)
        {
            return action;
        }
        while let Some(flow) = self.queue.pop_due(now) {
            let i = flow as usize;
            let counted = EventLog::counts(&self.flows[i]);
            let due = self.flows[i].on_due(
                flow,
                &mut self.queue,
                now,
                wall,
                self.grace,
                self.awake_after_jump,
            );
            self.events.fires_dropped(&self.flows[i], counted);
            match due {
                Due::Nothing => {}
                Due::Replan => self.rearm(i, now, wall, false),
                Due::Start(at) => {
                    let fence = match self.via_fleet_due(i, at, now) {
                        FleetDue::Local(fence) => fence,
                        FleetDue::Handled(action) => {
                            self.rearm(i, now, wall, false);
                            match action {
                                Some(action) => return action,
                                None => continue,
                            }
                        }
                    };
                    let mut dispatch = self.start_run(i, at, now, wall);
                    dispatch.fence = fence;
                    self.rearm(i, now, wall, false);
                    return Action::Start(dispatch);
                }
            }
        }
        if self.fleet.is_some()
            && let Some(action) = self.via_fleet_poll(now, wall)
        {
            // What the fires just due asked of the fleet (their claims).
            return action;
        }
        match self.next_wake() {
            Some(t) => Action::WakeAt(t),
            None => Action::Idle,
        }
    }

    /// How many events the core keeps for its readers (see [`crate::scheduler::events`];
    /// default [`DEFAULT_EVENT_CAPACITY`](super::events::DEFAULT_EVENT_CAPACITY), at least 1).
    pub fn set_event_capacity(&mut self, capacity: usize) {
        self.events.set_capacity(capacity);
    }

    /// Starts reading the core's events: from now on it makes them (until the last reader
    /// gives its cursor back with [`unsubscribe_events`](Self::unsubscribe_events)), and
    /// [`next_event`](Self::next_event) reads them from this point on.
    pub fn subscribe_events(&mut self) -> EventCursor {
        self.events.subscribe()
    }

    /// Gives a reader's cursor back; without readers the core makes no event.
    pub fn unsubscribe_events(&mut self, cursor: EventCursor) {
        self.events.unsubscribe(cursor);
    }

    /// The next event for `cursor`, or `None` if it has read everything. A reader that
    /// fell more than the capacity behind gets [`SchedulerEvent::Lagged`] first.
    pub fn next_event(&self, cursor: &mut EventCursor) -> Option<SchedulerEvent> {
        self.events.read(cursor)
    }

    /// How many finished runs per flow the core keeps (default
    /// [`DEFAULT_HISTORY_LIMIT`](super::history::DEFAULT_HISTORY_LIMIT); 0 keeps none and
    /// allocates nothing).
    pub fn set_history_limit(&mut self, limit: usize) {
        self.history.set_limit(limit);
    }

    /// Flow `flow`'s last finished runs, oldest first.
    ///
    /// # Panics
    ///
    /// If `flow` did not come from this core.
    pub fn history(&self, flow: FlowIndex) -> Vec<RunRecord> {
        self.history.of(flow.get(), &self.flows[flow.get()].id)
    }

    pub(crate) fn event_log(&self) -> &EventLog {
        &self.events
    }

    pub(crate) fn event_log_mut(&mut self) -> &mut EventLog {
        &mut self.events
    }

    /// The runs cancelled at the stop's deadline (signalled; dropped if they outlived the
    /// wind-down), in the order [`poll`](Self::poll) signalled them.
    pub fn cancelled_fires(&self) -> &[FireId] {
        &self.cancelled
    }

    /// The wall time at monotonic `now`, as of the last [`SchedulerCore::poll`] (or `start`):
    /// good enough for bookkeeping that the next poll re-checks against the real wall clock,
    /// and one clock read cheaper. [`Timestamp::UNIX_EPOCH`] + `now` before `start`.
    pub fn wall_estimate(&self, now: Instant) -> Timestamp {
        timestamp_at(
            self.wall_offset
                .unwrap_or(0)
                .saturating_add(mono_micros(now)),
        )
    }

    /// When [`SchedulerCore::poll`] next has something to do, if ever (events aside): the
    /// next due flow or wall-clock check while running, the deadline while stopping.
    pub fn next_wake(&self) -> Option<Instant> {
        let own = match self.stage {
            Stage::Running => {
                let queued = self.queue.next_due();
                let check = (self.next_wall_check != Instant::MAX).then_some(self.next_wall_check);
                match (queued, check) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            Stage::Stopping { deadline } => Some(deadline),
            Stage::Draining => self.stop_drop_at,
            Stage::Registering | Stage::Stopped => None,
        };
        let own = match (own, self.next_abort()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let own = if self.recovery.is_some() && self.recovery_ready() {
            Some(Instant::ZERO)
        } else {
            own
        };
        if self.stage == Stage::Registering {
            return own;
        }
        let own = match self.via_fleet_wake() {
            Some(fleet) => Some(own.map_or(fleet, |t| t.min(fleet))),
            None => own,
        };
        if self.persist.is_none() {
            return own;
        }
        // With a store: a catch-up fire that can start, and pending writes, wake too.
        let catch_up =
            (self.stage == Stage::Running && self.catch_up_ready()).then_some(Instant::ZERO);
        [own, catch_up, self.save_wake()]
            .into_iter()
            .flatten()
            .min()
    }

    fn check_wall_clock(&mut self, now: Instant, wall: Timestamp) {
        let offset = wall.as_microsecond() - mono_micros(now);
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
        // A forward jump (a suspend, an NTP step) ended at some point since the previous
        // poll; fires after that point came due while awake. A backward one makes any
        // earlier span meaningless (the wall clock may pass through it again). Only with a
        // wall-clock check, which bounds how late such a fire runs to one check interval;
        // without one the jump is noticed at a planned wake, arbitrarily late.
        self.awake_after_jump = match self.wall_check {
            Some(every) if jump > 0 => {
                let earliest = previous_poll.max(now.saturating_sub(every));
                Some((
                    mono_micros(earliest).saturating_add(offset),
                    wall.as_microsecond(),
                ))
            }
            _ => None,
        };
        let correction = jump <= -WALL_CORRECTION;
        for (i, slot) in self.flows.iter_mut().enumerate() {
            if slot.timeline.is_wall() {
                slot.wall_jumped(i as u32, &mut self.queue, now, wall, correction);
            }
        }
    }

    /// Re-plans flow `i` after its state changed (only while running).
    fn rearm(&mut self, i: usize, now: Instant, wall: Timestamp, fresh: bool) {
        if self.stage == Stage::Running {
            self.flows[i].rearm(i as u32, &mut self.queue, now, wall, fresh);
        } else {
            self.queue.disarm(i as u32);
        }
    }

    fn start_run(&mut self, i: usize, scheduled: i64, now: Instant, wall: Timestamp) -> Dispatch {
        let slot = &mut self.flows[i];
        let at = slot.next_fire_id(scheduled);
        slot.state.start(wall);
        let fire = FireId::new(slot.id.clone(), timestamp_at(at));
        self.mark_dirty(i);
        let run = self.runs.insert(i as u32, at, now);
        self.events.push(|| SchedulerEvent::FireStarted {
            fire: fire.clone(),
            run,
        });
        Dispatch {
            run,
            flow: FlowIndex(i as u32),
            fire,
            fence: Fence::ZERO,
            takeover: false,
            inline: self.flows[i].starts_inline(),
        }
    }

    /// The driver's inline first poll of a run of `flow` ([`Dispatch::inline`]) took longer
    /// than [`INLINE_START_BUDGET`](crate::schedule::INLINE_START_BUDGET): the flow's later
    /// runs are spawned before their first poll (its policy's
    /// [`RunStart`](crate::schedule::RunStart) becomes `Spawned`). An unknown flow, or one
    /// removed since, is ignored (the driver reports after the poll, and another thread may
    /// have removed the flow meanwhile; a slot reused by a flow added since that report is
    /// demoted too: a performance matter only).
    ///
    /// ```
    /// use cano_core::scheduler::SchedulerCore;
    /// use cano_core::schedule::Schedule;
    /// use cano_core::Instant;
    /// use cano_core::jiff::Timestamp;
    ///
    /// let mut core = SchedulerCore::new();
    /// let flow = core.add_flow("m", Schedule::Manual).unwrap();
    /// let wall = Timestamp::UNIX_EPOCH;
    /// core.start(Instant::ZERO, wall);
    /// let first = core.trigger(flow, Instant::ZERO, wall).unwrap().unwrap();
    /// assert!(first.inline);
    /// core.spawn_later_runs(flow); // its inline poll was slow
    /// core.finish(first.run, Instant::ZERO, wall, Ok(())).unwrap();
    /// let second = core.trigger(flow, Instant::ZERO, wall).unwrap().unwrap();
    /// assert!(!second.inline);
    /// ```
    pub fn spawn_later_runs(&mut self, flow: FlowIndex) {
        if let Some(slot) = self.flows.get_mut(flow.get())
            && !slot.removed
        {
            slot.run_start = crate::schedule::RunStart::Spawned;
        }
    }

    /// Records how run `run` ended, at `now`. A run that wound down with
    /// [`CanoError::Cancelled`] once a stop began or after its cancellation was signalled
    /// ([`Action::Cancel`]) is recorded as [`RunOutcome::Cancelled`], not as a failure of
    /// its flow; the last run to end completes the stop.
    ///
    /// # Errors
    ///
    /// [`SchedulerError::UnknownRun`] if `run` is not in flight (a driver bug: reported
    /// twice, or from another core). Nothing changes then.
    pub fn finish(
        &mut self,
        run: RunId,
        now: Instant,
        wall: Timestamp,
        outcome: impl Into<RunOutcome>,
    ) -> Result<(), SchedulerError> {
        let entry = self.runs.get(run).copied();
        let i = self.runs.remove(run).ok_or(SchedulerError::UnknownRun)? as usize;
        let stopping = !matches!(self.stage, Stage::Registering | Stage::Running);
        let signalled = entry.is_some_and(|e| e.cancelling);
        let outcome = match outcome.into() {
            RunOutcome::Failed(failure) if (stopping || signalled) && failure.cancellation => {
                RunOutcome::Cancelled
            }
            outcome => outcome,
        };
        self.forget_cancel(run);
        self.recovery_ended(run, i, &outcome, stopping);
        if let Some(entry) = entry {
            self.events
                .run_ended(&self.flows[i], run, entry, &outcome, now);
            self.history
                .record(i, self.flows.len(), &entry, &outcome, now, wall);
        }
        let write = match self.fleet {
            None => true,
            Some(_) => {
                let requested = !stopping && entry.is_some_and(|e| e.cancelling);
                let end = self.via_fleet_run_ended(run, &outcome, requested, now);
                matches!(end, FleetEnd::Write)
            }
        };
        let slot = &mut self.flows[i];
        let result = match outcome {
            RunOutcome::Succeeded => Some(Ok(())),
            RunOutcome::Failed(failure) if !(stopping && failure.cancellation) => {
                Some(Err(failure.message))
            }
            RunOutcome::Failed(_) | RunOutcome::Cancelled => None,
        };
        match result {
            None => slot.state.cancelled(),
            Some(result) => {
                let policy = &self.backoffs[slot.config.backoff as usize];
                let transition = slot.state.finish(now, result, policy, &self.rng);
                self.events.transition(slot, transition, now);
                if let Timeline::FixedDelay { interval } = slot.timeline {
                    // Fixed delay: measured from the end of this run.
                    slot.set_next_fire(Some(FireTime::Monotonic(instant_at(
                        mono_micros(now).saturating_add(interval),
                    ))));
                }
                if transition == Transition::Tripped {
                    slot.held = Held::Nothing;
                }
            }
        }
        if write {
            self.mark_dirty(i);
        }
        self.rearm(i, now, wall, false);
        self.release_if_drained(i);
        self.settle_stop();
        Ok(())
    }

    /// Whether commands are accepted now.
    ///
    /// # Errors
    ///
    /// [`SchedulerError::NotStarted`] or [`SchedulerError::Stopped`].
    pub fn check_running(&self) -> Result<(), SchedulerError> {
        match self.stage {
            Stage::Running => Ok(()),
            Stage::Registering => Err(SchedulerError::NotStarted),
            _ => Err(SchedulerError::Stopped),
        }
    }

    fn command(&self, flow: FlowIndex) -> Result<usize, SchedulerError> {
        self.check_running()?;
        self.slot_index(flow)
    }

    /// Starts a run of flow `flow` now, bypassing a backoff window. `Ok(None)`: the run was
    /// accepted but held ([`OverlapPolicy::BufferOne`](crate::schedule::OverlapPolicy::BufferOne))
    /// and starts when the current one ends (it comes out of [`SchedulerCore::poll`]).
    ///
    /// # Errors
    ///
    /// [`SchedulerError::NotStarted`], [`SchedulerError::Stopped`],
    /// [`SchedulerError::Tripped`], or [`SchedulerError::AlreadyRunning`] (at the overlap
    /// limit and unable to hold another).
    pub fn trigger(
        &mut self,
        flow: FlowIndex,
        now: Instant,
        wall: Timestamp,
    ) -> Result<Option<Dispatch>, SchedulerError> {
        let i = self.command(flow)?;
        let slot = &mut self.flows[i];
        match slot.state.check_start(slot.config.overlap.limit()) {
            Err(StartRefusal::Tripped) => Err(SchedulerError::Tripped {
                id: (*slot.id).into(),
            }),
            Err(StartRefusal::AtLimit) => {
                let held = slot.held.with_trigger();
                if let (OverlapPolicy::BufferOne, Some(held)) = (slot.config.overlap, held) {
                    slot.held = held;
                    self.mark_dirty(i);
                    Ok(None)
                } else {
                    Err(SchedulerError::AlreadyRunning {
                        id: (*slot.id).into(),
                    })
                }
            }
            Ok(()) => {
                let dispatch = self.start_run(i, wall.as_microsecond(), now, wall);
                self.rearm(i, now, wall, false);
                self.via_fleet_publish(i, FleetCommandKind::Trigger);
                Ok(Some(dispatch))
            }
        }
    }

    /// Clears flow `flow`'s failure streak, backoff window and trip. A running flow stays
    /// running (a failure of that run starts a new streak at 1). Scheduled fires resume from
    /// now.
    ///
    /// # Errors
    ///
    /// [`SchedulerError::NotStarted`] or [`SchedulerError::Stopped`].
    pub fn reset_flow(
        &mut self,
        flow: FlowIndex,
        now: Instant,
        wall: Timestamp,
    ) -> Result<(), SchedulerError> {
        let i = self.command(flow)?;
        self.flows[i].state.reset();
        self.events
            .flow_event(&self.flows[i], |flow| SchedulerEvent::Reset { flow });
        self.mark_dirty(i);
        self.rearm(i, now, wall, true);
        self.via_fleet_publish(i, FleetCommandKind::Reset);
        Ok(())
    }

    /// Pauses flow `flow`'s scheduled fires (runs in flight continue; `trigger` still works).
    ///
    /// # Errors
    ///
    /// [`SchedulerError::NotStarted`] or [`SchedulerError::Stopped`].
    pub fn pause(&mut self, flow: FlowIndex) -> Result<(), SchedulerError> {
        let i = self.command(flow)?;
        self.flows[i].state.set_paused(true);
        self.events
            .flow_event(&self.flows[i], |flow| SchedulerEvent::Paused { flow });
        self.mark_dirty(i);
        self.queue.disarm(i as u32);
        self.via_fleet_publish(i, FleetCommandKind::Pause);
        Ok(())
    }

    /// Resumes flow `flow`'s scheduled fires from now (fires that passed while paused are
    /// not caught up).
    ///
    /// # Errors
    ///
    /// [`SchedulerError::NotStarted`] or [`SchedulerError::Stopped`].
    pub fn resume(
        &mut self,
        flow: FlowIndex,
        now: Instant,
        wall: Timestamp,
    ) -> Result<(), SchedulerError> {
        let i = self.command(flow)?;
        if self.flows[i].state.is_paused() {
            self.flows[i].state.set_paused(false);
            self.events
                .flow_event(&self.flows[i], |flow| SchedulerEvent::Resumed { flow });
            self.mark_dirty(i);
            self.rearm(i, now, wall, true);
            self.via_fleet_publish(i, FleetCommandKind::Resume);
        }
        Ok(())
    }

    /// Keeps every flow's state in a schedule store (before `start`): from now on the core
    /// asks for writes ([`Action::Save`], [`take_save`](Self::take_save)) after each fire,
    /// outcome and command. Without this call (the default) the core asks for none and
    /// costs nothing more.
    ///
    /// What a failed write does ([`save_done`](Self::save_done) with an error): the run or
    /// command it recorded stands (the scheduler does not undo work because a store is
    /// down); the flow's record is written again with its state at that time, at the next
    /// retry ([`SAVE_RETRY`], doubling up to [`SAVE_RETRY_MAX`] while writes keep failing).
    /// A write refused with [`PersistError::Fenced`] (another scheduler owns the flow now)
    /// is not retried for that flow.
    pub fn persist_schedules(&mut self) {
        if self.stage == Stage::Registering && self.persist.is_none() {
            self.persist = Some(Box::default());
        }
    }

    /// Whether the core keeps its flows in a schedule store ([`persist_schedules`](Self::persist_schedules)).
    pub fn persists_schedules(&self) -> bool {
        self.persist.is_some()
    }

    /// Takes the records a schedule store kept (before `start`; implies
    /// [`persist_schedules`](Self::persist_schedules)). At `start` each registered flow
    /// gets back its failure streak, backoff window, trip, pause, buffered trigger and last
    /// fire, and the fires it missed while the scheduler was down are run or dropped per its
    /// [`MissedFirePolicy`](crate::schedule::MissedFirePolicy) ([`plan_catch_up`]); a flow
    /// whose schedule changed ([`ScheduleHash`]) catches nothing up. Records of flows that
    /// are not registered are ignored (counted by
    /// [`unknown_stored_flows`](Self::unknown_stored_flows)). Returns `false`, changing
    /// nothing, once started.
    pub fn restore(&mut self, stored: Vec<StoredFlow>) -> bool {
        if self.stage != Stage::Registering {
            return false;
        }
        self.persist_schedules();
        let len = self.flows.len();
        let mut restored: Vec<Option<FlowRecord>> = alloc::vec![None; len];
        let mut unknown = 0;
        for StoredFlow { flow, record, .. } in stored {
            match self.index_of(&flow) {
                Some(i) => restored[i.get()] = Some(record),
                None => unknown += 1,
            }
        }
        if let Some(persist) = &mut self.persist {
            persist.restored = restored;
            persist.unknown = unknown;
        }
        true
    }

    /// Stored records of flows that are not registered, as of [`restore`](Self::restore).
    pub fn unknown_stored_flows(&self) -> usize {
        self.persist.as_ref().map_or(0, |p| p.unknown)
    }

    /// Asks for flow `i`'s record to be written (nothing without a store: this check is
    /// all a store-less core pays per fire and outcome).
    #[inline(always)]
    fn mark_dirty(&mut self, i: usize) {
        if self.persist.is_some() {
            self.mark_dirty_slow(i);
        }
    }

    #[inline(never)]
    fn mark_dirty_slow(&mut self, i: usize) {
        if let Some(persist) = &mut self.persist {
            if persist.dirty.len() < self.flows.len() {
                persist.dirty.resize(self.flows.len(), false);
                persist.fenced.resize(self.flows.len(), false);
            }
            persist.mark(i);
        }
    }

    /// The record of flow `i` as it stands at `now` / `wall`.
    fn record_of(&self, i: usize, now: Instant, wall: Timestamp) -> FlowRecord {
        let slot = &self.flows[i];
        let hash = self
            .persist
            .as_ref()
            .and_then(|p| p.hashes.get(i).copied())
            .unwrap_or_else(|| slot.schedule_hash(&self.time_zone));
        let mut record = FlowRecord::new(hash);
        record.last_fire = slot.last_fire_id.get().map(timestamp_at);
        record.streak = slot.state.failure_streak();
        // Whole microseconds: what stores keep.
        record.next_eligible = slot
            .state
            .backoff_until(now)
            .map(|until| timestamp_at(to_wall(until, now, wall).as_microsecond()));
        record.paused = slot.state.is_paused();
        record.tripped = slot.state.is_tripped();
        record.buffered_trigger = slot.held.has_trigger();
        record.last_error = slot.state.last_error().map(Arc::from);
        record
    }

    /// The next schedule-store write the core asks for at `now` / `wall`, if any (what
    /// [`poll`](Self::poll) returns as [`Action::Save`]; a driver that changed the core
    /// outside `poll`, by an outcome or a command, may take it here). Failed writes wait for
    /// their retry time, except once the stop is complete (then each is tried once more).
    /// Report each write's result with [`save_done`](Self::save_done).
    pub fn take_save(&mut self, now: Instant, wall: Timestamp) -> Option<ScheduleWrite> {
        let stopped = self.stage == Stage::Stopped;
        let persist = self.persist.as_deref_mut()?;
        if persist.pending.is_empty() || (now < persist.retry_at && !stopped) {
            return None;
        }
        let i = persist.pending.pop_front()? as usize;
        persist.dirty[i] = false;
        persist.in_flight += 1;
        Some(ScheduleWrite {
            flow: FlowIndex(i as u32),
            id: self.flows[i].id.clone(),
            record: self.record_of(i, now, wall),
            fence: self.via_fleet_fence(i),
        })
    }

    /// Reports how a write the core asked for ended, at `now`. On an error the flow is
    /// written again later (see [`persist_schedules`](Self::persist_schedules)); after the
    /// stop completed it is listed by [`unsaved_flows`](Self::unsaved_flows) instead.
    pub fn save_done(&mut self, flow: FlowIndex, now: Instant, result: &PersistResult<()>) {
        let stopped = self.stage == Stage::Stopped;
        let Some(persist) = self.persist.as_deref_mut() else {
            return;
        };
        let i = flow.get();
        if i >= persist.dirty.len() {
            return;
        }
        persist.in_flight = persist.in_flight.saturating_sub(1);
        match result {
            Ok(()) => persist.retry_delay = Duration::ZERO,
            Err(PersistError::Fenced { .. }) => {
                persist.failed += 1;
                persist.fenced[i] = true;
            }
            Err(_) => {
                persist.failed += 1;
                if stopped {
                    if !persist.unsaved.contains(&(i as u32)) {
                        persist.unsaved.push(i as u32);
                    }
                } else {
                    persist.mark(i);
                    persist.retry_delay =
                        (persist.retry_delay * 2).clamp(SAVE_RETRY, SAVE_RETRY_MAX);
                    persist.retry_at = now.saturating_add(persist.retry_delay);
                }
            }
        }
    }

    /// Whether every write asked for so far was made and reported successful (no write
    /// pending, none in flight). Always `true` without a schedule store.
    pub fn saves_settled(&self) -> bool {
        self.persist
            .as_ref()
            .is_none_or(|p| p.pending.is_empty() && p.in_flight == 0)
    }

    /// Schedule-store writes that failed so far (each retry counts).
    pub fn failed_saves(&self) -> u64 {
        self.persist.as_ref().map_or(0, |p| p.failed)
    }

    /// Flows whose state could not be written before the stop completed.
    pub fn unsaved_flows(&self) -> impl Iterator<Item = FlowIndex> + '_ {
        self.persist
            .iter()
            .flat_map(|p| p.unsaved.iter().map(|&i| FlowIndex(i)))
    }

    /// When a write is (or will be) ready to take, if one is pending.
    fn save_wake(&self) -> Option<Instant> {
        let persist = self.persist.as_deref()?;
        (!persist.pending.is_empty()).then_some(persist.retry_at)
    }

    fn catch_up_ready(&self) -> bool {
        self.persist.as_deref().is_some_and(|p| {
            p.catch_up.iter().any(|&(flow, _)| {
                let slot = &self.flows[flow as usize];
                !slot.state.is_paused()
                    && slot.state.check_start(slot.config.overlap.limit())
                        != Err(StartRefusal::AtLimit)
            })
        })
    }

    /// Starts the oldest catch-up fire whose flow can start now (fires of a tripped flow
    /// are dropped; a paused flow's wait for its resume).
    ///
    /// On a fleet node every such fire is handed to the fleet (queued for its claim) before
    /// the flows' next fires come due, so a flow's fires are claimed oldest first.
    fn start_catch_up(&mut self, now: Instant, wall: Timestamp) -> Option<Action> {
        loop {
            let persist = self.persist.as_deref_mut()?;
            if persist.catch_up.is_empty() {
                return None;
            }
            let flows = &self.flows;
            persist
                .catch_up
                .retain(|&(flow, _)| !flows[flow as usize].state.is_tripped());
            let position = persist.catch_up.iter().position(|&(flow, _)| {
                let slot = &flows[flow as usize];
                !slot.state.is_paused()
                    && slot.state.check_start(slot.config.overlap.limit()).is_ok()
            })?;
            let (flow, at) = persist.catch_up.remove(position);
            if persist.catch_up.is_empty() {
                persist.catch_up = Vec::new();
            }
            match self.via_fleet_due(flow as usize, at, now) {
                FleetDue::Local(fence) => {
                    let mut dispatch = self.start_run(flow as usize, at, now, wall);
                    dispatch.fence = fence;
                    return Some(Action::Start(dispatch));
                }
                FleetDue::Handled(Some(action)) => return Some(action),
                FleetDue::Handled(None) => {}
            }
        }
    }

    /// Whether any run is in flight.
    pub fn has_running_flows(&self) -> bool {
        self.runs.live() > 0
    }

    /// The flow of run `run`, while it is in flight.
    pub(crate) fn run_flow(&self, run: RunId) -> Option<FlowIndex> {
        self.runs.get(run).map(|entry| FlowIndex(entry.flow))
    }

    /// Flow slots, removed ones included: every [`FlowIndex`] is below it.
    pub(crate) fn flow_slots(&self) -> usize {
        self.flows.len()
    }

    /// Runs in flight.
    pub fn runs_in_flight(&self) -> usize {
        self.runs.live()
    }

    /// A snapshot of flow `flow`.
    ///
    /// # Panics
    ///
    /// If `flow` did not come from this core.
    pub fn info(&self, flow: FlowIndex, now: Instant, wall: Timestamp) -> FlowInfo {
        self.view(flow, now, wall).into_info()
    }

    /// What [`info`](Self::info) reports, without its allocations (to be made outside a
    /// lock).
    pub(crate) fn view(&self, flow: FlowIndex, now: Instant, wall: Timestamp) -> FlowView {
        let slot = &self.flows[flow.get()];
        FlowView {
            id: slot.id.clone(),
            state: slot.state.clone(),
            now,
            wall,
            next_fire: if self.is_running() {
                slot.planned_fire(now, wall)
            } else {
                None
            },
            missed_fires: slot.missed_fires,
            skipped_fires: slot.config.skipped_fires(),
            recovered: self.recovery_counts(flow),
            fleet: self.via_fleet_counters(flow.get()),
        }
    }

    /// Snapshots of every flow, in registration order.
    pub fn list(&self, now: Instant, wall: Timestamp) -> Vec<FlowInfo> {
        self.flows()
            .map(|flow| self.info(flow, now, wall))
            .collect()
    }

    /// Flow `flow`'s planned fire times from now on (before jitter), walked lazily; see
    /// [`UpcomingFires`]. Empty unless the core is running.
    ///
    /// # Panics
    ///
    /// If `flow` did not come from this core.
    pub fn upcoming_fires(&self, flow: FlowIndex, now: Instant, wall: Timestamp) -> UpcomingFires {
        if self.is_running() {
            self.flows[flow.get()].upcoming(now, wall)
        } else {
            UpcomingFires::empty()
        }
    }

    /// The next `n` (at most [`NEXT_FIRES_LIMIT`]) scheduled fire times of flow `flow`
    /// (before jitter), as planned now: for a fixed-delay flow this assumes each run takes
    /// no time. Empty for manual, paused, tripped or stopped flows.
    ///
    /// # Panics
    ///
    /// If `flow` did not come from this core.
    pub fn next_fires(
        &self,
        flow: FlowIndex,
        n: usize,
        now: Instant,
        wall: Timestamp,
    ) -> Vec<Timestamp> {
        self.upcoming_fires(flow, now, wall)
            .take(n.min(NEXT_FIRES_LIMIT))
            .collect()
    }
}

/// The timeline of a flow `id` registered with `schedule`.
fn timeline_of(id: &str, schedule: Schedule) -> Result<Timeline, SchedulerError> {
    if id.is_empty() {
        return Err(SchedulerError::EmptyFlowId);
    }
    Ok(match schedule {
        Schedule::Every(interval) => {
            let interval = micros(interval);
            if interval == 0 {
                return Err(SchedulerError::ZeroInterval { id: id.into() });
            }
            Timeline::FixedDelay { interval }
        }
        Schedule::Cron(cron) => Timeline::Wall(Arc::new(CronSchedule {
            cron,
            zone: TimeZone::UTC,
        })),
        Schedule::Manual => Timeline::Manual,
    })
}

/// Values kept per flow outside the core (a scheduler's jobs), stored under the
/// [`FlowIndex`] the core gave each flow.
pub(crate) struct FlowMap<T>(Vec<T>);

impl<T> Default for FlowMap<T> {
    fn default() -> Self {
        FlowMap(Vec::new())
    }
}

impl<T> FlowMap<T> {
    /// Stores `value` for `flow`, the flow the core registered last.
    pub(crate) fn insert(&mut self, flow: FlowIndex, value: T) {
        debug_assert_eq!(flow.get(), self.0.len(), "flows are stored as registered");
        self.0.push(value);
    }

    /// Every flow's value, in registration order.
    pub(crate) fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = (FlowIndex, &T)> + ExactSizeIterator {
        self.0
            .iter()
            .enumerate()
            .map(|(i, value)| (FlowIndex(i as u32), value))
    }

    /// The values, by flow, in registration order.
    pub(crate) fn into_vec(self) -> Vec<T> {
        self.0
    }
}

/// A flow's snapshot with shared text: cheap to take under a lock, turned into a
/// [`FlowInfo`] (which allocates) outside it.
#[derive(Debug, Clone)]
pub(crate) struct FlowView {
    id: Arc<str>,
    state: FlowState,
    now: Instant,
    wall: Timestamp,
    next_fire: Option<Timestamp>,
    missed_fires: u32,
    skipped_fires: u32,
    recovered: super::info::RecoveryCounts,
    fleet: fleet::FleetCounters,
}

impl FlowView {
    pub(crate) fn into_info(self) -> FlowInfo {
        let state = &self.state;
        FlowInfo {
            id: String::from(&*self.id),
            status: state.status(self.now, self.wall),
            run_count: state.run_count(),
            last_run: state.last_run(),
            failure_streak: state.failure_streak(),
            next_eligible: state
                .backoff_until(self.now)
                .map(|until| to_wall(until, self.now, self.wall)),
            next_fire: self.next_fire,
            missed_fires: u64::from(self.missed_fires),
            skipped_fires: u64::from(self.skipped_fires),
            recovered: self.recovered,
            fires_elsewhere: self.fleet.fires_elsewhere,
            fires_abandoned: self.fleet.fires_abandoned,
            takeovers: self.fleet.takeovers,
            lease_losses: self.fleet.lease_losses,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::schedule::tests::Aligned;
    use crate::scheduler::schedule::{FirstRun, IntervalMode};
    use alloc::boxed::Box;
    use alloc::format;

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
        /// The runs the core asked to drop ([`Action::Abort`]), and when.
        dropped: Vec<(RunId, Instant)>,
    }

    impl Harness {
        fn new(core: SchedulerCore) -> Self {
            let mut h = Harness {
                core,
                now: Instant::ZERO,
                wall: wall_at(0),
                started: Vec::new(),
                dropped: Vec::new(),
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

        /// Polls until the core waits; returns the runs it signalled to cancel and how it
        /// waits. The runs it asked to drop go to `dropped`; a drop never comes before
        /// the run's signal.
        fn poll_cancels(&mut self) -> (Vec<RunId>, Action) {
            let mut cancels = Vec::new();
            loop {
                match self.core.poll(self.now, self.wall) {
                    Action::Cancel(run) => cancels.push(run),
                    Action::Abort(run) => {
                        assert!(
                            self.core.runs.get(run).is_some_and(|e| e.cancelling),
                            "{run:?} dropped before it was signalled"
                        );
                        self.dropped.push((run, self.now));
                    }
                    Action::Start(d) => panic!("started {d:?} while stopping"),
                    other => return (cancels, other),
                }
            }
        }

        fn finish(&mut self, run: RunId, outcome: impl Into<RunOutcome>) {
            self.core.finish(run, self.now, self.wall, outcome).unwrap();
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
            f,
            SchedulePolicy {
                interval_mode: IntervalMode::FixedRate,
                ..SchedulePolicy::default()
            },
        )
        .unwrap();
        let mut h = Harness::new(core);
        let first = h.poll_all();
        assert_eq!(first.len(), 1);
        // Due at 10 while running: blocked, nothing started.
        h.advance_to(secs(10));
        assert!(h.poll_all().is_empty());
        h.advance_to(secs(25));
        h.finish(first[0].run, Ok(()));
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

    /// Two hourly flows, both running from the start.
    fn two_running() -> (Harness, Vec<Dispatch>) {
        let mut core = SchedulerCore::new();
        core.add_flow("a", Schedule::Every(Duration::from_secs(3600)))
            .unwrap();
        core.add_flow("b", Schedule::Every(Duration::from_secs(3600)))
            .unwrap();
        let mut h = Harness::new(core);
        let runs = h.poll_all();
        assert_eq!(runs.len(), 2);
        (h, runs)
    }

    #[test]
    fn stop_lets_runs_finish_within_the_grace_and_is_complete_when_the_last_ends() {
        let (mut h, runs) = two_running();
        h.advance_to(secs(10));
        assert!(h.core.begin_stop(h.now, Duration::from_secs(5)));
        assert_eq!(h.core.stage(), Stage::Stopping { deadline: secs(15) });
        // The deadline is the next wake; nothing is dispatched any more.
        assert_eq!(h.core.next_wake(), Some(secs(15)));
        assert_eq!(h.core.poll(h.now, h.wall), Action::WakeAt(secs(15)));
        h.advance_to(secs(12));
        h.finish(runs[0].run, Ok(()));
        assert_eq!(h.core.poll(h.now, h.wall), Action::WakeAt(secs(15)));
        h.advance_to(secs(14));
        h.finish(runs[1].run, Ok(()));
        assert!(h.core.is_stopped());
        assert_eq!(h.core.next_wake(), None);
        assert_eq!(h.core.poll(h.now, h.wall), Action::Stopped);
        assert!(h.core.cancelled_fires().is_empty());
        // Outcomes during the grace are recorded.
        let a = h.core.info(FlowIndex(0), h.now, h.wall);
        assert_eq!(a.status, crate::Status::Completed);
        assert_eq!(a.next_fire, None, "nothing is planned after a stop");
    }

    #[test]
    fn stop_cancels_the_runs_left_at_the_deadline_once_each() {
        let (mut h, runs) = two_running();
        h.core.begin_stop(h.now, Duration::from_secs(5));
        h.advance_to(secs(5));
        let (cancels, waiting) = h.poll_cancels();
        assert_eq!(cancels, [runs[0].run, runs[1].run]);
        // Signalled, not dropped: they wind down until the wind-down's end.
        let wound_down = secs(5) + DEFAULT_CANCEL_WIND_DOWN;
        assert_eq!(waiting, Action::WakeAt(wound_down), "waits for their ends");
        assert!(h.dropped.is_empty());
        assert_eq!(h.core.stage(), Stage::Draining);
        assert_eq!(h.core.next_wake(), Some(wound_down));
        assert_eq!(
            h.core.cancelled_fires(),
            [runs[0].fire.clone(), runs[1].fire.clone()]
        );
        // Asked once: polling again asks nothing more.
        assert_eq!(h.poll_cancels(), (Vec::new(), Action::WakeAt(wound_down)));
        h.finish(runs[0].run, RunOutcome::Cancelled);
        assert_eq!(h.core.stage(), Stage::Draining);
        h.finish(runs[1].run, RunOutcome::Cancelled);
        assert_eq!(h.core.poll(h.now, h.wall), Action::Stopped);
        // A cancelled run is neither a success nor a failure.
        let a = h.core.info(runs[0].flow, h.now, h.wall);
        assert_eq!((a.status, a.failure_streak), (crate::Status::Idle, 0));
    }

    /// A run that ignores its cancellation is asked to be dropped once the wind-down
    /// passed, and keeps the core draining until it does end; however it ends, the stop
    /// then completes and its outcome is recorded.
    #[test]
    fn a_run_that_ignores_cancellation_holds_the_stop_until_it_ends() {
        let (mut h, runs) = two_running();
        h.core.begin_stop(h.now, Duration::from_secs(1));
        h.advance_to(secs(1));
        assert_eq!(h.poll_cancels().0.len(), 2);
        h.finish(runs[0].run, RunOutcome::Cancelled);
        h.advance_to(secs(3600));
        assert_eq!(h.poll_cancels(), (Vec::new(), Action::Idle));
        assert_eq!(
            h.dropped,
            [(runs[1].run, secs(3600))],
            "only the one in flight"
        );
        assert_eq!(h.poll_cancels(), (Vec::new(), Action::Idle), "asked once");
        assert_eq!(h.dropped.len(), 1);
        assert!(!h.core.is_stopped());
        let err = CanoError::task_execution("late");
        h.finish(runs[1].run, Err(&err));
        assert_eq!(h.core.poll(h.now, h.wall), Action::Stopped);
        let b = h.core.info(runs[1].flow, h.now, h.wall);
        assert_eq!(b.failure_streak, 1, "a real failure stays a failure: {b:?}");
        // It is still listed as cancelled: it was asked to stop at the deadline.
        assert_eq!(h.core.cancelled_fires().len(), 2);
    }

    /// A zero wind-down drops every run with its signal, in the same poll: the
    /// drop-at-once of cano before two-phase cancellation.
    #[test]
    fn a_zero_wind_down_drops_with_the_signal() {
        let (mut h, runs) = two_running();
        h.core.set_cancel_wind_down(Duration::ZERO);
        h.core.begin_stop(h.now, Duration::from_secs(2));
        h.advance_to(secs(2));
        let (cancels, waiting) = h.poll_cancels();
        assert_eq!(cancels, [runs[0].run, runs[1].run]);
        assert_eq!(h.dropped, [(runs[0].run, secs(2)), (runs[1].run, secs(2))]);
        assert_eq!(waiting, Action::Idle);
        h.finish(runs[0].run, RunOutcome::Cancelled);
        h.finish(runs[1].run, RunOutcome::Cancelled);
        assert!(h.core.is_stopped());
    }

    /// `cancel_flow` signals at once and drops one wind-down later only if the run is
    /// still in flight; a run that winds down with `Cancelled` is not a failure, even
    /// while the core runs on.
    #[test]
    fn cancel_flow_signals_then_drops_at_the_wind_down_only_if_in_flight() {
        let wind_down = Duration::from_secs(5);
        for end in 0..=8u64 {
            for as_cancelled in [false, true] {
                let mut core = SchedulerCore::new();
                let m = core.add_flow("m", Schedule::Manual).unwrap();
                core.set_cancel_wind_down(wind_down);
                let mut h = Harness::new(core);
                h.advance_to(secs(10));
                let run = h.core.trigger(m, h.now, h.wall).unwrap().unwrap().run;
                assert_eq!(h.core.cancel_flow(m, h.now), Ok(1));
                let (cancels, waiting) = h.poll_cancels();
                assert_eq!(cancels, [run], "signalled at once");
                assert_eq!(waiting, Action::WakeAt(secs(15)), "the wind-down's end");
                assert_eq!(h.core.cancel_flow(m, h.now), Ok(1), "still in flight");
                assert_eq!(h.poll_cancels().0, [], "signalled once");
                let mut ended = false;
                for t in 10..=20u64 {
                    h.advance_to(secs(t));
                    if !ended && t == 10 + end {
                        let outcome = if as_cancelled {
                            RunOutcome::from(Err(&CanoError::cancelled("wound down")))
                        } else {
                            RunOutcome::Succeeded
                        };
                        h.finish(run, outcome);
                        ended = true;
                    }
                    let (cancels, waiting) = h.poll_cancels();
                    assert!(cancels.is_empty());
                    if ended {
                        assert_eq!(waiting, Action::Idle, "end={end} t={t}: no wake left");
                    }
                    if !ended && t == 15 {
                        // The driver drops it: it ends as cancelled.
                        h.finish(run, RunOutcome::Cancelled);
                        ended = true;
                    }
                }
                let expected: &[(RunId, Instant)] = if end <= 5 { &[] } else { &[(run, secs(15))] };
                assert_eq!(h.dropped, expected, "end={end}");
                let info = h.core.info(m, h.now, h.wall);
                assert_eq!(info.failure_streak, 0, "end={end}: {info:?}");
            }
        }
    }

    #[test]
    fn a_zero_grace_cancels_at_once_and_a_stop_without_runs_is_immediate() {
        let (mut h, runs) = two_running();
        h.core.begin_stop(h.now, Duration::ZERO);
        assert_eq!(h.poll_cancels().0, [runs[0].run, runs[1].run]);

        let mut core = SchedulerCore::new();
        core.add_flow("m", Schedule::Manual).unwrap();
        let mut h = Harness::new(core);
        assert!(h.core.begin_stop(h.now, Duration::from_secs(30)));
        assert!(h.core.is_stopped());
        assert_eq!(h.core.poll(h.now, h.wall), Action::Stopped);

        // A core that never started stops at once too.
        let mut never = SchedulerCore::new();
        assert!(never.begin_stop(Instant::ZERO, Duration::from_secs(30)));
        assert!(never.is_stopped());
        assert_eq!(
            never.add_flow("late", Schedule::Manual),
            Err(SchedulerError::AddAfterStart)
        );
    }

    #[test]
    fn a_second_stop_changes_nothing_and_keeps_the_first_report() {
        let (mut h, runs) = two_running();
        assert!(h.core.begin_stop(h.now, Duration::from_secs(5)));
        // Neither a shorter nor a longer grace moves the deadline.
        assert!(!h.core.begin_stop(h.now, Duration::ZERO));
        assert!(!h.core.begin_stop(h.now, Duration::from_secs(500)));
        assert_eq!(h.core.next_wake(), Some(secs(5)));
        h.advance_to(secs(5));
        h.poll_cancels();
        for run in &runs {
            h.finish(run.run, RunOutcome::Cancelled);
        }
        let report = h.core.cancelled_fires().to_vec();
        assert!(!h.core.begin_stop(h.now, Duration::from_secs(1)));
        assert_eq!(h.core.cancelled_fires(), report);
        assert!(h.core.is_stopped());
    }

    #[test]
    fn triggers_and_commands_during_and_after_a_stop_say_it_was_stopped() {
        let mut core = SchedulerCore::new();
        let m = core.add_flow("m", Schedule::Manual).unwrap();
        assert_eq!(
            core.trigger(m, Instant::ZERO, wall_at(0)),
            Err(SchedulerError::NotStarted)
        );
        let mut h = Harness::new(core);
        let run = h.core.trigger(m, h.now, h.wall).unwrap().unwrap();
        h.core.begin_stop(h.now, Duration::from_secs(10));
        let refused = |h: &mut Harness| {
            let (now, wall) = (h.now, h.wall);
            assert_eq!(h.core.trigger(m, now, wall), Err(SchedulerError::Stopped));
            assert_eq!(
                h.core.reset_flow(m, now, wall),
                Err(SchedulerError::Stopped)
            );
            assert_eq!(h.core.pause(m), Err(SchedulerError::Stopped));
            assert_eq!(h.core.resume(m, now, wall), Err(SchedulerError::Stopped));
        };
        refused(&mut h); // during the grace
        h.advance_to(secs(2));
        h.finish(run.run, Ok(()));
        assert!(h.core.is_stopped());
        refused(&mut h); // after
        let text = alloc::string::ToString::to_string(&CanoError::from(SchedulerError::Stopped));
        assert!(text.contains("Scheduler not running"), "{text}");
        assert!(text.contains("stopped"), "{text}");
        // Queries keep working.
        assert_eq!(h.core.info(m, h.now, h.wall).run_count, 1);
    }

    #[test]
    fn cancelled_is_a_failure_while_running_and_a_cancellation_once_stopping() {
        let mut core = SchedulerCore::new();
        let m = core.add_flow("m", Schedule::Manual).unwrap();
        let mut h = Harness::new(core);
        let cancelled = CanoError::cancelled("winding down");
        let run = h.core.trigger(m, h.now, h.wall).unwrap().unwrap();
        h.finish(run.run, Err(&cancelled));
        assert_eq!(h.core.info(m, h.now, h.wall).failure_streak, 1);
        let run = h.core.trigger(m, h.now, h.wall).unwrap().unwrap();
        h.core.begin_stop(h.now, Duration::from_secs(1));
        h.finish(run.run, Err(&cancelled));
        assert_eq!(h.core.info(m, h.now, h.wall).failure_streak, 1);
        assert!(h.core.is_stopped());
    }

    #[test]
    fn an_outcome_for_a_run_not_in_flight_is_refused() {
        let (mut h, runs) = two_running();
        h.finish(runs[0].run, Ok(()));
        let (now, wall) = (h.now, h.wall);
        assert_eq!(
            h.core.finish(runs[0].run, now, wall, Ok(())),
            Err(SchedulerError::UnknownRun)
        );
        assert_eq!(h.core.runs_in_flight(), 1);
    }

    /// Every stop rule at once, swept over when runs end relative to the deadline: a run
    /// ending before the deadline is never cancelled; every run still in flight at the
    /// deadline is cancelled exactly there, exactly once; the stop completes when the last
    /// run ends, and never before the deadline if a run outlives it.
    #[test]
    fn stop_rules_hold_for_every_ending_around_the_deadline() {
        let grace = 10u64;
        for a_end in 1..=15u64 {
            for b_end in 1..=15u64 {
                for b_ignores in [false, true] {
                    let (mut h, runs) = two_running();
                    h.core.begin_stop(h.now, Duration::from_secs(grace));
                    let ends = [(runs[0].run, a_end, false), (runs[1].run, b_end, b_ignores)];
                    let mut asked = Vec::new();
                    let mut open: Vec<_> = ends.to_vec();
                    for t in 1..=20u64 {
                        h.advance_to(secs(t));
                        let (cancels, waiting) = h.poll_cancels();
                        for run in &cancels {
                            assert_eq!(t, grace, "cancelled at {t}, not at the deadline");
                            assert!(!asked.contains(run), "asked twice");
                            asked.push(*run);
                        }
                        let stopped = waiting == Action::Stopped;
                        assert_eq!(stopped, open.is_empty(), "t={t}, open={open:?}");
                        // Runs end: at their time, or (unless they ignore it) when asked.
                        open.retain(|&(run, end, ignores)| {
                            let cancelled_now = cancels.contains(&run) && !ignores;
                            if end == t || (end > t && cancelled_now) {
                                let outcome = if cancelled_now && end != t {
                                    RunOutcome::Cancelled
                                } else {
                                    RunOutcome::Succeeded
                                };
                                h.core.finish(run, h.now, h.wall, outcome).unwrap();
                                false
                            } else {
                                true
                            }
                        });
                    }
                    let expected: Vec<RunId> = ends
                        .iter()
                        .filter(|(_, end, _)| *end >= grace)
                        .map(|(run, ..)| *run)
                        .collect();
                    assert_eq!(asked, expected, "a={a_end} b={b_end}");
                    assert!(h.core.is_stopped());
                    assert_eq!(h.core.cancelled_fires().len(), expected.len());
                }
            }
        }
    }

    /// Two-phase cancellation at a stop, swept over when runs end relative to the
    /// deadline and the wind-down's end: every run in flight at the deadline is signalled
    /// exactly there, once; a run still in flight when the wind-down ended is asked to be
    /// dropped exactly then, once, and no other run is; the stop completes when the last
    /// run ends.
    #[test]
    fn stop_drops_only_the_runs_outliving_the_wind_down() {
        let (grace, wind_down) = (10u64, 4u64);
        for a_end in 1..=18u64 {
            for b_end in 1..=18u64 {
                let (mut h, runs) = two_running();
                h.core.set_cancel_wind_down(Duration::from_secs(wind_down));
                h.core.begin_stop(h.now, Duration::from_secs(grace));
                let ends = [(runs[0].run, a_end), (runs[1].run, b_end)];
                let mut signalled = Vec::new();
                let mut open: Vec<_> = ends.to_vec();
                for t in 1..=20u64 {
                    h.advance_to(secs(t));
                    open.retain(|&(run, end)| {
                        if end == t {
                            h.core.finish(run, h.now, h.wall, Ok(())).unwrap();
                        }
                        end != t
                    });
                    let dropped_before = h.dropped.len();
                    let (cancels, waiting) = h.poll_cancels();
                    for run in &cancels {
                        assert_eq!(t, grace, "signalled at {t}, not at the deadline");
                        assert!(!signalled.contains(run), "signalled twice");
                        signalled.push(*run);
                    }
                    let dropped: Vec<RunId> =
                        h.dropped[dropped_before..].iter().map(|d| d.0).collect();
                    // The driver drops them: they end as cancelled.
                    for run in &dropped {
                        assert_eq!(t, grace + wind_down, "dropped at {t}");
                        h.core
                            .finish(*run, h.now, h.wall, RunOutcome::Cancelled)
                            .unwrap();
                        open.retain(|(r, _)| r != run);
                    }
                    let waiting = if dropped.is_empty() {
                        waiting
                    } else {
                        h.core.poll(h.now, h.wall)
                    };
                    assert_eq!(waiting == Action::Stopped, open.is_empty(), "t={t}");
                    if !open.is_empty() && t >= grace && t < grace + wind_down {
                        assert_eq!(waiting, Action::WakeAt(secs(grace + wind_down)));
                    }
                }
                let in_flight_at = |at: u64| -> Vec<RunId> {
                    ends.iter()
                        .filter(|(_, end)| *end > at)
                        .map(|(run, _)| *run)
                        .collect()
                };
                let dropped: Vec<RunId> = h.dropped.iter().map(|d| d.0).collect();
                assert_eq!(signalled, in_flight_at(grace), "a={a_end} b={b_end}");
                assert_eq!(
                    dropped,
                    in_flight_at(grace + wind_down),
                    "a={a_end} b={b_end}"
                );
                assert!(h.core.is_stopped());
            }
        }
    }

    #[test]
    fn next_fires_is_bounded_and_upcoming_fires_walks_on() {
        let mut core = SchedulerCore::new();
        let every = core
            .add_flow("every", Schedule::Every(Duration::from_secs(1)))
            .unwrap();
        core.set_policy(
            every,
            SchedulePolicy {
                first_run: FirstRun::AfterInterval,
                ..SchedulePolicy::default()
            },
        )
        .unwrap();
        let cron = core
            .add_wall_flow("cron", Box::new(Aligned(60_000_000)))
            .unwrap();
        let h = Harness::new(core);
        for flow in [every, cron] {
            let fires = h.core.next_fires(flow, usize::MAX, h.now, h.wall);
            assert_eq!(fires.len(), NEXT_FIRES_LIMIT);
            assert!(fires.windows(2).all(|w| w[0] < w[1]));
            let walked: Vec<_> = h
                .core
                .upcoming_fires(flow, h.now, h.wall)
                .take(5000)
                .collect();
            assert_eq!(walked.len(), 5000);
            assert_eq!(walked[..NEXT_FIRES_LIMIT], fires[..]);
        }
        assert_eq!(
            h.core.next_fires(every, 2, h.now, h.wall),
            [wall_at(1), wall_at(2)]
        );
        assert_eq!(
            h.core.next_fires(cron, 2, h.now, h.wall),
            [wall_at(60), wall_at(120)]
        );
    }
}

/// The core with a schedule store: what it asks to write, what it restores, what it catches
/// up. Pure: the "store" is a map the tests fill from the core's own [`Action::Save`]s.
#[cfg(test)]
mod restart_tests {
    use super::*;
    use crate::cron::Cron;
    use crate::scheduler::schedule::{IntervalMode, MissedFirePolicy};
    use alloc::collections::BTreeMap;
    use alloc::vec;

    fn wall_at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_767_225_600 + secs).unwrap()
    }

    /// Records by flow id, as a store would keep them.
    type Kept = BTreeMap<Arc<str>, FlowRecord>;

    /// A core at monotonic `now` / wall `wall`, whose saves are kept and acknowledged.
    struct Node {
        core: SchedulerCore,
        now: Instant,
        wall: Timestamp,
        kept: Kept,
        started: Vec<Dispatch>,
        saves: usize,
    }

    impl Node {
        fn start(mut core: SchedulerCore, kept: Kept, wall: Timestamp) -> Node {
            let stored = kept
                .iter()
                .map(|(flow, record)| StoredFlow {
                    flow: flow.clone(),
                    record: record.clone(),
                    fence: crate::persist::Fence::ZERO,
                })
                .collect();
            assert!(core.restore(stored));
            // A restarted process's monotonic clock starts again near zero.
            let now = Instant::from_secs(5);
            core.start(now, wall);
            Node {
                core,
                now,
                wall,
                kept,
                started: Vec::new(),
                saves: 0,
            }
        }

        fn advance(&mut self, secs: u64) {
            self.now += Duration::from_secs(secs);
            self.wall += Duration::from_secs(secs);
        }

        /// Polls until the core waits; keeps every save, returns the runs started.
        fn poll(&mut self) -> Vec<Dispatch> {
            let mut out = Vec::new();
            loop {
                match self.core.poll(self.now, self.wall) {
                    Action::Start(d) => {
                        self.started.push(d.clone());
                        out.push(d);
                    }
                    Action::Save(write) => self.keep(write),
                    _ => return out,
                }
            }
        }

        fn keep(&mut self, write: ScheduleWrite) {
            self.saves += 1;
            self.kept.insert(write.id, write.record);
            self.core.save_done(write.flow, self.now, &Ok(()));
        }

        /// Takes the saves an outcome or a command asked for.
        fn drain(&mut self) {
            while let Some(write) = self.core.take_save(self.now, self.wall) {
                self.keep(write);
            }
        }

        fn finish(&mut self, run: RunId, outcome: impl Into<RunOutcome>) {
            self.core.finish(run, self.now, self.wall, outcome).unwrap();
            self.drain();
        }

        fn info(&self, id: &str) -> FlowInfo {
            self.core
                .info(self.core.flow(id).unwrap(), self.now, self.wall)
        }
    }

    fn hourly(missed: MissedFirePolicy) -> SchedulerCore {
        let mut core = SchedulerCore::new();
        let f = core
            .add_flow("hourly", Schedule::Cron(Cron::parse("0 * * * *").unwrap()))
            .unwrap();
        core.set_policy(
            f,
            SchedulePolicy {
                missed,
                ..SchedulePolicy::default()
            },
        )
        .unwrap();
        core
    }

    #[test]
    fn a_core_without_a_store_asks_for_no_write() {
        let mut core = SchedulerCore::new();
        core.add_flow("m", Schedule::Manual).unwrap();
        core.start(Instant::ZERO, wall_at(0));
        let m = core.flow("m").unwrap();
        let run = core.trigger(m, Instant::ZERO, wall_at(0)).unwrap().unwrap();
        core.finish(run.run, Instant::ZERO, wall_at(0), Ok(()))
            .unwrap();
        core.pause(m).unwrap();
        assert_eq!(core.take_save(Instant::ZERO, wall_at(0)), None);
        assert_eq!(core.poll(Instant::ZERO, wall_at(0)), Action::Idle);
        assert!(core.saves_settled());
    }

    #[test]
    fn writes_are_asked_on_fire_outcome_and_command_never_on_an_idle_poll() {
        let mut core = SchedulerCore::new();
        core.add_flow("tick", Schedule::Every(Duration::from_secs(10)))
            .unwrap();
        core.add_flow("m", Schedule::Manual).unwrap();
        core.persist_schedules();
        let mut node = Node::start(core, Kept::new(), wall_at(0));
        let runs = node.poll();
        assert_eq!((runs.len(), node.saves), (1, 1), "the fire is written");
        assert_eq!(node.kept["tick"].last_fire, Some(wall_at(0)));
        // Polls that change nothing write nothing.
        for _ in 0..3 {
            assert!(node.poll().is_empty());
        }
        assert_eq!(node.saves, 1);
        node.advance(2);
        let err = CanoError::task_execution("boom");
        node.finish(runs[0].run, Err(&err));
        assert_eq!(node.saves, 2, "the outcome is written");
        assert_eq!(node.kept["tick"].streak, 1);
        assert!(node.kept["tick"].next_eligible.is_some());
        let m = node.core.flow("m").unwrap();
        node.core.pause(m).unwrap();
        node.drain();
        assert!(node.kept["m"].paused);
        node.core.resume(m, node.now, node.wall).unwrap();
        node.drain();
        assert!(!node.kept["m"].paused);
        assert_eq!(node.saves, 4);
        assert!(node.core.saves_settled());
    }

    #[test]
    fn streak_backoff_trip_pause_and_a_buffered_trigger_survive_a_restart() {
        let build = || {
            let mut core = SchedulerCore::new();
            let every = core
                .add_flow("every", Schedule::Every(Duration::from_secs(60)))
                .unwrap();
            core.set_backoff(
                every,
                BackoffPolicy {
                    initial: Duration::from_secs(600),
                    max_delay: Duration::from_secs(3600),
                    jitter: 0.0,
                    streak_limit: Some(3),
                    ..BackoffPolicy::default()
                },
            )
            .unwrap();
            let trip = core.add_flow("trip", Schedule::Manual).unwrap();
            core.set_backoff(trip, BackoffPolicy::with_trip(1)).unwrap();
            core.add_flow("paused", Schedule::Every(Duration::from_secs(60)))
                .unwrap();
            let buffered = core.add_flow("buffered", Schedule::Manual).unwrap();
            core.set_policy(
                buffered,
                SchedulePolicy {
                    overlap: OverlapPolicy::BufferOne,
                    ..SchedulePolicy::default()
                },
            )
            .unwrap();
            core.persist_schedules();
            core
        };
        let mut a = Node::start(build(), Kept::new(), wall_at(0));
        let first = a.poll();
        let err = CanoError::task_execution("boom");
        let every = first.iter().find(|d| d.fire.flow() == "every").unwrap();
        a.finish(every.run, Err(&err)); // streak 1, backoff 600 s
        let trip = a.core.flow("trip").unwrap();
        let run = a.core.trigger(trip, a.now, a.wall).unwrap().unwrap();
        a.finish(run.run, Err(&err)); // tripped
        let paused = a.core.flow("paused").unwrap();
        a.core.pause(paused).unwrap();
        let buffered = a.core.flow("buffered").unwrap();
        let run = a.core.trigger(buffered, a.now, a.wall).unwrap().unwrap();
        assert_eq!(a.core.trigger(buffered, a.now, a.wall), Ok(None));
        a.drain();
        a.poll();
        assert!(a.kept["buffered"].buffered_trigger);
        let _ = run; // the process dies with this run in flight

        // 100 s later a new process starts from what was kept.
        let mut b = Node::start(build(), a.kept.clone(), wall_at(100));
        let every = b.info("every");
        assert_eq!(every.failure_streak, 1);
        assert_eq!(every.next_eligible, Some(wall_at(600)));
        assert!(matches!(
            b.info("trip").status,
            crate::Status::Tripped { streak: 1, .. }
        ));
        assert_eq!(b.info("paused").status, crate::Status::Paused);
        let started = b.poll();
        let flows: Vec<&str> = started.iter().map(|d| d.fire.flow()).collect();
        assert_eq!(
            flows,
            ["buffered"],
            "only the buffered trigger starts at once"
        );
        assert!(started[0].fire.scheduled() > a.started.last().unwrap().fire.scheduled());
        assert!(!b.kept["buffered"].buffered_trigger, "its start is written");
        // The backoff window holds: the fixed-delay flow fires at its end, not before.
        b.advance(499);
        assert!(b.poll().is_empty());
        b.advance(1);
        let late = b.poll();
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].fire.scheduled(), wall_at(600));
        let trip = b.core.flow("trip").unwrap();
        assert!(b.core.trigger(trip, b.now, b.wall).is_err());
    }

    /// An hourly flow last fired at 00:00 restarts at 03:30: each policy's catch-up.
    #[test]
    fn catch_up_follows_each_missed_fire_policy() {
        let last = |core: &SchedulerCore| {
            let mut record = FlowRecord::new(core.flows[0].schedule_hash(&TimeZone::UTC));
            record.last_fire = Some(wall_at(0));
            Kept::from([(Arc::from("hourly"), record)])
        };
        let cases = [
            (MissedFirePolicy::Skip, vec![], 3),
            (
                MissedFirePolicy::RunOnce {
                    window: Duration::from_secs(3600),
                },
                vec![wall_at(3 * 3600)],
                2,
            ),
            (
                MissedFirePolicy::RunAll { max: 2 },
                vec![wall_at(2 * 3600), wall_at(3 * 3600)],
                1,
            ),
        ];
        for (policy, expected, dropped) in cases {
            let core = hourly(policy);
            let kept = last(&core);
            let mut node = Node::start(core, kept, wall_at(3 * 3600 + 1800));
            let mut fires = Vec::new();
            // One at a time (the overlap limit is 1): each starts when the previous ended.
            loop {
                let runs = node.poll();
                if runs.is_empty() {
                    break;
                }
                assert_eq!(runs.len(), 1, "{policy:?}");
                fires.push(runs[0].fire.scheduled());
                node.finish(runs[0].run, Ok(()));
            }
            assert_eq!(fires, expected, "{policy:?}");
            let info = node.info("hourly");
            assert_eq!(info.missed_fires, dropped, "{policy:?}");
            assert_eq!(info.next_fire, Some(wall_at(4 * 3600)), "{policy:?}");
            assert_eq!(
                node.kept["hourly"].last_fire,
                Some(*expected.last().unwrap_or(&wall_at(0)))
            );
        }
    }

    #[test]
    fn a_changed_schedule_catches_nothing_up_but_keeps_the_status() {
        let old = hourly(MissedFirePolicy::RunAll { max: 10 });
        let mut record = FlowRecord::new(old.flows[0].schedule_hash(&TimeZone::UTC));
        record.last_fire = Some(wall_at(0));
        record.streak = 2;
        let mut core = SchedulerCore::new();
        core.add_flow("hourly", Schedule::Cron(Cron::parse("30 * * * *").unwrap()))
            .unwrap();
        let kept = Kept::from([(Arc::from("hourly"), record)]);
        let mut node = Node::start(core, kept, wall_at(5 * 3600));
        assert!(node.poll().is_empty());
        let info = node.info("hourly");
        assert_eq!((info.missed_fires, info.failure_streak), (0, 2));
        assert_eq!(info.next_fire, Some(wall_at(5 * 3600 + 1800)));
    }

    #[test]
    fn a_fixed_rate_grid_continues_from_the_last_fire() {
        let mut core = SchedulerCore::new();
        let f = core
            .add_flow("rate", Schedule::Every(Duration::from_secs(600)))
            .unwrap();
        core.set_policy(
            f,
            SchedulePolicy {
                interval_mode: IntervalMode::FixedRate,
                missed: MissedFirePolicy::RunAll { max: 2 },
                ..SchedulePolicy::default()
            },
        )
        .unwrap();
        let mut record = FlowRecord::new(core.flows[0].schedule_hash(&TimeZone::UTC));
        record.last_fire = Some(wall_at(0));
        let kept = Kept::from([(Arc::from("rate"), record)]);
        let mut node = Node::start(core, kept, wall_at(35 * 60));
        let runs = node.poll();
        assert_eq!(runs[0].fire.scheduled(), wall_at(20 * 60));
        node.finish(runs[0].run, Ok(()));
        let runs = node.poll();
        assert_eq!(runs[0].fire.scheduled(), wall_at(30 * 60));
        node.finish(runs[0].run, Ok(()));
        assert_eq!(node.info("rate").next_fire, Some(wall_at(40 * 60)));
        node.advance(5 * 60);
        let runs = node.poll();
        assert_eq!(runs[0].fire.scheduled(), wall_at(40 * 60));
    }

    #[test]
    fn a_failed_write_is_retried_with_the_latest_state_and_a_fenced_flow_is_left_alone() {
        let mut core = SchedulerCore::new();
        core.add_flow("m", Schedule::Manual).unwrap();
        core.add_flow("n", Schedule::Manual).unwrap();
        core.persist_schedules();
        let mut node = Node::start(core, Kept::new(), wall_at(0));
        let m = node.core.flow("m").unwrap();
        node.core.pause(m).unwrap();
        let write = node.core.take_save(node.now, node.wall).unwrap();
        node.core.save_done(
            write.flow,
            node.now,
            &Err(PersistError::unavailable("partition")),
        );
        assert!(!node.core.saves_settled());
        assert_eq!(node.core.failed_saves(), 1);
        // Not before the retry time (no busy loop), and the core says when.
        assert_eq!(node.core.take_save(node.now, node.wall), None);
        assert_eq!(node.core.next_wake(), Some(node.now + SAVE_RETRY));
        node.core.resume(m, node.now, node.wall).unwrap();
        node.advance(1);
        let retry = node.core.take_save(node.now, node.wall).unwrap();
        assert!(
            !retry.record.paused,
            "the retry carries the state at its time"
        );
        node.core.save_done(retry.flow, node.now, &Ok(()));
        assert!(node.core.saves_settled());
        // A fenced flow is not written again.
        let n = node.core.flow("n").unwrap();
        node.core.pause(n).unwrap();
        let write = node.core.take_save(node.now, node.wall).unwrap();
        node.core.save_done(
            write.flow,
            node.now,
            &Err(PersistError::Fenced {
                current: crate::persist::Fence(7),
            }),
        );
        node.core.resume(n, node.now, node.wall).unwrap();
        node.advance(3600);
        assert_eq!(node.core.take_save(node.now, node.wall), None);
    }

    /// The stop waits for the writes: `Stopped` comes only after the last one was asked.
    #[test]
    fn the_stop_asks_for_the_last_writes_before_it_is_stopped() {
        let mut core = SchedulerCore::new();
        core.add_flow("m", Schedule::Manual).unwrap();
        core.persist_schedules();
        let mut node = Node::start(core, Kept::new(), wall_at(0));
        let m = node.core.flow("m").unwrap();
        let run = node.core.trigger(m, node.now, node.wall).unwrap().unwrap();
        node.core.begin_stop(node.now, Duration::from_secs(5));
        node.core
            .finish(run.run, node.now, node.wall, Ok(()))
            .unwrap();
        assert!(node.core.is_stopped());
        let Action::Save(write) = node.core.poll(node.now, node.wall) else {
            panic!("the outcome's write comes first")
        };
        node.core.save_done(
            write.flow,
            node.now,
            &Err(PersistError::unavailable("down")),
        );
        assert_eq!(node.core.poll(node.now, node.wall), Action::Stopped);
        assert_eq!(node.core.unsaved_flows().collect::<Vec<_>>(), [m]);
    }

    fn aligned(phase: u64, missed: MissedFirePolicy) -> SchedulerCore {
        let mut core = SchedulerCore::new();
        let f = core
            .add_flow("grid", Schedule::Every(Duration::from_secs(10)))
            .unwrap();
        core.set_policy(
            f,
            SchedulePolicy {
                interval_mode: IntervalMode::EpochAligned {
                    phase: Duration::from_secs(phase),
                },
                missed,
                ..SchedulePolicy::default()
            },
        )
        .unwrap();
        core
    }

    /// Every process computes the same fire times, whenever it started and whatever its
    /// monotonic clock reads; a phase of an interval or more wraps.
    #[test]
    fn epoch_aligned_intervals_fire_on_one_grid_in_every_process() {
        let mut grids = Vec::new();
        for (start, phase) in [(7, 3), (11, 3), (2, 13)] {
            let mut node = Node::start(
                aligned(phase, MissedFirePolicy::Skip),
                Kept::new(),
                wall_at(start),
            );
            node.now = Instant::from_secs(1000 + start as u64);
            let mut fires = Vec::new();
            for _ in 0..60 {
                node.advance(1);
                for run in node.poll() {
                    fires.push(run.fire.scheduled());
                    node.finish(run.run, Ok(()));
                }
            }
            assert_eq!(
                node.core.flows[0].policy().interval_mode,
                IntervalMode::EpochAligned {
                    phase: Duration::from_secs(3)
                }
            );
            grids.push(
                fires
                    .into_iter()
                    .filter(|f| *f >= wall_at(23))
                    .take(4)
                    .collect::<Vec<_>>(),
            );
        }
        let expected: Vec<_> = [23, 33, 43, 53].map(wall_at).to_vec();
        assert!(grids.iter().all(|g| *g == expected), "{grids:?}");
    }

    #[test]
    fn epoch_aligned_catch_up_continues_the_grid() {
        let core = aligned(3, MissedFirePolicy::RunAll { max: 2 });
        let mut record = FlowRecord::new(core.flows[0].schedule_hash(&TimeZone::UTC));
        record.last_fire = Some(wall_at(13));
        let kept = Kept::from([(Arc::from("grid"), record)]);
        let mut node = Node::start(core, kept, wall_at(55));
        let mut fires = Vec::new();
        for _ in 0..3 {
            for run in node.poll() {
                fires.push(run.fire.scheduled());
                node.finish(run.run, Ok(()));
            }
        }
        assert_eq!(fires, [wall_at(43), wall_at(53)]);
        assert_eq!(node.info("grid").missed_fires, 2);
        assert_eq!(node.info("grid").next_fire, Some(wall_at(63)));
        // Another phase is another schedule: nothing caught up.
        let other = aligned(4, MissedFirePolicy::RunAll { max: 2 });
        let mut node = Node::start(other, node.kept.clone(), wall_at(100));
        assert!(node.poll().is_empty());
    }
}
