//! The async driver: one loop per scheduler, written once against [`Clock`] and [`Spawner`],
//! and [`RunningScheduler`], the handle that talks to it.
//!
//! The loop asks the [`SchedulerCore`] what to start, spawns those runs, and sleeps until
//! the core's next deadline or until an event (a trigger, an outcome, a command) moved that
//! deadline earlier. It holds one timer however many flows there are, does no work while
//! nothing is due, and never holds the state lock across an `.await`.
//!
//! Handle calls (`trigger`, `status`, …) run synchronously on the caller's thread under a
//! short critical section: a trigger spawns its run directly, without a round trip through
//! the loop.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::future::{Future, poll_fn};
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use futures::future::{AbortHandle, AbortRegistration, Abortable, Aborted};
use futures::task::AtomicWaker;
use jiff::Timestamp;

use super::core::{Action, Dispatch, FlowIndex, SchedulerCore};
use super::info::FlowInfo;
use super::job::{Fire, FireId, Job};
use crate::cancel::CancellationToken;
use crate::error::{CanoError, CanoResult};
use crate::panic::isolate_future_panic;
use crate::runtime::DynClock;
use crate::runtime::{Clock, SpawnError, Spawner};
use crate::sync::Lock;
use crate::time::Instant;

/// How long [`RunningScheduler::stop`] lets runs in flight finish before cancelling them
/// (the reference's advertised bound).
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(30);

/// What a stop did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StopReport {
    /// Runs still in flight at the stop deadline, cancelled (dropped) there.
    pub cancelled: Vec<FireId>,
    /// Teardown hooks that failed (or panicked), by flow id, in teardown order.
    pub teardown_errors: Vec<(String, CanoError)>,
}

pub(crate) type FlowJob<S> = (Box<dyn Job<S>>, S);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// Stopping: runs in flight may finish until `deadline`.
    Stopping {
        deadline: Instant,
    },
    /// The stop deadline passed: remaining runs were cancelled.
    Draining,
}

/// Run-table and batch capacity kept across bursts.
const RUN_TABLE_KEPT: usize = 64;

struct RunTable {
    slots: Vec<Option<(FireId, AbortHandle)>>,
    free: Vec<u32>,
    live: usize,
}

impl RunTable {
    fn insert(&mut self, fire: FireId, abort: AbortHandle) -> u32 {
        self.live += 1;
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some((fire, abort));
                slot
            }
            None => {
                self.slots.push(Some((fire, abort)));
                (self.slots.len() - 1) as u32
            }
        }
    }

    fn remove(&mut self, slot: u32) {
        if let Some(entry) = self.slots.get_mut(slot as usize)
            && entry.take().is_some()
        {
            self.live -= 1;
            self.free.push(slot);
            if self.live == 0 && self.slots.len() > RUN_TABLE_KEPT {
                // A burst (every flow firing at start) must not pin its peak forever.
                self.slots = Vec::new();
                self.free = Vec::new();
            }
        }
    }
}

struct DriverState {
    core: SchedulerCore,
    runs: RunTable,
    phase: Phase,
    /// The deadline the loop sleeps until (`Instant::MAX`: until an event).
    sleeping_until: Instant,
    /// Cancelled at the deadline; aborted runs leave the table as they unwind.
    cancelled: Vec<FireId>,
    report: Option<CanoResult<StopReport>>,
    report_waiters: Vec<Waker>,
}

struct Shared<S, C, P> {
    clock: C,
    spawner: P,
    jobs: Box<[FlowJob<S>]>,
    state: Lock<DriverState>,
    notified: AtomicBool,
    driver_waker: AtomicWaker,
    clock_for_jobs: DynClock,
    /// Cancelled when a stop begins.
    stop: CancellationToken,
    /// Cancelled when the stop's grace period ends.
    stop_deadline: CancellationToken,
    handles: AtomicUsize,
}

/// A run decided on inside the critical section, spawned outside it.
struct PendingRun {
    dispatch: Dispatch,
    slot: u32,
    registration: AbortRegistration,
}

impl DriverState {
    fn admit(&mut self, dispatch: Dispatch) -> PendingRun {
        let (abort, registration) = AbortHandle::new_pair();
        let slot = self.runs.insert(dispatch.fire.clone(), abort);
        PendingRun {
            dispatch,
            slot,
            registration,
        }
    }

    /// Whether the loop must wake to look at the core again.
    fn loop_must_wake(&self) -> bool {
        match self.phase {
            Phase::Running => self
                .core
                .next_wake()
                .is_some_and(|t| t < self.sleeping_until),
            Phase::Stopping { .. } | Phase::Draining => self.runs.live == 0,
        }
    }
}

