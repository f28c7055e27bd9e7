//! [`Workflow`]: a finite state machine of tasks.
//!
//! A workflow maps each state (a user enum) to a task, a split (several tasks run
//! concurrently and joined), or a join task, and has exit states. A run starts in an initial
//! state, runs that state's task, enters the state the task returns, and so on until it
//! reaches an exit state.
//!
//! ## The wing's modules
//!
//! * this module: the builder ([`Workflow::register`] and friends) and validation;
//! * `run`: the run loop ([`Workflow::orchestrate_with`], [`Workflow::run_fsm`], [`RunContext`]);
//! * [`task`]: what a state runs; [`retry`]: attempts, delays, per-attempt timeouts;
//! * `split` and [`join`]: concurrent branches and the strategies that join them;
//! * [`observer`]: hooks that see every state, attempt and resource error.
//!
//! ## Running a workflow
//!
//! * [`Workflow::orchestrate_on`] runs on a [`Clock`](crate::Clock): set resources up, run,
//!   tear down. Adapter crates add `orchestrate(initial)` on their runtime's clock (for instance
//!   `cano_tokio::WorkflowExt`).
//! * [`Workflow::orchestrate_with`] takes a [`RunContext`]: a clock, optionally a
//!   [`Spawner`](crate::Spawner) (for splits that spawn their branches) and a
//!   [`CancellationToken`](crate::CancellationToken).
//! * [`Workflow::run_fsm`] runs the state machine alone, without the resource lifecycle:
//!   the scheduler sets resources up once at start, calls `run_fsm` per fire, and tears
//!   them down at stop.
//!
//! Every entry point applies the workflow's total timeout and honours the cancellation
//! token, also when no task ever waits: the run checks both as it enters each state and
//! before each retry, and yields to the executor once every 32 states (a retry loop, once
//! every 32 attempts that fail at once), as tokio's cooperative budget does. So `A → A`
//! with a task that returns at once, or `RetryMode::fixed(usize::MAX, Duration::ZERO)` on a
//! task that always fails, ends at its timeout and never starves the other tasks of its
//! thread. (On the virtual-time `Simulation` (feature `testing`) such a loop lets
//! no time pass, so only cancellation ends it there; otherwise the simulation reports a
//! livelock.)
//!
//! ## Sharing one workflow between concurrent runs
//!
//! `orchestrate_*` takes `&self`, so one workflow (in an `Arc`) may run many times at once.
//! Resource setup and teardown are reference-counted (see [`Resources`]): the first
//! concurrent run sets resources up, the last one tears them down, and no run ever sees
//! its resources torn down underneath it.

mod durable;
pub mod join;
pub mod observer;
pub mod retry;
mod run;
pub mod saga;
pub mod shapes;
mod split;
pub mod stepped;
pub mod task;

/// Moved to the runtime contract; kept here so `cano_core::workflow::NoSpawner` still works.
pub use crate::runtime::NoSpawner;
pub use run::RunContext;

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::hash::Hash;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;

use hashbrown::HashMap;

use crate::checkpoint::{CheckpointStore, DynCheckpointStore, RunId, StateKey};
use crate::error::CanoError;
use crate::random::{JitterSource, RandomSource, SplitMix64, next_default_seed};
use crate::resource::{DefaultKey, Resources};

use crate::scheduler::AsRecoverable;
use durable::LedgeredRun;
use join::{DynJoinTask, JoinConfig, JoinStrategy, JoinTask};
use observer::{Observers, WorkflowObserver};
use retry::StoredConfig;
use saga::{CompensatableTask, RegisteredCompensatable};
use split::SplitSpec;
use stepped::{RegisteredStepped, SteppedTask};
use task::{RegisteredTask, Task};

/// Up to this many states, a lookup scans the state table instead of hashing: for a few
/// fieldless enums a scan is faster than a hash.
const LINEAR_LOOKUP_MAX: usize = 16;

