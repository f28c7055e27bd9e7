//! [`RunningScheduler`], the handle of a started scheduler, and the [`StopReport`] its stop
//! returns.
//!
//! Handle calls (`trigger`, `status`, …) run synchronously on the caller's thread under a
//! short critical section around the [`SchedulerCore`](super::SchedulerCore): a trigger
//! spawns its run directly, without a round trip through the loop. What is user-sized (a
//! flow's error text, a list of fire times, a report) is built outside that section.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::future::poll_fn;
use core::pin::pin;
use core::sync::atomic::Ordering;
use core::task::Poll;
use core::time::Duration;

use jiff::Timestamp;

use super::backoff::BackoffPolicy;
use super::core::{FlowIndex, InFlight, NEXT_FIRES_LIMIT, SchedulerCore};
use super::driver::{Common, DriverState, Runs};
use super::error::SchedulerError;
use super::events::EventCursor;
use super::history::RunRecord;
use super::info::FlowInfo;
use super::job::{Bound, FireId, FlowRunner, Job};
use super::runs::RunId;
use super::schedule::{Schedule, SchedulePolicy};
use super::slot::UpcomingFires;
use crate::error::{CanoError, CanoResult};
use crate::panic::isolate_future_panic;
use crate::persist::Fence;
use crate::runtime::Clock;
use crate::time::Instant;

/// How long [`RunningScheduler::stop`] lets runs in flight finish before cancelling them
/// (cano 0.12's advertised bound).
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(30);

/// What a stop did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StopReport {
    /// Runs still in flight at the stop deadline, cancelled there: their cancellation was
    /// signalled (a workflow compensates), and those that outlived the cancellation
    /// wind-down were dropped.
    pub cancelled: Vec<FireId>,
    /// Teardown hooks that failed (or panicked), by flow id, in teardown order.
    pub teardown_errors: Vec<(String, CanoError)>,
    /// With a schedule store: flows whose last state could not be written before the stop
    /// completed (the store was unreachable; each was tried once more at the end). After a
    /// restart they come back as last written.
    pub unsaved: Vec<String>,
}

/// How a flow added or replaced on a running scheduler is scheduled, beyond its
/// [`Schedule`]: what the builder's setters (`set_policy`, `set_backoff`) set before start.
///
/// ```
/// use cano_core::scheduler::{FlowOptions, schedule::{OverlapPolicy, SchedulePolicy}};
/// use cano_core::BackoffPolicy;
///
/// let options = FlowOptions::default()
///     .with_policy(SchedulePolicy { overlap: OverlapPolicy::BufferOne, ..SchedulePolicy::default() })
///     .with_backoff(BackoffPolicy::with_trip(3));
/// assert_eq!(options.backoff.streak_limit, Some(3));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowOptions {
    /// Overlap, missed fires, interval mode, first run, jitter, how runs start.
    pub policy: SchedulePolicy,
    /// Backoff and trip after failures.
    pub backoff: BackoffPolicy,
}

impl FlowOptions {
    /// These options with `policy`.
    pub fn with_policy(mut self, policy: SchedulePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// These options with `backoff`.
    pub fn with_backoff(mut self, backoff: BackoffPolicy) -> Self {
        self.backoff = backoff;
        self
    }
}

/// Validates `job` for flow `id` and sets it up: the job a runtime addition or
/// replacement puts in place.
async fn ready_job<S, J>(id: &str, job: J, initial_state: S) -> CanoResult<Arc<dyn FlowRunner>>
where
    S: Clone + Send + Sync + 'static,
    J: Job<S>,
{
    job.validate(&initial_state).map_err(|e| in_flow(id, e))?;
    let job: Arc<dyn FlowRunner> = Arc::new(Bound {
        job,
        input: initial_state,
    });
    job.setup().await?;
    Ok(job)
}

/// A configuration error of a job named by its flow, as `start()` reports it.
fn in_flow(id: &str, error: CanoError) -> CanoError {
    match error {
        CanoError::Configuration(message) => {
            CanoError::configuration(alloc::format!("Flow '{id}': {message}"))
        }
        other => other,
    }
}

/// A removed or replaced flow's job, on its way out: once its runs ended it is torn down.
/// If the call is dropped before, the job is left to the stop's teardown.
struct Retiring<'a> {
    common: &'a Common,
    id: &'a str,
    job: Option<Arc<dyn FlowRunner>>,
    /// Keeps the core making events (their ends wake the wait).
    cursor: Option<EventCursor>,
}

