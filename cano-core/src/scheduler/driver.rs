//! The async driver: one loop per scheduler, written once against [`Clock`] and [`Spawner`].
//!
//! The loop decides nothing. It polls the [`SchedulerCore`], does what the actions say
//! (start a run: poll it once inline and spawn it if it waits, or spawn it; signal a run's
//! cancellation; drop a run), and sleeps until the core's next deadline or until an event (a
//! trigger, an outcome, a command) moved that deadline earlier; when the core says
//! [`Action::Stopped`], it tears the jobs down and publishes the report. It holds one timer
//! however many flows there are, does no work while nothing is due, never holds the state
//! lock across an `.await`, and wakes tasks (aborted runs, report waiters) only outside it.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::{Future, poll_fn};
use core::pin::{Pin, pin};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use core::task::{Context, Poll, Waker};

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::task::AtomicWaker;

use super::core::fleet::{FleetAction, FleetReport, FleetStatus};
use super::core::inline_start::{InlinePass, Polled};
use super::core::{Action, Dispatch, FlowMap, RunOutcome, ScheduleWrite, SchedulerCore};
use super::error::SchedulerError;
use super::events::{EventPump, SchedulerEvent, SchedulerObserver};
use super::handle::{RunningScheduler, StopReport};
use super::job::{Fire, FlowRunner};
use super::runs::RunId;
use crate::cancel::CancellationToken;
use crate::error::{CanoError, CanoResult};
use crate::panic::{isolate_future_panic, isolate_panic};
use crate::persist::{DynFireLedger, DynScheduleStore, NodeId, PersistError};
use crate::runtime::DynClock;
use crate::runtime::{Clock, SpawnError, Spawner};
use crate::sync::Lock;
use crate::time::Instant;

pub(crate) type FlowJob = Arc<dyn FlowRunner>;

/// A fleet node's ledger and name.
#[derive(Clone)]
pub(crate) struct FleetLink {
    pub(crate) ledger: Arc<dyn DynFireLedger>,
    pub(crate) node: NodeId,
    /// Performs a fleet action on the ledger ([`FleetAction::perform_owned`]); a pointer
    /// set with the link, so a scheduler without a fleet links none of the ledger calls.
    pub(crate) perform: fn(FleetAction, Arc<dyn DynFireLedger>, NodeId) -> LedgerCall,
}

impl FleetLink {
    /// The link of a fleet node named `node` with its ledger.
    pub(crate) fn new(ledger: Arc<dyn DynFireLedger>, node: NodeId) -> Self {
        FleetLink {
            ledger,
            node,
            perform: FleetAction::perform_owned,
        }
    }
}

/// A ledger call in flight; it owns what it needs.
type LedgerCall = BoxFuture<'static, FleetReport>;

/// What ended a sleep of the loop.
enum Woke {
    /// The deadline, or a notification: poll the core.
    Poll,
    /// A ledger call answered.
    Ledger(FleetReport),
    /// The ledger signalled new fleet commands.
    Commands,
}

/// Batch and abort-table capacity kept across bursts.
const KEPT: usize = 64;

/// The spare tokens and abort signals beyond [`SPARES_KEPT`], and capacity beyond [`KEPT`]
/// (the run and token tables, the loop's batches), are let go of only when the core's next
/// deadline is at least this far off: runs that recur sooner (1 000 flows every 10 ms) reuse
/// it and allocate no token and no abort signal per run, while flows that fire hourly hold
/// none of it between their runs (issue 15: per-run cost and bytes per flow).
const KEEP_ACROSS: core::time::Duration = core::time::Duration::from_secs(1);

/// Spare tokens and abort signals kept across a quiet spell ([`KEEP_ACROSS`]): enough that a
/// manual trigger or an hourly flow reuses them instead of allocating; a burst's worth
/// (one per flow that ran) would be memory held for nothing between bursts.
const SPARES_KEPT: usize = 4;

/// How the driver drops a run's future at its current `.await` ([`Action::Abort`]): a flag
/// and the run task's waker, shared by the driver's [`RunHandle`] and the run. Once the
/// run let go of it, it is reset and kept for a later run (`futures`' `Abortable` makes a
/// new pair, an allocation, every time).
#[derive(Default)]
struct AbortSignal {
    aborted: AtomicBool,
    waker: AtomicWaker,
}

impl AbortSignal {
    /// Drops the guarded future at its next poll (wakes it for that).
    fn abort(&self) {
        self.aborted.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Polls `future` (pinned by the caller: see [`isolate_future_panic`]) to its output, or
    /// to `None` once [`abort`](Self::abort) was called.
    fn guard<'a, F: Future>(
        &'a self,
        mut future: Pin<&'a mut F>,
    ) -> impl Future<Output = Option<F::Output>> + 'a {
        poll_fn(move |cx| {
            // Registered before the check, so an abort in between still wakes this task.
            self.waker.register(cx.waker());
            if self.aborted.load(Ordering::Acquire) {
                return Poll::Ready(None);
            }
            future.as_mut().poll(cx).map(Some)
        })
    }
}

/// What the driver keeps of a run in flight: how to signal its cancellation and how to drop
/// it.
struct RunHandle {
    abort: Arc<AbortSignal>,
    /// The run's cancellation token: its flow's, shared with the flow's other runs started
    /// since the flow's runs were last asked to cancel (see [`DriverState::renew_token`]).
    cancel: CancellationToken,
}

