//! The scheduler: interval, cron and manual flows with per-flow backoff, trip, overlap and
//! missed-fire policies, on one timer for all flows.
//!
//! * [`Scheduler`] is the builder (cano 0.12's API: `every`, `cron`, `manual`,
//!   `set_backoff`, …); [`Scheduler::start`] consumes it and returns a [`RunningScheduler`].
//! * [`SchedulerCore`] is the pure state machine underneath: every flow, the runs in flight,
//!   the stop and its deadline, one deadline queue (a heap keyed by the next due instant). It
//!   takes the time as arguments and says what to do ([`Action`]: start a run, signal a
//!   run's cancellation, drop a run one cancellation wind-down later, the stop is complete)
//!   and when to wake; the async loop around it only starts runs (polling a run once itself
//!   and spawning it if it waits, [`RunStart`]), cancels tokens, aborts
//!   and sleeps, and is the same on every runtime.
//! * Misuse (an unknown flow, a trigger after a stop, a duplicate id, …) is a
//!   [`SchedulerError`] inside [`CanoError::Scheduler`], with cano 0.12's messages.
//! * What runs is a [`Job`]: anything that runs once per fire and returns `Ok` or `Err`
//!   (plain async closures through [`job_fn`]), with optional setup/teardown hooks. Each run
//!   receives a [`Fire`] whose [`FireId`] (flow id + scheduled time) is an idempotency key.
//!
//! ```
//! use cano_core::scheduler::{job_fn, Fire, Scheduler};
//! use cano_core::testing::Simulation;
//! use core::time::Duration;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//!
//! let sim = Simulation::new();
//! let runs = Arc::new(AtomicU32::new(0));
//! let counter = runs.clone();
//! let mut scheduler = Scheduler::new();
//! scheduler
//!     .every_minutes("report", job_fn(move |(), _fire: Fire| {
//!         let counter = counter.clone();
//!         async move {
//!             counter.fetch_add(1, Ordering::SeqCst);
//!             Ok(())
//!         }
//!     }), (), 15)
//!     .unwrap();
//! let running = sim
//!     .block_on(scheduler.start(sim.clock(), sim.spawner()))
//!     .unwrap();
//! sim.run_for(Duration::from_secs(3600)); // at start, then every 15 minutes
//! assert_eq!(runs.load(Ordering::SeqCst), 5);
//! let report = sim.block_on(running.stop()).unwrap();
//! assert!(report.cancelled.is_empty());
//! ```

pub mod backoff;
mod core;
mod driver;
mod error;
pub mod events;
pub mod flow;
mod handle;
pub mod history;
mod info;
mod job;
pub(crate) use job::{AsRecoverable, as_recoverable};
mod queue;
mod recovery;
mod runs;
pub mod schedule;
mod slot;

use ::core::time::Duration;
use alloc::boxed::Box;
use alloc::vec::Vec;

pub use self::core::fleet::{
    CLAIM_BATCH_MAX, DEFAULT_CLAIM_STAGGER, DEFAULT_LEDGER_RETRY, DEFAULT_LEDGER_RETRY_MAX,
    DEFAULT_PEER_TTL, DEFAULT_SCAN_EVERY, FleetAction, FleetConfig, FleetReport, FleetStatus,
    claim_weight,
};
pub use self::core::{
    Action, DEFAULT_CANCEL_WIND_DOWN, DEFAULT_MISFIRE_GRACE, DEFAULT_WALL_CLOCK_CHECK, Dispatch,
    FlowIndex, InFlight, NEXT_FIRES_LIMIT, RunFailure, RunOutcome, SAVE_RETRY, SAVE_RETRY_MAX,
    ScheduleWrite, SchedulerCore, Stage,
};
pub use crate::checkpoint::Recovery;