impl Retiring<'_> {
    /// Waits until none of `runs` is in flight, then tears the job down.
    async fn finish(mut self, runs: &[RunId]) -> CanoResult<()> {
        if self.cursor.is_some() {
            poll_fn(|cx| {
                self.common.state.with(|st| {
                    if runs.iter().all(|&run| !st.core.is_in_flight(run)) {
                        Poll::Ready(())
                    } else {
                        st.pump.park(cx.waker());
                        Poll::Pending
                    }
                })
            })
            .await;
            if let Some(cursor) = self.cursor.take() {
                self.common
                    .state
                    .with(|st| st.core.unsubscribe_events(cursor));
            }
        }
        match self.job.take() {
            Some(job) => isolate_future_panic(pin!(job.teardown())).await,
            None => Ok(()),
        }
    }
}

impl Drop for Retiring<'_> {
    fn drop(&mut self) {
        let (cursor, job) = (self.cursor.take(), self.job.take());
        if cursor.is_some() || job.is_some() {
            self.common.state.with(|st| {
                if let Some(cursor) = cursor {
                    st.core.unsubscribe_events(cursor);
                }
                if let Some(job) = job {
                    st.orphans.push((self.id.into(), job));
                }
            });
        }
    }
}

/// A started scheduler. Cheap to clone; clones share everything.
///
/// Every method but `stop`, `stop_within` and `wait` is synchronous and returns at once.
/// `status`, `list`, `has_running_flows` and `next_fires` keep working after a stop. Dropping
/// the last clone without stopping cancels every run in flight at once and tears down, so no
/// task outlives the scheduler.
///
/// Misuse is a [`CanoError::Scheduler`]; match on its [`SchedulerError`]
/// ([`CanoError::as_scheduler_error`]) rather than on the text.
pub struct RunningScheduler {
    runs: Arc<dyn Runs>,
}

impl RunningScheduler {
    pub(crate) fn new(runs: Arc<dyn Runs>) -> Self {
        RunningScheduler { runs }
    }

    pub(crate) fn common(&self) -> &Common {
        self.runs.common()
    }

    fn times(&self) -> (Instant, Timestamp) {
        let clock = &self.common().clock;
        (clock.now(), clock.wall_now())
    }

    /// Runs `f` on the state of a running scheduler's flow `id`; wakes the loop if that
    /// moved the core's next deadline earlier.
    fn command<R>(
        &self,
        id: &str,
        f: impl FnOnce(&mut DriverState, FlowIndex, Instant, Timestamp) -> Result<R, SchedulerError>,
    ) -> Result<R, SchedulerError> {
        let (now, wall) = self.times();
        let common = self.common();
        let (result, wake) = common.state.with(|st| {
            let result = st
                .core
                .check_running()
                .and_then(|()| st.core.flow(id))
                .and_then(|flow| f(st, flow, now, wall));
            (result, st.loop_must_wake())
        });
        if wake {
            common.notify_loop();
        }
        result
    }

    /// Reads flow `id` under the lock.
    fn read<R>(
        &self,
        id: &str,
        f: impl FnOnce(&SchedulerCore, FlowIndex, Instant, Timestamp) -> R,
    ) -> Result<R, SchedulerError> {
        let (now, wall) = self.times();
        self.common()
            .state
            .with(|st| st.core.flow(id).map(|flow| f(&st.core, flow, now, wall)))
    }