impl<S, C, P> Shared<S, C, P>
where
    S: Clone + Send + Sync + 'static,
    C: Clock,
    P: Spawner,
{
    fn times(&self) -> (Instant, Timestamp) {
        (self.clock.now(), self.clock.wall_now())
    }

    fn notify_loop(&self) {
        self.notified.store(true, Ordering::SeqCst);
        self.driver_waker.wake();
    }

    /// Spawns a run. A spawn failure is recorded as a failed run of its flow (so a full
    /// pool backs the flow off instead of wedging it) and returned to the caller.
    fn spawn_run(self: &Arc<Self>, run: PendingRun) -> Result<(), SpawnError> {
        let PendingRun {
            dispatch: Dispatch { flow, fire },
            slot,
            registration,
        } = run;
        let shared = self.clone();
        let future = async move {
            // If the runtime drops this future mid-run, the run still ends (as cancelled):
            // the flow must not stay `Running`, nor a stop wait for it forever.
            let mut unfinished = RunEndGuard {
                shared: Some(&*shared),
                flow,
                slot,
            };
            let (job, input) = &shared.jobs[flow.get()];
            let fire = Fire::new(
                fire,
                shared.stop.clone(),
                shared.stop_deadline.clone(),
                shared.clock_for_jobs.clone(),
            );
            let run = async move { job.run(input.clone(), fire).await };
            let outcome = Abortable::new(isolate_future_panic(run), registration).await;
            unfinished.shared = None;
            shared.run_ended(flow, slot, outcome);
        };
        self.spawner.spawn(Box::pin(future)).inspect_err(|&e| {
            self.run_ended(flow, slot, Ok(Err(CanoError::Spawn(e))));
        })
    }

    fn run_ended(&self, flow: FlowIndex, slot: u32, outcome: Result<CanoResult<()>, Aborted>) {
        let now = self.clock.now();
        let wake = self.state.with(|st| {
            // The loop's next poll re-reads the wall clock; an outcome does not need it.
            let wall = st.core.wall_estimate(now);
            st.runs.remove(slot);
            // An error here means the core already forgot the run: nothing to record.
            let _ = match &outcome {
                Ok(result) => st.core.finish(flow, now, wall, result.as_ref().map(|_| ())),
                Err(Aborted) => st.core.cancelled(flow, now, wall),
            };
            st.loop_must_wake()
        });
        if wake {
            self.notify_loop();
        }
    }

    /// Runs `f` on the state; wakes the loop if the core's next deadline moved earlier.
    fn command<R>(&self, f: impl FnOnce(&mut SchedulerCore, Instant, Timestamp) -> R) -> R {
        let (now, wall) = self.times();
        let (result, wake) = self.state.with(|st| {
            let result = f(&mut st.core, now, wall);
            (result, st.loop_must_wake())
        });
        if wake {
            self.notify_loop();
        }
        result
    }

    /// Completes when the loop was notified; registers for the next notification otherwise.
    fn poll_notified(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.notified.swap(false, Ordering::SeqCst) {
            return Poll::Ready(());
        }
        self.driver_waker.register(cx.waker());
        if self.notified.swap(false, Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Sleeps until `deadline` (kept across iterations in `sleep`) or a notification.
    async fn sleep_or_notified(
        &self,
        deadline: Instant,
        sleep: &mut Option<(Instant, Pin<Box<C::Sleep>>)>,
    ) {
        if deadline == Instant::MAX {
            *sleep = None;
            poll_fn(|cx| self.poll_notified(cx)).await;
            return;
        }
        if sleep.as_ref().is_none_or(|(at, _)| *at != deadline) {
            *sleep = Some((deadline, Box::pin(self.clock.sleep_until(deadline))));
        }
        let timer_fired = poll_fn(|cx| {
            if self.poll_notified(cx).is_ready() {
                return Poll::Ready(false);
            }
            match sleep.as_mut() {
                Some((_, timer)) => timer.as_mut().poll(cx).map(|()| true),
                None => Poll::Ready(true),
            }
        })
        .await;
        if timer_fired {
            *sleep = None;
        }
    }

    /// The loop: dispatch what is due, sleep until the next deadline or an event; on stop,
    /// wait for runs until the deadline, cancel the rest, tear down, publish the report.
    async fn drive(self: Arc<Self>) {
        let mut batch: Vec<PendingRun> = Vec::new();
        let mut sleep = None;
        loop {
            let (now, wall) = self.times();
            let next = self.state.with(|st| {
                if st.phase != Phase::Running {
                    return None;
                }
                let next = loop {
                    match st.core.poll(now, wall) {
                        Action::Start(dispatch) => batch.push(st.admit(dispatch)),
                        Action::WakeAt(t) => break t,
                        Action::Idle => break Instant::MAX,
                    }
                };
                st.sleeping_until = next;
                Some(next)
            });
            for run in batch.drain(..) {
                // Already recorded as a failed run of its flow; nobody else to tell.
                let _ = self.spawn_run(run);
            }
            batch.shrink_to(RUN_TABLE_KEPT);
            match next {
                Some(deadline) => self.sleep_or_notified(deadline, &mut sleep).await,
                None => break,
            }
        }
        // Stopping: runs in flight get until the deadline.
        loop {
            let now = self.clock.now();
            let (wait_until, deadline_passed) = self.state.with(|st| {
                if st.runs.live == 0 {
                    return (None, false);
                }
                match st.phase {
                    Phase::Stopping { deadline } if now < deadline => (Some(deadline), false),
                    Phase::Stopping { .. } => {
                        st.phase = Phase::Draining;
                        for (fire, abort) in st.runs.slots.iter().flatten() {
                            abort.abort();
                            st.cancelled.push(fire.clone());
                        }
                        (Some(Instant::MAX), true)
                    }
                    _ => (Some(Instant::MAX), false),
                }
            });
            if deadline_passed {
                // Outside the lock: cancelling wakes the runs' tasks.
                self.stop_deadline.cancel();
            }
            match wait_until {
                Some(deadline) => self.sleep_or_notified(deadline, &mut sleep).await,
                None => break,
            }
        }
        drop(sleep);
        // Teardown, last registered first.
        let ids: Vec<String> = self.state.with(|st| {
            (0..self.jobs.len())
                .map(|i| String::from(st.core.flow_id(FlowIndex::from_usize(i))))
                .collect()
        });
        let mut teardown_errors = Vec::new();
        for ((job, _), id) in self.jobs.iter().zip(ids).rev() {
            if let Err(e) = isolate_future_panic(job.teardown()).await {
                teardown_errors.push((id, e));
            }
        }
        let cancelled = self.state.with(|st| core::mem::take(&mut st.cancelled));
        self.publish(Ok(StopReport {
            cancelled,
            teardown_errors,
        }));
    }
}

/// Ends a run as cancelled if its future is dropped before it finished.
struct RunEndGuard<'a, S, C, P>
where
    S: Clone + Send + Sync + 'static,
    C: Clock,
    P: Spawner,
{
    shared: Option<&'a Shared<S, C, P>>,
    flow: FlowIndex,
    slot: u32,
}

impl<S, C, P> Drop for RunEndGuard<'_, S, C, P>
where
    S: Clone + Send + Sync + 'static,
    C: Clock,
    P: Spawner,
{
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.run_ended(self.flow, self.slot, Err(Aborted));
        }
    }
}

