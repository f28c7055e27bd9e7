//! [`Task`]: one unit of work in a workflow state, and [`TaskResult`], the state it leads to.
//!
//! Tasks are written with a plain `async fn run` (native async functions in traits). The
//! workflow stores them behind [`DynTask`], an object-safe form implemented for every task,
//! so neither boxing code nor macros are needed to register tasks of different types.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::sync::Arc;
use core::future::Future;
use core::marker::PhantomData;

use futures::future::BoxFuture;

use crate::checkpoint::{IdempotencyKey, RunId};
use crate::error::CanoError;
use crate::resource::{DefaultKey, Resources};
use crate::workflow::retry::{
    DEFAULT_CONFIG, MINIMAL_CONFIG, MakeAttempt, StoredConfig, TaskConfig,
};

/// What a task returns: the state the workflow enters next.
///
/// cano 0.12 also had `TaskResult::Split(Vec<S>)`, which a single task could return but
/// which always failed the workflow at run time. Parallelism is declared with
/// [`Workflow::register_split`](crate::Workflow::register_split) instead, so that variant is
/// gone: the mistake cannot be written.
///
/// ```
/// use cano_core::TaskResult;
///
/// #[derive(Debug, PartialEq)]
/// enum Step { Next }
/// let r: TaskResult<Step> = Step::Next.into();
/// assert_eq!(r, TaskResult::Single(Step::Next));
/// assert_eq!(r.into_state(), Step::Next);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskResult<S> {
    /// Continue in this state.
    Single(S),
}

impl<S> TaskResult<S> {
    /// The state to enter next.
    pub fn into_state(self) -> S {
        match self {
            TaskResult::Single(s) => s,
        }
    }

    /// The state to enter next, by reference.
    pub fn state(&self) -> &S {
        match self {
            TaskResult::Single(s) => s,
        }
    }
}

impl<S> From<S> for TaskResult<S> {
    fn from(state: S) -> Self {
        TaskResult::Single(state)
    }
}

/// What a task's attempt runs with: the workflow's [`Resources`] and, in a checkpointed run,
/// the attempt's [`IdempotencyKey`].
///
/// Tasks that need the key implement [`Task::run_with`] instead of [`Task::run`]; every
/// other task keeps its `run` and never sees the context. It is a small `Copy` value.
///
/// ```
/// use cano_core::{CanoError, Resources, Task, TaskContext, TaskResult};
///
/// #[derive(Debug, Clone, PartialEq, Eq, Hash)]
/// enum State { Charge, Done }
///
/// struct Charge;
/// impl Task<State> for Charge {
///     async fn run_with(&self, ctx: TaskContext<'_>) -> Result<TaskResult<State>, CanoError> {
///         // Effectively-once: the payment provider deduplicates on this key.
///         let _key = ctx.idempotency_key().map(|key| key.visit_key().to_string());
///         Ok(TaskResult::Single(State::Done))
///     }
/// }
/// ```
pub struct TaskContext<'a, K = DefaultKey> {
    resources: &'a Resources<K>,
    key: Option<IdempotencyKey<'a>>,
}

impl<K> Clone for TaskContext<'_, K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K> Copy for TaskContext<'_, K> {}

impl<'a, K> TaskContext<'a, K> {
    /// A context with no idempotency key (to call a task outside a workflow, in a test).
    pub fn new(resources: &'a Resources<K>) -> Self {
        TaskContext {
            resources,
            key: None,
        }
    }

    /// The context with `key` as its idempotency key.
    pub fn with_idempotency_key(mut self, key: IdempotencyKey<'a>) -> Self {
        self.key = Some(key);
        self
    }

    /// The workflow's resources.
    pub fn resources(&self) -> &'a Resources<K> {
        self.resources
    }

    /// The key of this attempt (run, state visit, state key, attempt number), or `None` in a
    /// run without a checkpoint store and in split branches. A state re-run after a resume
    /// sees the same keys as in the run that crashed (see
    /// [`IdempotencyKey`]).
    pub fn idempotency_key(&self) -> Option<IdempotencyKey<'a>> {
        self.key
    }
}

impl<K> core::fmt::Debug for TaskContext<'_, K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TaskContext")
            .field("idempotency_key", &self.key)
            .finish_non_exhaustive()
    }
}