    /// Starts a run of flow `id` now, bypassing a backoff window; returns once the run is
    /// spawned (or, under `OverlapPolicy::BufferOne` with a run in flight, held).
    ///
    /// # Errors
    ///
    /// [`SchedulerError::Stopped`] ("Scheduler not running — it was stopped") once a stop
    /// began, [`SchedulerError::UnknownFlow`], [`SchedulerError::Tripped`] ("is tripped —
    /// call reset_flow before triggering"), [`SchedulerError::AlreadyRunning`];
    /// [`CanoError::Spawn`] when the runtime refused the run (a full embassy pool): the run
    /// did not start, and it counts as a failed run of the flow.
    pub fn trigger(&self, id: &str) -> CanoResult<()> {
        let run = self.command(id, |st, flow, now, wall| {
            Ok(st.core.trigger(flow, now, wall)?.map(|d| st.admit(d)))
        })?;
        if let Some(run) = run {
            // The caller must learn that its run never started. Spawned, never polled here
            // (whatever the flow's `RunStart`): the caller's task may hold a lock the job
            // takes, and handing the run to the loop to poll costs more than the spawn.
            self.runs
                .clone()
                .start_run(run, false)
                .map_err(CanoError::Spawn)?;
        }
        Ok(())
    }

    /// Clears flow `id`'s failure streak, backoff and trip (a running flow stays running).
    ///
    /// # Errors
    ///
    /// [`SchedulerError::UnknownFlow`], or [`SchedulerError::Stopped`] after stop.
    pub fn reset_flow(&self, id: &str) -> CanoResult<()> {
        Ok(self.command(id, |st, flow, now, wall| {
            st.core.reset_flow(flow, now, wall)
        })?)
    }

    /// Pauses flow `id`'s scheduled fires; runs in flight continue and `trigger` still works.
    ///
    /// # Errors
    ///
    /// [`SchedulerError::UnknownFlow`], or [`SchedulerError::Stopped`] after stop.
    pub fn pause(&self, id: &str) -> CanoResult<()> {
        Ok(self.command(id, |st, flow, _, _| st.core.pause(flow))?)
    }

    /// Resumes flow `id`'s scheduled fires from now; fires that passed while paused are not
    /// caught up.
    ///
    /// # Errors
    ///
    /// [`SchedulerError::UnknownFlow`], or [`SchedulerError::Stopped`] after stop.
    pub fn resume(&self, id: &str) -> CanoResult<()> {
        Ok(self.command(id, |st, flow, now, wall| st.core.resume(flow, now, wall))?)
    }

    /// Completes once every schedule-store write asked for until now was made: the state
    /// of every fire, outcome and command before this call survives a restart. Without a
    /// store it completes at once.
    ///
    /// Commands (`pause`, `trigger`, …) are synchronous: they change the scheduler's state
    /// at once and queue its write; await `flush` to know the write reached the store.
    ///
    /// # Errors
    ///
    /// The store's error ([`CanoError::Store`]) if a write failed while waiting; the write
    /// is retried (see [`SchedulerCore::persist_schedules`]), and a later `flush` succeeds
    /// once it went through.
    pub async fn flush(&self) -> CanoResult<()> {
        let common = self.common();
        let failed_before = common.state.with(|st| st.core.failed_saves());
        poll_fn(|cx| {
            common.state.with(|st| {
                if st.core.failed_saves() > failed_before {
                    let error = st.last_save_error.clone().unwrap_or_else(|| {
                        crate::persist::PersistError::unavailable("write failed")
                    });
                    return Poll::Ready(Err(CanoError::from(error)));
                }
                if st.core.saves_settled() {
                    return Poll::Ready(Ok(()));
                }
                if !st.flush_waiters.iter().any(|w| w.will_wake(cx.waker())) {
                    st.flush_waiters.push(cx.waker().clone());
                }
                Poll::Pending
            })
        })
        .await
    }