/// Publishes an error if the loop is dropped before it finished (its runtime shut down), so
/// `wait()` returns instead of hanging.
struct PublishOnDrop(Option<Arc<dyn Control>>);

impl PublishOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for PublishOnDrop {
    fn drop(&mut self) {
        if let Some(control) = self.0.take() {
            control.publish(Err(CanoError::workflow(
                "Scheduler driver task terminated unexpectedly without publishing a result",
            )));
        }
    }
}

/// The handle's view of a running scheduler, with the input, clock and spawner types erased.
trait Control: Send + Sync {
    fn trigger(self: Arc<Self>, id: &str) -> CanoResult<()>;
    fn reset_flow(&self, id: &str) -> CanoResult<()>;
    fn pause(&self, id: &str) -> CanoResult<()>;
    fn resume(&self, id: &str) -> CanoResult<()>;
    fn status(&self, id: &str) -> Option<FlowInfo>;
    fn list(&self) -> Vec<FlowInfo>;
    fn has_running_flows(&self) -> bool;
    fn next_fires(&self, id: &str, n: usize) -> CanoResult<Vec<Timestamp>>;
    fn begin_stop(&self, grace: Duration);
    fn poll_report(&self, cx: &mut Context<'_>) -> Poll<CanoResult<StopReport>>;
    fn publish(&self, report: CanoResult<StopReport>);
    fn handles(&self) -> &AtomicUsize;
}

impl<S, C, P> Control for Shared<S, C, P>
where
    S: Clone + Send + Sync + 'static,
    C: Clock,
    P: Spawner,
{
    fn trigger(self: Arc<Self>, id: &str) -> CanoResult<()> {
        let (now, wall) = self.times();
        let run = self.state.with(|st| {
            st.core
                .trigger(id, now, wall)
                .map(|dispatch| dispatch.map(|d| st.admit(d)))
        })?;
        if let Some(run) = run {
            // The caller must learn that its run never started.
            self.spawn_run(run).map_err(CanoError::Spawn)?;
        }
        Ok(())
    }

    fn reset_flow(&self, id: &str) -> CanoResult<()> {
        self.command(|core, now, wall| core.reset_flow(id, now, wall))
    }

    fn pause(&self, id: &str) -> CanoResult<()> {
        self.command(|core, _, _| core.pause(id))
    }

    fn resume(&self, id: &str) -> CanoResult<()> {
        self.command(|core, now, wall| core.resume(id, now, wall))
    }

    fn status(&self, id: &str) -> Option<FlowInfo> {
        let (now, wall) = self.times();
        self.state.with(|st| st.core.status(id, now, wall))
    }

    fn list(&self) -> Vec<FlowInfo> {
        let (now, wall) = self.times();
        self.state.with(|st| st.core.list(now, wall))
    }

    fn has_running_flows(&self) -> bool {
        self.state.with(|st| st.core.has_running_flows())
    }

    fn next_fires(&self, id: &str, n: usize) -> CanoResult<Vec<Timestamp>> {
        let (now, wall) = self.times();
        self.state.with(|st| st.core.next_fires(id, n, now, wall))
    }

    fn begin_stop(&self, grace: Duration) {
        let now = self.clock.now();
        let first = self.state.with(|st| {
            if st.phase != Phase::Running {
                return false;
            }
            st.phase = Phase::Stopping {
                deadline: now + grace,
            };
            st.core.stop();
            true
        });
        if first {
            self.stop.cancel();
            self.notify_loop();
        }
    }

    fn poll_report(&self, cx: &mut Context<'_>) -> Poll<CanoResult<StopReport>> {
        self.state.with(|st| match &st.report {
            Some(report) => Poll::Ready(report.clone()),
            None => {
                if !st.report_waiters.iter().any(|w| w.will_wake(cx.waker())) {
                    st.report_waiters.push(cx.waker().clone());
                }
                Poll::Pending
            }
        })
    }

    fn publish(&self, report: CanoResult<StopReport>) {
        let waiters = self.state.with(|st| {
            if st.report.is_none() {
                st.report = Some(report);
            }
            core::mem::take(&mut st.report_waiters)
        });
        waiters.into_iter().for_each(Waker::wake);
    }

    fn handles(&self) -> &AtomicUsize {
        &self.handles
    }
}

/// A started scheduler. Cheap to clone; clones share everything.
///
/// Every method but `stop`, `stop_within` and `wait` is synchronous and returns at once.
/// `status`, `list`, `has_running_flows` and `next_fires` keep working after a stop. Dropping
/// the last clone without stopping cancels every run in flight at once and tears down, so no
/// task outlives the scheduler.
pub struct RunningScheduler {
    control: Arc<dyn Control>,
}

impl RunningScheduler {
    /// Starts a run of flow `id` now, bypassing a backoff window; returns once the run is
    /// spawned (or, under `OverlapPolicy::BufferOne` with a run in flight, buffered).
    ///
    /// # Errors
    ///
    /// [`CanoError::Workflow`]: "Scheduler not running" after stop, "No workflow registered
    /// with id", "is tripped — call reset_flow before triggering", "is already running".
    /// [`CanoError::Spawn`] when the runtime refused the run (a full embassy pool): the run
    /// did not start, and it counts as a failed run of the flow.
    pub fn trigger(&self, id: &str) -> CanoResult<()> {
        self.control.clone().trigger(id)
    }