/// The parts of an [`IdempotencyKey`] the engine knows before an attempt: everything but
/// the attempt number.
#[derive(Clone, Copy)]
pub(crate) struct KeyBase<'a> {
    pub(crate) run: &'a RunId,
    pub(crate) visit: u64,
    pub(crate) state: &'a str,
}

impl<'a> KeyBase<'a> {
    pub(crate) fn context<K>(
        base: Option<Self>,
        resources: &'a Resources<K>,
        attempt: u32,
    ) -> TaskContext<'a, K> {
        TaskContext {
            resources,
            key: base.map(|b| IdempotencyKey::new(b.run, b.visit, b.state, attempt)),
        }
    }
}

/// One unit of work: runs against the workflow's [`Resources`] and names the next state.
///
/// Implement [`run`](Task::run) (or [`run_bare`](Task::run_bare) if the task needs no
/// resources) with a plain `async fn`. The future must be `Send` (see the crate docs on the
/// `Send` story). [`config`](Task::config) is read once, when the task is registered.
///
/// ```
/// use cano_core::{CanoError, Resources, Task, TaskResult, Workflow};
/// use cano_core::testing::Simulation;
///
/// #[derive(Debug, Clone, PartialEq, Eq, Hash)]
/// enum State { Fetch, Done }
///
/// struct Fetch;
/// impl Task<State> for Fetch {
///     async fn run(&self, _res: &Resources) -> Result<TaskResult<State>, CanoError> {
///         Ok(TaskResult::Single(State::Done))
///     }
/// }
///
/// let workflow = Workflow::bare().register(State::Fetch, Fetch).add_exit_state(State::Done);
/// let sim = Simulation::new();
/// let end = sim.block_on(workflow.orchestrate_on(&sim.clock(), State::Fetch));
/// assert_eq!(end, Ok(State::Done));
/// ```
pub trait Task<S, K = DefaultKey>: Send + Sync {
    /// What the workflow calls: does the work with its [`TaskContext`]. The default calls
    /// [`run`](Task::run) with the context's resources; implement this one instead when the
    /// task needs its [`IdempotencyKey`].
    fn run_with(
        &self,
        ctx: TaskContext<'_, K>,
    ) -> impl Future<Output = Result<TaskResult<S>, CanoError>> + Send {
        self.run(ctx.resources())
    }

    /// Does the work. The default calls [`run_bare`](Task::run_bare).
    ///
    /// An `Err` fails the attempt; the task's [`TaskConfig`] decides whether it is retried.
    fn run(
        &self,
        res: &Resources<K>,
    ) -> impl Future<Output = Result<TaskResult<S>, CanoError>> + Send {
        let _ = res;
        self.run_bare()
    }

    /// Does the work without resources. The default returns a
    /// [`CanoError::Configuration`] saying that neither `run` nor `run_bare` was written;
    /// like every configuration error it is reported at once, never retried.
    fn run_bare(&self) -> impl Future<Output = Result<TaskResult<S>, CanoError>> + Send {
        async {
            Err(CanoError::configuration(alloc::format!(
                "task {}: neither `run` nor `run_bare` is implemented",
                crate::type_name::short_type_name::<Self>()
            )))
        }
    }

    /// Retry, timeout and circuit-breaker settings. Default: [`TaskConfig::default`]
    /// (exponential backoff, 3 retries), as in cano 0.12.
    fn config(&self) -> TaskConfig {
        TaskConfig::default()
    }

    /// The name observers see. Default: the type's name.
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(core::any::type_name::<Self>())
    }
}

/// The object-safe form of [`Task`], implemented for every task.
///
/// Use it to hold tasks of different types together, for instance in one
/// [`register_split`](crate::Workflow::register_split):
/// `vec![Box::new(A) as Box<dyn DynTask<State>>, Box::new(B)]`. `Box<dyn DynTask>` and
/// `Arc<dyn DynTask>` are tasks themselves.
pub trait DynTask<S, K = DefaultKey>: Send + Sync {
    /// [`Task::run_with`] without an idempotency key, its future boxed (for a task that
    /// implements `run`, that is `run`).
    fn run_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
    ) -> BoxFuture<'a, Result<TaskResult<S>, CanoError>>;
    /// [`Task::run_with`] with its future boxed.
    fn run_with_dyn<'a>(
        &'a self,
        ctx: TaskContext<'a, K>,
    ) -> BoxFuture<'a, Result<TaskResult<S>, CanoError>>;
    /// [`Task::config`].
    fn config_dyn(&self) -> TaskConfig;
    /// [`Task::name`].
    fn name_dyn(&self) -> Cow<'static, str>;
}