    /// A snapshot of flow `id`, or `None` if no such flow is registered.
    pub fn status(&self, id: &str) -> Option<FlowInfo> {
        let view = self.read(id, |core, flow, now, wall| core.view(flow, now, wall));
        view.ok().map(|view| view.into_info())
    }

    /// Snapshots of every flow, in registration order.
    pub fn list(&self) -> Vec<FlowInfo> {
        let (now, wall) = self.times();
        let views: Vec<_> = self.common().state.with(|st| {
            st.core
                .flows()
                .map(|flow| st.core.view(flow, now, wall))
                .collect()
        });
        views.into_iter().map(|view| view.into_info()).collect()
    }

    /// Adds flow `id` to the running scheduler, with the default [`FlowOptions`]; see
    /// [`add_flow_with`](Self::add_flow_with).
    ///
    /// # Errors
    ///
    /// As [`add_flow_with`](Self::add_flow_with).
    pub async fn add_flow<S, J>(
        &self,
        id: &str,
        schedule: Schedule,
        job: J,
        initial_state: S,
    ) -> CanoResult<()>
    where
        S: Clone + Send + Sync + 'static,
        J: Job<S>,
    {
        self.add_flow_with(id, schedule, FlowOptions::default(), job, initial_state)
            .await
    }

    /// Adds flow `id` to the running scheduler: validates the job, runs its setup, then
    /// schedules it as if it had been registered before start, from now on (an interval
    /// flow fires at once unless its policy says
    /// [`FirstRun::AfterInterval`](super::schedule::FirstRun::AfterInterval); a cron flow
    /// at its next match). Its teardown runs when it is removed, or at the stop. Its input
    /// type is its own (it need not be the builder's). Subscribers see
    /// [`SchedulerEvent::FlowAdded`](super::SchedulerEvent::FlowAdded).
    ///
    /// ```
    /// use cano_core::scheduler::{job_fn, Fire, Scheduler};
    /// use cano_core::schedule::Schedule;
    /// use cano_core::testing::Simulation;
    /// use core::time::Duration;
    ///
    /// let sim = Simulation::new();
    /// let running = sim.block_on(Scheduler::<()>::new().start(sim.clock(), sim.spawner())).unwrap();
    /// let job = job_fn(|greeting: &'static str, _fire: Fire| async move {
    ///     assert_eq!(greeting, "hello");
    ///     Ok(())
    /// });
    /// sim.block_on(running.add_flow("hello", Schedule::Every(Duration::from_secs(60)), job, "hello"))
    ///     .unwrap();
    /// sim.run_for(Duration::from_secs(600));
    /// assert_eq!(running.status("hello").unwrap().run_count, 11); // at 0, 60, …, 600 s
    /// sim.block_on(running.stop()).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// The builder's errors, typed the same way (category `"configuration"`):
    /// [`SchedulerError::DuplicateFlow`], [`SchedulerError::EmptyFlowId`],
    /// [`SchedulerError::ZeroInterval`], [`SchedulerError::InvalidPolicy`]; the job's
    /// validation error (for a workflow, [`CanoError::Configuration`] naming the flow) or
    /// setup error; [`SchedulerError::Stopped`] once a stop began (also when it began
    /// during the setup: the job is torn down again). Nothing is added then.
    pub async fn add_flow_with<S, J>(
        &self,
        id: &str,
        schedule: Schedule,
        options: FlowOptions,
        job: J,
        initial_state: S,
    ) -> CanoResult<()>
    where
        S: Clone + Send + Sync + 'static,
        J: Job<S>,
    {
        let common = self.common();
        common.state.with(|st| {
            st.core
                .check_new_flow(id, &schedule, &options.policy, &options.backoff)
        })?;
        let job = ready_job(id, job, initial_state).await?;
        let (now, wall) = self.times();
        let (added, wake) = common.state.with(|st| {
            let added =
                st.core
                    .add_running_flow(id, schedule, options.policy, options.backoff, now, wall);
            if let Ok(flow) = added {
                if st.jobs.len() <= flow.get() {
                    st.jobs.resize_with(flow.get() + 1, || None);
                }
                st.jobs[flow.get()] = Some(job.clone());
            }
            (added, st.loop_must_wake())
        });
        if wake {
            common.notify_loop();
        }
        if let Err(e) = added {
            // The refusal is what the caller needs; a teardown error has nowhere better to go.
            let _ = isolate_future_panic(pin!(job.teardown())).await;
            return Err(e.into());
        }
        Ok(())
    }

