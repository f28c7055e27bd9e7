//! What the scheduler runs: a [`Job`] (once per fire, Ok or Err, with optional setup and
//! teardown hooks), the [`Fire`] each run receives, and its [`FireId`].

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::fmt;
use core::future::Future;
use core::hash::Hash;
use core::marker::PhantomData;

use futures::FutureExt;
use futures::future::BoxFuture;
use jiff::Timestamp;

use crate::cancel::CancellationToken;
use crate::checkpoint::{CheckpointError, RunId};
use crate::error::{CanoError, CanoResult};
use crate::persist::Fence;
use crate::runtime::DynClock;
use crate::workflow::{RunContext, Workflow};

/// The identity of one run: the flow's id and the fire's scheduled time (wall clock).
///
/// In a fleet it is the key of the fire's claim: every node computes the same id for a cron
/// or epoch-aligned fire, and the ledger lets one of them run it.
///
/// Usable as an idempotency key: for one flow, fire ids strictly increase, and a scheduled
/// fire keeps its id however late it runs. A `trigger` gets the wall time it was accepted
/// at (moved a microsecond past the flow's previous fire id if the wall clock went back).
/// The one exception: when the wall clock is corrected backwards by three hours or more, a
/// cron flow restarts from the new wall time and its fire ids with it.
///
/// ```
/// use cano_core::scheduler::FireId;
/// use cano_core::jiff::Timestamp;
///
/// let id = FireId::new("report", "2026-03-08T09:00:00Z".parse().unwrap());
/// assert_eq!(id.to_string(), "report@2026-03-08T09:00:00Z");
/// assert_eq!(id.flow(), "report");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FireId {
    flow: Arc<str>,
    scheduled: Timestamp,
}

impl FireId {
    /// A fire id for `flow` at `scheduled`.
    pub fn new(flow: impl Into<Arc<str>>, scheduled: Timestamp) -> Self {
        FireId {
            flow: flow.into(),
            scheduled,
        }
    }

    /// The flow's id.
    pub fn flow(&self) -> &str {
        &self.flow
    }

    /// The flow's id, shared: a telemetry label made from it allocates nothing.
    #[cfg(feature = "metrics")]
    pub(crate) fn flow_shared(&self) -> &Arc<str> {
        &self.flow
    }

    /// The fire's scheduled wall time (for interval flows: the monotonic fire time as seen
    /// on the wall clock when the run started).
    pub fn scheduled(&self) -> Timestamp {
        self.scheduled
    }
}

impl fmt::Display for FireId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.flow, self.scheduled)
    }
}

/// What one run receives: its [`FireId`], the scheduler's clock, and two tokens: one
/// cancelled when the scheduler begins to stop (finish soon), one when the run is cancelled
/// (at the stop's deadline, or by a cancel request): the run then has the cancellation
/// wind-down to end before it is dropped.
#[derive(Debug, Clone)]
pub struct Fire {
    id: FireId,
    stopping: CancellationToken,
    cancel: CancellationToken,
    clock: DynClock,
    fence: Fence,
    takeover: bool,
}

impl Fire {
    /// A fire (the scheduler makes these; tests of a job may too). `stopping` is cancelled
    /// when a stop begins, `cancel` when the run is cancelled (its grace period ended, or a
    /// cancel request).
    pub fn new(
        id: FireId,
        stopping: CancellationToken,
        cancel: CancellationToken,
        clock: DynClock,
    ) -> Self {
        Fire {
            id,
            stopping,
            cancel,
            clock,
            fence: Fence::ZERO,
            takeover: false,
        }
    }

    /// The same fire, run under `fence` (a fleet claim's).
    pub fn with_fence(mut self, fence: Fence) -> Self {
        self.fence = fence;
        self
    }

    /// The same fire, marked as a takeover of another node's unfinished run (or not).
    pub fn with_takeover(mut self, takeover: bool) -> Self {
        self.takeover = takeover;
        self
    }

    /// The fence this run writes with: in a fleet, its claim's (for a fixed-delay or
    /// fixed-rate flow, the flow's ownership lease's), so a store refuses its writes with
    /// [`Fenced`](crate::persist::PersistError::Fenced) once another node took the fire
    /// over. [`Fence::ZERO`] outside a fleet and for triggered runs.
    pub fn fence(&self) -> Fence {
        self.fence
    }

    /// Whether this run takes over a fire whose claim expired on another node (which may
    /// have run part of it): a checkpointed workflow resumes from its log; any other job
    /// runs again, so its side effects should be keyed by [`Fire::id`].
    pub fn is_takeover(&self) -> bool {
        self.takeover
    }

