//! Running a [`Workflow`]: the resource lifecycle around a run, the total timeout and
//! cancellation, and the loop that enters states until an exit state.

use alloc::boxed::Box;
use core::borrow::Borrow;
use core::fmt;
use core::future::Future;
use core::hash::Hash;
use core::pin::{Pin, pin};
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll};
use core::time::Duration;

use futures::future::{Either, ready, select};

use super::durable::{
    Begin, Ledger, LedgerSlot, LedgeredRun, NoLedger, Opened, resume_needs_a_store,
};
use super::join::{RunJoin, SplitResult};
use super::observer::{TaskEvents, TaskId};
use super::retry::{Attempts, MakeAttempt, TaskConfig};
use super::split::{SplitEnv, run_split};
use super::task::{KeyBase, RegisteredTask, RunTask, TaskResult};
use super::{Handler, RegisteredJoin, Workflow};
use crate::cancel::CancellationToken;
use crate::checkpoint::RunId;
use crate::error::CanoError;
use crate::panic::{Isolated, isolate_panic};
use crate::resource::Resources;
use crate::runtime::{Clock, DynClock, DynSpawner, NoSpawner, Spawner};
use crate::telemetry;
use crate::time::Instant;

/// How many states a run enters in a row before it yields to the executor once (waking
/// itself first), like tokio's cooperative budget. Without it a loop of tasks that finish
/// without waiting (`A → A`) never returns `Pending`, so neither its timeout, nor its
/// cancellation, nor any other task on the same thread would ever run.
const STATES_PER_YIELD: u32 = 32;

/// A boxed run of the state machine.
pub(crate) type BoxedRun<'a, S> =
    core::pin::Pin<Box<dyn Future<Output = Result<S, CanoError>> + Send + 'a>>;

/// What one run of a workflow runs on: a clock, optionally a spawner, and a cancellation
/// token. It owns clones of the clock and spawner (both are cheap handles).
///
/// ```
/// use cano_core::{CancellationToken, RunContext};
/// use cano_core::testing::Simulation;
///
/// let sim = Simulation::new();
/// let token = CancellationToken::new();
/// let ctx = RunContext::new(sim.clock())
///     .with_spawner(sim.spawner())
///     .with_cancellation(token.clone());
/// assert!(!ctx.cancellation().is_cancelled());
/// ```
#[derive(Debug, Clone)]
pub struct RunContext<C, Sp = NoSpawner> {
    clock: C,
    spawner: Option<Sp>,
    cancel: CancellationToken,
}

impl<C: Clock> RunContext<C, NoSpawner> {
    /// A context on `clock`, with no spawner and a token that is never cancelled.
    pub fn new(clock: C) -> Self {
        RunContext {
            clock,
            spawner: None,
            cancel: CancellationToken::never(),
        }
    }
}

impl<C: Clock, Sp: Spawner> RunContext<C, Sp> {
    /// Uses `spawner` for splits configured with
    /// [`with_spawned_branches`](super::JoinConfig::with_spawned_branches).
    pub fn with_spawner<Sp2: Spawner>(self, spawner: Sp2) -> RunContext<C, Sp2> {
        self.with_optional_spawner(Some(spawner))
    }

    /// [`with_spawner`](Self::with_spawner) when `spawner` is `Some`; no spawner otherwise.
    pub fn with_optional_spawner<Sp2: Spawner>(self, spawner: Option<Sp2>) -> RunContext<C, Sp2> {
        RunContext {
            clock: self.clock,
            spawner,
            cancel: self.cancel,
        }
    }