    /// Removes flow `id` from the running scheduler: nothing new of it starts (its id is
    /// free at once, so it may be added again), its runs in flight end as `in_flight` says
    /// ([`InFlight::Wait`]: let them finish; [`InFlight::Cancel`]: cancel them after a
    /// grace, as cancelled, not failed); then its job's teardown runs; with a schedule
    /// store, the flow's record is deleted (after the writes asked for so far, unless the
    /// id was added again meanwhile). Completes when all of that is done. Subscribers see
    /// [`SchedulerEvent::FlowRemoved`](super::SchedulerEvent::FlowRemoved), then the ends
    /// of its runs.
    ///
    /// If this future is dropped before it completes, the removal stands and the job is
    /// torn down at the scheduler's stop instead.
    ///
    /// # Errors
    ///
    /// [`SchedulerError::UnknownFlow`], or [`SchedulerError::Stopped`] once a stop began
    /// (nothing changes then); the job's teardown error, or the store's delete error
    /// ([`CanoError::Store`]): the flow is removed all the same.
    pub async fn remove_flow(&self, id: &str, in_flight: InFlight) -> CanoResult<()> {
        let common = self.common();
        let now = common.clock.now();
        let (removed, wake) = common.state.with(|st| {
            let removed = st
                .core
                .check_running()
                .and_then(|()| st.core.flow(id))
                .and_then(|flow| {
                    let runs = st.core.remove_flow(flow, in_flight, now)?;
                    if matches!(in_flight, InFlight::Cancel { .. }) {
                        st.renew_token(flow);
                    }
                    let job = st.jobs.get_mut(flow.get()).and_then(Option::take);
                    let cursor = (!runs.is_empty()).then(|| st.core.subscribe_events());
                    Ok((runs, job, cursor))
                });
            (removed, st.loop_must_wake())
        });
        if wake {
            common.notify_loop();
        }
        let (runs, job, cursor) = removed?;
        let retiring = Retiring {
            common,
            id,
            job,
            cursor,
        };
        let torn_down = retiring.finish(&runs).await;
        if let Some(store) = &common.store {
            // The writes asked for before the removal land first; a failure among them
            // does not keep the record from being deleted.
            let _ = self.flush().await;
            if !common.state.with(|st| st.core.contains(id)) {
                store.delete_dyn(id, Fence::ZERO).await?;
            }
        }
        torn_down
    }