    /// This run's fire id.
    pub fn id(&self) -> &FireId {
        &self.id
    }

    /// Whether the scheduler is stopping: finish soon, the stop deadline will cancel the run.
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Cancelled when the scheduler begins to stop: a job that can wrap up early awaits
    /// [`cancelled`](CancellationToken::cancelled) on it. A run that then returns
    /// [`CanoError::Cancelled`](crate::CanoError::Cancelled) counts as cancelled, not failed.
    pub fn stopping(&self) -> &CancellationToken {
        &self.stopping
    }

    /// Cancelled when this run is cancelled: at the stop's deadline, by
    /// [`RunningScheduler::cancel_flow`](super::RunningScheduler::cancel_flow), or by a
    /// removal or replacement with [`InFlight::Cancel`](super::InFlight::Cancel). The run
    /// then has the cancellation wind-down
    /// ([`Scheduler::set_cancel_wind_down`](super::Scheduler::set_cancel_wind_down)) to end
    /// (returning [`CanoError::Cancelled`](crate::CanoError::Cancelled) counts as cancelled,
    /// not failed) before it is dropped. Workflows receive this token, so a workflow run is
    /// never cut short before its grace, and a cancelled saga compensates.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// The scheduler's clock, to sleep on.
    pub fn clock(&self) -> &DynClock {
        &self.clock
    }
}

/// Something a scheduler runs once per fire.
///
/// `input` is the flow's `initial_state`, cloned for each run. Errors make the run a
/// failure of the flow (backoff, and eventually a trip); with `std`, so does a panic.
/// `validate` and then `setup` run once per flow at `start()` (in registration order) and
/// `teardown` once at stop (in reverse order); a failing `validate` or `setup` fails
/// `start()`.
///
/// A [`Workflow`] is a job: each run is [`Workflow::run_fsm`] from the flow's initial state
/// on the scheduler's clock, cancelled when the run is ([`Fire::cancellation`]: it then
/// stops before its next state and drains its compensations); its
/// resources are set up at start and torn down at stop (not per run). A checkpointed one is
/// also [`recoverable`](Job::recoverable): the runs a previous process left unfinished are
/// resumed (or abandoned) at start.
///
/// Plain async closures become jobs through [`job_fn`], or directly when they take only the
/// [`Fire`]:
///
/// ```
/// use cano_core::scheduler::{job_fn, Fire, Job};
/// use cano_core::CanoError;
///
/// fn assert_job<S, J: Job<S>>(_: &J) {}
/// let with_input = job_fn(|n: u32, fire: Fire| async move {
///     if n > 3 { Err(CanoError::task_execution("too big")) } else { Ok(()) }
/// });
/// assert_job::<u32, _>(&with_input);
/// let fire_only = |_fire: Fire| async move { Ok::<(), CanoError>(()) };
/// assert_job::<(), _>(&fire_only);
/// ```
pub trait Job<S>: Send + Sync + 'static {
    /// Runs once for one fire.
    fn run<'a>(&'a self, input: S, fire: Fire) -> BoxFuture<'a, CanoResult<()>>;

    /// Checks the job and the flow's `input` before anything is set up. Accepts everything
    /// by default.
    ///
    /// # Errors
    ///
    /// Whatever makes the job unusable; `start()` returns it.
    fn validate(&self, input: &S) -> CanoResult<()> {
        let _ = input;
        Ok(())
    }

    /// Prepares resources, once at `start()`. Does nothing by default.
    fn setup(&self) -> BoxFuture<'_, CanoResult<()>> {
        Box::pin(core::future::ready(Ok(())))
    }

    /// Releases resources, once at stop. Does nothing by default.
    fn teardown(&self) -> BoxFuture<'_, CanoResult<()>> {
        Box::pin(core::future::ready(Ok(())))
    }

    /// The job's recovery side, if it keeps a durable log per run (a checkpointed
    /// [`Workflow`] does): the scheduler's recovery scan at `start()` asks it for the
    /// flow's unfinished runs and resumes or abandons them (see
    /// [`Scheduler::set_recovery`](super::Scheduler::set_recovery)). `None` by default: a
    /// job without one costs nothing at start.
    fn recoverable(&self) -> Option<&dyn RecoverableJob> {
        None
    }
}

/// What the scheduler's recovery scan needs from a job that keeps a durable log per run
/// ([`Job::recoverable`]). Each scheduled run's log is named by its [`FireId`]
/// (`flow@scheduled-time`), so the scheduler tells a flow's runs from others by their ids.
pub trait RecoverableJob: Send + Sync {
    /// Every run with an unfinished log in the job's store (all of them: the scheduler
    /// keeps its flow's).
    ///
    /// # Errors
    ///
    /// The store's error; `start()` fails with it.
    fn unfinished_runs(&self) -> BoxFuture<'_, CanoResult<alloc::vec::Vec<RunId>>>;