/// Everything behind the scheduler's one lock.
pub(crate) struct DriverState {
    pub(crate) core: Box<SchedulerCore>,
    /// The runs in flight, by [`RunId::slot`].
    aborts: Vec<Option<RunHandle>>,
    /// Each flow's cancellation token for the runs it starts, by
    /// [`FlowIndex`](super::FlowIndex), made at its first run: one per flow, not per run.
    /// Every run of a flow asked to cancel shares it, so it is renewed (for later runs) when
    /// the core is asked to cancel the flow's runs; the core then signals every run sharing
    /// it at the same instant, so signalling one run's token never reaches a run the core
    /// did not signal.
    tokens: Vec<Option<CancellationToken>>,
    /// Tokens of flows whose runs all ended, no longer held by anyone, for the next flow
    /// that starts a run ([`SPARES_KEPT`] across a pause of [`KEEP_ACROSS`] or more):
    /// a flow with no run in flight holds no token (issue 15: one per flow that ever ran was
    /// ~70 bytes a flow), and a steady stream of runs allocates none.
    spare_tokens: Vec<CancellationToken>,
    /// Abort signals of ended runs, reset, for the next runs (kept like `spare_tokens`).
    spare_aborts: Vec<Arc<AbortSignal>>,
    /// The run whose future the loop is handing to the spawner after an inline first poll,
    /// and whether the future was dropped unfinished meanwhile (see [`Common::run_dropped`]).
    handing_over: Option<(RunId, bool)>,
    /// The latest time a run was seen to end (`run_ended`'s clock readings, the latest of
    /// them): the end of a run the loop's inline poll finished, without a second reading.
    last_run_end: Instant,
    /// The deadline the loop sleeps until (`Instant::MAX`: until an event).
    sleeping_until: Instant,
    /// The loop went to sleep holding a burst's capacity in its batches (more than
    /// [`KEPT`]) because runs were still in flight: the run whose end makes the scheduler
    /// quiet wakes it to let go of it, or it would hold it until its next deadline.
    loop_holds_burst: bool,
    report: Option<Arc<CanoResult<StopReport>>>,
    report_waiters: Vec<Waker>,
    /// Waiting for every requested schedule-store write to be made.
    pub(crate) flush_waiters: Vec<Waker>,
    /// The last schedule-store write error.
    pub(crate) last_save_error: Option<PersistError>,
    /// Subscribers waiting for events, and the observers' place in them.
    pub(crate) pump: EventPump,
    /// Each flow's job, by [`FlowIndex`](super::FlowIndex) (`None`: removed).
    pub(crate) jobs: Vec<Option<Arc<dyn FlowRunner>>>,
    /// Jobs of flows removed or replaced while running whose teardown did not run yet
    /// (the call that removed them was dropped before its runs ended): torn down at stop.
    pub(crate) orphans: Vec<(String, Arc<dyn FlowRunner>)>,
}

/// A run decided on inside the critical section, spawned outside it.
pub(crate) struct PendingRun {
    dispatch: Dispatch,
    abort: Arc<AbortSignal>,
    cancel: CancellationToken,
    /// [`Action::Resume`]: the job resumes the fire's unfinished run.
    resume: bool,
    job: Option<Arc<dyn FlowRunner>>,
}

impl DriverState {
    /// Keeps the abort handle and cancellation token of a run the core dispatched.
    pub(crate) fn admit(&mut self, dispatch: Dispatch) -> PendingRun {
        let abort = self.spare_aborts.pop().unwrap_or_default();
        let slot = dispatch.run.slot();
        if self.aborts.len() <= slot {
            self.aborts.resize_with(slot + 1, || None);
        }
        let flow = dispatch.flow.get();
        if self.tokens.len() <= flow {
            // Room for every flow at once (every flow firing at start fills it in order),
            // not a doubling: it is dropped once no run is in flight.
            let more = self.core.flow_slots().max(flow + 1) - self.tokens.len();
            if self.tokens.capacity() == 0 {
                self.tokens.reserve_exact(more);
            } else {
                self.tokens.reserve(more);
            }
            self.tokens.resize_with(flow + 1, || None);
        }
        let token = match &mut self.tokens[flow] {
            Some(token) if !token.is_cancelled() => token,
            // Not `unwrap_or_default`: a default token is `never()`, one that cannot be
            // cancelled.
            #[allow(clippy::unwrap_or_default)]
            fresh => fresh.insert(
                self.spare_tokens
                    .pop()
                    .unwrap_or_else(CancellationToken::new),
            ),
        };
        let cancel = token.clone();
        self.aborts[slot] = Some(RunHandle {
            abort: abort.clone(),
            cancel: cancel.clone(),
        });
        let job = self.jobs.get(flow).and_then(Clone::clone);
        PendingRun {
            dispatch,
            abort,
            cancel,
            resume: false,
            job,
        }
    }

    /// The runs of `flow` in flight were asked to cancel: its later runs get a new token.
    pub(crate) fn renew_token(&mut self, flow: super::FlowIndex) {
        if let Some(token) = self.tokens.get_mut(flow.get()) {
            *token = None;
        }
    }