/// What a state does when entered.
enum Handler<S, K> {
    Single(Arc<RegisteredTask<S, K>>),
    /// A [`RouterTask`](shapes::router::RouterTask): dispatched as `Single`, but it only
    /// decides, so a durable run records no checkpoint row for it.
    Router(Arc<RegisteredTask<S, K>>),
    Split(Arc<SplitSpec<S, K>>),
    Join(Arc<RegisteredJoin<S, K>>),
    Compensatable(Arc<RegisteredCompensatable<S, K>>),
    Stepped(Arc<RegisteredStepped<S, K>>),
}

impl<S, K> Clone for Handler<S, K> {
    fn clone(&self) -> Self {
        match self {
            Handler::Single(t) => Handler::Single(t.clone()),
            Handler::Router(t) => Handler::Router(t.clone()),
            Handler::Split(s) => Handler::Split(s.clone()),
            Handler::Join(j) => Handler::Join(j.clone()),
            Handler::Compensatable(c) => Handler::Compensatable(c.clone()),
            Handler::Stepped(t) => Handler::Stepped(t.clone()),
        }
    }
}

/// A workflow's checkpoint store and how it names states in the log.
struct Checkpointing<S> {
    store: Arc<dyn DynCheckpointStore>,
    state_key: fn(&S) -> Cow<'static, str>,
}

/// The settings a plain workflow leaves at their defaults (the durability ones, the total
/// timeout, observers, an injected random source, the state index of a large workflow):
/// one pointer until one is set, so a workflow of which a scheduler may hold thousands
/// carries no space for them (issue 15: three of them were 32 bytes more of every
/// workflow).
struct Settings<S, K> {
    extras: Option<Box<Extras<S, K>>>,
}

/// The settings of [`Settings::extras`].
struct Extras<S, K> {
    checkpoint: Option<Checkpointing<S>>,
    identity: RunIdentity,
    total_timeout: Option<Duration>,
    /// Some state was registered with a compensatable task (runs then keep a stack).
    has_sagas: bool,
    /// How a run with a ledger runs: set with a checkpoint store or a compensatable task,
    /// the only places that name the ledgered run's code (see [`LedgeredRun`]).
    ledgered: Option<LedgeredRun<S, K>>,
    /// The workflow as a job the scheduler's recovery scan lists and resumes: set with a
    /// checkpoint store, the only place that names that code (as `ledgered`).
    recoverable: Option<AsRecoverable<S, K>>,
    /// State → position in `states`, built only once there are more than
    /// [`LINEAR_LOOKUP_MAX`] states (below that a scan is faster, and most workflows have a
    /// handful of states: a scheduler may hold thousands of them).
    index: Option<HashMap<S, usize>>,
    observers: Observers<S>,
    /// Drawn from for retry jitter instead of the workflow's own generator.
    random: Option<Arc<dyn RandomSource>>,
}

/// What names and bounds a durable workflow's runs.
#[derive(Clone)]
struct RunIdentity {
    workflow_id: Option<RunId>,
    workflow_version: u32,
    compensation_timeout: Option<Duration>,
}

/// The identity of a workflow that sets none of it.
static DEFAULT_IDENTITY: RunIdentity = RunIdentity {
    workflow_id: None,
    workflow_version: 1,
    compensation_timeout: None,
};

impl<S, K> Settings<S, K> {
    const fn plain() -> Self {
        Settings { extras: None }
    }

    fn extras_mut(&mut self) -> &mut Extras<S, K> {
        self.extras.get_or_insert_with(|| {
            Box::new(Extras {
                checkpoint: None,
                identity: DEFAULT_IDENTITY.clone(),
                total_timeout: None,
                has_sagas: false,
                ledgered: None,
                recoverable: None,
                index: None,
                observers: Observers::none(),
                random: None,
            })
        })
    }

    fn index(&self) -> Option<&HashMap<S, usize>> {
        self.extras.as_ref()?.index.as_ref()
    }

