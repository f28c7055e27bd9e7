//! Graceful shutdown: stop a running scheduler on Ctrl-C ([`shutdown_on_ctrl_c`]) or on any
//! other signal future ([`shutdown_on`]).

use core::future::Future;
use core::time::Duration;

use cano_core::CanoError;
use cano_core::CanoResult;
use cano_core::scheduler::{RunningScheduler, StopReport};

/// Waits for Ctrl-C (SIGINT on Unix), then stops `running`, giving runs in flight `grace` to
/// finish (see [`RunningScheduler::stop_within`]), and returns the stop's report.
///
/// If the scheduler is stopped some other way first (a `stop` elsewhere, or the last handle
/// dropped), this returns that stop's report instead, so it can be awaited alongside other
/// shutdown paths. A Ctrl-C that arrives while such a stop is under way finds it in progress
/// and waits for the same report: a second Ctrl-C does not shorten the grace.
///
/// Listening starts when the future is first polled. As with `tokio::signal::ctrl_c`, from
/// then on SIGINT no longer terminates the process, for the rest of its life.
///
/// ```no_run
/// use cano_tokio::scheduler::{job_fn, Fire, Scheduler};
/// use core::time::Duration;
///
/// #[tokio::main]
/// async fn main() -> Result<(), cano_tokio::CanoError> {
///     let mut scheduler = Scheduler::new();
///     scheduler.every_seconds("tick", job_fn(|(), _fire: Fire| async { Ok(()) }), (), 1)?;
///     let running = cano_tokio::start_scheduler(scheduler).await?;
///     let report = cano_tokio::shutdown_on_ctrl_c(&running, Duration::from_secs(10)).await?;
///     println!("stopped; cancelled runs: {:?}", report.cancelled);
///     Ok(())
/// }
/// ```
///
/// # Errors
///
/// [`CanoError::External`] if the Ctrl-C handler cannot be installed; the scheduler is left
/// running, for the caller to stop. Otherwise the errors of [`RunningScheduler::wait`].
///
/// # Panics
///
/// Outside a tokio runtime, or on one built without its IO driver (`enable_io`), as
/// `tokio::signal::ctrl_c` does.
pub async fn shutdown_on_ctrl_c(
    running: &RunningScheduler,
    grace: Duration,
) -> CanoResult<StopReport> {
    let ctrl_c = async {
        tokio::signal::ctrl_c()
            .await
            .map_err(|e| CanoError::external("cannot listen for Ctrl-C", e))
    };
    running.stop_on(grace, ctrl_c).await
}

