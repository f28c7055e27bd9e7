//! One call to start a cano scheduler on tokio.

use cano_core::scheduler::{RunningScheduler, Scheduler};
use cano_core::{CanoError, CanoResult};

use crate::{TokioClock, TokioSpawner};

/// Starts `scheduler` on the current tokio runtime: its single loop and every run are tokio
/// tasks, timed by [`TokioClock::new`] (the system wall clock for cron flows).
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
/// [`CanoError::Spawn`] outside a tokio runtime, or any error of [`Scheduler::start`].
pub async fn start_scheduler<S>(scheduler: Scheduler<S>) -> CanoResult<RunningScheduler>
where
    S: Clone + Send + Sync + 'static,
{
    let spawner = TokioSpawner::try_current().map_err(CanoError::Spawn)?;
    scheduler.start(TokioClock::new(), spawner).await
}