    /// Run `run` of `flow` ended (its handle taken): if no other run of the flow shares
    /// its token, the flow lets go of it.
    fn release_token(&mut self, flow: Option<super::FlowIndex>) {
        if let Some(slot) = flow.and_then(|flow| self.tokens.get_mut(flow.get()))
            && slot.as_ref().is_some_and(CancellationToken::is_sole_handle)
            && let Some(token) = slot.take()
            && !token.is_cancelled()
        {
            self.spare_tokens.push(token);
        }
    }

    /// Takes run `run`'s abort signal, to raise it ([`Action::Abort`]).
    fn take_abort(&mut self, run: RunId) -> Option<Arc<AbortSignal>> {
        self.aborts
            .get_mut(run.slot())
            .and_then(Option::take)
            .map(|handle| handle.abort)
    }

    /// Run `run` ended: its abort signal, if the run let go of it, is reset and kept.
    fn release_abort(&mut self, run: RunId) {
        if let Some(mut abort) = self.take_abort(run)
            && let Some(signal) = Arc::get_mut(&mut abort)
        {
            // Also lets go of the ended run's waker (and so of its task's memory).
            *signal = AbortSignal::default();
            self.spare_aborts.push(abort);
        }
    }

    /// Whether no run is in flight and the core's next deadline is [`KEEP_ACROSS`] or more
    /// away from `now`: the capacity the last runs used is not needed again soon. (A flow
    /// whose run is in flight has no deadline until it ends, so the deadline alone would
    /// call a tick that just started every flow quiet.)
    fn quiet_ahead(&self, now: Instant) -> bool {
        !self.core.has_running_flows()
            && self
                .core
                .next_wake()
                .is_none_or(|t| t >= now.saturating_add(KEEP_ACROSS))
    }

    /// Lets go of the spares beyond [`SPARES_KEPT`], and of the run and token tables beyond
    /// [`KEPT`], once no run is in flight and nothing is due for [`KEEP_ACROSS`]: a burst
    /// (every flow firing at start) must not pin its peak. Returns whether it was quiet, so
    /// the caller can trim what it holds itself on the same rule.
    fn trim_if_idle(&mut self, now: Instant) -> bool {
        if !self.quiet_ahead(now) {
            return false;
        }
        if self.aborts.len() > KEPT {
            self.aborts = Vec::new();
        }
        if self.tokens.len() > KEPT {
            // What the table still holds (tokens a job kept a clone of) is shared with no
            // run, and each flow's next run can have a fresh one.
            self.tokens = Vec::new();
        }
        self.spare_tokens.truncate(SPARES_KEPT);
        self.spare_tokens.shrink_to(SPARES_KEPT);
        self.spare_aborts.truncate(SPARES_KEPT);
        self.spare_aborts.shrink_to(SPARES_KEPT);
        true
    }

    fn token_of(&self, run: RunId) -> Option<CancellationToken> {
        self.aborts
            .get(run.slot())
            .and_then(Option::as_ref)
            .map(|handle| handle.cancel.clone())
    }

    /// Whether the loop must wake to poll the core again: the core's next deadline moved
    /// before the one the loop sleeps until, or the stop completed.
    pub(crate) fn loop_must_wake(&self) -> bool {
        self.core.is_stopped()
            || self
                .core
                .next_wake()
                .is_some_and(|t| t < self.sleeping_until)
            || self.pump.must_wake(self.core.event_log())
    }
}

/// What the handle and the runs share, whatever the job, clock and spawner types.
pub(crate) struct Common {
    pub(crate) state: Lock<DriverState>,
    /// The scheduler's clock, erased: handle calls and run ends read it; jobs sleep on it.
    pub(crate) clock: DynClock,
    notified: AtomicBool,
    driver_waker: AtomicWaker,
    /// Runs spawned whose job has not been called yet (see [`RunBegun`]).
    unbegun: AtomicUsize,
    /// The loop waits for `unbegun` to reach zero and wants a wake when it does.
    awaiting_begun: AtomicBool,
    /// The run the loop is polling inline, as its slot + 1 (0: none), or
    /// [`DROPPED_WHILE_POLLED`] once that run's future was dropped unfinished during the
    /// poll (a panic unwinding through it): the loop then records its end. A slot is unique
    /// among the runs in flight, and a 32-bit atomic is on every target.
    polling_inline: AtomicU32,
    /// Cancelled when a stop begins.
    pub(crate) stop: CancellationToken,
    /// Live `RunningScheduler` clones.
    pub(crate) handles: AtomicUsize,
    /// Where each flow's state is kept across restarts, if anywhere.
    pub(crate) store: Option<Arc<dyn DynScheduleStore>>,
    /// Called with every event, on the loop, outside the lock.
    observers: Vec<Arc<dyn SchedulerObserver>>,
    /// The fleet's ledger, for a fleet node.
    fleet: Option<FleetLink>,
}

impl Common {
    /// A spawned run called its job (or was dropped unpolled).
    fn run_begun(&self) {
        if self.unbegun.fetch_sub(1, Ordering::SeqCst) == 1
            && self.awaiting_begun.load(Ordering::SeqCst)
        {
            self.driver_waker.wake();
        }
    }

    pub(crate) fn notify_loop(&self) {
        self.notified.store(true, Ordering::SeqCst);
        self.driver_waker.wake();
    }