    /// Clears flow `id`'s failure streak, backoff and trip (a running flow stays running).
    ///
    /// # Errors
    ///
    /// [`CanoError::Workflow`] for an unknown id or after stop.
    pub fn reset_flow(&self, id: &str) -> CanoResult<()> {
        self.control.reset_flow(id)
    }

    /// Pauses flow `id`'s scheduled fires; runs in flight continue and `trigger` still works.
    ///
    /// # Errors
    ///
    /// [`CanoError::Workflow`] for an unknown id or after stop.
    pub fn pause(&self, id: &str) -> CanoResult<()> {
        self.control.pause(id)
    }

    /// Resumes flow `id`'s scheduled fires from now; fires that passed while paused are not
    /// caught up.
    ///
    /// # Errors
    ///
    /// [`CanoError::Workflow`] for an unknown id or after stop.
    pub fn resume(&self, id: &str) -> CanoResult<()> {
        self.control.resume(id)
    }

    /// A snapshot of flow `id`, or `None` if no such flow is registered.
    pub fn status(&self, id: &str) -> Option<FlowInfo> {
        self.control.status(id)
    }

    /// Snapshots of every flow, in registration order.
    pub fn list(&self) -> Vec<FlowInfo> {
        self.control.list()
    }

    /// Whether any flow has a run in flight.
    pub fn has_running_flows(&self) -> bool {
        self.control.has_running_flows()
    }