/// Waits for `signal` to complete, then stops `running`, giving runs in flight `grace` to
/// finish, and returns the stop's report; if the scheduler is stopped some other way first,
/// returns that stop's report (and drops `signal`).
///
/// For a SIGTERM-driven shutdown (what a container orchestrator sends), pass
/// `async move { sigterm.recv().await; }` with a `tokio::signal::unix::Signal`. The example
/// below stops on a message instead:
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
/// let (shutdown, requested) = tokio::sync::oneshot::channel::<()>();
/// tokio::spawn(async move {
///     tokio::time::sleep(Duration::from_secs(25)).await;
///     let _ = shutdown.send(());
/// });
/// let signal = async move {
///     let _ = requested.await;
/// };
/// let report = cano_tokio::shutdown_on(&running, Duration::from_secs(5), signal)
///     .await
///     .unwrap();
/// assert!(report.cancelled.is_empty());
/// assert_eq!(running.status("tick").unwrap().run_count, 3); // at 0, 10 and 20 s
/// # }
/// ```
///
/// # Errors
///
/// As [`RunningScheduler::wait`].
pub async fn shutdown_on(
    running: &RunningScheduler,
    grace: Duration,
    signal: impl Future<Output = ()>,
) -> CanoResult<StopReport> {
    running
        .stop_on(grace, async {
            signal.await;
            Ok(())
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use cano_core::scheduler::{Fire, Scheduler, job_fn};
    use core::future::poll_fn;
    use core::task::Poll;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A scheduler whose one flow, "slow", starts at once and takes `run_time`, or ends
    /// (as cancelled) when its cancellation is signalled.
    async fn start_slow(run_time: Duration) -> RunningScheduler {
        let mut scheduler = Scheduler::new();
        scheduler
            .every_seconds(
                "slow",
                job_fn(move |(), fire: Fire| async move {
                    tokio::select! {
                        () = tokio::time::sleep(run_time) => Ok(()),
                        () = fire.cancellation().cancelled() => {
                            Err(CanoError::cancelled("stopped"))
                        }
                    }
                }),
                (),
                3600,
            )
            .unwrap();
        crate::start_scheduler(scheduler).await.unwrap()
    }

    /// Starts "slow" with runs of `run_time`, signals a stop after 1 s with `grace`, and
    /// returns how long the stop took from start, its report and the handle.
    async fn signal_after_a_second(
        run_time: Duration,
        grace: Duration,
    ) -> (Duration, StopReport, RunningScheduler) {
        let running = start_slow(run_time).await;
        let started = tokio::time::Instant::now();
        let signal = tokio::time::sleep(Duration::from_secs(1));
        let report = shutdown_on(&running, grace, signal).await.unwrap();
        (started.elapsed(), report, running)
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn signal_stops_with_grace_and_cancels_what_outlives_it() {
        let (took, report, running) =
            signal_after_a_second(Duration::from_secs(60), Duration::from_secs(2)).await;
        assert_eq!(took, Duration::from_secs(3));
        assert_eq!(report.cancelled.len(), 1);
        assert_eq!(report.cancelled[0].flow(), "slow");
        assert!(running.trigger("slow").is_err(), "stopped for good");
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_run_that_ends_within_the_grace_is_not_cancelled() {
        let (took, report, running) =
            signal_after_a_second(Duration::from_secs(2), Duration::from_secs(30)).await;
        assert_eq!(took, Duration::from_secs(2), "waits for the run only");
        assert!(report.cancelled.is_empty());
        assert_eq!(running.status("slow").unwrap().run_count, 1);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_stop_elsewhere_returns_its_report_without_the_signal() {
        let running = start_slow(Duration::from_secs(60)).await;
        let stopper = running.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            stopper.stop_within(Duration::ZERO).await
        });
        let signal_polled = Arc::new(AtomicU32::new(0));
        let polls = signal_polled.clone();
        let never = poll_fn(move |_| {
            polls.fetch_add(1, Ordering::SeqCst);
            Poll::<()>::Pending
        });
        let report = shutdown_on(&running, Duration::from_secs(30), never)
            .await
            .unwrap();
        assert_eq!(report.cancelled.len(), 1, "the other stop's zero grace");
        assert!(signal_polled.load(Ordering::SeqCst) >= 1);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_signal_that_cannot_listen_leaves_the_scheduler_running() {
        let mut scheduler = Scheduler::new();
        scheduler
            .manual("on-demand", job_fn(|(), _fire: Fire| async { Ok(()) }), ())
            .unwrap();
        let running = crate::start_scheduler(scheduler).await.unwrap();
        let broken = async { Err(CanoError::configuration("no signals here")) };
        let error = running
            .stop_on(Duration::from_secs(1), broken)
            .await
            .unwrap_err();
        assert_eq!(error, CanoError::configuration("no signals here"));
        running.trigger("on-demand").unwrap();
    }

    /// The real signal path, on Unix: SIGINT sent to this process stops the scheduler.
    #[cfg(unix)]
    #[tokio::test(flavor = "current_thread")]
    async fn sigint_stops_the_scheduler() {
        use tokio::signal::unix::{SignalKind, signal};
        // Installed before anything sends SIGINT, so the signal can never kill the test.
        let _guard = signal(SignalKind::interrupt()).unwrap();
        let running = start_slow(Duration::from_secs(3600)).await;
        let waiter = running.clone();
        let shutdown =
            tokio::spawn(
                async move { shutdown_on_ctrl_c(&waiter, Duration::from_millis(10)).await },
            );
        // Lets the spawned task poll once and register its listener; a SIGINT sent before
        // that would be missed (the test would then time out, not pass).
        tokio::time::sleep(Duration::from_millis(50)).await;
        let status = std::process::Command::new("kill")
            .args(["-INT", &std::process::id().to_string()])
            .status()
            .expect("run kill(1)");
        assert!(status.success());
        let report = tokio::time::timeout(Duration::from_secs(10), shutdown)
            .await
            .expect("SIGINT seen within 10 s")
            .unwrap()
            .unwrap();
        assert_eq!(report.cancelled.len(), 1);
    }
}