    /// Records how run `run` ended. `outcome` was made (its error text rendered) before
    /// the lock is taken.
    fn run_ended(&self, run: RunId, outcome: RunOutcome) {
        let now = self.clock.now();
        let wake = self.state.with(|st| {
            // The loop's next poll re-reads the wall clock; an outcome does not need it.
            let wall = st.core.wall_estimate(now);
            st.release_abort(run);
            let flow = st.core.run_flow(run);
            // An error here means the core already forgot the run: nothing to record.
            let _ = st.core.finish(run, now, wall, outcome);
            // The latest reading, whichever thread took it first.
            st.last_run_end = st.last_run_end.max(now);
            st.release_token(flow);
            let quiet = st.trim_if_idle(now);
            st.loop_must_wake() || (quiet && st.loop_holds_burst)
        });
        if wake {
            self.notify_loop();
        }
    }

    /// Run `run`'s future was dropped before it finished. While the loop hands it to the
    /// spawner after an inline first poll (or drops it after that poll panicked), the loop
    /// records the end once the spawner answered (a refusal ends it as a failed run, as a
    /// refused spawn always does) or the drop is done; otherwise it ended as cancelled.
    fn run_dropped(&self, run: RunId) {
        if self.polling_inline.load(Ordering::SeqCst) == inline_mark(run) {
            self.polling_inline
                .store(DROPPED_WHILE_POLLED, Ordering::SeqCst);
            return;
        }
        let handing_over = self.state.with(|st| match &mut st.handing_over {
            Some((handed, dropped)) if *handed == run => {
                *dropped = true;
                true
            }
            _ => false,
        });
        if !handing_over {
            self.run_ended(run, RunOutcome::Cancelled);
        }
    }

    /// Runs `hand_over` (which gives run `run`'s future away or drops it) with the run
    /// marked as being handed over, and says whether its future was dropped unfinished
    /// meanwhile (its end is then the caller's to record; see [`Common::run_dropped`]).
    fn handing_over<R>(&self, run: RunId, hand_over: impl FnOnce() -> R) -> (R, bool) {
        self.state.with(|st| st.handing_over = Some((run, false)));
        let result = hand_over();
        let dropped = self
            .state
            .with(|st| st.handing_over.take().is_some_and(|(_, dropped)| dropped));
        (result, dropped)
    }

    /// Makes the schedule-store writes the core asked for, one after the other (so a
    /// flow's records reach the store in the order they were taken), and reports each
    /// result to the core; then wakes `flush` waiters.
    async fn save_all<C: Clock>(&self, clock: &C, saves: &mut Vec<ScheduleWrite>) {
        let Some(store) = &self.store else {
            saves.clear();
            return;
        };
        for write in saves.drain(..) {
            // A single scheduler writes with the lowest fence; a fleet node's is its claim's.
            let result = store.save_dyn(&write.id, &write.record, write.fence).await;
            let now = clock.now();
            self.state.with(|st| {
                st.core.save_done(write.flow, now, &result);
                if let Err(e) = result {
                    st.last_save_error = Some(e);
                }
            });
        }
        saves.shrink_to(KEPT);
        let waiters = self.state.with(|st| core::mem::take(&mut st.flush_waiters));
        waiters.into_iter().for_each(Waker::wake);
    }

    /// Performs `saves` while it keeps driving the ledger calls in flight, then hands
    /// their answers to the core. A store may answer in order on one connection (a
    /// PostgreSQL pipeline holds every later answer behind an unread one), so a save
    /// awaited while a sent claim is left unpolled would never finish.
    ///
    /// The saves wait until every run spawned so far has called its job (at most
    /// [`BEGIN_WAIT`]): a save records a fire as fired, and a crash between that write and
    /// the job's first step would lose the fire (the restart takes it as run).
    async fn save_all_driving<C: Clock>(
        &self,
        clock: &C,
        saves: &mut Vec<ScheduleWrite>,
        calls: &mut FuturesUnordered<LedgerCall>,
    ) {
        let mut answered = Vec::new();
        if self.unbegun.load(Ordering::SeqCst) > 0 {
            let mut limit = Box::pin(clock.sleep_until(clock.now().saturating_add(BEGIN_WAIT)));
            self.awaiting_begun.store(true, Ordering::SeqCst);
            poll_fn(|cx| {
                while let Poll::Ready(Some(report)) = calls.poll_next_unpin(cx) {
                    answered.push(report);
                }
                self.driver_waker.register(cx.waker());
                if self.unbegun.load(Ordering::SeqCst) == 0 {
                    return Poll::Ready(());
                }
                limit.as_mut().poll(cx)
            })
            .await;
            self.awaiting_begun.store(false, Ordering::SeqCst);
        }
        {
            let mut save = core::pin::pin!(self.save_all(clock, saves));
            poll_fn(|cx| {
                while let Poll::Ready(Some(report)) = calls.poll_next_unpin(cx) {
                    answered.push(report);
                }
                save.as_mut().poll(cx)
            })
            .await;
        }
        for report in answered {
            self.ledger_answered(clock, report);
        }
    }

    /// Publishes the stop's report (the first one wins) and wakes its waiters.
    pub(crate) fn publish(&self, report: CanoResult<StopReport>) {
        let report = Arc::new(report);
        let waiters = self.state.with(|st| {
            if st.report.is_none() {
                st.report = Some(report);
            }
            core::mem::take(&mut st.report_waiters)
        });
        waiters.into_iter().for_each(Waker::wake);
    }