    /// Cancels the run when `token` is cancelled.
    pub fn with_cancellation(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The cancellation token.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// This context with its clock and spawner behind one type each (see
    /// [`LedgeredRun`](super::durable::LedgeredRun)).
    pub(crate) fn erased(self) -> RunContext<DynClock, DynSpawner> {
        RunContext {
            clock: DynClock::new(self.clock),
            spawner: self.spawner.map(DynSpawner::new),
            cancel: self.cancel,
        }
    }
}

impl<S, K> Workflow<S, K>
where
    S: Clone + Eq + Hash + fmt::Debug + Send + Sync + 'static,
    K: Send + Sync + 'static,
{
    /// Runs from `initial` to an exit state on `clock`: sets resources up, runs, tears them
    /// down. See [`orchestrate_with`](Self::orchestrate_with).
    pub fn orchestrate_on<'a, C: Clock>(
        &'a self,
        clock: &C,
        initial: S,
    ) -> impl Future<Output = Result<S, CanoError>> + Send + use<'a, S, K, C> {
        self.orchestrate_with(RunContext::new(clock.clone()), initial)
    }

    /// Runs from `initial` to an exit state in `ctx`, returning the exit state.
    ///
    /// Validates (once), takes a hold on the resources (setting them up if nobody holds
    /// them; a setup error is returned and nothing runs), runs the state machine (see
    /// [`run_fsm`](Self::run_fsm)), then releases the hold (the last holder tears down;
    /// teardown errors go to [`WorkflowObserver::on_resource_error`](super::observer::WorkflowObserver::on_resource_error) and never replace the
    /// run's result). If this future is dropped mid-run, the hold is released without a
    /// teardown and the resources stay up for the next run.
    pub fn orchestrate_with<'a, C: Clock, Sp: Spawner>(
        &'a self,
        ctx: RunContext<C, Sp>,
        initial: S,
    ) -> impl Future<Output = Result<S, CanoError>> + Send + use<'a, S, K, C, Sp> {
        // Plain function, not `async fn`: a run without resources is the state machine's
        // own future, with no wrapper to build and move.
        if let Err(error) = self.check(&initial) {
            return Either::Left(ready(Err(error)));
        }
        if self.resources.is_empty() {
            return Either::Right(Either::Left(self.run_checked(ctx, initial)));
        }
        Either::Right(Either::Right(
            self.with_resources(move || self.run_checked(ctx, initial)),
        ))
    }

    /// The run `make` builds, inside the resource lifecycle: set up (a setup error is
    /// returned and the run never built), run, release the hold (the last holder tears
    /// down). The run is built inside the box's future: one built outside it would be held
    /// twice there, as a captured value and as the pinned copy it is awaited from.
    fn with_resources<'a, F>(&'a self, make: impl FnOnce() -> F + Send + 'a) -> BoxedRun<'a, S>
    where
        F: Future<Output = Result<S, CanoError>> + Send + 'a,
    {
        Box::pin(async move {
            self.resources.setup_all().await?;
            let run = make();
            let mut hold = Hold {
                resources: &self.resources,
                armed: true,
            };
            let result = run.await;
            hold.armed = false;
            let errors = self.resources.teardown_all().await;
            for error in &errors {
                self.observers()
                    .iter()
                    .for_each(|o| o.on_resource_error(error));
            }
            result
        })
    }

    /// Resumes the unfinished run `run` from its checkpoint log on `clock`. See
    /// [`resume_from_with`](Self::resume_from_with).
    pub fn resume_from_on<'a, C: Clock, R: Into<RunId>>(
        &'a self,
        clock: &C,
        run: R,
    ) -> impl Future<Output = Result<S, CanoError>> + Send + use<'a, S, K, C, R> {
        self.resume_from_with(RunContext::new(clock.clone()), run)
    }

    /// Resumes the unfinished run `run` in `ctx` (cano 0.12's `resume_from`): takes the run
    /// over in the store (a new fence: a zombie writer of the same run is locked out),
    /// rebuilds the compensation stack and cursors from the log, and **runs again the state
    /// that was in flight** (at-least-once; its tasks see the same idempotency keys as
    /// before the crash). A log that shows a rollback in progress finishes the rollback
    /// instead (compensations with a done row are not run again) and returns an error
    /// naming the original failure. Resources are set up and torn down as in
    /// [`orchestrate_with`](Self::orchestrate_with); the total timeout starts anew.
    ///
    /// Errors, before anything runs: [`CanoError::Configuration`] without a checkpoint
    /// store or from validation; [`CanoError::CheckpointStore`] with
    /// [`NotFound`](crate::checkpoint::CheckpointError::NotFound) if the run has no
    /// unfinished log, or the store's error; [`CanoError::WorkflowVersionMismatch`] for a
    /// log of another version; [`CanoError::Workflow`] naming the state key if the log's
    /// state is not a state of this workflow. After that, as
    /// [`orchestrate_with`](Self::orchestrate_with).
    pub fn resume_from_with<'a, C: Clock, Sp: Spawner, R: Into<RunId>>(
        &'a self,
        ctx: RunContext<C, Sp>,
        run: R,
    ) -> impl Future<Output = Result<S, CanoError>> + Send + use<'a, S, K, C, Sp, R> {
        let resumed = self.resumed(ctx, run.into());
        if self.resources.is_empty() {
            resumed
        } else {
            self.with_resources(|| resumed)
        }
    }

    /// Runs the state machine from `initial` without touching the resource lifecycle
    /// (the caller holds the resources: the scheduler does, from start to stop).
    ///
    /// Errors: [`CanoError::Configuration`] from validation; a task's error (raw, or
    /// [`CanoError::RetryExhausted`] after retries); [`CanoError::Workflow`] for a state
    /// with no handler or an unsatisfied join; [`CanoError::Timeout`] when the total
    /// timeout passes; [`CanoError::Cancelled`] when the context's token is cancelled (the
    /// running task's future is dropped at its current `.await`; a compensatable task's only
    /// after a grace to finish, see [`CompensatableTask`](crate::CompensatableTask)).
    pub fn run_fsm<'a, C: Clock, Sp: Spawner>(
        &'a self,
        ctx: RunContext<C, Sp>,
        initial: S,
    ) -> impl Future<Output = Result<S, CanoError>> + Send + use<'a, S, K, C, Sp> {
        match self.check(&initial) {
            Err(error) => Either::Left(ready(Err(error))),
            Ok(()) => Either::Right(self.run_checked(ctx, initial)),
        }
    }

    /// [`run_fsm`](Self::run_fsm) as the run `run` of a checkpointed workflow (instead of
    /// its [`workflow_id`](Self::workflow_id)): how a scheduler gives each fire its own log.
    /// A workflow without a checkpoint store ignores `run`.
    pub fn run_fsm_as<'a, C: Clock, Sp: Spawner>(
        &'a self,
        ctx: RunContext<C, Sp>,
        run: RunId,
        initial: S,
    ) -> impl Future<Output = Result<S, CanoError>> + Send + use<'a, S, K, C, Sp> {
        if let Err(error) = self.check(&initial) {
            return Either::Left(ready(Err(error)));
        }
        let Some(ledgered) = self.settings.ledgered() else {
            return Either::Right(Either::Left(self.run_checked(ctx, initial)));
        };
        let begin = Begin::Fresh {
            run: Some(run),
            initial,
        };
        Either::Right(Either::Right(self.run_through(ledgered, ctx, begin, true)))
    }

    /// [`resume_from_with`](Self::resume_from_with) without the resource lifecycle (the
    /// caller holds the resources, as a scheduler does).
    pub fn resume_fsm<'a, C: Clock, Sp: Spawner>(
        &'a self,
        ctx: RunContext<C, Sp>,
        run: RunId,
    ) -> impl Future<Output = Result<S, CanoError>> + Send + use<'a, S, K, C, Sp> {
        self.resumed(ctx, run)
    }

    /// The resumed run `run`, after validation, or the error that stops it.
    fn resumed<C: Clock, Sp: Spawner>(
        &self,
        ctx: RunContext<C, Sp>,
        run: RunId,
    ) -> BoxedRun<'_, S> {
        if let Err(error) = self.ensure_valid() {
            return Box::pin(ready(Err(error)));
        }
        match self.settings.ledgered() {
            Some(ledgered) => self.run_through(ledgered, ctx, Begin::Resume(run), true),
            None => Box::pin(ready(Err(resume_needs_a_store()))),
        }
    }

    fn check(&self, initial: &S) -> Result<(), CanoError> {
        self.ensure_valid()?;
        self.validate_initial_state(initial)
    }

    /// The state machine after validation, inside the run's telemetry (its span, its
    /// metrics; nothing without a telemetry feature).
    fn run_checked<'a, C: Clock, Sp: Spawner>(
        &'a self,
        ctx: RunContext<C, Sp>,
        initial: S,
    ) -> impl Future<Output = Result<S, CanoError>> + Send + use<'a, S, K, C, Sp> {
        telemetry::workflow_run(ctx, |ctx| self.run_untraced(ctx, initial))
    }

    /// The state machine after validation: bare, or raced against the total timeout and
    /// the cancellation token when either is in play.
    fn run_untraced<'a, C: Clock, Sp: Spawner>(
        &'a self,
        ctx: RunContext<C, Sp>,
        initial: S,
    ) -> impl Future<Output = Result<S, CanoError>> + Send + use<'a, S, K, C, Sp> {
        if let Some(ledgered) = self.settings.ledgered() {
            let begin = Begin::Fresh { run: None, initial };
            return Either::Right(self.run_through(ledgered, ctx, begin, false));
        }
        if !self.needs_guard(&ctx) {
            return Either::Left(self.drive(ctx, initial, None, NoLedger, None));
        }
        let guarded: BoxedRun<'a, S> = Box::pin(self.run_guarded(ctx, initial, NoLedger));
        Either::Right(guarded)
    }

    /// The run with a ledger, through `ledgered` (see [`LedgeredRun`]), on `ctx` with its
    /// clock and spawner erased. Out of line: inlined, the erasure's registers cost every
    /// plain run's entry (9 instructions of a 1-state run).
    #[inline(never)]
    fn run_through<C: Clock, Sp: Spawner>(
        &self,
        ledgered: LedgeredRun<S, K>,
        ctx: RunContext<C, Sp>,
        begin: Begin<S>,
        traced: bool,
    ) -> BoxedRun<'_, S> {
        ledgered(self, ctx.erased(), begin, traced)
    }

    /// Whether a run must be raced against a total timeout or a cancellation token.
    fn needs_guard<C: Clock, Sp: Spawner>(&self, ctx: &RunContext<C, Sp>) -> bool {
        self.settings.total_timeout().is_some() || ctx.cancel.can_be_cancelled()
    }

    /// [`run_fsm`](Self::run_fsm) in one box, its result mapped by `finish`: how a scheduled
    /// run of a workflow job runs. (`run_fsm` boxes a guarded or ledgered run itself, so that
    /// its own future stays small; a caller that boxes it again makes two allocations per
    /// run, the outer one sized for the unguarded run. A scheduled run is always guarded, by
    /// its cancellation token.)
    pub(crate) fn run_fsm_boxed<'a, C: Clock, Sp: Spawner, T: Send + 'a>(
        &'a self,
        ctx: RunContext<C, Sp>,
        initial: S,
        finish: fn(Result<S, CanoError>) -> T,
    ) -> Pin<Box<dyn Future<Output = T> + Send + 'a>> {
        use futures::FutureExt;
        if let Err(error) = self.check(&initial) {
            return Box::pin(ready(finish(Err(error))));
        }
        if let Some(ledgered) = self.settings.ledgered() {
            // Boxed twice: the ledgered run is boxed by its own code (see `LedgeredRun`).
            let begin = Begin::Fresh { run: None, initial };
            return Box::pin(self.run_through(ledgered, ctx, begin, true).map(finish));
        }
        if !self.needs_guard(&ctx) {
            let run =
                telemetry::workflow_run(ctx, |ctx| self.drive(ctx, initial, None, NoLedger, None));
            return Box::pin(run.map(finish));
        }
        let run = telemetry::workflow_run(ctx, |ctx| self.run_guarded(ctx, initial, NoLedger));
        Box::pin(run.map(finish))
    }

    /// A run with a ledger (checkpoints, compensations): open it, run, settle it (finish
    /// the log, or roll back).
    // An `async` block holds its arguments once; an `async fn` twice (see `drive`).
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn run_ledgered<C: Clock, Sp: Spawner>(
        &self,
        ctx: RunContext<C, Sp>,
        begin: Begin<S>,
    ) -> impl Future<Output = Result<S, CanoError>> {
        // An `async` block that owns the context and lends it (see `drive`).
        async move {
            let (mut ledger, opened) = self.open_ledger(begin).await?;
            let (outcome, resumed_rollback) = match opened {
                Opened::Rollback(original) => (Err(original), true),
                Opened::Run(state) => {
                    // The guarded run is boxed: it holds a second copy of the loop's future,
                    // and a small future here keeps a plain checkpointed run's allocation
                    // small.
                    let outcome = if self.settings.total_timeout().is_none()
                        && !ctx.cancel.can_be_cancelled()
                    {
                        self.drive(&ctx, state, None, &mut ledger, None).await
                    } else {
                        Box::pin(self.run_guarded(&ctx, state, &mut ledger)).await
                    };
                    (outcome, false)
                }
            };
            self.settle(&mut ledger, outcome, resumed_rollback, &ctx.clock)
                .await
        }
    }

    /// The run raced against the total timeout and the cancellation token. An `async`
    /// block (see [`drive`](Self::drive)) that takes the context or a borrow of it and lends
    /// it to the run, so the clock and token are held once.
    // An `async` block holds its arguments once; an `async fn` twice (see `drive`).
    #[allow(clippy::manual_async_fn)]
    fn run_guarded<'w, C: Clock, Sp: Spawner, L: LedgerSlot<'w, S>>(
        &self,
        ctx: impl Borrow<RunContext<C, Sp>>,
        initial: S,
        ledger: L,
    ) -> impl Future<Output = Result<S, CanoError>> {
        async move {
            // Borrowed at each use, not bound once: a bound borrow is one more field of this
            // future.
            let deadline = self
                .settings
                .total_timeout()
                .map(|limit| ctx.borrow().clock.now() + limit);
            // Raised while a compensatable task runs: its work must not be dropped half done.
            let shield = AtomicBool::new(false);
            let shield = self.settings.has_sagas().then_some(&shield);
            // The run checks the deadline and the token itself at every state and retry;
            // racing it against them also stops a task that is waiting.
            let mut run = pin!(self.drive(ctx.borrow(), initial, deadline, ledger, shield));
            // Which stopped the run, not the error itself: only a flag is held across the
            // wait below, and the error is made once, when it is returned.
            let timed_out = {
                let timeout = pin!(async {
                    match deadline {
                        Some(at) => ctx.borrow().clock.sleep_until(at).await,
                        None => core::future::pending().await,
                    }
                });
                match select(
                    run.as_mut(),
                    select(timeout, ctx.borrow().cancel.cancelled()),
                )
                .await
                {
                    Either::Left((result, _)) => return result,
                    Either::Right((stop, _)) => matches!(stop, Either::Left(_)),
                }
            };
            let error = || {
                if timed_out {
                    run_timed_out(self.settings.total_timeout().unwrap_or_default())
                } else {
                    cancelled()
                }
            };
            if !shield.is_some_and(|s| s.load(Ordering::Acquire)) {
                return Err(error());
            }
            // A compensatable task is in flight (as cano 0.15 lets it): it may finish, and its
            // completion be recorded, within one compensation budget; the run then ends
            // before the next state (its guard) and the drain undoes that task too. Past the
            // budget it is dropped like any other task.
            let grace = ctx.borrow().clock.now() + self.compensation_budget();
            match select(run, pin!(ctx.borrow().clock.sleep_until(grace))).await {
                Either::Left((Err(lost), _)) if super::durable::ownership_lost(&lost) => Err(lost),
                Either::Left(_) | Either::Right(_) => Err(error()),
            }
        }
    }

    /// The run loop. `ledger` is [`NoLedger`] for a plain workflow (a type with no ledger,
    /// so the checkpoint code compiles away); with one, each state entry is recorded (before
    /// its task runs) and compensatable and stepped states record their progress.
    ///
    /// A plain function returning an `async move` block, not an `async fn`: the block uses
    /// its captured arguments in place, where an `async fn` keeps a second copy of each (the
    /// run context alone is tens of bytes), and every run's future is moved several times
    /// before it is polled (issue 15). For the same reason the awaits below hold only the
    /// future awaited: each is built in a block that ends before its `.await`.
    ///
    /// `ctx` is the context or a borrow of it: a guarded run owns it and lends it here.
    fn drive<'w, C: Clock, Sp: Spawner, L: LedgerSlot<'w, S>>(
        &self,
        ctx: impl Borrow<RunContext<C, Sp>>,
        initial: S,
        deadline: Option<Instant>,
        mut ledger: L,
        shield: Option<&AtomicBool>,
    ) -> impl Future<Output = Result<S, CanoError>> {
        let mut state = initial;
        async move {
            let guard = RunGuard {
                cancel: &ctx.borrow().cancel,
                deadline,
                limit: self.settings.total_timeout().unwrap_or_default(),
            };
            let mut previous: Option<usize> = None;
            let mut split_results: Option<Box<SplitResult<S>>> = None;
            let mut states_since_yield: u32 = 0;
            loop {
                let Some(at) = self.position(&state) else {
                    return Err(self.unknown_target(previous, &state));
                };
                let slot = &self.states[at];
                self.observers()
                    .iter()
                    .for_each(|o| o.on_state_enter(&state));
                let span =
                    telemetry::state_entered(&state, at, || handler_name(slot.handler.as_ref()));
                if slot.exit {
                    return Ok(state);
                }
                states_since_yield += 1;
                if states_since_yield >= STATES_PER_YIELD {
                    states_since_yield = 0;
                    YieldOnce::default().await;
                }
                guard.check(&ctx.borrow().clock)?;
                if let Some(ledger) = ledger.get_mut() {
                    self.record_entry(ledger, at).await?;
                }
                let next = match &slot.handler {
                    None => {
                        return Err(CanoError::workflow(alloc::format!(
                            "No task registered for state: {state:?}"
                        )));
                    }
                    Some(Handler::Single(task) | Handler::Router(task)) => {
                        split_results = None;
                        self.events(task).start();
                        // The key is looked up where it is used, not held across the await:
                        // a plain run's future stays as small as before checkpoints existed.
                        // A router has no row, so no visit of its own to key.
                        let keyed = !matches!(slot.handler, Some(Handler::Router(_)));
                        let outcome = 'attempts: {
                            let first_error = if task.first_attempt_is_bare() {
                                // Only the task's own future lives across this await: the
                                // run's future stays small, and small futures are cheap to
                                // move.
                                let first = {
                                    let make = || match ledger
                                        .get()
                                        .filter(|_| keyed)
                                        .and_then(Ledger::key_base)
                                    {
                                        None => task.task.run_dyn(&self.resources),
                                        key => task.task.run_with_dyn(KeyBase::context(
                                            key,
                                            &self.resources,
                                            1,
                                        )),
                                    };
                                    let attempt =
                                        span.in_child(|| telemetry::attempt(Some(task.name()), 1));
                                    let made = {
                                        let _entered = attempt.enter();
                                        isolate_panic(make)
                                    };
                                    match made {
                                        Err(panicked) => break 'attempts Err(panicked),
                                        Ok(first) => telemetry::in_span(attempt, Isolated(first)),
                                    }
                                };
                                match first.await {
                                    Err(panicked) => break 'attempts Err(panicked),
                                    Ok(Ok(result)) => break 'attempts Ok(result),
                                    Ok(Err(error)) => Some(error),
                                }
                            } else {
                                None
                            };
                            let key = ledger.get().filter(|_| keyed).and_then(Ledger::key_base);
                            let retry =
                                self.retry_loop(task, &ctx.borrow().clock, guard, first_error, key);
                            telemetry::in_span(span, Box::pin(retry)).await
                        };
                        self.events(task).finish(&outcome);
                        outcome?.into_state()
                    }
                    Some(Handler::Split(spec)) => {
                        let env = SplitEnv {
                            resources: &self.resources,
                            clock: &ctx.borrow().clock,
                            spawner: ctx.borrow().spawner.as_ref(),
                            random: self.jitter(),
                            observers: self.settings.observers(),
                            guard,
                        };
                        // Boxed: keeps the rarer split path out of every run's future.
                        match telemetry::in_span(span, Box::pin(run_split(spec, env))).await {
                            Ok(results) => split_results = Some(Box::new(results)),
                            // Branches cut short by the deadline or the token fail the join;
                            // the run ends for that reason, not for the join.
                            Err(error) => {
                                return Err(guard
                                    .check(&ctx.borrow().clock)
                                    .err()
                                    .unwrap_or(error));
                            }
                        }
                        spec.join.join_state.clone()
                    }
                    Some(Handler::Join(join)) => {
                        let results = split_results.take().unwrap_or_default();
                        let join =
                            Box::pin(self.run_join(join, results, &ctx.borrow().clock, guard));
                        telemetry::in_span(span, join).await?
                    }
                    Some(Handler::Compensatable(task)) => {
                        split_results = None;
                        if let Some(shield) = shield {
                            shield.store(true, Ordering::Release);
                        }
                        let run = self.run_compensatable(
                            task,
                            ledger.get_mut(),
                            &ctx.borrow().clock,
                            guard,
                        );
                        let next = telemetry::in_span(span, Box::pin(run)).await;
                        if let Some(shield) = shield {
                            shield.store(false, Ordering::Release);
                        }
                        let next = next?;
                        // A cancellation or timeout that came while the task ran ends the run
                        // here, after its completion was recorded (0.15 checks at the boundary).
                        guard.check(&ctx.borrow().clock)?;
                        next
                    }
                    Some(Handler::Stepped(task)) => {
                        split_results = None;
                        let run = self.run_stepped(
                            task,
                            ledger.get_mut(),
                            at,
                            &ctx.borrow().clock,
                            guard,
                        );
                        telemetry::in_span(span, Box::pin(run)).await?
                    }
                };
                previous = Some(at);
                state = next;
            }
        }
    }

    fn events<'a>(&'a self, task: &'a RegisteredTask<S, K>) -> TaskEvents<'a, S> {
        TaskEvents {
            observers: self.observers(),
            id: TaskId {
                name: task.name(),
                branch: None,
            },
        }
    }

    /// The retry loop of a single task, from the start (breaker or attempt timeout to arm
    /// first) or after a first attempt that failed with `first_error`.
    async fn retry_loop<C: Clock>(
        &self,
        task: &RegisteredTask<S, K>,
        clock: &C,
        guard: RunGuard<'_>,
        first_error: Option<CanoError>,
        key: Option<KeyBase<'_>>,
    ) -> Result<TaskResult<S>, CanoError> {
        let run = RunTask {
            task: &task.task,
            resources: &self.resources,
            key,
            attempts: u32::from(first_error.is_some()),
        };
        let events = self.events(task);
        let attempts = Attempts::new(
            task.config(),
            clock,
            self.jitter().get(),
            run,
            events,
            Some(guard),
        );
        match first_error {
            None => attempts.await,
            Some(error) => attempts.after_failed_first(error)?.await,
        }
    }

    fn unknown_target(&self, previous: Option<usize>, state: &S) -> CanoError {
        let Some(from) = previous.map(|at| &self.states[at]) else {
            return CanoError::workflow(alloc::format!("No task registered for state: {state:?}"));
        };
        let task = match &from.handler {
            Some(Handler::Single(t) | Handler::Router(t)) => t.name(),
            Some(Handler::Join(j)) => &*j.name,
            Some(Handler::Compensatable(t)) => &*t.name,
            Some(Handler::Stepped(t)) => &*t.name,
            _ => "?",
        };
        CanoError::workflow(alloc::format!(
            "task {task} in state {:?} returned {state:?}, which is neither registered nor an exit state",
            from.state
        ))
    }

    async fn run_join<C: Clock>(
        &self,
        join: &RegisteredJoin<S, K>,
        results: Box<SplitResult<S>>,
        clock: &C,
        guard: RunGuard<'_>,
    ) -> Result<S, CanoError> {
        let run = RunJoin {
            task: &*join.task,
            resources: &self.resources,
            results: &results,
        };
        self.observed_attempts(&join.name, &join.config, clock, run, guard)
            .await
            .map(TaskResult::into_state)
    }

    /// Runs `run` under `config`'s retries as the task `name` of a state (not a split
    /// branch), between its start and finish events: a join task's and a compensatable
    /// task's path (a plain task's first attempt has its own, allocation-free one).
    pub(crate) async fn observed_attempts<'a, T, C: Clock, F: MakeAttempt<'a, T> + Unpin>(
        &'a self,
        name: &'a str,
        config: &'a TaskConfig,
        clock: &'a C,
        run: F,
        guard: RunGuard<'a>,
    ) -> Result<T, CanoError> {
        let events = TaskEvents {
            observers: self.observers(),
            id: TaskId { name, branch: None },
        };
        events.start();
        let outcome =
            Attempts::new(config, clock, self.jitter().get(), run, events, Some(guard)).await;
        events.finish(&outcome);
        outcome
    }
}