impl<S: 'static, K: 'static, T: Task<S, K>> DynTask<S, K> for T {
    fn run_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
    ) -> BoxFuture<'a, Result<TaskResult<S>, CanoError>> {
        // Through `run_with`, so a task that implements only `run_with` runs here too.
        Box::pin(self.run_with(TaskContext::new(res)))
    }
    fn run_with_dyn<'a>(
        &'a self,
        ctx: TaskContext<'a, K>,
    ) -> BoxFuture<'a, Result<TaskResult<S>, CanoError>> {
        Box::pin(self.run_with(ctx))
    }
    fn config_dyn(&self) -> TaskConfig {
        self.config()
    }
    fn name_dyn(&self) -> Cow<'static, str> {
        self.name()
    }
}

/// A task as a workflow stores it: its name and config read once, and the task itself,
/// in one allocation (a workflow keeps it behind an `Arc`, erased to
/// `RegisteredTask<S, K>`: the `T = dyn DynTask` default).
pub(crate) struct RegisteredTask<S, K, T: ?Sized = dyn DynTask<S, K>> {
    pub(crate) label: Label,
    pub(crate) _types: PhantomData<fn(S, K)>,
    pub(crate) task: T,
}

/// A registered task's name and config in 24 bytes (issue 15: they were 40): most tasks
/// have a static name (the default, their type's) and a stock config, kept inline; any
/// other pair goes behind one pointer (a custom config was behind one already).
pub(crate) enum Label {
    /// A static name and [`TaskConfig::default`].
    Default(&'static str),
    /// A static name and [`TaskConfig::minimal`].
    Minimal(&'static str),
    /// Anything else.
    Other(Box<(Cow<'static, str>, TaskConfig)>),
}

impl Label {
    pub(crate) fn new(name: Cow<'static, str>, config: TaskConfig) -> Self {
        match (name, StoredConfig::new(config)) {
            (Cow::Borrowed(name), StoredConfig::Default) => Label::Default(name),
            (Cow::Borrowed(name), StoredConfig::Minimal) => Label::Minimal(name),
            (name, config) => Label::Other(Box::new((name, config.into_config()))),
        }
    }
}

impl<S, K, T: ?Sized> RegisteredTask<S, K, T> {
    /// The task's name ([`Task::name`], read once).
    pub(crate) fn name(&self) -> &str {
        match &self.label {
            Label::Default(name) | Label::Minimal(name) => name,
            Label::Other(other) => &other.0,
        }
    }

    /// The task's config ([`Task::config`], read once).
    pub(crate) fn config(&self) -> &TaskConfig {
        match &self.label {
            Label::Default(_) => &DEFAULT_CONFIG,
            Label::Minimal(_) => &MINIMAL_CONFIG,
            Label::Other(other) => &other.1,
        }
    }

    /// [`TaskConfig::first_attempt_is_bare`], without reading a stock config (neither has
    /// a breaker, a timeout or a rate limit): asked once per state a run enters.
    pub(crate) fn first_attempt_is_bare(&self) -> bool {
        match &self.label {
            Label::Default(_) | Label::Minimal(_) => true,
            Label::Other(other) => other.1.first_attempt_is_bare(),
        }
    }
}

impl<S: 'static, K: 'static> RegisteredTask<S, K> {
    /// `task`, registered and erased.
    pub(crate) fn shared<T: Task<S, K> + 'static>(task: T) -> Arc<Self> {
        Arc::new(RegisteredTask {
            label: Label::new(task.name(), task.config()),
            _types: PhantomData,
            task,
        })
    }
}

/// Makes attempts of a registered task (a nameable [`MakeAttempt`], so the engine can keep
/// many retry loops in a `Vec`).
pub(crate) struct RunTask<'a, S, K> {
    pub(crate) task: &'a dyn DynTask<S, K>,
    pub(crate) resources: &'a Resources<K>,
    /// The idempotency key's parts, in a checkpointed run.
    pub(crate) key: Option<KeyBase<'a>>,
    /// Attempts made so far.
    pub(crate) attempts: u32,
}

/// Makes attempts of a split branch: like [`RunTask`] without an idempotency key (branches
/// have none), so a split's many retry loops stay small.
pub(crate) struct RunBranch<'a, S, K> {
    pub(crate) task: &'a dyn DynTask<S, K>,
    pub(crate) resources: &'a Resources<K>,
}

impl<'a, S, K> RunBranch<'a, S, K> {
    pub(crate) fn new(task: &'a dyn DynTask<S, K>, resources: &'a Resources<K>) -> Self {
        RunBranch { task, resources }
    }
}

impl<'a, S, K> MakeAttempt<'a, TaskResult<S>> for RunBranch<'a, S, K> {
    fn make(&mut self) -> BoxFuture<'a, Result<TaskResult<S>, CanoError>> {
        self.task.run_dyn(self.resources)
    }
}

