//! One call to start a cano scheduler on smol.

use std::sync::Arc;

use async_executor::Executor;
use cano_core::CanoResult;
use cano_core::scheduler::{RunningScheduler, Scheduler};

use crate::SmolRuntime;

/// Starts `scheduler` on `executor` ([`Scheduler::start_in`] on [`SmolRuntime::new`]): its
/// single loop and every run are tasks of that executor (which the application keeps
/// running), timed by a [`SmolClock`](crate::SmolClock).
///
/// # Errors
///
/// Any error of [`Scheduler::start`].
pub async fn start_scheduler<S>(
    scheduler: Scheduler<S>,
    executor: Arc<Executor<'static>>,
) -> CanoResult<RunningScheduler>
where
    S: Clone + Send + Sync + 'static,
{
    scheduler.start_in(&SmolRuntime::new(executor)).await
}
