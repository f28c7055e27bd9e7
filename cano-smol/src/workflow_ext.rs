//! `orchestrate(initial)` on smol: [`WorkflowExt`].

use core::fmt;
use core::future::Future;
use core::hash::Hash;

use cano_core::{CanoError, Workflow};

use crate::SmolRuntime;

/// Runs a [`Workflow`] on smol, as easily as in cano 0.12.
///
/// `orchestrate` is [`Workflow::orchestrate_in`] on [`SmolRuntime::without_executor`]: a
/// [`SmolClock`](crate::SmolClock) (the process's one time origin, so a circuit breaker's
/// open-until time means the same to every run and to the scheduler), and splits poll their
/// branches in place (a smol executor is the application's own, so there is no ambient
/// spawner). For spawned branches use `workflow.orchestrate_in(&SmolRuntime::new(executor),
/// initial)`.
///
/// ```
/// use cano_smol::{CanoError, Resources, Task, TaskResult, Workflow, WorkflowExt};
///
/// #[derive(Debug, Clone, PartialEq, Eq, Hash)]
/// enum State { Start, Done }
///
/// struct Hello;
/// impl Task<State> for Hello {
///     async fn run(&self, _res: &Resources) -> Result<TaskResult<State>, CanoError> {
///         Ok(TaskResult::Single(State::Done))
///     }
/// }
///
/// let workflow = Workflow::bare().register(State::Start, Hello).add_exit_state(State::Done);
/// let end = futures_lite::future::block_on(workflow.orchestrate(State::Start));
/// assert_eq!(end, Ok(State::Done));
/// ```
pub trait WorkflowExt<S> {
    /// Runs from `initial` to an exit state; see
    /// [`Workflow::orchestrate_with`](cano_core::Workflow::orchestrate_with) for errors.
    fn orchestrate(&self, initial: S) -> impl Future<Output = Result<S, CanoError>> + Send;

    /// Resumes the unfinished checkpointed run `run`; see
    /// [`Workflow::resume_from_with`](cano_core::Workflow::resume_from_with) for what
    /// re-runs and for errors.
    fn resume_from(
        &self,
        run: impl Into<cano_core::checkpoint::RunId>,
    ) -> impl Future<Output = Result<S, CanoError>> + Send;
}

impl<S, K> WorkflowExt<S> for Workflow<S, K>
where
    S: Clone + Eq + Hash + fmt::Debug + Send + Sync + 'static,
    K: Send + Sync + 'static,
{
    fn orchestrate(&self, initial: S) -> impl Future<Output = Result<S, CanoError>> + Send {
        self.orchestrate_in(&SmolRuntime::without_executor(), initial)
    }

    fn resume_from(
        &self,
        run: impl Into<cano_core::checkpoint::RunId>,
    ) -> impl Future<Output = Result<S, CanoError>> + Send {
        self.resume_from_in(&SmolRuntime::without_executor(), run)
    }
}