    /// The report once published; registers `cx` for it otherwise.
    pub(crate) fn poll_report(&self, cx: &mut Context<'_>) -> Poll<CanoResult<StopReport>> {
        let report = self.state.with(|st| match &st.report {
            Some(report) => Some(report.clone()),
            None => {
                if !st.report_waiters.iter().any(|w| w.will_wake(cx.waker())) {
                    st.report_waiters.push(cx.waker().clone());
                }
                None
            }
        });
        // Cloned outside the lock: a report lists every cancelled run.
        report.map_or(Poll::Pending, |report| Poll::Ready((*report).clone()))
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

    /// Sleeps on `clock` until `deadline` (kept across iterations in `sleep`), a
    /// notification, a ledger call's answer or the ledger's command signal (a fleet node
    /// only: without one, `calls` is empty and `signal` is `None`).
    async fn sleep_or_notified<C: Clock>(
        &self,
        clock: &C,
        deadline: Instant,
        sleep: &mut Option<(Instant, Pin<Box<C::Sleep>>)>,
        calls: &mut FuturesUnordered<LedgerCall>,
        signal: &mut Option<BoxFuture<'static, ()>>,
    ) -> Woke {
        if deadline == Instant::MAX {
            *sleep = None;
        } else if sleep.as_ref().is_none_or(|(at, _)| *at != deadline) {
            *sleep = Some((deadline, Box::pin(clock.sleep_until(deadline))));
        }
        let (woke, timer_fired) = poll_fn(|cx| {
            if self.poll_notified(cx).is_ready() {
                return Poll::Ready((Woke::Poll, false));
            }
            if !calls.is_empty()
                && let Poll::Ready(Some(report)) = calls.poll_next_unpin(cx)
            {
                return Poll::Ready((Woke::Ledger(report), false));
            }
            if let Some(waiting) = signal.as_mut()
                && waiting.as_mut().poll(cx).is_ready()
            {
                *signal = None;
                return Poll::Ready((Woke::Commands, false));
            }
            match sleep.as_mut() {
                Some((_, timer)) => timer.as_mut().poll(cx).map(|()| (Woke::Poll, true)),
                None if deadline == Instant::MAX => Poll::Pending,
                None => Poll::Ready((Woke::Poll, true)),
            }
        })
        .await;
        if timer_fired {
            *sleep = None;
        }
        woke
    }

    /// Hands a ledger call's answer to the core.
    fn ledger_answered<C: Clock>(&self, clock: &C, report: FleetReport) {
        let (now, wall) = (clock.now(), clock.wall_now());
        self.state
            .with(|st| st.core.via_fleet_done(report, now, wall));
    }
}

/// The part of a running scheduler that knows the job and spawner types.
pub(crate) trait Runs: Send + Sync {
    fn common(&self) -> &Common;

