//! Split/join: how a split state decides it is done ([`JoinStrategy`], [`JoinConfig`],
//! [`JoinTracker`]), what it hands on ([`SplitResult`]), and [`JoinTask`], a task that
//! receives those results.
//!
//! The decision is pure: [`JoinTracker`] takes branch outcomes one at a time and says
//! whether the join is satisfied, failed, or still open. A split ends as soon as its
//! outcome is certain (cano 0.12 made `All`, `Quorum` and `Percentage` wait for every
//! branch, and failed a satisfied quorum on a later timeout); the remaining branches are
//! cancelled.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::time::Duration;

use futures::future::BoxFuture;

use crate::error::{CanoError, Decimal};
use crate::resource::{DefaultKey, Resources};
use crate::workflow::retry::{MakeAttempt, TaskConfig};
use crate::workflow::task::TaskResult;

/// When a split state counts as successful.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JoinStrategy {
    /// Every branch succeeds. Fails at the first branch failure.
    All,
    /// At least one branch succeeds.
    Any,
    /// At least `n` branches succeed.
    Quorum(usize),
    /// At least `ceil(total · p)` branches succeed; `p` in `(0, 1]`.
    Percentage(f64),
    /// At least `m` branches succeed; the rest are cancelled once they do.
    PartialResults(usize),
    /// Wait for every branch or the split's timeout (required), then go on if at least one
    /// branch completed, successfully or not.
    PartialTimeout,
}

impl JoinStrategy {
    /// How many successes satisfy this strategy out of `total` branches (for
    /// `PartialTimeout`: how many completions).
    pub fn required(&self, total: usize) -> usize {
        match *self {
            JoinStrategy::All => total,
            JoinStrategy::Any | JoinStrategy::PartialTimeout => 1,
            JoinStrategy::Quorum(n) | JoinStrategy::PartialResults(n) => n,
            JoinStrategy::Percentage(p) => {
                let exact = total as f64 * p;
                // `as` saturates; ceil by hand (`f64::ceil` lives in std).
                let floor = exact as usize;
                if (floor as f64) < exact {
                    floor.saturating_add(1)
                } else {
                    floor
                }
            }
        }
    }

    /// cano 0.12's check: whether `completed` successful branches out of `total` satisfy
    /// the strategy.
    pub fn is_satisfied(&self, completed: usize, total: usize) -> bool {
        completed >= self.required(total)
    }

    /// Why this strategy can never be met by `total` branches, or `None` if it can.
    pub(crate) fn impossibility(&self, total: usize) -> Option<Cow<'static, str>> {
        if let JoinStrategy::Percentage(p) = *self
            && !(p.is_finite() && p > 0.0 && p <= 1.0)
        {
            return Some(Cow::Owned(alloc::format!(
                "JoinStrategy::Percentage({}) must be in (0, 1]",
                Decimal(p)
            )));
        }
        let required = self.required(total);
        (required > total).then(|| {
            Cow::Owned(alloc::format!(
                "{self} needs {required} branch(es) but the split has {total}: it can never be satisfied"
            ))
        })
    }
}

/// As the variant is written (`Quorum(2)`, `Percentage(0.750)`), for messages; printed
/// without the float printer (it would cost firmware about 12 KB of flash).
impl fmt::Display for JoinStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            JoinStrategy::All => f.write_str("All"),
            JoinStrategy::Any => f.write_str("Any"),
            JoinStrategy::Quorum(n) => write!(f, "Quorum({n})"),
            JoinStrategy::Percentage(p) => write!(f, "Percentage({})", Decimal(p)),
            JoinStrategy::PartialResults(m) => write!(f, "PartialResults({m})"),
            JoinStrategy::PartialTimeout => f.write_str("PartialTimeout"),
        }
    }
}