    /// The observers, if one was added.
    fn observers(&self) -> Option<&Observers<S>> {
        self.extras.as_ref().map(|extras| &extras.observers)
    }

    fn random(&self) -> Option<&Arc<dyn RandomSource>> {
        self.extras.as_ref()?.random.as_ref()
    }

    fn checkpoint(&self) -> Option<&Checkpointing<S>> {
        self.extras.as_ref()?.checkpoint.as_ref()
    }

    fn total_timeout(&self) -> Option<Duration> {
        self.extras.as_ref()?.total_timeout
    }

    fn has_sagas(&self) -> bool {
        self.extras.as_ref().is_some_and(|extras| extras.has_sagas)
    }

    /// How a run with a ledger runs, if runs need one (a checkpoint store or a
    /// compensatable task).
    fn ledgered(&self) -> Option<LedgeredRun<S, K>> {
        self.extras.as_ref()?.ledgered
    }

    /// How the workflow is a recoverable job, if it has a checkpoint store.
    fn recoverable(&self) -> Option<AsRecoverable<S, K>> {
        self.extras.as_ref()?.recoverable
    }

    fn identity(&self) -> &RunIdentity {
        self.extras
            .as_ref()
            .map_or(&DEFAULT_IDENTITY, |extras| &extras.identity)
    }

    fn identity_mut(&mut self) -> &mut RunIdentity {
        &mut self.extras_mut().identity
    }

    fn workflow_id(&self) -> Option<&RunId> {
        self.identity().workflow_id.as_ref()
    }

    fn workflow_version(&self) -> u32 {
        self.identity().workflow_version
    }

    fn compensation_timeout(&self) -> Option<Duration> {
        self.identity().compensation_timeout
    }
}

impl<S: Clone + Eq + Hash, K> Clone for Settings<S, K> {
    fn clone(&self) -> Self {
        Settings {
            extras: self.extras.as_ref().map(|extras| {
                Box::new(Extras {
                    checkpoint: extras.checkpoint.as_ref().map(|c| Checkpointing {
                        store: c.store.clone(),
                        state_key: c.state_key,
                    }),
                    identity: extras.identity.clone(),
                    total_timeout: extras.total_timeout,
                    has_sagas: extras.has_sagas,
                    ledgered: extras.ledgered,
                    recoverable: extras.recoverable,
                    index: extras.index.clone(),
                    observers: extras.observers.clone(),
                    random: extras.random.clone(),
                })
            }),
        }
    }
}

struct RegisteredJoin<S, K> {
    task: Arc<dyn DynJoinTask<S, K>>,
    name: Cow<'static, str>,
    config: StoredConfig,
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
    /// The default source of retry jitter (see [`Workflow::with_random_source`]).
    random: SplitMix64,
    settings: Settings<S, K>,
    validated: AtomicBool,
}

impl<S, K> Workflow<S, K> {
    /// The observers, in the order they were added.
    fn observers(&self) -> &[Arc<dyn WorkflowObserver<S>>] {
        self.settings.observers().map_or(&[], Observers::as_slice)
    }