    /// Flow `id`'s next `n` scheduled fire times, as planned now (see
    /// [`SchedulerCore::next_fires`]).
    ///
    /// # Errors
    ///
    /// [`CanoError::Workflow`] for an unknown id.
    pub fn next_fires(&self, id: &str, n: usize) -> CanoResult<Vec<Timestamp>> {
        self.control.next_fires(id, n)
    }

    /// Stops with [`DEFAULT_STOP_GRACE`]; see [`RunningScheduler::stop_within`].
    ///
    /// # Errors
    ///
    /// As [`RunningScheduler::wait`].
    pub async fn stop(&self) -> CanoResult<StopReport> {
        self.stop_within(DEFAULT_STOP_GRACE).await
    }

    /// Stops: nothing new starts from now on (a later `trigger` is a "not running" error);
    /// runs in flight see [`Fire::is_stopping`] and get `grace` to finish, after which they
    /// are cancelled (dropped) and listed in the report; then every job's teardown runs, last
    /// registered first. Idempotent: later calls (with any grace) return the same report.
    ///
    /// # Errors
    ///
    /// As [`RunningScheduler::wait`].
    pub async fn stop_within(&self, grace: Duration) -> CanoResult<StopReport> {
        self.control.begin_stop(grace);
        self.wait().await
    }

    /// Waits until the scheduler has stopped (by `stop` elsewhere) and returns its report.
    /// Waits forever if nobody stops it.
    ///
    /// # Errors
    ///
    /// [`CanoError::Workflow`] if the scheduler's loop was dropped before it finished (its
    /// runtime shut down).
    pub async fn wait(&self) -> CanoResult<StopReport> {
        poll_fn(|cx| self.control.poll_report(cx)).await
    }
}

impl Clone for RunningScheduler {
    fn clone(&self) -> Self {
        self.control.handles().fetch_add(1, Ordering::SeqCst);
        RunningScheduler {
            control: self.control.clone(),
        }
    }
}

impl Drop for RunningScheduler {
    fn drop(&mut self) {
        if self.control.handles().fetch_sub(1, Ordering::SeqCst) == 1 {
            self.control.begin_stop(Duration::ZERO);
        }
    }
}

impl fmt::Debug for RunningScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningScheduler")
            .field("handles", &self.control.handles().load(Ordering::Relaxed))
            .finish()
    }
}

/// Starts the loop for `core` and `jobs` (set up already) and returns the first handle. If
/// the loop cannot be spawned, tears the jobs down again (last first).
pub(crate) async fn launch<S, C, P>(
    core: SchedulerCore,
    jobs: Vec<FlowJob<S>>,
    clock: C,
    spawner: P,
) -> CanoResult<RunningScheduler>
where
    S: Clone + Send + Sync + 'static,
    C: Clock,
    P: Spawner,
{
    let shared = Arc::new(Shared {
        clock_for_jobs: DynClock::new(clock.clone()),
        clock,
        spawner,
        jobs: jobs.into_boxed_slice(),
        state: Lock::new(DriverState {
            core,
            runs: RunTable {
                slots: Vec::new(),
                free: Vec::new(),
                live: 0,
            },
            phase: Phase::Running,
            sleeping_until: Instant::ZERO,
            cancelled: Vec::new(),
            report: None,
            report_waiters: Vec::new(),
        }),
        notified: AtomicBool::new(false),
        driver_waker: AtomicWaker::new(),
        stop: CancellationToken::new(),
        stop_deadline: CancellationToken::new(),
        handles: AtomicUsize::new(1),
    });
    // The guard lives outside the loop's body, so it fires even if the loop is dropped
    // before its first poll.
    let guard = PublishOnDrop(Some(shared.clone() as Arc<dyn Control>));
    let driver = shared.clone();
    let run_loop = async move {
        let guard = guard;
        driver.drive().await;
        guard.disarm();
    };
    if let Err(e) = shared.spawner.spawn(Box::pin(run_loop)) {
        for (job, _) in shared.jobs.iter().rev() {
            // The spawn error is what the caller needs to see.
            let _ = job.teardown().await;
        }
        return Err(CanoError::Spawn(e));
    }
    Ok(RunningScheduler { control: shared })
}