/// How a split state joins: strategy, where to go next, and limits.
///
/// ```
/// use cano_core::{JoinConfig, JoinStrategy};
/// use core::time::Duration;
///
/// #[derive(Debug, Clone, PartialEq)]
/// enum State { Merge }
/// let join = JoinConfig::new(JoinStrategy::Quorum(2), State::Merge)
///     .with_timeout(Duration::from_secs(5))
///     .with_bulkhead(4);
/// assert_eq!(join.bulkhead, Some(4));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct JoinConfig<S> {
    /// When the split counts as successful.
    pub strategy: JoinStrategy,
    /// A deadline for the whole split, counted from its start (queue time behind the
    /// bulkhead included).
    pub timeout: Option<Duration>,
    /// The state entered after a successful join.
    pub join_state: S,
    /// At most this many branches run at once (`Some(0)` is rejected by validation).
    pub bulkhead: Option<usize>,
    /// Run branches on the run's [`Spawner`](crate::Spawner) when it has one, for
    /// parallelism on a multi-threaded runtime. Without a spawner (or when it refuses a
    /// branch) the branch runs in place, inside the workflow's own future.
    pub spawn_branches: bool,
}

impl<S> JoinConfig<S> {
    /// A join with `strategy` that continues in `join_state`; no timeout, no bulkhead,
    /// branches polled in place.
    pub fn new(strategy: JoinStrategy, join_state: S) -> Self {
        JoinConfig {
            strategy,
            timeout: None,
            join_state,
            bulkhead: None,
            spawn_branches: false,
        }
    }

    /// Sets the split's timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the state entered after the join.
    pub fn with_join_state(mut self, join_state: S) -> Self {
        self.join_state = join_state;
        self
    }

    /// Caps how many branches run at once.
    pub fn with_bulkhead(mut self, max_concurrent: usize) -> Self {
        self.bulkhead = Some(max_concurrent);
        self
    }

    /// Runs branches on the run's spawner, when it has one (see
    /// [`spawn_branches`](Self::spawn_branches)).
    pub fn with_spawned_branches(mut self) -> Self {
        self.spawn_branches = true;
        self
    }
}

/// What a split produced, handed to the join state when it is a [`JoinTask`].
///
/// Branch indices are positions in the task list given to
/// [`register_split`](crate::Workflow::register_split); entries are in completion order.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitResult<S> {
    /// Branches that succeeded, with what they returned.
    pub successes: Vec<(usize, TaskResult<S>)>,
    /// Branches that failed, with their final error.
    pub errors: Vec<(usize, CanoError)>,
    /// Branches cancelled (or never started) because the join was decided or timed out.
    pub cancelled: Vec<usize>,
}

impl<S> Default for SplitResult<S> {
    fn default() -> Self {
        SplitResult {
            successes: Vec::new(),
            errors: Vec::new(),
            cancelled: Vec::new(),
        }
    }
}

impl<S> SplitResult<S> {
    /// Branches that finished, successfully or not.
    pub fn completed_count(&self) -> usize {
        self.successes.len() + self.errors.len()
    }

    /// All branches of the split.
    pub fn total_count(&self) -> usize {
        self.completed_count() + self.cancelled.len()
    }
}

/// A join's verdict so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinDecision {
    /// Not decided: wait for more branches.
    Pending,
    /// Satisfied: go to the join state (remaining branches are cancelled).
    Satisfied,
    /// Can no longer be satisfied.
    Failed,
}

/// The pure decision of a join: feed it branch outcomes, read the verdict.
///
/// ```
/// use cano_core::{JoinDecision, JoinStrategy, JoinTracker};
///
/// let mut quorum = JoinTracker::new(JoinStrategy::Quorum(2), 4);
/// assert_eq!(quorum.record(true), JoinDecision::Pending);
/// assert_eq!(quorum.record(false), JoinDecision::Pending);
/// assert_eq!(quorum.record(true), JoinDecision::Satisfied); // the 4th branch is not awaited
///
/// let mut all = JoinTracker::new(JoinStrategy::All, 3);
/// assert_eq!(all.record(false), JoinDecision::Failed); // fails fast
/// ```
#[derive(Debug, Clone)]
pub struct JoinTracker {
    strategy: JoinStrategy,
    total: usize,
    required: usize,
    successes: usize,
    failures: usize,
}

impl JoinTracker {
    /// A tracker for `total` branches.
    pub fn new(strategy: JoinStrategy, total: usize) -> Self {
        JoinTracker {
            strategy,
            total,
            required: strategy.required(total),
            successes: 0,
            failures: 0,
        }
    }

