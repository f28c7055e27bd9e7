//! `orchestrate(initial)` on tokio: [`WorkflowExt`].

use core::fmt;
use core::future::Future;
use core::hash::Hash;
use std::sync::OnceLock;

use cano_core::{CanoError, RunContext, Workflow};

use crate::{TokioClock, TokioSpawner};

/// One clock for every `orchestrate` call in the process, so instants that outlive a run
/// (a circuit breaker's open-until time) stay comparable between runs.
fn shared_clock() -> TokioClock {
    static CLOCK: OnceLock<TokioClock> = OnceLock::new();
    *CLOCK.get_or_init(TokioClock::new)
}

/// Runs a [`Workflow`] on tokio, as easily as in cano 0.12.
///
/// `orchestrate` uses a process-wide [`TokioClock`] and, inside a runtime, a
/// [`TokioSpawner`] for splits that ask for spawned branches (parallelism on a
/// multi-threaded runtime); other splits poll their branches in place.
///
/// ```
/// use cano_tokio::{CanoError, Resources, Task, TaskResult, Workflow, WorkflowExt};
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
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let workflow = Workflow::bare().register(State::Start, Hello).add_exit_state(State::Done);
/// assert_eq!(workflow.orchestrate(State::Start).await, Ok(State::Done));
/// # }
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
        let spawner = if self.uses_spawner() {
            TokioSpawner::try_current().ok()
        } else {
            None
        };
        let ctx = RunContext::new(shared_clock()).with_optional_spawner(spawner);
        self.orchestrate_with(ctx, initial)
    }

    fn resume_from(
        &self,
        run: impl Into<cano_core::checkpoint::RunId>,
    ) -> impl Future<Output = Result<S, CanoError>> + Send {
        let spawner = if self.uses_spawner() {
            TokioSpawner::try_current().ok()
        } else {
            None
        };
        let ctx = RunContext::new(shared_clock()).with_optional_spawner(spawner);
        self.resume_from_with(ctx, run)
    }
}
