//! [`Workflow`]: a finite state machine of tasks.
//!
//! A workflow maps each state (a user enum) to a task, a split (several tasks run
//! concurrently and joined), or a join task, and has exit states. A run starts in an initial
//! state, runs that state's task, enters the state the task returns, and so on until it
//! reaches an exit state.
//!
//! ## Running a workflow
//!
//! * [`Workflow::orchestrate_on`] runs on a [`Clock`]: set resources up, run, tear down.
//!   Adapter crates add `orchestrate(initial)` on their runtime's clock (for instance
//!   `cano_tokio::WorkflowExt`).
//! * [`Workflow::orchestrate_with`] takes a [`RunContext`]: a clock, optionally a
//!   [`Spawner`] (for splits that spawn their branches) and a [`CancellationToken`].
//! * [`Workflow::run_fsm`] runs the state machine alone, without the resource lifecycle:
//!   the scheduler sets resources up once at start, calls `run_fsm` per fire, and tears
//!   them down at stop.
//!
//! Every entry point applies the workflow's total timeout and honours the cancellation
//! token.
//!
//! ## Sharing one workflow between concurrent runs
//!
//! `orchestrate_*` takes `&self`, so one workflow (in an `Arc`) may run many times at once.
//! Resource setup and teardown are reference-counted (see [`Resources`]): the first
//! concurrent run sets resources up, the last one tears them down, and no run ever sees
//! its resources torn down underneath it.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::hash::Hash;
use core::pin::pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;

use futures::future::{Either, ready, select};
use hashbrown::HashMap;

use crate::cancel::CancellationToken;
use crate::error::CanoError;
use crate::join::{DynJoinTask, JoinConfig, JoinStrategy, JoinTask, RunJoin, SplitResult};
use crate::observer::{Observers, TaskEvents, TaskId, WorkflowObserver};
use crate::random::{RandomSource, SplitMix64, next_default_seed};
use crate::resource::{DefaultKey, Resources};
use crate::retry::{Attempts, Isolated, TaskConfig, isolate_panic};
use crate::runtime::{BoxFuture, Clock, SpawnError, Spawner};
use crate::split::{SplitEnv, SplitSpec, run_split};
use crate::task::{RegisteredTask, RunTask, Task, TaskResult};

/// A boxed run of the state machine.
type BoxedRun<'a, S> = core::pin::Pin<Box<dyn Future<Output = Result<S, CanoError>> + Send + 'a>>;

/// Up to this many states, a lookup scans the state table instead of hashing: for a few
/// fieldless enums a scan is faster than a hash.
const LINEAR_LOOKUP_MAX: usize = 16;

/// What a state does when entered.
enum Handler<S, K> {
    Single(Arc<RegisteredTask<S, K>>),
    Split(Arc<SplitSpec<S, K>>),
    Join(Arc<RegisteredJoin<S, K>>),
}

impl<S, K> Clone for Handler<S, K> {
    fn clone(&self) -> Self {
        match self {
            Handler::Single(t) => Handler::Single(t.clone()),
            Handler::Split(s) => Handler::Split(s.clone()),
            Handler::Join(j) => Handler::Join(j.clone()),
        }
    }
}

struct RegisteredJoin<S, K> {
    task: Arc<dyn DynJoinTask<S, K>>,
    name: Cow<'static, str>,
    config: TaskConfig,
}

struct StateSlot<S, K> {
    state: S,
    exit: bool,
    handler: Option<Handler<S, K>>,
}

impl<S: Clone, K> Clone for StateSlot<S, K> {
    fn clone(&self) -> Self {
        StateSlot {
            state: self.state.clone(),
            exit: self.exit,
            handler: self.handler.clone(),
        }
    }
}

/// A [`Spawner`] that refuses everything: the spawner of a [`RunContext`] that has none.
/// Splits that ask for spawned branches then poll them in place.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSpawner;

impl Spawner for NoSpawner {
    fn spawn(&self, _future: BoxFuture) -> Result<(), SpawnError> {
        Err(SpawnError::Shutdown)
    }
}

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
    /// [`with_spawned_branches`](JoinConfig::with_spawned_branches).
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
}