/// Fleet mode (see [`Scheduler::with_fleet`]): what the core decides and how it asks for
/// ledger calls.
pub mod fleet {
    pub use super::core::fleet::*;
}
pub use crate::runtime::DynClock;
pub use error::SchedulerError;
pub use events::{DEFAULT_EVENT_CAPACITY, SchedulerEvent, SchedulerEvents, SchedulerObserver};
pub use handle::{DEFAULT_STOP_GRACE, FlowOptions, RunningScheduler, StopReport};
pub use history::{DEFAULT_HISTORY_LIMIT, RunRecord};
pub use info::{FlowInfo, RecoveryCounts};
pub use job::{Fire, FireId, Job, JobFn, RecoverableJob, job_fn};
pub use runs::RunId;
pub use slot::UpcomingFires;

use jiff::tz::TimeZone;

use self::core::FlowMap;
use crate::cron::IntoCron;
use crate::error::{CanoError, CanoResult};
use crate::persist::{DynFireLedger, DynScheduleStore, FireLedger, NodeId, ScheduleStore};
use crate::runtime::{Clock, Spawner};
use crate::scheduler::backoff::BackoffPolicy;
use crate::scheduler::schedule::{
    FirstRun, IntervalMode, MissedFirePolicy, OverlapPolicy, RunStart, Schedule, SchedulePolicy,
};
use alloc::format;
use alloc::sync::Arc;
use driver::FlowJob;

/// The scheduler builder. All flows share one input type `S` (each flow's
/// `initial_state`, cloned for every run).
///
/// Registration errors have category `"configuration"`: a [`SchedulerError`] (an empty or
/// duplicate id, a zero interval, an unknown id in a setter, an invalid policy) or
/// [`CanoError::InvalidCron`] for a bad cron expression.
pub struct Scheduler<S = ()> {
    /// Boxed: `start` and its callers' futures move a pointer, not the whole core, across
    /// their awaits (on a microcontroller those futures are heap or static memory).
    core: Box<SchedulerCore>,
    jobs: FlowMap<FlowJob>,
    store: Option<Arc<dyn DynScheduleStore>>,
    observers: Vec<Arc<dyn SchedulerObserver>>,
    fleet: Option<driver::FleetLink>,
    /// Every flow's input is an `S` (bound into its job at registration).
    input: ::core::marker::PhantomData<S>,
}

impl<S> Default for Scheduler<S> {
    fn default() -> Self {
        Scheduler {
            core: Box::new(SchedulerCore::new()),
            jobs: FlowMap::default(),
            store: None,
            observers: Vec::new(),
            fleet: None,
            input: ::core::marker::PhantomData,
        }
    }
}

impl<S> ::core::fmt::Debug for Scheduler<S> {
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
        f.debug_struct("Scheduler")
            .field("flows", &self.core.len())
            .finish()
    }
}