/// The name of what runs in a state, for its span: the task or join, `split` for a split,
/// `""` for an exit state.
fn handler_name<S, K>(handler: Option<&Handler<S, K>>) -> &str {
    match handler {
        Some(Handler::Single(task) | Handler::Router(task)) => task.name(),
        Some(Handler::Join(join)) => &join.name,
        Some(Handler::Compensatable(task)) => &task.name,
        Some(Handler::Stepped(task)) => &task.name,
        Some(Handler::Split(_)) => "split",
        None => "",
    }
}

fn cancelled() -> CanoError {
    CanoError::cancelled("workflow run cancelled")
}

fn run_timed_out(limit: Duration) -> CanoError {
    CanoError::timeout(alloc::format!(
        "Workflow timeout exceeded: the run took longer than {}",
        crate::time::DurationText(limit)
    ))
}

/// What ends a run early: its cancellation token and its total-timeout deadline. Checked
/// at every state and before every retry, so that a run whose tasks never wait still ends.
#[derive(Clone, Copy)]
pub(crate) struct RunGuard<'a> {
    cancel: &'a CancellationToken,
    deadline: Option<Instant>,
    /// The total timeout, for the error message.
    limit: Duration,
}

impl RunGuard<'_> {
    /// `Err` with [`CanoError::Cancelled`] or [`CanoError::Timeout`] once the run must end.
    pub(crate) fn check(&self, clock: &impl Clock) -> Result<(), CanoError> {
        if self.cancel.is_cancelled() {
            return Err(cancelled());
        }
        match self.deadline {
            Some(at) if clock.now() >= at => Err(run_timed_out(self.limit)),
            _ => Ok(()),
        }
    }
}

/// Returns `Pending` once, after waking its task: a turn for the rest of the executor.
#[derive(Default)]
struct YieldOnce {
    yielded: bool,
}

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A hold on the resources that is released without a teardown if the run is dropped.
struct Hold<'a, K> {
    resources: &'a Resources<K>,
    armed: bool,
}

impl<K> Drop for Hold<'_, K> {
    fn drop(&mut self) {
        if self.armed {
            self.resources.release_without_teardown();
        }
    }
}