    /// Replaces flow `id`'s schedule, options and job on the running scheduler: the new
    /// job is validated and set up, then takes the flow's place at once, planned afresh
    /// from now (as [`add_flow_with`](Self::add_flow_with) plans). The flow keeps its id,
    /// its fire ids (they keep increasing), its pause, counters and run history; its
    /// failure streak, backoff and trip are cleared. The old job's runs in flight end as
    /// `in_flight` says (and still count for the flow as they end), then the old job is
    /// torn down. With a schedule store, the flow's record is rewritten with the new
    /// [`ScheduleHash`](crate::persist::ScheduleHash) (so a restart with the old schedule
    /// catches nothing up). Subscribers see
    /// [`SchedulerEvent::FlowReplaced`](super::SchedulerEvent::FlowReplaced).
    ///
    /// # Errors
    ///
    /// [`SchedulerError::UnknownFlow`], [`SchedulerError::Stopped`], a bad schedule or
    /// policy, or the new job's validation or setup error: nothing changes then. The old
    /// job's teardown error: the flow is replaced all the same.
    pub async fn replace_flow<S, J>(
        &self,
        id: &str,
        schedule: Schedule,
        options: FlowOptions,
        job: J,
        initial_state: S,
        in_flight: InFlight,
    ) -> CanoResult<()>
    where
        S: Clone + Send + Sync + 'static,
        J: Job<S>,
    {
        let common = self.common();
        common.state.with(|st| {
            st.core
                .check_replacement(id, &schedule, &options.policy, &options.backoff)
        })?;
        let job = ready_job(id, job, initial_state).await?;
        let (now, wall) = self.times();
        let (replaced, wake) = common.state.with(|st| {
            let replaced = st.core.flow(id).and_then(|flow| {
                let runs = st.core.replace_flow(
                    flow,
                    schedule,
                    options.policy,
                    options.backoff,
                    in_flight,
                    now,
                    wall,
                )?;
                if matches!(in_flight, InFlight::Cancel { .. }) {
                    st.renew_token(flow);
                }
                let old = st
                    .jobs
                    .get_mut(flow.get())
                    .and_then(|slot| slot.replace(job.clone()));
                let cursor = (!runs.is_empty()).then(|| st.core.subscribe_events());
                Ok((runs, old, cursor))
            });
            (replaced, st.loop_must_wake())
        });
        if wake {
            common.notify_loop();
        }
        let (runs, old, cursor) = match replaced {
            Ok(replaced) => replaced,
            Err(e) => {
                let _ = isolate_future_panic(pin!(job.teardown())).await;
                return Err(e.into());
            }
        };
        Retiring {
            common,
            id,
            job: old,
            cursor,
        }
        .finish(&runs)
        .await
    }

    /// Cancels flow `id`'s runs in flight without counting them as failures: the flow's
    /// failure streak and backoff stay as they were, and its schedule goes on (cano 0.15's
    /// `cancel_flow`). Each run's cancellation is signalled at once
    /// ([`Fire::cancellation`](super::Fire::cancellation)): a workflow stops before its
    /// next state, lets a compensatable task in flight finish and drains its compensations
    /// (LIFO), as in cano 0.15. A run still in flight one cancellation wind-down later
    /// ([`Scheduler::set_cancel_wind_down`](super::Scheduler::set_cancel_wind_down),
    /// default [`DEFAULT_CANCEL_WIND_DOWN`](super::DEFAULT_CANCEL_WIND_DOWN)) is dropped at
    /// its current `.await`. Returns how many runs were asked to cancel; 0 (not an error)
    /// when none was in flight. Their ends follow, as
    /// [`RunOutcome::Cancelled`](super::RunOutcome::Cancelled) (a run that returns
    /// [`CanoError::Cancelled`] counts as cancelled too; one whose compensation failed,
    /// [`CanoError::CompensationFailed`], is a failure of its flow).
    ///
    /// # Errors
    ///
    /// [`SchedulerError::UnknownFlow`], or [`SchedulerError::Stopped`] once a stop began.
    pub fn cancel_flow(&self, id: &str) -> CanoResult<usize> {
        Ok(self.command(id, |st, flow, now, _| {
            let asked = st.core.cancel_flow(flow, now)?;
            if asked > 0 {
                st.renew_token(flow);
            }
            Ok(asked)
        })?)
    }

    /// Flow `id`'s last finished runs, oldest first: at most the history limit
    /// ([`Scheduler::set_history_limit`](super::Scheduler::set_history_limit), default
    /// [`DEFAULT_HISTORY_LIMIT`](super::DEFAULT_HISTORY_LIMIT)). Kept after a stop.
    ///
    /// # Errors
    ///
    /// [`SchedulerError::UnknownFlow`].
    pub fn history(&self, id: &str) -> CanoResult<Vec<RunRecord>> {
        Ok(self.read(id, |core, flow, _, _| core.history(flow))?)
    }