impl<'a, S, K> MakeAttempt<'a, TaskResult<S>> for RunTask<'a, S, K> {
    fn make(&mut self) -> BoxFuture<'a, Result<TaskResult<S>, CanoError>> {
        self.attempts += 1;
        match self.key {
            None => self.task.run_dyn(self.resources),
            Some(_) => {
                self.task
                    .run_with_dyn(KeyBase::context(self.key, self.resources, self.attempts))
            }
        }
    }
}

macro_rules! forward_task {
    ($ty:ty) => {
        impl<S: 'static, K: Sync + 'static> Task<S, K> for $ty {
            fn run(
                &self,
                res: &Resources<K>,
            ) -> impl Future<Output = Result<TaskResult<S>, CanoError>> + Send {
                async move { (**self).run_dyn(res).await }
            }
            fn run_with(
                &self,
                ctx: TaskContext<'_, K>,
            ) -> impl Future<Output = Result<TaskResult<S>, CanoError>> + Send {
                async move { (**self).run_with_dyn(ctx).await }
            }
            fn config(&self) -> TaskConfig {
                (**self).config_dyn()
            }
            fn name(&self) -> Cow<'static, str> {
                (**self).name_dyn()
            }
        }
    };
}

forward_task!(Box<dyn DynTask<S, K>>);
forward_task!(Arc<dyn DynTask<S, K>>);

impl<S: 'static, K: 'static, T: Task<S, K>> Task<S, K> for Arc<T> {
    fn run(
        &self,
        res: &Resources<K>,
    ) -> impl Future<Output = Result<TaskResult<S>, CanoError>> + Send {
        T::run(self, res)
    }
    fn run_with(
        &self,
        ctx: TaskContext<'_, K>,
    ) -> impl Future<Output = Result<TaskResult<S>, CanoError>> + Send {
        T::run_with(self, ctx)
    }
    fn config(&self) -> TaskConfig {
        T::config(self)
    }
    fn name(&self) -> Cow<'static, str> {
        T::name(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Named(Cow<'static, str>, TaskConfig);

    impl Task<u8> for Named {
        async fn run_bare(&self) -> Result<TaskResult<u8>, CanoError> {
            Ok(TaskResult::Single(0))
        }
        fn name(&self) -> Cow<'static, str> {
            self.0.clone()
        }
        fn config(&self) -> TaskConfig {
            self.1.clone()
        }
    }

    /// A registered task keeps its name and config as given, in 24 bytes when both are
    /// the common kind (issue 15).
    #[test]
    fn a_label_keeps_the_name_and_config_as_given() {
        let timeout =
            TaskConfig::default().with_attempt_timeout(core::time::Duration::from_secs(1));
        let cases = [
            (Cow::Borrowed("a"), TaskConfig::default(), "Default"),
            (Cow::Borrowed("b"), TaskConfig::minimal(), "Minimal"),
            (Cow::Owned("c".into()), TaskConfig::minimal(), "Other"),
            (Cow::Borrowed("d"), timeout, "Other"),
        ];
        for (name, config, kind) in cases {
            let task =
                RegisteredTask::<u8, DefaultKey>::shared(Named(name.clone(), config.clone()));
            assert_eq!(task.name(), name);
            assert_eq!(task.config().retry_mode, config.retry_mode, "{name}");
            assert_eq!(
                task.config().attempt_timeout,
                config.attempt_timeout,
                "{name}"
            );
            assert_eq!(
                task.first_attempt_is_bare(),
                config.first_attempt_is_bare(),
                "{name}"
            );
            let seen = match task.label {
                Label::Default(_) => "Default",
                Label::Minimal(_) => "Minimal",
                Label::Other(_) => "Other",
            };
            assert_eq!(seen, kind, "{name}");
        }
        if cfg!(target_pointer_width = "64") {
            assert_eq!(core::mem::size_of::<Label>(), 24);
        }
    }
}