/// A finite state machine of tasks over states `S`, sharing [`Resources`] keyed by `K`.
///
/// Built by value (`register`, `add_exit_state`, …), then run by reference any number of
/// times, concurrently if need be. See the [module docs](self) for the entry points.
///
/// ```
/// use cano_core::{CanoError, JoinConfig, JoinStrategy, Resources, Task, TaskResult, Workflow};
/// use cano_core::testing::Simulation;
///
/// #[derive(Debug, Clone, PartialEq, Eq, Hash)]
/// enum State { Start, Fan, Done }
///
/// struct Go(State);
/// impl Task<State> for Go {
///     async fn run(&self, _res: &Resources) -> Result<TaskResult<State>, CanoError> {
///         Ok(TaskResult::Single(self.0.clone()))
///     }
/// }
///
/// let workflow = Workflow::bare()
///     .register(State::Start, Go(State::Fan))
///     .register_split(State::Fan, vec![Go(State::Done), Go(State::Done)],
///                     JoinConfig::new(JoinStrategy::All, State::Done))
///     .add_exit_state(State::Done);
/// workflow.validate().unwrap();
///
/// let sim = Simulation::new();
/// assert_eq!(sim.block_on(workflow.orchestrate_on(&sim.clock(), State::Start)), Ok(State::Done));
/// ```
pub struct Workflow<S, K = DefaultKey> {
    resources: Arc<Resources<K>>,
    states: Vec<StateSlot<S, K>>,
    index: HashMap<S, usize>,
    total_timeout: Option<Duration>,
    observers: Observers<S>,
    random: Arc<dyn RandomSource>,
    validated: AtomicBool,
}

impl<S> Workflow<S, DefaultKey>
where
    S: Clone + Eq + Hash + fmt::Debug + Send + Sync + 'static,
{
    /// A workflow with no resources.
    pub fn bare() -> Self {
        Workflow::new(Resources::new())
    }
}