    /// Records one branch outcome and returns the verdict.
    pub fn record(&mut self, success: bool) -> JoinDecision {
        if success {
            self.successes += 1;
        } else {
            self.failures += 1;
        }
        self.decision()
    }

    /// The verdict with the outcomes recorded so far.
    pub fn decision(&self) -> JoinDecision {
        let completed = self.successes + self.failures;
        let remaining = self.total.saturating_sub(completed);
        if self.strategy == JoinStrategy::PartialTimeout {
            return match (remaining, completed) {
                (0, 0) => JoinDecision::Failed,
                (0, _) => JoinDecision::Satisfied,
                _ => JoinDecision::Pending,
            };
        }
        if self.successes >= self.required {
            JoinDecision::Satisfied
        } else if self.successes + remaining < self.required {
            JoinDecision::Failed
        } else {
            JoinDecision::Pending
        }
    }

    /// The verdict when the split's timeout fires: `PartialTimeout` is satisfied by any
    /// completed branch; every other strategy fails unless already satisfied.
    pub fn on_timeout(&self) -> JoinDecision {
        match self.strategy {
            JoinStrategy::PartialTimeout if self.successes + self.failures > 0 => {
                JoinDecision::Satisfied
            }
            _ if self.decision() == JoinDecision::Satisfied => JoinDecision::Satisfied,
            _ => JoinDecision::Failed,
        }
    }

    /// Successful branches so far.
    pub fn successes(&self) -> usize {
        self.successes
    }

    /// Failed branches so far.
    pub fn failures(&self) -> usize {
        self.failures
    }
}

/// A task for a split's join state that receives the split's results.
///
/// Register it with [`Workflow::register_join`](crate::Workflow::register_join) under the
/// `join_state` of one or more splits. Retries re-run `join` with the same results.
///
/// ```
/// use cano_core::{CanoError, JoinTask, Resources, SplitResult, TaskResult};
///
/// #[derive(Debug, Clone, PartialEq, Eq, Hash)]
/// enum State { Merge, AllGood, Degraded }
///
/// struct Merge;
/// impl JoinTask<State> for Merge {
///     async fn join(&self, _res: &Resources, results: &SplitResult<State>) -> Result<TaskResult<State>, CanoError> {
///         Ok(TaskResult::Single(if results.errors.is_empty() { State::AllGood } else { State::Degraded }))
///     }
/// }
/// ```
pub trait JoinTask<S, K = DefaultKey>: Send + Sync {
    /// Merges the split's results and names the next state.
    fn join(
        &self,
        res: &Resources<K>,
        results: &SplitResult<S>,
    ) -> impl Future<Output = Result<TaskResult<S>, CanoError>> + Send;

    /// Retry settings, as [`Task::config`](crate::Task::config).
    fn config(&self) -> TaskConfig {
        TaskConfig::default()
    }

    /// The name observers see. Default: the type's name.
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(core::any::type_name::<Self>())
    }
}

/// The object-safe form of [`JoinTask`].
pub(crate) trait DynJoinTask<S, K>: Send + Sync {
    fn join_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
        results: &'a SplitResult<S>,
    ) -> BoxFuture<'a, Result<TaskResult<S>, CanoError>>;
}

impl<S: 'static, K: 'static, T: JoinTask<S, K>> DynJoinTask<S, K> for T {
    fn join_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
        results: &'a SplitResult<S>,
    ) -> BoxFuture<'a, Result<TaskResult<S>, CanoError>> {
        Box::pin(self.join(res, results))
    }
}

/// Makes attempts of a registered join task.
pub(crate) struct RunJoin<'a, S, K> {
    pub(crate) task: &'a dyn DynJoinTask<S, K>,
    pub(crate) resources: &'a Resources<K>,
    pub(crate) results: &'a SplitResult<S>,
}

impl<'a, S, K> MakeAttempt<'a, TaskResult<S>> for RunJoin<'a, S, K> {
    fn make(&mut self) -> BoxFuture<'a, Result<TaskResult<S>, CanoError>> {
        self.task.join_dyn(self.resources, self.results)
    }
}