    /// Starts a run: with `poll_first`, polls it once on the calling task and spawns it
    /// only if that poll did not finish it; otherwise spawns it. A spawn failure is
    /// recorded as a failed run of its flow (so a full pool backs the flow off instead of
    /// wedging it) and returned to the caller. `Ok(true)`: the first poll finished the run.
    fn start_run(self: Arc<Self>, run: PendingRun, poll_first: bool) -> Result<bool, SpawnError>;
}

struct Driver<P> {
    common: Common,
    spawner: P,
}

impl<P> Runs for Driver<P>
where
    P: Spawner,
{
    fn common(&self) -> &Common {
        &self.common
    }

    fn start_run(self: Arc<Self>, run: PendingRun, poll_first: bool) -> Result<bool, SpawnError> {
        let PendingRun {
            dispatch:
                Dispatch {
                    run,
                    fire,
                    fence,
                    takeover,
                    ..
                },
            abort,
            cancel,
            resume,
            job,
        } = run;
        let Some(job) = job else {
            // The core dispatched a flow without a job: it cannot run, so it did not.
            self.common.run_ended(run, RunOutcome::Cancelled);
            return Ok(true);
        };
        let unbegun = RunBegun::new(self.clone());
        let future = async move {
            let Some(driver) = unbegun.begin() else {
                return;
            };
            // If the runtime drops this future mid-run, the run still ends (as cancelled):
            // the flow must not stay `Running`, nor a stop wait for it forever.
            let mut unfinished = RunEndGuard {
                common: Some(&driver.common),
                run,
            };
            let common = &driver.common;
            let fire = Fire::new(fire, common.stop.clone(), cancel, common.clock.clone())
                .with_fence(fence)
                .with_takeover(takeover);
            let span = crate::telemetry::scheduled_run(fire.id());
            let outcome = {
                // Dropped at the end of this block, before the run ends, so the driver can
                // keep the signal for a later run.
                let abort = abort;
                let job = &job;
                // Pinned here, once: the wrappers below hold only a reference to it. The job
                // is called at the first poll, inside the panic isolation.
                let job_run = pin!(crate::telemetry::in_span(span, async {
                    job.run(fire, resume).await
                }));
                match abort.guard(pin!(isolate_future_panic(job_run))).await {
                    Some(result) => RunOutcome::from(result.as_ref().map(|_| ())),
                    None => RunOutcome::Cancelled,
                }
            };
            // Let go of before anyone hears the run ended.
            drop(job);
            unfinished.common = None;
            common.run_ended(run, outcome);
        };
        let refused = |e: SpawnError| RunOutcome::from(Err(&CanoError::Spawn(e)));
        if !poll_first {
            return self
                .spawner
                .spawn(Box::pin(future))
                .map(|()| false)
                .inspect_err(|&e| self.common.run_ended(run, refused(e)));
        }
        let mut future: BoxFuture<'static, ()> = Box::pin(future);
        // A task's first poll by its executor re-registers whatever this one registered
        // with the no-op waker, so a run that waits loses no wake-up by being handed over.
        let mut cx = Context::from_waker(Waker::noop());
        let common = &self.common;
        common
            .polling_inline
            .store(inline_mark(run), Ordering::SeqCst);
        let polled = isolate_panic(|| future.as_mut().poll(&mut cx));
        // Only this thread writes it while the mark is set (the guard that replaces the
        // mark runs inside the poll): a load and a store, no read-modify-write.
        let dropped_while_polled =
            common.polling_inline.load(Ordering::SeqCst) == DROPPED_WHILE_POLLED;
        common.polling_inline.store(0, Ordering::SeqCst);
        match polled {
            Ok(Poll::Ready(())) => Ok(true),
            Ok(Poll::Pending) => {
                let (spawned, dropped) = common.handing_over(run, || self.spawner.spawn(future));
                match spawned {
                    Err(e) => common.run_ended(run, refused(e)),
                    Ok(()) if dropped => common.run_ended(run, RunOutcome::Cancelled),
                    Ok(()) => {}
                }
                spawned.map(|()| false)
            }
            // Outside the job's own isolation (its error's `Display`, a `Drop` in it): on a
            // spawned task the panic would end the task, here it must not end the loop. The
            // run ends as failed with the panic.
            Err(panicked) => {
                let (_, dropped) = common.handing_over(run, || isolate_panic(|| drop(future)));
                if dropped || dropped_while_polled {
                    common.run_ended(run, RunOutcome::from(Err(&panicked)));
                }
                Ok(true)
            }
        }
    }
}

/// [`Common::polling_inline`]: the run polled inline was dropped unfinished during its poll.
const DROPPED_WHILE_POLLED: u32 = u32::MAX;

/// How long the schedule saves wait for the runs spawned before them to begin
/// ([`Common::save_all_driving`]) before they go ahead anyway.
const BEGIN_WAIT: core::time::Duration = core::time::Duration::from_secs(1);

/// A spawned run whose job has not been called yet, counted in `Common::unbegun` until
/// its first poll ([`begin`](Self::begin)) or until the runtime drops it unpolled.
struct RunBegun<P: Spawner>(Option<Arc<Driver<P>>>);

impl<P: Spawner> RunBegun<P> {
    fn new(driver: Arc<Driver<P>>) -> Self {
        driver.common.unbegun.fetch_add(1, Ordering::SeqCst);
        RunBegun(Some(driver))
    }

    /// The run's first step: no longer counted; the loop is woken if it waits for it.
    /// (Always the driver: only `Drop` empties it.)
    fn begin(mut self) -> Option<Arc<Driver<P>>> {
        let driver = self.0.take()?;
        driver.common.run_begun();
        Some(driver)
    }
}

impl<P: Spawner> Drop for RunBegun<P> {
    fn drop(&mut self) {
        if let Some(driver) = self.0.take() {
            driver.common.run_begun();
        }
    }
}

/// Run `run`'s mark in [`Common::polling_inline`].
fn inline_mark(run: RunId) -> u32 {
    (run.slot() as u32).wrapping_add(1)
}

/// Ends a run as cancelled if its future is dropped before it finished.
struct RunEndGuard<'a> {
    common: Option<&'a Common>,
    run: RunId,
}

impl Drop for RunEndGuard<'_> {
    fn drop(&mut self) {
        if let Some(common) = self.common.take() {
            common.run_dropped(self.run);
        }
    }
}

/// Publishes an error if the loop is dropped before it finished (its runtime shut down), so
/// `wait()` returns instead of hanging.
struct PublishOnDrop(Option<Arc<dyn Runs>>);

impl PublishOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for PublishOnDrop {
    fn drop(&mut self) {
        if let Some(runs) = self.0.take() {
            runs.common()
                .publish(Err(SchedulerError::DriverGone.into()));
        }
    }
}

/// What one pass of the loop collects under the lock and carries out outside it. Kept
/// across passes, so a steady stream of runs allocates none; a burst's capacity beyond
/// [`KEPT`] is let go of once the scheduler is quiet.
#[derive(Default)]
struct Batches {
    starts: Vec<PendingRun>,
    signals: Vec<CancellationToken>,
    drops: Vec<Arc<AbortSignal>>,
    saves: Vec<ScheduleWrite>,
    observed: Vec<SchedulerEvent>,
    fleet_actions: Vec<FleetAction>,
}

impl Batches {
    fn holds_burst(&self) -> bool {
        [
            self.starts.capacity(),
            self.signals.capacity(),
            self.drops.capacity(),
            self.saves.capacity(),
            self.observed.capacity(),
            self.fleet_actions.capacity(),
        ]
        .into_iter()
        .any(|capacity| capacity > KEPT)
    }