impl<S, K> Workflow<S, K>
where
    S: Clone + Eq + Hash + fmt::Debug + Send + Sync + 'static,
    K: Send + Sync + 'static,
{
    /// A workflow whose tasks share `resources` (a [`Resources`] or an `Arc` of one, to
    /// share it with other workflows).
    pub fn new(resources: impl Into<Arc<Resources<K>>>) -> Self {
        Workflow {
            resources: resources.into(),
            states: Vec::new(),
            index: HashMap::new(),
            total_timeout: None,
            observers: Arc::new(Vec::new()),
            random: Arc::new(SplitMix64::new(next_default_seed())),
            validated: AtomicBool::new(false),
        }
    }

    fn slot_mut(&mut self, state: S) -> &mut StateSlot<S, K> {
        *self.validated.get_mut() = false;
        let at = match self.index.get(&state) {
            Some(&at) => at,
            None => {
                let at = self.states.len();
                self.index.insert(state.clone(), at);
                self.states.push(StateSlot {
                    state,
                    exit: false,
                    handler: None,
                });
                at
            }
        };
        &mut self.states[at]
    }

    fn position(&self, state: &S) -> Option<usize> {
        if self.states.len() <= LINEAR_LOOKUP_MAX {
            self.states.iter().position(|slot| slot.state == *state)
        } else {
            self.index.get(state).copied()
        }
    }

    fn slot(&self, state: &S) -> Option<&StateSlot<S, K>> {
        self.position(state).map(|at| &self.states[at])
    }

    /// Runs `task` when `state` is entered; the state it returns comes next. Registering a
    /// state again replaces its handler.
    pub fn register<T: Task<S, K> + 'static>(mut self, state: S, task: T) -> Self {
        self.slot_mut(state).handler = Some(Handler::Single(Arc::new(RegisteredTask::new(task))));
        self
    }

    /// Runs every task in `tasks` concurrently when `state` is entered, then continues in
    /// `join.join_state` if the join is satisfied (see [`JoinConfig`]). The states the
    /// branches return are not followed; they are handed, with every branch's outcome, to
    /// the join state if it is a [`JoinTask`]. Mix task types with
    /// [`DynTask`](crate::DynTask) boxes.
    pub fn register_split<T, I>(mut self, state: S, tasks: I, join: JoinConfig<S>) -> Self
    where
        T: Task<S, K> + 'static,
        I: IntoIterator<Item = T>,
    {
        let branches = tasks.into_iter().map(RegisteredTask::new).collect();
        self.slot_mut(state).handler = Some(Handler::Split(Arc::new(SplitSpec { branches, join })));
        self
    }

    /// Runs `task` with the results of the split that led to `state` (which must be the
    /// `join_state` of at least one split; validation checks it).
    pub fn register_join<T: JoinTask<S, K> + 'static>(mut self, state: S, task: T) -> Self {
        let join = RegisteredJoin {
            name: task.name(),
            config: task.config(),
            task: Arc::new(task),
        };
        self.slot_mut(state).handler = Some(Handler::Join(Arc::new(join)));
        self
    }

    /// Makes `state` an exit state: a run that enters it ends there, returning it. The
    /// exit check comes before any handler, so a registered state that is also an exit
    /// state exits without running its task.
    pub fn add_exit_state(mut self, state: S) -> Self {
        self.slot_mut(state).exit = true;
        self
    }

    /// [`add_exit_state`](Self::add_exit_state) for each state.
    pub fn add_exit_states(self, states: impl IntoIterator<Item = S>) -> Self {
        states.into_iter().fold(self, Self::add_exit_state)
    }

    /// Bounds every run (the state machine, not resource setup and teardown) by `limit`; a
    /// run that exceeds it fails with [`CanoError::Timeout`]. Applies to scheduled runs
    /// ([`run_fsm`](Self::run_fsm)) too.
    pub fn with_timeout(mut self, limit: Duration) -> Self {
        self.total_timeout = Some(limit);
        self
    }

    /// Adds an observer; observers are called in the order they were added.
    pub fn with_observer(mut self, observer: Arc<dyn WorkflowObserver<S>>) -> Self {
        Arc::make_mut(&mut self.observers).push(observer);
        self
    }

    /// Draws retry jitter from `random` (default: a [`SplitMix64`] seeded per workflow).
    pub fn with_random_source(mut self, random: Arc<dyn RandomSource>) -> Self {
        self.random = random;
        self
    }

    /// Whether some split asks for spawned branches, so a run benefits from a
    /// [`RunContext::with_spawner`] (adapters skip looking a spawner up otherwise).
    pub fn uses_spawner(&self) -> bool {
        self.states.iter().any(
            |slot| matches!(&slot.handler, Some(Handler::Split(spec)) if spec.join.spawn_branches),
        )
    }

    /// The shared resources.
    pub fn resources(&self) -> &Arc<Resources<K>> {
        &self.resources
    }

    /// States with a handler, in registration order.
    pub fn registered_states(&self) -> impl Iterator<Item = &S> {
        self.states
            .iter()
            .filter(|s| s.handler.is_some())
            .map(|s| &s.state)
    }

    /// Exit states, in the order they were added.
    pub fn exit_states(&self) -> impl Iterator<Item = &S> {
        self.states.iter().filter(|s| s.exit).map(|s| &s.state)
    }

    fn is_known(&self, state: &S) -> bool {
        self.slot(state)
            .is_some_and(|s| s.exit || s.handler.is_some())
    }

    /// Checks the workflow's shape. Every error is a [`CanoError::Configuration`]:
    ///
    /// * no registered state, or no exit state;
    /// * a split whose `PartialTimeout` has no timeout, whose `Percentage` is not in
    ///   `(0, 1]`, whose bulkhead is 0, whose strategy needs more branches than it has, or
    ///   whose `join_state` is neither registered nor an exit state;
    /// * a [`JoinTask`] state that no split joins into.
    ///
    /// States returned by tasks are only known at run time; a run that is handed a state
    /// that is neither registered nor an exit state fails with a [`CanoError::Workflow`]
    /// naming the task and both states.
    pub fn validate(&self) -> Result<(), CanoError> {
        if !self.states.iter().any(|s| s.handler.is_some()) {
            return Err(CanoError::configuration(
                "Workflow has no registered state handlers",
            ));
        }
        if !self.states.iter().any(|s| s.exit) {
            return Err(CanoError::configuration(
                "Workflow has no exit states defined — orchestration may loop forever",
            ));
        }
        for slot in &self.states {
            let Some(Handler::Split(spec)) = &slot.handler else {
                continue;
            };
            let join = &spec.join;
            let state = &slot.state;
            if join.strategy == JoinStrategy::PartialTimeout && join.timeout.is_none() {
                return Err(CanoError::configuration(alloc::format!(
                    "Split state {state:?}: JoinStrategy::PartialTimeout requires a timeout"
                )));
            }
            if join.bulkhead == Some(0) {
                return Err(CanoError::configuration(alloc::format!(
                    "Split state {state:?}: bulkhead must be at least 1"
                )));
            }
            if let Some(why) = join.strategy.impossibility(spec.branches.len()) {
                return Err(CanoError::configuration(alloc::format!(
                    "Split state {state:?}: {why}"
                )));
            }
            if !self.is_known(&join.join_state) {
                return Err(CanoError::configuration(alloc::format!(
                    "Split join_state {:?} is neither registered nor an exit state",
                    join.join_state
                )));
            }
        }
        for slot in &self.states {
            if let Some(Handler::Join(_)) = slot.handler {
                let joined = self.states.iter().any(|s| {
                    matches!(&s.handler, Some(Handler::Split(spec)) if spec.join.join_state == slot.state)
                });
                if !joined {
                    return Err(CanoError::configuration(alloc::format!(
                        "State {:?} is registered with register_join, but no split joins into it",
                        slot.state
                    )));
                }
            }
        }
        Ok(())
    }

    /// Checks that `initial` is registered or an exit state
    /// ([`CanoError::Configuration`] otherwise).
    pub fn validate_initial_state(&self, initial: &S) -> Result<(), CanoError> {
        if self.is_known(initial) {
            Ok(())
        } else {
            Err(CanoError::configuration(alloc::format!(
                "Initial state {initial:?} is neither registered nor an exit state"
            )))
        }
    }

    /// [`validate`](Self::validate), once per workflow value.
    fn ensure_valid(&self) -> Result<(), CanoError> {
        if self.validated.load(Ordering::Acquire) {
            return Ok(());
        }
        self.validate()?;
        self.validated.store(true, Ordering::Release);
        Ok(())
    }

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
    /// teardown errors go to [`WorkflowObserver::on_resource_error`] and never replace the
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
        let with_lifecycle: BoxedRun<'a, S> = Box::pin(async move {
            self.resources.setup_all().await?;
            let mut hold = Hold {
                resources: &self.resources,
                armed: true,
            };
            let result = self.run_checked(ctx, initial).await;
            hold.armed = false;
            let errors = self.resources.teardown_all().await;
            for error in &errors {
                self.observers
                    .iter()
                    .for_each(|o| o.on_resource_error(error));
            }
            result
        });
        Either::Right(Either::Right(with_lifecycle))
    }

    /// Runs the state machine from `initial` without touching the resource lifecycle
    /// (the caller holds the resources: the scheduler does, from start to stop).
    ///
    /// Errors: [`CanoError::Configuration`] from validation; a task's error (raw, or
    /// [`CanoError::RetryExhausted`] after retries); [`CanoError::Workflow`] for a state
    /// with no handler or an unsatisfied join; [`CanoError::Timeout`] when the total
    /// timeout passes; [`CanoError::Cancelled`] when the context's token is cancelled (the
    /// running task's future is dropped at its current `.await`).
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

    fn check(&self, initial: &S) -> Result<(), CanoError> {
        self.ensure_valid()?;
        self.validate_initial_state(initial)
    }

    /// The state machine after validation: bare, or raced against the total timeout and
    /// the cancellation token when either is in play.
    fn run_checked<'a, C: Clock, Sp: Spawner>(
        &'a self,
        ctx: RunContext<C, Sp>,
        initial: S,
    ) -> impl Future<Output = Result<S, CanoError>> + Send + use<'a, S, K, C, Sp> {
        if self.total_timeout.is_none() && !ctx.cancel.can_be_cancelled() {
            return Either::Left(self.drive(ctx, initial));
        }
        let guarded: BoxedRun<'a, S> = Box::pin(self.run_guarded(ctx, initial));
        Either::Right(guarded)
    }

    async fn run_guarded<C: Clock, Sp: Spawner>(
        &self,
        ctx: RunContext<C, Sp>,
        initial: S,
    ) -> Result<S, CanoError> {
        let (clock, cancel) = (ctx.clock.clone(), ctx.cancel.clone());
        let deadline = self.total_timeout.map(|limit| clock.now() + limit);
        let run = self.drive(ctx, initial);
        let stop = async {
            let timeout = async {
                match deadline {
                    Some(at) => clock.sleep_until(at).await,
                    None => core::future::pending().await,
                }
            };
            match select(pin!(timeout), cancel.cancelled()).await {
                Either::Left(_) => CanoError::timeout(alloc::format!(
                    "Workflow timeout exceeded: the run took longer than {:?}",
                    self.total_timeout.unwrap_or_default()
                )),
                Either::Right(_) => cancelled(),
            }
        };
        match select(pin!(run), pin!(stop)).await {
            Either::Left((result, _)) => result,
            Either::Right((error, _)) => Err(error),
        }
    }

    async fn drive<C: Clock, Sp: Spawner>(
        &self,
        ctx: RunContext<C, Sp>,
        initial: S,
    ) -> Result<S, CanoError> {
        let mut state = initial;
        let mut previous: Option<usize> = None;
        let mut split_results: Option<Box<SplitResult<S>>> = None;
        loop {
            let Some(at) = self.position(&state) else {
                return Err(self.unknown_target(previous, &state));
            };
            let slot = &self.states[at];
            self.observers.iter().for_each(|o| o.on_state_enter(&state));
            if slot.exit {
                return Ok(state);
            }
            if ctx.cancel.is_cancelled() {
                return Err(cancelled());
            }
            let next = match &slot.handler {
                None => {
                    return Err(CanoError::workflow(alloc::format!(
                        "No task registered for state: {state:?}"
                    )));
                }
                Some(Handler::Single(task)) => {
                    split_results = None;
                    self.events(task).start();
                    let outcome = if task.config.first_attempt_is_bare() {
                        // Only the task's own future lives across this await: the run's
                        // future stays small, and small futures are cheap to move.
                        match isolate_panic(|| task.task.run_dyn(&self.resources)) {
                            Err(panicked) => Err(panicked),
                            Ok(first) => match Isolated(first).await {
                                Err(panicked) => Err(panicked),
                                Ok(Ok(result)) => Ok(result),
                                Ok(Err(error)) => {
                                    Box::pin(self.retry_loop(task, &ctx.clock, Some(error))).await
                                }
                            },
                        }
                    } else {
                        Box::pin(self.retry_loop(task, &ctx.clock, None)).await
                    };
                    self.events(task).finish(&outcome);
                    outcome?.into_state()
                }
                Some(Handler::Split(spec)) => {
                    let env = SplitEnv {
                        resources: &self.resources,
                        clock: &ctx.clock,
                        spawner: ctx.spawner.as_ref(),
                        random: &self.random,
                        observers: &self.observers,
                    };
                    // Boxed: keeps the rarer split path out of every run's future.
                    split_results = Some(Box::new(Box::pin(run_split(spec, env)).await?));
                    spec.join.join_state.clone()
                }
                Some(Handler::Join(join)) => {
                    let results = split_results.take().unwrap_or_default();
                    Box::pin(self.run_join(join, results, &ctx.clock)).await?
                }
            };
            previous = Some(at);
            state = next;
        }
    }

    fn events<'a>(&'a self, task: &'a RegisteredTask<S, K>) -> TaskEvents<'a, S> {
        TaskEvents {
            observers: self.observers.as_slice(),
            id: TaskId {
                name: &task.name,
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
        first_error: Option<CanoError>,
    ) -> Result<TaskResult<S>, CanoError> {
        let run = RunTask {
            task: &*task.task,
            resources: &self.resources,
        };
        let attempts = Attempts::new(&task.config, clock, &*self.random, run, self.events(task));
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
            Some(Handler::Single(t)) => &*t.name,
            Some(Handler::Join(j)) => &*j.name,
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
    ) -> Result<S, CanoError> {
        let events = TaskEvents {
            observers: self.observers.as_slice(),
            id: TaskId {
                name: &join.name,
                branch: None,
            },
        };
        events.start();
        let run = RunJoin {
            task: &*join.task,
            resources: &self.resources,
            results: &results,
        };
        let outcome = Attempts::new(&join.config, clock, &*self.random, run, events).await;
        events.finish(&outcome);
        outcome.map(TaskResult::into_state)
    }
}

fn cancelled() -> CanoError {
    CanoError::cancelled("workflow run cancelled")
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

impl<S: Clone + Eq + Hash, K> Clone for Workflow<S, K> {
    /// Shares the resources, tasks and observers; the clone validates again on first run.
    fn clone(&self) -> Self {
        Workflow {
            resources: self.resources.clone(),
            states: self.states.clone(),
            index: self.index.clone(),
            total_timeout: self.total_timeout,
            observers: self.observers.clone(),
            random: self.random.clone(),
            validated: AtomicBool::new(false),
        }
    }
}

impl<S: fmt::Debug, K> fmt::Debug for Workflow<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exits: Vec<&S> = self
            .states
            .iter()
            .filter(|s| s.exit)
            .map(|s| &s.state)
            .collect();
        f.debug_struct("Workflow")
            .field(
                "registered_states",
                &self.states.iter().filter(|s| s.handler.is_some()).count(),
            )
            .field("exit_states", &exits)
            .field("total_timeout", &self.total_timeout)
            .field("observers", &self.observers.len())
            .field("resources", &self.resources)
            .finish()
    }
}
