//! One call to start a cano scheduler on tokio.

use cano_core::CanoResult;
use cano_core::scheduler::{RunningScheduler, Scheduler};

use crate::TokioRuntime;

/// Starts `scheduler` on the current tokio runtime ([`Scheduler::start_in`] on
/// [`TokioRuntime::current`]): its single loop and every run are tokio tasks, timed by a
/// [`TokioClock`](crate::TokioClock) (the system wall clock for cron flows).
///
/// ```
/// use cano_tokio::scheduler::{job_fn, Fire, Scheduler};
/// use core::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let mut scheduler = Scheduler::new();
/// scheduler
///     .every_seconds("tick", job_fn(|(), _fire: Fire| async { Ok(()) }), (), 10)
///     .unwrap();
/// let running = cano_tokio::start_scheduler(scheduler).await.unwrap();
/// tokio::time::sleep(Duration::from_secs(25)).await;
/// assert_eq!(running.status("tick").unwrap().run_count, 3);
/// running.stop().await.unwrap();
/// # }
/// ```
///
/// # Errors
///
/// [`CanoError::Spawn`](cano_core::CanoError::Spawn) outside a tokio runtime, or any error
/// of [`Scheduler::start`].
pub async fn start_scheduler<S>(scheduler: Scheduler<S>) -> CanoResult<RunningScheduler>
where
    S: Clone + Send + Sync + 'static,
{
    scheduler.start_in(&TokioRuntime::current()).await
}