    /// A subscription to this scheduler's events from now on: a [`Stream`](futures::Stream)
    /// of [`SchedulerEvent`](super::SchedulerEvent)s, ending after
    /// [`SchedulerEvent::Stopped`](super::SchedulerEvent::Stopped) (at once if the scheduler
    /// has stopped). A subscriber that falls more than the event capacity behind gets
    /// [`SchedulerEvent::Lagged`](super::SchedulerEvent::Lagged) with the number it missed and
    /// goes on; the scheduler never waits for it. Each subscription reads on its own.
    ///
    /// ```
    /// use cano_core::scheduler::{job_fn, Scheduler, SchedulerEvent};
    /// use cano_core::testing::Simulation;
    /// use futures::StreamExt;
    ///
    /// let sim = Simulation::new();
    /// let mut scheduler = Scheduler::new();
    /// scheduler.manual("report", job_fn(|(), _| async { Ok(()) }), ()).unwrap();
    /// let running = sim.block_on(scheduler.start(sim.clock(), sim.spawner())).unwrap();
    /// let events = running.subscribe();
    /// running.pause("report").unwrap();
    /// sim.block_on(running.stop()).unwrap();
    /// let seen: Vec<_> = sim.block_on(events.collect());
    /// assert_eq!(seen, [
    ///     SchedulerEvent::Paused { flow: "report".into() },
    ///     SchedulerEvent::Stopping,
    ///     SchedulerEvent::Stopped,
    /// ]);
    /// ```
    pub fn subscribe(&self) -> super::SchedulerEvents {
        super::SchedulerEvents::new(self.runs.clone())
    }

    /// Whether any flow has a run in flight.
    pub fn has_running_flows(&self) -> bool {
        self.common().state.with(|st| st.core.has_running_flows())
    }

    /// Flow `id`'s next `n` (at most [`NEXT_FIRES_LIMIT`]) scheduled fire times, as planned
    /// now (see [`SchedulerCore::next_fires`]); computed outside the scheduler's lock.
    ///
    /// # Errors
    ///
    /// [`SchedulerError::UnknownFlow`].
    pub fn next_fires(&self, id: &str, n: usize) -> CanoResult<Vec<Timestamp>> {
        Ok(self
            .upcoming_fires(id)?
            .take(n.min(NEXT_FIRES_LIMIT))
            .collect())
    }

    /// Flow `id`'s planned fire times from now on, walked lazily without holding the
    /// scheduler's lock (see [`UpcomingFires`]).
    ///
    /// ```
    /// # use cano_core::scheduler::{job_fn, Scheduler};
    /// # use cano_core::testing::Simulation;
    /// let sim = Simulation::new();
    /// let mut s = Scheduler::new();
    /// s.every_minutes("tick", job_fn(|(), _| async { Ok(()) }), (), 15).unwrap();
    /// let running = sim.block_on(s.start(sim.clock(), sim.spawner())).unwrap();
    /// let in_a_day = running.upcoming_fires("tick").unwrap().take(96).count();
    /// assert_eq!(in_a_day, 96);
    /// ```
    ///
    /// # Errors
    ///
    /// [`SchedulerError::UnknownFlow`].
    pub fn upcoming_fires(&self, id: &str) -> CanoResult<UpcomingFires> {
        Ok(self.read(id, |core, flow, now, wall| {
            core.upcoming_fires(flow, now, wall)
        })?)
    }

    /// Stops with [`DEFAULT_STOP_GRACE`]; see [`RunningScheduler::stop_within`].
    ///
    /// # Errors
    ///
    /// As [`RunningScheduler::wait`].
    pub async fn stop(&self) -> CanoResult<StopReport> {
        self.stop_within(DEFAULT_STOP_GRACE).await
    }