    /// Where retry jitter comes from.
    fn jitter(&self) -> JitterSource<'_> {
        JitterSource {
            own: &self.random,
            shared: self.settings.random(),
        }
    }
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
            random: SplitMix64::new(next_default_seed()),
            settings: Settings::plain(),
            validated: AtomicBool::new(false),
        }
    }

    fn slot_mut(&mut self, state: S) -> &mut StateSlot<S, K> {
        *self.validated.get_mut() = false;
        let at = match self.position(&state) {
            Some(at) => at,
            None => self.push_slot(state),
        };
        &mut self.states[at]
    }

    /// Appends a slot for the new `state`, returning its position. Up to
    /// [`LINEAR_LOOKUP_MAX`] states the table grows one slot at a time, so a small workflow
    /// holds no spare capacity; past that it grows geometrically and gets its index.
    fn push_slot(&mut self, state: S) -> usize {
        let at = self.states.len();
        if at < LINEAR_LOOKUP_MAX {
            self.states.reserve_exact(1);
        }
        match self
            .settings
            .extras
            .as_mut()
            .and_then(|extras| extras.index.as_mut())
        {
            Some(index) => {
                index.insert(state.clone(), at);
            }
            None if at == LINEAR_LOOKUP_MAX => {
                let mut index: HashMap<S, usize> = self
                    .states
                    .iter()
                    .enumerate()
                    .map(|(i, slot)| (slot.state.clone(), i))
                    .collect();
                index.insert(state.clone(), at);
                self.settings.extras_mut().index = Some(index);
            }
            None => {}
        }
        self.states.push(StateSlot {
            state,
            exit: false,
            handler: None,
        });
        at
    }

    fn position(&self, state: &S) -> Option<usize> {
        match self.settings.index() {
            Some(index) => index.get(state).copied(),
            None => self.states.iter().position(|slot| slot.state == *state),
        }
    }

    fn slot(&self, state: &S) -> Option<&StateSlot<S, K>> {
        self.position(state).map(|at| &self.states[at])
    }

    /// Runs `task` when `state` is entered; the state it returns comes next. Registering a
    /// state again replaces its handler.
    pub fn register<T: Task<S, K> + 'static>(mut self, state: S, task: T) -> Self {
        self.slot_mut(state).handler = Some(Handler::Single(RegisteredTask::shared(task)));
        self
    }

    /// Runs `router` when `state` is entered; the state it returns comes next. A router is
    /// dispatched exactly like a task given to [`register`](Self::register) (same cost, same
    /// observer events, its [`config`](shapes::router::RouterTask::config) applies), but it
    /// only decides: a checkpointed run writes no row for it and gives it no idempotency key
    /// of its own. A crash while a router runs resumes at the state before it (or at the
    /// router, if the run started there: a run's first row always names where it began).
    pub fn register_router<T>(mut self, state: S, router: T) -> Self
    where
        T: shapes::router::RouterTask<S, K> + 'static,
    {
        let task = RegisteredTask::shared(shapes::router::RouterAsTask(router));
        self.slot_mut(state).handler = Some(Handler::Router(task));
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
        let branches = tasks.into_iter().map(RegisteredTask::shared).collect();
        self.slot_mut(state).handler = Some(Handler::Split(Arc::new(SplitSpec { branches, join })));
        self
    }

    /// Runs `task` with the results of the split that led to `state` (which must be the
    /// `join_state` of at least one split; validation checks it).
    pub fn register_join<T: JoinTask<S, K> + 'static>(mut self, state: S, task: T) -> Self {
        let join = RegisteredJoin {
            name: task.name(),
            config: StoredConfig::new(task.config()),
            task: Arc::new(task),
        };
        self.slot_mut(state).handler = Some(Handler::Join(Arc::new(join)));
        self
    }

    /// Runs the compensatable `task` when `state` is entered; if the run fails later, its
    /// compensation is part of the rollback (see [`saga`]).
    pub fn register_compensatable<T: CompensatableTask<S, K> + 'static>(
        mut self,
        state: S,
        task: T,
    ) -> Self {
        let extras = self.settings.extras_mut();
        extras.has_sagas = true;
        extras.ledgered = Some(durable::ledgered_run::<S, K>);
        self.slot_mut(state).handler = Some(Handler::Compensatable(Arc::new(
            RegisteredCompensatable::new(task),
        )));
        self
    }

    /// Runs the stepped `task` when `state` is entered, one step at a time, persisting its
    /// cursor after each step in a checkpointed run (see [`stepped`]).
    pub fn register_stepped<T: SteppedTask<S, K> + 'static>(mut self, state: S, task: T) -> Self {
        self.slot_mut(state).handler =
            Some(Handler::Stepped(Arc::new(RegisteredStepped::new(task))));
        self
    }

    /// The run id of [`orchestrate_with`](Self::orchestrate_with) in a checkpointed
    /// workflow: the key of its log, and what [`resume_from_with`](Self::resume_from_with)
    /// takes. One id serves one live run at a time: a second run started while the first is
    /// unfinished fails with a [`CheckpointError::Conflict`](crate::checkpoint::CheckpointError::Conflict)
    /// (clone the workflow, which is cheap, to give concurrent runs their own ids).
    pub fn with_workflow_id(mut self, id: impl Into<RunId>) -> Self {
        self.settings.identity_mut().workflow_id = Some(id.into());
        self
    }

    /// The version stamped on every row this workflow writes (default 1). Change it when
    /// the workflow's shape changes incompatibly; resuming a log of another version fails
    /// with [`CanoError::WorkflowVersionMismatch`].
    pub fn with_workflow_version(mut self, version: u32) -> Self {
        self.settings.identity_mut().workflow_version = version;
        self
    }

    /// Bounds a rollback drain as a whole (each compensation is also bounded by its task's
    /// `attempt_timeout`), and how long a compensatable task in flight when the run is
    /// cancelled or times out may still take to finish. Default: half the total timeout, at
    /// most 30 s; 30 s without a total timeout. Compensations that the budget leaves no time for fail with
    /// [`CanoError::Timeout`] in the [`CanoError::CompensationFailed`] list and are retried
    /// by a resume.
    pub fn with_compensation_timeout(mut self, budget: Duration) -> Self {
        self.settings.identity_mut().compensation_timeout = Some(budget);
        self
    }

    /// The workflow's id ([`with_workflow_id`](Self::with_workflow_id)).
    pub fn workflow_id(&self) -> Option<&RunId> {
        self.settings.workflow_id()
    }

    /// The workflow's version ([`with_workflow_version`](Self::with_workflow_version)).
    pub fn workflow_version(&self) -> u32 {
        self.settings.workflow_version()
    }

    /// The workflow as a recoverable job, if it has a checkpoint store (see
    /// [`AsRecoverable`]).
    pub(crate) fn settings_recoverable(&self) -> Option<AsRecoverable<S, K>> {
        self.settings.recoverable()
    }

    /// Whether runs are checkpointed ([`with_checkpoint_store`](Self::with_checkpoint_store)).
    pub fn is_checkpointed(&self) -> bool {
        self.settings.checkpoint().is_some()
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
    /// run that exceeds it fails with [`CanoError::Timeout`]: the waiting task is dropped
    /// at its current `.await`, and a run whose tasks never wait stops at the next state or
    /// retry. Applies to scheduled runs ([`run_fsm`](Self::run_fsm)) too.
    pub fn with_timeout(mut self, limit: Duration) -> Self {
        self.settings.extras_mut().total_timeout = Some(limit);
        self
    }

    /// Adds an observer; observers are called in the order they were added.
    pub fn with_observer(mut self, observer: Arc<dyn WorkflowObserver<S>>) -> Self {
        self.settings.extras_mut().observers.push(observer);
        self
    }

    /// Draws retry jitter from `random` (default: a
    /// [`SplitMix64`] seeded per workflow).
    pub fn with_random_source(mut self, random: Arc<dyn RandomSource>) -> Self {
        self.settings.extras_mut().random = Some(random);
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

    /// The state whose [`StateKey`] is `key`, among registered and exit states.
    fn state_by_key(&self, key: &str) -> Option<&S> {
        let checkpoint = self.settings.checkpoint()?;
        self.states
            .iter()
            .find(|slot| {
                (slot.exit || slot.handler.is_some()) && (checkpoint.state_key)(&slot.state) == key
            })
            .map(|slot| &slot.state)
    }

    fn validate_durability(&self) -> Result<(), CanoError> {
        let mut names: Vec<&str> = Vec::new();
        for slot in &self.states {
            if let Some(Handler::Compensatable(task)) = &slot.handler {
                if names.contains(&&*task.name) {
                    return Err(CanoError::configuration(alloc::format!(
                        "Two compensatable tasks are named `{}`: a rollback finds a compensation by its task's name, so names must be unique",
                        task.name
                    )));
                }
                names.push(&task.name);
            }
        }
        let Some(checkpoint) = self.settings.checkpoint() else {
            return Ok(());
        };
        let known: Vec<&StateSlot<S, K>> = self
            .states
            .iter()
            .filter(|slot| slot.exit || slot.handler.is_some())
            .collect();
        for (i, a) in known.iter().enumerate() {
            let key = (checkpoint.state_key)(&a.state);
            if let Some(b) = known[i + 1..]
                .iter()
                .find(|b| (checkpoint.state_key)(&b.state) == key)
            {
                return Err(CanoError::configuration(alloc::format!(
                    "States {:?} and {:?} have the same state key `{key}`: a checkpoint log could not tell them apart",
                    a.state,
                    b.state
                )));
            }
        }
        Ok(())
    }

    /// Checks the workflow's shape. Every error is a [`CanoError::Configuration`]:
    ///
    /// * no registered state, or no exit state;
    /// * a split whose `PartialTimeout` has no timeout, whose `Percentage` is not in
    ///   `(0, 1]`, whose bulkhead is 0, whose strategy needs more branches than it has, or
    ///   whose `join_state` is neither registered nor an exit state;
    /// * a [`JoinTask`] state that no split joins into;
    /// * two compensatable tasks with one name, or (in a checkpointed workflow) two states
    ///   with one [`StateKey`].
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
        self.validate_durability()
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
}

impl<S, K> Workflow<S, K>
where
    S: StateKey + Clone + Eq + Hash + fmt::Debug + Send + Sync + 'static,
    K: Send + Sync + 'static,
{
    /// Checkpoints every run into `store` (see [`checkpoint`](crate::checkpoint)): a row
    /// before each state's task, so a crashed run can be resumed with
    /// [`resume_from_with`](Self::resume_from_with). States are named in the log by their
    /// [`StateKey`]. Runs need an id: [`with_workflow_id`](Self::with_workflow_id), or a
    /// scheduled run's own.
    ///
    /// A run that completes finishes its log ([`RunOutcome::Completed`](crate::checkpoint::RunOutcome::Completed)),
    /// and so does a clean rollback. A run that fails, times out or is cancelled with
    /// nothing to compensate keeps its log, so it can be resumed; so does a rollback with a
    /// failed compensation. What a failing store does to a run is described in the
    /// [`checkpoint`](crate::checkpoint#what-happens-when-the-store-fails) module.
    pub fn with_checkpoint_store(mut self, store: impl CheckpointStore + 'static) -> Self {
        *self.validated.get_mut() = false;
        let extras = self.settings.extras_mut();
        extras.checkpoint = Some(Checkpointing {
            store: Arc::new(store),
            state_key: <S as StateKey>::state_key,
        });
        extras.ledgered = Some(durable::ledgered_run::<S, K>);
        extras.recoverable = Some(crate::scheduler::as_recoverable::<S, K>);
        self
    }
}

impl<S: Clone + Eq + Hash, K> Clone for Workflow<S, K> {
    /// Shares the resources, tasks and observers (and an injected random source; the default
    /// jitter generator is forked, so the clone's retries do not repeat this one's delays); the
    /// clone validates again on first run.
    fn clone(&self) -> Self {
        Workflow {
            resources: self.resources.clone(),
            states: self.states.clone(),
            random: self.random.fork(),
            settings: self.settings.clone(),
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
            .field("total_timeout", &self.settings.total_timeout())
            .field("observers", &self.observers().len())
            .field("checkpointed", &self.settings.checkpoint().is_some())
            .field("workflow_id", &self.settings.workflow_id())
            .field("workflow_version", &self.settings.workflow_version())
            .field("resources", &self.resources)
            .finish()
    }
}
