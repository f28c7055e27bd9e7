//! `orchestrate(initial)` on smol: [`WorkflowExt`].

use core::fmt;
use core::future::Future;
use core::hash::Hash;
use std::sync::OnceLock;

use cano_core::{CanoError, Workflow};

use crate::SmolClock;

/// One clock for every `orchestrate` call in the process, so instants that outlive a run
/// (a circuit breaker's open-until time) stay comparable between runs.
fn shared_clock() -> SmolClock {
    static CLOCK: OnceLock<SmolClock> = OnceLock::new();
    *CLOCK.get_or_init(SmolClock::new)
}

/// Runs a [`Workflow`] on smol, as easily as in cano 0.12.
///
/// `orchestrate` uses a process-wide [`SmolClock`]. Splits poll their branches in place (a
/// smol executor is the application's own, so there is no ambient spawner); for spawned
/// branches use [`Workflow::orchestrate_with`](cano_core::Workflow::orchestrate_with) with a
/// [`SmolSpawner`](crate::SmolSpawner).
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
        self.orchestrate_on(&shared_clock(), initial)
    }

    fn resume_from(
        &self,
        run: impl Into<cano_core::checkpoint::RunId>,
    ) -> impl Future<Output = Result<S, CanoError>> + Send {
        self.resume_from_on(&shared_clock(), run)
    }
}
