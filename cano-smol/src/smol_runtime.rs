//! [`SmolRuntime`]: smol as one value for cano's entry points.

use std::sync::Arc;

use async_executor::Executor;
use cano_core::runtime::Runtime;

use crate::{SmolClock, SmolSpawner};

/// A smol runtime as cano's entry points see it: a [`SmolClock`] (the process's one time
/// origin, the system wall clock) and, when it has an executor, a [`SmolSpawner`] onto it.
///
/// [`Workflow::orchestrate_in`](cano_core::Workflow::orchestrate_in) and
/// [`Scheduler::start_in`](cano_core::Scheduler::start_in) take it;
/// [`WorkflowExt::orchestrate`](crate::WorkflowExt::orchestrate) uses
/// [`SmolRuntime::without_executor`] (a smol executor is the application's own, so there is
/// no ambient one) and [`start_scheduler`](crate::start_scheduler) `SmolRuntime::new(executor)`.
///
/// ```
/// use std::sync::Arc;
/// use async_executor::Executor;
/// use cano_smol::scheduler::{job_fn, Fire, Scheduler};
/// use cano_smol::SmolRuntime;
///
/// let executor = Arc::new(Executor::new());
/// let runtime = SmolRuntime::new(executor.clone());
/// futures_lite::future::block_on(executor.run(async {
///     let mut scheduler = Scheduler::new();
///     scheduler.manual("job", job_fn(|(), _fire: Fire| async { Ok(()) }), ()).unwrap();
///     let running = scheduler.start_in(&runtime).await.unwrap();
///     running.stop().await.unwrap();
/// }));
/// ```
#[derive(Debug, Clone)]
pub struct SmolRuntime {
    executor: Option<Arc<Executor<'static>>>,
}

impl SmolRuntime {
    /// Runs spawned work on `executor` (which the application keeps running).
    pub fn new(executor: Arc<Executor<'static>>) -> Self {
        SmolRuntime {
            executor: Some(executor),
        }
    }

    /// No executor: splits poll their branches in place, and a scheduler cannot start
    /// ([`CanoError::Spawn`](cano_core::CanoError::Spawn)).
    pub fn without_executor() -> Self {
        SmolRuntime { executor: None }
    }

    /// The executor spawned work runs on, if any.
    pub fn executor(&self) -> Option<&Arc<Executor<'static>>> {
        self.executor.as_ref()
    }
}

impl Runtime for SmolRuntime {
    type Clock = SmolClock;
    type Spawner = SmolSpawner;

    fn clock(&self) -> SmolClock {
        SmolClock::new()
    }

    fn spawner(&self) -> Option<SmolSpawner> {
        self.executor.clone().map(SmolSpawner::new)
    }
}