    /// Takes the unfinished run named by `fire`'s id over and runs it to its end (the
    /// state that was in flight runs again). `fire`'s tokens are the scheduler's, as for
    /// [`Job::run`].
    ///
    /// # Errors
    ///
    /// As a run's errors, and the store's if the log cannot be taken over.
    fn resume(&self, fire: Fire) -> BoxFuture<'_, CanoResult<()>>;

    /// Finishes the unfinished run `run`'s log as
    /// [`Abandoned`](crate::checkpoint::RunOutcome::Abandoned) without running anything.
    ///
    /// # Errors
    ///
    /// The store's error.
    fn abandon<'a>(&'a self, run: &'a RunId) -> BoxFuture<'a, CanoResult<()>>;
}

/// The run a scheduler dispatched: a fresh run of `job` with `input`, or (`resume`) the
/// resume of the unfinished run named by the fire's id.
pub(crate) fn dispatched_run<'a, S: Clone + 'static>(
    job: &'a dyn Job<S>,
    input: &S,
    fire: Fire,
    resume: bool,
) -> BoxFuture<'a, CanoResult<()>> {
    if !resume {
        return job.run(input.clone(), fire);
    }
    match job.recoverable() {
        Some(recoverable) => recoverable.resume(fire),
        // The core resumes only runs a recoverable job listed.
        None => Box::pin(core::future::ready(Err(CanoError::configuration(
            alloc::format!("flow '{}': its job cannot resume runs", fire.id.flow()),
        )))),
    }
}

/// A closure `Fn(input, Fire) -> impl Future<Output = CanoResult<()>>` as a [`Job`]; see
/// [`job_fn`].
pub struct JobFn<F, S> {
    f: F,
    _input: PhantomData<fn(S)>,
}

impl<F, S> fmt::Debug for JobFn<F, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JobFn")
    }
}

/// Turns an async closure taking the flow's input and the [`Fire`] into a [`Job`].
pub fn job_fn<S, F, Fut>(f: F) -> JobFn<F, S>
where
    F: Fn(S, Fire) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CanoResult<()>> + Send + 'static,
{
    JobFn {
        f,
        _input: PhantomData,
    }
}

impl<S, F, Fut> Job<S> for JobFn<F, S>
where
    S: 'static,
    F: Fn(S, Fire) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CanoResult<()>> + Send + 'static,
{
    fn run<'a>(&'a self, input: S, fire: Fire) -> BoxFuture<'a, CanoResult<()>> {
        Box::pin((self.f)(input, fire))
    }
}

impl<S, F, Fut> Job<S> for F
where
    F: Fn(Fire) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CanoResult<()>> + Send + 'static,
{
    fn run<'a>(&'a self, _input: S, fire: Fire) -> BoxFuture<'a, CanoResult<()>> {
        Box::pin(self(fire))
    }
}

impl<S, K> Job<S> for Workflow<S, K>
where
    S: Clone + Eq + Hash + fmt::Debug + Send + Sync + 'static,
    K: Send + Sync + 'static,
{
    /// A checkpointed workflow runs each fire under its own log: the run id is the
    /// [`FireId`] (`flow@scheduled-time`), so a run of one fire never conflicts with
    /// another's, and the scheduler's recovery scan at start finds a flow's unfinished runs
    /// after a restart (see [`Scheduler::set_recovery`](super::Scheduler::set_recovery)).
    fn run<'a>(&'a self, input: S, fire: Fire) -> BoxFuture<'a, CanoResult<()>> {
        let ctx = RunContext::new(fire.clock).with_cancellation(fire.cancel);
        if self.is_checkpointed() {
            let run = RunId::from(alloc::string::ToString::to_string(&fire.id));
            if fire.takeover {
                // Another node ran part of this fire: go on from its log (the resume fences
                // that node's writes out); with no log left, run it from the start.
                return Box::pin(async move {
                    let resumed = self.resume_fsm(ctx.clone(), run.clone()).await;
                    match resumed {
                        Err(CanoError::CheckpointStore(CheckpointError::NotFound { .. })) => {
                            self.run_fsm_as(ctx, run, input).await.map(drop)
                        }
                        other => other.map(drop),
                    }
                });
            }
            return Box::pin(
                self.run_fsm_as(ctx, run, input)
                    .map(|result| result.map(drop)),
            );
        }
        self.run_fsm_boxed(ctx, input, |result| result.map(drop))
    }

    /// [`Workflow::validate`] and [`Workflow::validate_initial_state`].
    fn validate(&self, input: &S) -> CanoResult<()> {
        Workflow::validate(self)?;
        self.validate_initial_state(input)
    }

    fn setup(&self) -> BoxFuture<'_, CanoResult<()>> {
        Box::pin(self.resources().setup_all())
    }

    /// Tears the resources down; the first teardown error (if any) is returned.
    fn teardown(&self) -> BoxFuture<'_, CanoResult<()>> {
        Box::pin(async move {
            match self.resources().teardown_all().await.into_iter().next() {
                Some(error) => Err::<(), CanoError>(error),
                None => Ok(()),
            }
        })
    }

    /// `Some` for a checkpointed workflow: its store is scanned at start.
    fn recoverable(&self) -> Option<&dyn RecoverableJob> {
        self.settings_recoverable()
            .map(|as_recoverable| as_recoverable(self))
    }
}