    fn shrink(&mut self) {
        self.starts.shrink_to(KEPT);
        self.signals.shrink_to(KEPT);
        self.drops.shrink_to(KEPT);
        self.saves.shrink_to(KEPT);
        self.observed.shrink_to(KEPT);
        self.fleet_actions.shrink_to(KEPT);
    }
}

/// The loop: poll the core, spawn and abort what it says, sleep until its next deadline or
/// an event; when it says the stop is complete, tear down and publish the report.
async fn run_loop<C, P>(driver: Arc<Driver<P>>, clock: C)
where
    C: Clock,
    P: Spawner,
{
    let common = &driver.common;
    let mut batches = Batches::default();
    let mut wake_subscribers = Vec::new();
    let mut calls: FuturesUnordered<LedgerCall> = FuturesUnordered::new();
    let mut signal = common
        .fleet
        .as_ref()
        .and_then(|f| f.ledger.command_signal_dyn());
    let mut sleep = None;
    // The last claim announcement handed to the core.
    let mut heard_cursor = 0u64;
    loop {
        let (now, wall) = (clock.now(), clock.wall_now());
        // Claims announced since the last pass, before the core decides: a staggered
        // claim that woke the loop is dropped if its fire was claimed meanwhile.
        let heard = common
            .fleet
            .as_ref()
            .and_then(|f| f.ledger.claims_heard_after_dyn(heard_cursor))
            .unwrap_or_default();
        if let Some((last, _)) = heard.last() {
            heard_cursor = *last;
            common.state.with(|st| {
                for (_, claim) in &heard {
                    st.core.fleet_heard_claim(claim, now);
                }
            });
        }
        let (wake, quiet_ahead) = common.state.with(|st| {
            let wake = loop {
                match st.core.poll(now, wall) {
                    Action::Save(write) => batches.saves.push(write),
                    Action::Start(dispatch) => batches.starts.push(st.admit(dispatch)),
                    Action::Resume(dispatch) => batches.starts.push(PendingRun {
                        resume: true,
                        ..st.admit(dispatch)
                    }),
                    Action::Abort(run) => batches.drops.extend(st.take_abort(run)),
                    Action::Cancel(run) => batches.signals.extend(st.token_of(run)),
                    Action::Fleet(action) => batches.fleet_actions.push(action),
                    Action::WakeAt(t) => break Some(t),
                    Action::Idle => break Some(Instant::MAX),
                    Action::Stopped => break None,
                }
            };
            st.sleeping_until = wake.unwrap_or(Instant::MAX);
            st.pump.collect(
                st.core.event_log(),
                &mut wake_subscribers,
                &mut batches.observed,
            );
            let quiet_ahead = st.trim_if_idle(now);
            st.loop_holds_burst = !quiet_ahead && batches.holds_burst();
            (wake, quiet_ahead)
        });
        EventPump::deliver(
            &mut wake_subscribers,
            &mut batches.observed,
            &common.observers,
        );
        // Outside the lock: cancelling wakes the runs' tasks. Runs sharing a token are
        // signalled together, so the first cancel does it and the rest are cheap.
        batches.signals.drain(..).for_each(|token| token.cancel());
        if let Some(link) = &common.fleet {
            for action in batches.fleet_actions.drain(..) {
                calls.push((link.perform)(
                    action,
                    link.ledger.clone(),
                    link.node.clone(),
                ));
            }
        }
        // Outside the lock: it wakes the runs' tasks.
        batches.drops.drain(..).for_each(|abort| abort.abort());
        let mut pass = InlinePass::default();
        let mut last_reading = None;
        for run in batches.starts.drain(..) {
            // A refused spawn is already recorded as a failed run of its flow; nobody else
            // to tell.
            if !pass.polls_first(&run.dispatch) {
                let _ = driver.clone().start_run(run, false);
                // The spawn is not the next inline poll's time.
                last_reading = None;
                continue;
            }
            let flow = run.dispatch.flow;
            let began = *last_reading.get_or_insert_with(|| clock.now());
            let ended = match driver.clone().start_run(run, true) {
                // A run's end is read once, as it ends (or, if a run on another thread
                // ended since, that one's: later still).
                Ok(true) => common.state.with(|st| st.last_run_end).max(began),
                _ => clock.now(),
            };
            last_reading = Some(ended);
            if pass.polled(began, ended) == Polled::Slow {
                common.state.with(|st| st.core.spawn_later_runs(flow));
            }
        }
        if quiet_ahead {
            batches.shrink();
        }
        if !batches.saves.is_empty() {
            common
                .save_all_driving(&clock, &mut batches.saves, &mut calls)
                .await;
        }
        match wake {
            Some(deadline) => {
                match common
                    .sleep_or_notified(&clock, deadline, &mut sleep, &mut calls, &mut signal)
                    .await
                {
                    Woke::Poll => {}
                    Woke::Ledger(report) => common.ledger_answered(&clock, report),
                    Woke::Commands => {
                        common.state.with(|st| st.core.fleet_nudge());
                        signal = common
                            .fleet
                            .as_ref()
                            .and_then(|f| f.ledger.command_signal_dyn());
                    }
                }
            }
            None => break,
        }
    }
    drop(sleep);
    if !calls.is_empty() {
        // The last completions and releases: wait for their answers, at most one lease
        // (a renewal held by a slow network must not hold the stop forever).
        let lease = common.state.with(|st| st.core.fleet_lease());
        let mut deadline = Box::pin(clock.sleep_until(clock.now().saturating_add(lease)));
        loop {
            let next = poll_fn(|cx| match calls.poll_next_unpin(cx) {
                Poll::Ready(report) => Poll::Ready(report),
                Poll::Pending => deadline.as_mut().poll(cx).map(|()| None),
            })
            .await;
            match next {
                Some(report) => common.ledger_answered(&clock, report),
                None => break,
            }
        }
    }
    drop(calls);
    // Teardown: jobs removed earlier whose teardown was left, then last registered first.
    let mut teardown_errors = Vec::new();
    let (orphans, jobs) = common.state.with(|st| {
        let jobs: Vec<_> = st
            .core
            .flows()
            .rev()
            .filter_map(|flow| Some((flow, st.jobs.get(flow.get())?.clone()?)))
            .collect();
        (core::mem::take(&mut st.orphans), jobs)
    });
    for (id, job) in orphans {
        if let Err(e) = isolate_future_panic(pin!(job.teardown())).await {
            teardown_errors.push((id, e));
        }
    }
    for (flow, job) in jobs {
        if let Err(e) = isolate_future_panic(pin!(job.teardown())).await {
            let id = common.state.with(|st| String::from(st.core.flow_id(flow)));
            teardown_errors.push((id, e));
        }
    }
    let (cancelled, unsaved) = common.state.with(|st| {
        let unsaved: Vec<_> = st
            .core
            .unsaved_flows()
            .map(|flow| st.core.flow_id(flow).into())
            .collect();
        (st.core.cancelled_fires().to_vec(), unsaved)
    });
    common.publish(Ok(StopReport {
        cancelled,
        teardown_errors,
        unsaved,
    }));
}