    /// Stops: nothing new starts from now on (a later `trigger` is a
    /// [`SchedulerError::Stopped`] error); runs in flight see
    /// [`Fire::is_stopping`](super::Fire::is_stopping) and get `grace` to finish, after
    /// which they are cancelled and listed in the report. Cancelling is two-phase: first
    /// each run's cancellation is signalled ([`Fire::cancellation`](super::Fire::cancellation);
    /// a workflow stops before its next state, lets a compensatable task in flight finish
    /// and drains its compensations), then a run still in flight one cancellation wind-down
    /// later ([`Scheduler::set_cancel_wind_down`](super::Scheduler::set_cancel_wind_down),
    /// default [`DEFAULT_CANCEL_WIND_DOWN`](super::DEFAULT_CANCEL_WIND_DOWN), 60 s) is
    /// dropped at its current `.await`. So a stop completes at most `grace` plus the
    /// wind-down after it began (plus teardown). Then every job's teardown runs, last
    /// registered first. Idempotent: later calls (with any grace) return
    /// the same report.
    ///
    /// # Errors
    ///
    /// As [`RunningScheduler::wait`].
    pub async fn stop_within(&self, grace: Duration) -> CanoResult<StopReport> {
        self.begin_stop(grace);
        self.wait().await
    }

    fn begin_stop(&self, grace: Duration) {
        let common = self.common();
        let now = common.clock.now();
        let (first, wake) = common.state.with(|st| {
            let first = st.core.begin_stop(now, grace);
            (first, st.loop_must_wake())
        });
        if first {
            common.stop.cancel();
        }
        if first || wake {
            common.notify_loop();
        }
    }

    /// Waits until the scheduler has stopped (by `stop` elsewhere) and returns its report.
    /// Waits forever if nobody stops it.
    ///
    /// # Errors
    ///
    /// [`SchedulerError::DriverGone`] if the scheduler's loop was dropped before it finished
    /// (its runtime shut down).
    pub async fn wait(&self) -> CanoResult<StopReport> {
        poll_fn(|cx| self.common().poll_report(cx)).await
    }

    /// Waits for `signal`, then stops with `grace` for the runs in flight and returns the
    /// stop's report; if the scheduler is stopped some other way first, returns that stop's
    /// report and drops `signal`. What the adapters' `shutdown_on_ctrl_c` and `shutdown_on`
    /// are built on: `signal` is a Ctrl-C listener, a SIGTERM, a message.
    ///
    /// # Errors
    ///
    /// The error `signal` yields (the scheduler is left running: it could not listen);
    /// otherwise as [`wait`](Self::wait).
    pub async fn stop_on(
        &self,
        grace: Duration,
        signal: impl core::future::Future<Output = CanoResult<()>>,
    ) -> CanoResult<StopReport> {
        let mut signal = core::pin::pin!(signal);
        let mut stopped = core::pin::pin!(self.wait());
        let received = poll_fn(|cx| {
            // A report that is already there wins over a signal arriving in the same poll.
            if let Poll::Ready(report) = stopped.as_mut().poll(cx) {
                return Poll::Ready(Err(report));
            }
            signal.as_mut().poll(cx).map(Ok)
        })
        .await;
        match received {
            Ok(Ok(())) => self.stop_within(grace).await,
            Ok(Err(cannot_listen)) => Err(cannot_listen),
            Err(report) => report,
        }
    }
}

impl Clone for RunningScheduler {
    fn clone(&self) -> Self {
        self.common().handles.fetch_add(1, Ordering::SeqCst);
        RunningScheduler {
            runs: self.runs.clone(),
        }
    }
}

impl Drop for RunningScheduler {
    fn drop(&mut self) {
        if self.common().handles.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.begin_stop(Duration::ZERO);
        }
    }
}

impl fmt::Debug for RunningScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningScheduler")
            .field("handles", &self.common().handles.load(Ordering::Relaxed))
            .finish()
    }
}