/// A workflow as a [`RecoverableJob`]: reached through the pointer
/// [`Workflow::with_checkpoint_store`] sets, so a program without checkpoints links none of
/// the recovery methods' code (as for the ledgered run, issue 15).
pub(crate) type AsRecoverable<S, K> = fn(&Workflow<S, K>) -> &dyn RecoverableJob;

/// The [`AsRecoverable`] of every workflow.
pub(crate) fn as_recoverable<S, K>(workflow: &Workflow<S, K>) -> &dyn RecoverableJob
where
    S: Clone + Eq + Hash + fmt::Debug + Send + Sync + 'static,
    K: Send + Sync + 'static,
{
    workflow
}

impl<S, K> RecoverableJob for Workflow<S, K>
where
    S: Clone + Eq + Hash + fmt::Debug + Send + Sync + 'static,
    K: Send + Sync + 'static,
{
    fn unfinished_runs(&self) -> BoxFuture<'_, CanoResult<alloc::vec::Vec<RunId>>> {
        Box::pin(self.unfinished_runs())
    }

    /// [`Workflow::resume_fsm`] of the run named by the fire's id, on the scheduler's clock,
    /// cancelled at the stop's deadline (the resources are the scheduler's, held from start
    /// to stop).
    fn resume(&self, fire: Fire) -> BoxFuture<'_, CanoResult<()>> {
        let run = RunId::from(alloc::string::ToString::to_string(&fire.id));
        let ctx = RunContext::new(fire.clock).with_cancellation(fire.cancel);
        Box::pin(self.resume_fsm(ctx, run).map(|result| result.map(drop)))
    }

    fn abandon<'a>(&'a self, run: &'a RunId) -> BoxFuture<'a, CanoResult<()>> {
        Box::pin(self.abandon_run(run))
    }
}

/// A flow's job with its input bound: what the scheduler's driver keeps per flow, whatever
/// the input type (so flows of any input type can be added to a running scheduler).
pub(crate) trait FlowRunner: Send + Sync + 'static {
    /// One run: the job on a clone of the flow's input, or (`resume`, for
    /// [`Action::Resume`](super::Action::Resume)) the job resuming the fire's unfinished run.
    fn run(&self, fire: Fire, resume: bool) -> BoxFuture<'_, CanoResult<()>>;
    /// [`Job::validate`] on the flow's input.
    fn validate(&self) -> CanoResult<()>;
    /// [`Job::recoverable`].
    fn recoverable(&self) -> Option<&dyn RecoverableJob>;
    fn setup(&self) -> BoxFuture<'_, CanoResult<()>>;
    fn teardown(&self) -> BoxFuture<'_, CanoResult<()>>;
}

/// A job and the input each of its runs gets a clone of. Generic over the job, so the job
/// lives inline in the flow's one `Arc<dyn FlowRunner>` block, not in a box of its own
/// behind it (issue 15: 16 bytes and an allocation per flow).
pub(crate) struct Bound<J, S> {
    pub(crate) job: J,
    pub(crate) input: S,
}

impl<J, S> FlowRunner for Bound<J, S>
where
    J: Job<S>,
    S: Clone + Send + Sync + 'static,
{
    fn run(&self, fire: Fire, resume: bool) -> BoxFuture<'_, CanoResult<()>> {
        dispatched_run(&self.job, &self.input, fire, resume)
    }

    fn validate(&self) -> CanoResult<()> {
        self.job.validate(&self.input)
    }

    fn recoverable(&self) -> Option<&dyn RecoverableJob> {
        self.job.recoverable()
    }

    fn setup(&self) -> BoxFuture<'_, CanoResult<()>> {
        self.job.setup()
    }

    fn teardown(&self) -> BoxFuture<'_, CanoResult<()>> {
        self.job.teardown()
    }
}