impl<S> Scheduler<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// An empty scheduler.
    pub fn new() -> Self {
        Scheduler::default()
    }

    fn register(
        &mut self,
        id: &str,
        schedule: Schedule,
        job: impl Job<S>,
        initial_state: S,
    ) -> CanoResult<()> {
        let flow = self.core.add_flow(id, schedule)?;
        self.jobs.insert(
            flow,
            Arc::new(job::Bound {
                job,
                input: initial_state,
            }),
        );
        Ok(())
    }

    /// The flow `id`, for a setter.
    fn setter_target(&self, id: &str, setting: &'static str) -> Result<FlowIndex, SchedulerError> {
        self.core
            .index_of(id)
            .ok_or_else(|| SchedulerError::UnknownFlowInSetter {
                id: id.into(),
                setting,
            })
    }

    /// Runs `job` every `interval`: at start, then `interval` after each run ends (change
    /// with [`Scheduler::set_interval_mode`] and [`Scheduler::set_first_run`]).
    ///
    /// # Errors
    ///
    /// A [`SchedulerError`] (category `"configuration"`) for an empty or duplicate id or a
    /// zero interval.
    pub fn every(
        &mut self,
        id: &str,
        job: impl Job<S>,
        initial_state: S,
        interval: Duration,
    ) -> CanoResult<()> {
        self.register(id, Schedule::Every(interval), job, initial_state)
    }

    /// [`Scheduler::every`] with an interval in seconds.
    ///
    /// # Errors
    ///
    /// As [`Scheduler::every`].
    pub fn every_seconds(
        &mut self,
        id: &str,
        job: impl Job<S>,
        initial_state: S,
        seconds: u64,
    ) -> CanoResult<()> {
        self.every(id, job, initial_state, Duration::from_secs(seconds))
    }

    /// [`Scheduler::every`] with an interval in minutes.
    ///
    /// # Errors
    ///
    /// As [`Scheduler::every`].
    pub fn every_minutes(
        &mut self,
        id: &str,
        job: impl Job<S>,
        initial_state: S,
        minutes: u64,
    ) -> CanoResult<()> {
        self.every(
            id,
            job,
            initial_state,
            Duration::from_secs(minutes.saturating_mul(60)),
        )
    }

    /// [`Scheduler::every`] with an interval in hours.
    ///
    /// # Errors
    ///
    /// As [`Scheduler::every`].
    pub fn every_hours(
        &mut self,
        id: &str,
        job: impl Job<S>,
        initial_state: S,
        hours: u64,
    ) -> CanoResult<()> {
        self.every(
            id,
            job,
            initial_state,
            Duration::from_secs(hours.saturating_mul(3600)),
        )
    }

    /// Runs `job` at each match of `schedule`: a cron expression (`&str` or `String`, see
    /// [`crate::cron`] for the syntax), an expression with its dialect
    /// (`(expr, CronOptions)`), or a [`Cron`](crate::cron::Cron) parsed beforehand (see [`IntoCron`]).
    /// `CRON_TZ=` picks a zone, else [`Scheduler::set_time_zone`], default UTC.
    ///
    /// # Coming from cano 0.12
    ///
    /// cano 0.12 (through the `cron` crate) read expressions in the Quartz dialect; cano's
    /// default is POSIX cron, and the same text can mean other days:
    ///
    /// | expression | cano (default) | cano 0.12, and cano with [`CronOptions::quartz`](crate::cron::CronOptions::quartz) |
    /// |---|---|---|
    /// | `0 0 9 * * 2` | Tuesdays | Mondays (Sunday is `1`) |
    /// | `0 0 9 * * 1-5` | Monday to Friday | Sunday to Thursday |
    /// | `0 30 9 1-7 * MON` | days 1–7 **or** Mondays | the first Monday (days 1–7 **and** Monday) |
    ///
    /// Day names (`MON-FRI`) mean the same in both. Pass `(expr, CronOptions::quartz())` to
    /// keep an expression's cano 0.12 meaning:
    ///
    /// ```
    /// use cano_core::cron::CronOptions;
    /// use cano_core::scheduler::{job_fn, Fire, Scheduler};
    /// use cano_core::testing::Simulation;
    /// use core::time::Duration;
    ///
    /// let sim = Simulation::new(); // Thursday 2026-01-01T00:00:00Z
    /// let mut scheduler = Scheduler::new();
    /// let job = || job_fn(|(), _fire: Fire| async { Ok(()) });
    /// scheduler.cron("posix", job(), (), "0 0 9 * * 2").unwrap();
    /// scheduler.cron("as-in-0.12", job(), (), ("0 0 9 * * 2", CronOptions::quartz())).unwrap();
    /// let running = sim.block_on(scheduler.start(sim.clock(), sim.spawner())).unwrap();
    /// sim.run_for(Duration::from_secs(7 * 24 * 3600));
    /// let last_run = |id| running.status(id).unwrap().last_run.unwrap().to_string();
    /// assert_eq!(last_run("posix"), "2026-01-06T09:00:00Z"); // a Tuesday
    /// assert_eq!(last_run("as-in-0.12"), "2026-01-05T09:00:00Z"); // a Monday
    /// sim.block_on(running.stop()).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// A [`SchedulerError`] for an empty or duplicate id; [`CanoError::InvalidCron`] (category
    /// `"configuration"`) for an invalid expression, with the [`CronError`](crate::cron::CronError)
    /// naming the field, the token, its byte span and what is allowed there.
    pub fn cron(
        &mut self,
        id: &str,
        job: impl Job<S>,
        initial_state: S,
        schedule: impl IntoCron,
    ) -> CanoResult<()> {
        // `CanoError::InvalidCron` keeps the typed error (field, token, span) as the source.
        let cron = schedule.into_cron().map_err(CanoError::from)?;
        self.register(id, Schedule::Cron(cron), job, initial_state)
    }

    /// The time zone of cron expressions without a `CRON_TZ=` prefix (default UTC).
    pub fn set_time_zone(&mut self, zone: TimeZone) {
        self.core.set_time_zone(zone);
    }

    /// Runs `job` only when triggered.
    ///
    /// # Errors
    ///
    /// A [`SchedulerError`] (category `"configuration"`) for an empty or duplicate id.
    pub fn manual(&mut self, id: &str, job: impl Job<S>, initial_state: S) -> CanoResult<()> {
        self.register(id, Schedule::Manual, job, initial_state)
    }

    /// Sets flow `id`'s backoff policy (every flow starts with [`BackoffPolicy::default`]).
    ///
    /// # Errors
    ///
    /// A [`SchedulerError`] (category `"configuration"`) for an unknown id or an invalid
    /// policy.
    pub fn set_backoff(&mut self, id: &str, policy: BackoffPolicy) -> CanoResult<()> {
        let flow = self.setter_target(id, "backoff")?;
        Ok(self.core.set_backoff(flow, policy)?)
    }

    /// Sets all of flow `id`'s scheduling policies at once.
    ///
    /// # Errors
    ///
    /// A [`SchedulerError`] (category `"configuration"`) for an unknown id or an invalid
    /// policy.
    pub fn set_policy(&mut self, id: &str, policy: SchedulePolicy) -> CanoResult<()> {
        let flow = self.setter_target(id, "schedule policy")?;
        Ok(self.core.set_policy(flow, policy)?)
    }

    fn update_policy(
        &mut self,
        id: &str,
        change: impl FnOnce(&mut SchedulePolicy),
    ) -> CanoResult<()> {
        let flow = self.setter_target(id, "schedule policy")?;
        let mut policy = self.core.policy(flow)?;
        change(&mut policy);
        Ok(self.core.set_policy(flow, policy)?)
    }

    /// Sets flow `id`'s [`OverlapPolicy`].
    ///
    /// # Errors
    ///
    /// A [`SchedulerError`] (category `"configuration"`) for an unknown id or
    /// `AllowConcurrent(0)`.
    pub fn set_overlap(&mut self, id: &str, overlap: OverlapPolicy) -> CanoResult<()> {
        self.update_policy(id, |p| p.overlap = overlap)
    }

    /// Sets flow `id`'s [`MissedFirePolicy`].
    ///
    /// # Errors
    ///
    /// A [`SchedulerError`] (category `"configuration"`) for an unknown id or
    /// `RunAll { max: 0 }`.
    pub fn set_missed_fires(&mut self, id: &str, missed: MissedFirePolicy) -> CanoResult<()> {
        self.update_policy(id, |p| p.missed = missed)
    }

    /// Sets flow `id`'s [`IntervalMode`] (ignored by cron and manual flows).
    ///
    /// # Errors
    ///
    /// [`SchedulerError::UnknownFlowInSetter`] (category `"configuration"`).
    pub fn set_interval_mode(&mut self, id: &str, mode: IntervalMode) -> CanoResult<()> {
        self.update_policy(id, |p| p.interval_mode = mode)
    }

    /// Sets when flow `id` fires first ([`FirstRun`]; ignored by cron and manual flows).
    ///
    /// # Errors
    ///
    /// [`SchedulerError::UnknownFlowInSetter`] (category `"configuration"`).
    pub fn set_first_run(&mut self, id: &str, first_run: FirstRun) -> CanoResult<()> {
        self.update_policy(id, |p| p.first_run = first_run)
    }

    /// Sets how flow `id`'s runs start ([`RunStart`]; default `Inline`: the scheduler's loop
    /// polls a run once itself and spawns it only if that poll did not finish it). A run
    /// started by [`RunningScheduler::trigger`] is always spawned from the caller's task.
    ///
    /// ```
    /// use cano_core::schedule::RunStart;
    /// use cano_core::scheduler::{Fire, Scheduler, job_fn};
    /// use cano_core::CanoError;
    /// use core::time::Duration;
    ///
    /// let mut s: Scheduler<()> = Scheduler::new();
    /// let job = job_fn(|(), _: Fire| async { Ok::<(), CanoError>(()) });
    /// s.every("blocking-report", job, (), Duration::from_secs(60)).unwrap();
    /// s.set_run_start("blocking-report", RunStart::Spawned).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`SchedulerError::UnknownFlowInSetter`] (category `"configuration"`).
    pub fn set_run_start(&mut self, id: &str, run_start: RunStart) -> CanoResult<()> {
        self.update_policy(id, |p| p.run_start = run_start)
    }

    /// Sets flow `id`'s largest schedule jitter (see [`SchedulePolicy::jitter`]).
    ///
    /// # Errors
    ///
    /// [`SchedulerError::UnknownFlowInSetter`] (category `"configuration"`).
    pub fn set_jitter(&mut self, id: &str, jitter: Duration) -> CanoResult<()> {
        self.update_policy(id, |p| p.jitter = jitter)
    }

    /// What [`start`](Self::start) does with flow `id`'s runs that a previous process left
    /// unfinished (default [`Recovery::Resume`]). Only a job that keeps a log per run has
    /// any: a workflow with a checkpoint store, whose scheduled runs are logged as
    /// `id@fire-time` (its [`FireId`]).
    ///
    /// At start, after the jobs are set up, the scheduler lists the job's unfinished runs and
    /// keeps the ones named `id@…` as its fires are (another flow's runs and ad-hoc ids are
    /// left alone). With `Resume`, each is resumed from its log (the state that was in flight
    /// runs again, with the idempotency keys it had), oldest first, as a run of the flow: it
    /// counts as in flight for a stop (whose grace, then cancellation, apply to it), in
    /// `run_count` and the flow's status, and as the flow's live run for its
    /// [`OverlapPolicy`]: at most the overlap limit of resumed runs at a time, and a fire
    /// that comes due meanwhile is skipped, held or run beside it as the policy says (so
    /// under `Skip` no fresh run starts while a resumed one runs). With
    /// [`Recovery::Abandon`], each log is finished as
    /// [`Abandoned`](crate::checkpoint::RunOutcome::Abandoned) before the first fire and
    /// nothing runs (no compensation either). [`FlowInfo::recovered`] counts what happened;
    /// the workflow's observers hear `on_resume` or `on_abandon` per run.
    ///
    /// On a fleet node ([`set_fleet`](Self::set_fleet)) the scan resumes nothing: each
    /// unfinished run's claim expires and a node of the fleet takes it over, resuming its log
    /// there ([`Fire::is_takeover`]), so a run is not resumed twice.
    ///
    /// ```
    /// use cano_core::scheduler::{job_fn, Recovery, Scheduler};
    ///
    /// let mut scheduler = Scheduler::new();
    /// scheduler.manual("report", job_fn(|(), _| async { Ok(()) }), ()).unwrap();
    /// scheduler.set_recovery("report", Recovery::Abandon).unwrap();
    /// assert!(scheduler.set_recovery("nope", Recovery::Resume).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`SchedulerError::UnknownFlowInSetter`] (category `"configuration"`).
    pub fn set_recovery(&mut self, id: &str, recovery: Recovery) -> CanoResult<()> {
        let flow = self.setter_target(id, "recovery")?;
        Ok(self.core.set_recovery(flow, recovery)?)
    }

    /// Seeds backoff jitter and schedule jitter offsets (default 0): the same seed gives the
    /// same delays and offsets on every run.
    pub fn set_seed(&mut self, seed: u64) {
        self.core.set_seed(seed);
    }

    /// How long a run whose cancellation was signalled (at a stop's deadline, by
    /// [`RunningScheduler::cancel_flow`], or by a removal or replacement with
    /// [`InFlight::Cancel`]) may still take to end before it is dropped at its current
    /// `.await`. Default [`DEFAULT_CANCEL_WIND_DOWN`] (60 s: two default compensation
    /// budgets, so a cancelled saga lets its compensatable task in flight finish and drains
    /// its compensations); `Duration::ZERO` drops at once. A run that ends sooner is not
    /// waited for. A fleet run whose lease was lost is always dropped at once.
    pub fn set_cancel_wind_down(&mut self, wind_down: Duration) {
        self.core.set_cancel_wind_down(wind_down);
    }

    /// How late a fire may start and still be on time (default [`DEFAULT_MISFIRE_GRACE`]).
    pub fn set_misfire_grace(&mut self, grace: Duration) {
        self.core.set_misfire_grace(grace);
    }

    /// How often to compare the wall clock with the monotonic one while cron flows exist
    /// (default [`DEFAULT_WALL_CLOCK_CHECK`]; `None` disables it). See
    /// [`SchedulerCore::set_wall_clock_check`].
    pub fn set_wall_clock_check(&mut self, every: Option<Duration>) {
        self.core.set_wall_clock_check(every);
    }

    /// Calls `observer` with every [`SchedulerEvent`], in order, on the scheduler's loop
    /// (outside its lock; see [`SchedulerObserver`]). Observers are called in the order
    /// they were added. For a consumer that may be slow, use
    /// [`RunningScheduler::subscribe`] instead.
    ///
    /// ```
    /// use cano_core::scheduler::{job_fn, Scheduler, SchedulerEvent};
    /// use cano_core::testing::Simulation;
    /// use std::sync::{Arc, Mutex};
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let sink = seen.clone();
    /// let sim = Simulation::new();
    /// let mut scheduler = Scheduler::new();
    /// scheduler.manual("report", job_fn(|(), _| async { Ok(()) }), ()).unwrap();
    /// scheduler.observe(move |event: &SchedulerEvent| sink.lock().unwrap().push(event.clone()));
    /// let running = sim.block_on(scheduler.start(sim.clock(), sim.spawner())).unwrap();
    /// running.trigger("report").unwrap();
    /// sim.run_until_idle();
    /// sim.block_on(running.stop()).unwrap();
    /// let seen = seen.lock().unwrap();
    /// assert!(matches!(seen[0], SchedulerEvent::FireStarted { .. }));
    /// assert!(matches!(seen[1], SchedulerEvent::FireEnded { .. }));
    /// assert_eq!(seen[2..], [SchedulerEvent::Stopping, SchedulerEvent::Stopped]);
    /// ```
    pub fn observe(&mut self, observer: impl SchedulerObserver) {
        self.observers.push(Arc::new(observer));
    }

    /// How many events the scheduler keeps for its subscribers and observers: how far one
    /// may fall behind before it gets [`SchedulerEvent::Lagged`] (default
    /// [`DEFAULT_EVENT_CAPACITY`]; at least 1).
    pub fn set_event_capacity(&mut self, capacity: usize) {
        self.core.set_event_capacity(capacity);
    }

    /// How many finished runs of each flow [`RunningScheduler::history`] keeps (default
    /// [`DEFAULT_HISTORY_LIMIT`]; 0 keeps none and allocates nothing).
    pub fn set_history_limit(&mut self, limit: usize) {
        self.core.set_history_limit(limit);
    }

    /// How many flows are registered.
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// Whether no flow is registered.
    pub fn is_empty(&self) -> bool {
        self.core.is_empty()
    }

    /// Whether flow `id` is registered.
    pub fn contains(&self, id: &str) -> bool {
        self.core.contains(id)
    }

    /// Keeps every flow's state in `store` across restarts (see
    /// [`set_schedule_store`](Self::set_schedule_store)).
    pub fn with_schedule_store(mut self, store: impl ScheduleStore + 'static) -> Self {
        self.set_schedule_store(store);
        self
    }

    /// Keeps every flow's state in `store` across restarts: at [`start`](Self::start) the
    /// scheduler loads what the store kept and gives each flow back its last fire, failure
    /// streak, backoff window, trip, pause and buffered trigger; fires missed while it was
    /// down run or are dropped per each flow's
    /// [`MissedFirePolicy`] (a flow whose schedule
    /// changed catches nothing up). While running, each fire, outcome and command is
    /// written to the store by the scheduler's loop (never a poll that changed nothing);
    /// [`RunningScheduler::flush`] waits for those writes. A failed write does not undo the
    /// run or command: it is retried with the flow's state at that time (see
    /// [`SchedulerCore::persist_schedules`]).
    ///
    /// ```
    /// use cano_core::persist::MemoryScheduleStore;
    /// use cano_core::scheduler::{job_fn, Scheduler};
    /// use cano_core::testing::Simulation;
    ///
    /// let store = MemoryScheduleStore::new();
    /// let sim = Simulation::new();
    /// let mut scheduler = Scheduler::new().with_schedule_store(store.clone());
    /// scheduler.manual("report", job_fn(|(), _| async { Ok(()) }), ()).unwrap();
    /// let running = sim.block_on(scheduler.start(sim.clock(), sim.spawner())).unwrap();
    /// running.pause("report").unwrap();
    /// sim.block_on(running.flush()).unwrap(); // the pause is in the store now
    /// sim.block_on(running.stop()).unwrap();
    /// ```
    pub fn set_schedule_store(&mut self, store: impl ScheduleStore + 'static) {
        self.core.persist_schedules();
        self.store = Some(Arc::new(store));
    }

    /// Runs this scheduler as node `node` of a fleet sharing `ledger`, with the default
    /// [`FleetConfig`] (see [`set_fleet`](Self::set_fleet)).
    pub fn with_fleet(mut self, ledger: impl FireLedger + 'static, node: NodeId) -> Self {
        // The default configuration is valid.
        let _ = self.set_fleet(ledger, node, FleetConfig::default());
        self
    }

    /// Runs this scheduler as node `node` of a fleet sharing `ledger`: every node runs the
    /// same flows and each fire runs on one of them (see the [`fleet`] module).
    ///
    /// * Cron and [`IntervalMode::EpochAligned`] flows claim each fire in the ledger before
    ///   running it; the node whose claim wins runs it (its [`Fire::fence`] is the claim's),
    ///   renews the lease while it runs, and records the outcome. Other nodes count it in
    ///   [`FlowInfo::fires_elsewhere`] and wait for the next fire.
    /// * Fixed-delay and fixed-rate flows fire on the node holding the flow's ownership
    ///   lease only.
    /// * Manual flows and triggers run where they are triggered.
    /// * A node whose lease lapses cancels its run; expired claims are taken over by the
    ///   other nodes (a checkpointed workflow resumes, see [`Fire::is_takeover`]).
    /// * `pause`, `resume` and `reset_flow` on one node reach the others through the ledger
    ///   ([`FireLedger::publish`]).
    ///
    /// Guarantees: at most one live claim per fire; each fire claimed runs at least once
    /// (up to [`FleetConfig::max_takeovers`] takeovers); none at or below a flow's
    /// high-water mark runs; a run's writes after its lease lapsed are refused.
    ///
    /// ```
    /// use cano_core::persist::{MemoryFireLedger, NodeId};
    /// use cano_core::scheduler::{job_fn, Scheduler};
    /// use cano_core::testing::Simulation;
    /// use core::time::Duration;
    ///
    /// let sim = Simulation::new();
    /// let clock = sim.clock();
    /// let ledger = MemoryFireLedger::new(move || cano_core::runtime::Clock::wall_now(&clock));
    /// let node = |name: &str| {
    ///     let mut s = Scheduler::new().with_fleet(ledger.view(), NodeId::new(name));
    ///     s.cron("tick", job_fn(|(), _| async { Ok(()) }), (), "* * * * *").unwrap();
    ///     sim.block_on(s.start(sim.clock(), sim.spawner())).unwrap()
    /// };
    /// let (a, b) = (node("a"), node("b"));
    /// sim.run_for(Duration::from_secs(600));
    /// let (a_runs, b_runs) = (a.status("tick").unwrap(), b.status("tick").unwrap());
    /// assert_eq!(a_runs.run_count + b_runs.run_count, 10); // each minute once, fleet-wide
    /// assert_eq!(a_runs.fires_elsewhere + b_runs.fires_elsewhere, 10);
    /// sim.block_on(a.stop()).unwrap();
    /// sim.block_on(b.stop()).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`SchedulerError::InvalidPolicy`] (category `"configuration"`) for an invalid
    /// `config` ([`FleetConfig::validate`]).
    pub fn set_fleet(
        &mut self,
        ledger: impl FireLedger + 'static,
        node: NodeId,
        config: FleetConfig,
    ) -> CanoResult<()> {
        self.core.join_fleet(node.clone(), config)?;
        let ledger: Arc<dyn DynFireLedger> = Arc::new(ledger);
        self.fleet = Some(driver::FleetLink::new(ledger, node));
        Ok(())
    }

    /// Sets up every job (in registration order), runs the recovery scan (see
    /// [`set_recovery`](Self::set_recovery)), then starts the scheduler's single loop on
    /// `spawner`, timed by `clock`. Interval flows fire at once (unless
    /// [`FirstRun::AfterInterval`]); cron flows wait for their next match.
    ///
    /// Each adapter has a one-call version (`cano_tokio::start_scheduler`, …).
    ///
    /// # Errors
    ///
    /// The first failing job validation (for a workflow: [`CanoError::Configuration`] naming
    /// the flow), the first failing setup (jobs already set up are torn down, last first),
    /// the first failing recovery scan of a job's store (every job is torn down), or
    /// [`CanoError::Spawn`] if the loop cannot be spawned.
    pub async fn start<C: Clock, P: Spawner>(
        self,
        clock: C,
        spawner: P,
    ) -> CanoResult<RunningScheduler> {
        let Scheduler {
            mut core,
            jobs,
            store,
            observers,
            fleet,
            input: _,
        } = self;
        if let Some(store) = &store {
            core.restore(store.load_all_dyn().await?);
        }
        for (flow, job) in jobs.iter() {
            job.validate().map_err(|e| match e {
                CanoError::Configuration(message) => {
                    CanoError::configuration(format!("Flow '{}': {message}", core.flow_id(flow)))
                }
                other => other,
            })?;
        }
        for (done, (_, job)) in jobs.iter().enumerate() {
            if let Err(e) = job.setup().await {
                for (_, job) in jobs.iter().take(done).rev() {
                    // The setup error is what the caller needs; a teardown error on the way
                    // out has nowhere better to go.
                    let _ = job.teardown().await;
                }
                return Err(e);
            }
        }
        core.start(clock.now(), clock.wall_now());
        if let Err(e) = recovery::scan(&mut core, &jobs).await {
            for (_, job) in jobs.iter().rev() {
                // The scan's error is what the caller needs.
                let _ = job.teardown().await;
            }
            return Err(e);
        }
        driver::launch(core, jobs, clock, spawner, store, observers, fleet).await
    }
}
