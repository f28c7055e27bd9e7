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
use core::sync::atomic::Ordering;
use core::task::Poll;
use core::time::Duration;

use jiff::Timestamp;

use super::core::{FlowIndex, NEXT_FIRES_LIMIT, SchedulerCore};
use super::driver::{Common, DriverState, Runs};
use super::error::SchedulerError;
use super::info::FlowInfo;
use super::job::FireId;
use super::slot::UpcomingFires;
use crate::error::{CanoError, CanoResult};
use crate::runtime::Clock;
use crate::time::Instant;

/// How long [`RunningScheduler::stop`] lets runs in flight finish before cancelling them
/// (cano 0.12's advertised bound).
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(30);

/// What a stop did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StopReport {
    /// Runs still in flight at the stop deadline, cancelled (dropped) there.
    pub cancelled: Vec<FireId>,
    /// Teardown hooks that failed (or panicked), by flow id, in teardown order.
    pub teardown_errors: Vec<(String, CanoError)>,
    /// With a schedule store: flows whose last state could not be written before the stop
    /// completed (the store was unreachable; each was tried once more at the end). After a
    /// restart they come back as last written.
    pub unsaved: Vec<String>,
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
            // The caller must learn that its run never started.
            self.runs.clone().spawn_run(run).map_err(CanoError::Spawn)?;
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
    /// which they are cancelled (dropped) and listed in the report; then every job's
    /// teardown runs, last registered first. Idempotent: later calls (with any grace) return
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
