//! [`TokioRuntime`]: tokio as one value for cano's entry points.

use cano_core::runtime::Runtime;

use crate::{TokioClock, TokioSpawner};

/// A tokio runtime as cano's entry points see it: a [`TokioClock`] (the process's one time
/// origin, the system wall clock) and a [`TokioSpawner`] onto the runtime.
///
/// [`Workflow::orchestrate_in`](cano_core::Workflow::orchestrate_in) and
/// [`Scheduler::start_in`](cano_core::Scheduler::start_in) take it;
/// [`WorkflowExt::orchestrate`](crate::WorkflowExt::orchestrate) and
/// [`start_scheduler`](crate::start_scheduler) use [`TokioRuntime::current`].
///
/// ```
/// use cano_tokio::scheduler::{job_fn, Fire, Scheduler};
/// use cano_tokio::TokioRuntime;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let mut scheduler = Scheduler::new();
/// scheduler.manual("job", job_fn(|(), _fire: Fire| async { Ok(()) }), ()).unwrap();
/// let running = scheduler.start_in(&TokioRuntime::current()).await.unwrap();
/// running.stop().await.unwrap();
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TokioRuntime {
    handle: Option<tokio::runtime::Handle>,
}

impl TokioRuntime {
    /// The runtime each entry point is called in, looked up at the call. Outside a runtime
    /// there is no spawner: splits poll their branches in place and a scheduler cannot start
    /// ([`CanoError::Spawn`](cano_core::CanoError::Spawn)).
    pub fn current() -> Self {
        TokioRuntime { handle: None }
    }

    /// The runtime behind `handle`, wherever the entry point is called.
    pub fn from_handle(handle: tokio::runtime::Handle) -> Self {
        TokioRuntime {
            handle: Some(handle),
        }
    }
}

impl Runtime for TokioRuntime {
    type Clock = TokioClock;
    type Spawner = TokioSpawner;

    fn clock(&self) -> TokioClock {
        TokioClock::new()
    }

    fn spawner(&self) -> Option<TokioSpawner> {
        match &self.handle {
            Some(handle) => Some(TokioSpawner::from_handle(handle.clone())),
            None => TokioSpawner::try_current().ok(),
        }
    }
}