/// Starts the loop for `core` (started already) and `jobs` (set up already) and returns the
/// first handle. If the loop cannot be spawned, tears the jobs down again (last first).
pub(crate) async fn launch<C, P>(
    core: Box<SchedulerCore>,
    jobs: FlowMap<FlowJob>,
    clock: C,
    spawner: P,
    store: Option<Arc<dyn DynScheduleStore>>,
    observers: Vec<Arc<dyn SchedulerObserver>>,
    fleet: Option<FleetLink>,
) -> CanoResult<RunningScheduler>
where
    C: Clock,
    P: Spawner,
{
    let mut jobs: Vec<Option<Arc<dyn FlowRunner>>> =
        jobs.into_vec().into_iter().map(Some).collect();
    // Collected in place, into the registration vector's (doubled) capacity.
    jobs.shrink_to_fit();
    let mut core = core;
    #[cfg(any(feature = "tracing", feature = "metrics", feature = "defmt"))]
    let observers = {
        let mut observers = observers;
        observers.push(Arc::new(crate::telemetry::SchedulerTelemetry::new(
            core.len(),
        )));
        observers
    };
    let mut pump = EventPump::default();
    if !observers.is_empty() {
        pump.observe(core.event_log_mut());
    }
    let driver = Arc::new(Driver {
        common: Common {
            state: Lock::new(DriverState {
                core,
                aborts: Vec::new(),
                tokens: Vec::new(),
                spare_tokens: Vec::new(),
                spare_aborts: Vec::new(),
                handing_over: None,
                last_run_end: Instant::ZERO,
                sleeping_until: Instant::ZERO,
                loop_holds_burst: false,
                report: None,
                report_waiters: Vec::new(),
                flush_waiters: Vec::new(),
                last_save_error: None,
                pump,
                jobs,
                orphans: Vec::new(),
            }),
            clock: DynClock::new(clock.clone()),
            notified: AtomicBool::new(false),
            driver_waker: AtomicWaker::new(),
            unbegun: AtomicUsize::new(0),
            awaiting_begun: AtomicBool::new(false),
            polling_inline: AtomicU32::new(0),
            stop: CancellationToken::new(),
            handles: AtomicUsize::new(1),
            store,
            observers,
            fleet,
        },
        spawner,
    });
    // The guard lives outside the loop's body, so it fires even if the loop is dropped
    // before its first poll.
    let guard = PublishOnDrop(Some(driver.clone() as Arc<dyn Runs>));
    let looping = driver.clone();
    let run_loop = async move {
        let guard = guard;
        run_loop(looping, clock).await;
        guard.disarm();
    };
    if let Err(e) = driver.spawner.spawn(Box::pin(run_loop)) {
        let jobs = driver.common.state.with(|st| core::mem::take(&mut st.jobs));
        for job in jobs.into_iter().rev().flatten() {
            // The spawn error is what the caller needs to see.
            let _ = job.teardown().await;
        }
        return Err(CanoError::Spawn(e));
    }
    Ok(RunningScheduler::new(driver))
}

impl RunningScheduler {
    /// The fleet as this node sees it (ledger availability, clock skew to the store,
    /// claims held); `None` for a scheduler without a fleet
    /// ([`Scheduler::with_fleet`](super::Scheduler::with_fleet)).
    pub fn fleet_status(&self) -> Option<FleetStatus> {
        self.common().state.with(|st| st.core.fleet_status())
    }
}
