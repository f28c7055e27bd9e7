//! Graceful shutdown on smol: stop a running scheduler on Ctrl-C ([`shutdown_on_ctrl_c`]),
//! on other signals ([`shutdown_on_signals`]) or on any future ([`shutdown_on`]). Signals are
//! received with smol-rs's [`async_signal`] (re-exported), which needs no runtime of its own.

use core::future::Future;
use core::time::Duration;

use async_signal::{Signal, Signals};
use cano_core::scheduler::{RunningScheduler, StopReport};
use cano_core::{CanoError, CanoResult};
use futures::StreamExt as _;

/// Waits for Ctrl-C (SIGINT on Unix), then stops `running`, giving runs in flight `grace` to
/// finish (see [`RunningScheduler::stop_within`]), and returns the stop's report.
///
/// If the scheduler is stopped some other way first (a `stop` elsewhere, or the last handle
/// dropped), this returns that stop's report instead, so it can be awaited alongside other
/// shutdown paths. A Ctrl-C during such a stop waits for the same report.
///
/// Listening starts when the future is first polled. As with cano-tokio's helper, from
/// then on SIGINT no longer terminates the process, for the rest of its life (the handler
/// `async-signal` registers is not replaced by the default action when it is dropped).
///
/// ```no_run
/// use cano_smol::scheduler::{job_fn, Fire, Scheduler};
/// use core::time::Duration;
/// use std::sync::Arc;
///
/// let executor = Arc::new(async_executor::Executor::new());
/// async_io::block_on(executor.clone().run(async move {
///     let mut scheduler = Scheduler::new();
///     scheduler.every_seconds("tick", job_fn(|(), _fire: Fire| async { Ok(()) }), (), 1)?;
///     let running = cano_smol::start_scheduler(scheduler, executor.clone()).await?;
///     let report = cano_smol::shutdown_on_ctrl_c(&running, Duration::from_secs(10)).await?;
///     println!("stopped; cancelled runs: {:?}", report.cancelled);
///     Ok::<_, cano_smol::CanoError>(())
/// }))
/// .unwrap();
/// ```
///
/// # Errors
///
/// [`CanoError::External`] if the handler cannot be installed; the scheduler is left
/// running, for the caller to stop. Otherwise the errors of [`RunningScheduler::wait`].
pub async fn shutdown_on_ctrl_c(
    running: &RunningScheduler,
    grace: Duration,
) -> CanoResult<StopReport> {
    shutdown_on_signals(running, grace, [Signal::Int]).await
}

/// [`shutdown_on_ctrl_c`] for any set of signals: stops `running` when the first of
/// `signals` arrives. For what a container orchestrator sends, pass
/// `[Signal::Int, Signal::Term]` (Unix; Windows knows only [`Signal::Int`], Ctrl-C).
///
/// # Errors
///
/// [`CanoError::External`] if a handler cannot be installed (the scheduler is left running);
/// otherwise the errors of [`RunningScheduler::wait`].
pub async fn shutdown_on_signals(
    running: &RunningScheduler,
    grace: Duration,
    signals: impl IntoIterator<Item = Signal>,
) -> CanoResult<StopReport> {
    let signals: Vec<Signal> = signals.into_iter().collect();
    let received = async move {
        let mut listener = Signals::new(signals)
            .map_err(|e| CanoError::external("cannot listen for signals", e))?;
        match listener.next().await {
            Some(Err(e)) => Err(CanoError::external("cannot receive a signal", e)),
            Some(Ok(_)) | None => Ok(()),
        }
    };
    running.stop_on(grace, received).await
}

/// Waits for `signal` to complete, then stops `running`, giving runs in flight `grace` to
/// finish, and returns the stop's report; if the scheduler is stopped some other way first,
/// returns that stop's report (and drops `signal`).
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
    use async_executor::Executor;
    use cano_core::scheduler::{Fire, Scheduler, job_fn};
    use std::sync::Arc;

    /// Runs `test` on a fresh executor with a started scheduler whose one flow, "on-demand",
    /// is manual and, when triggered, runs until cancelled.
    fn with_scheduler<T: Send + 'static>(
        test: impl AsyncFnOnce(RunningScheduler, Arc<Executor<'static>>) -> T,
    ) -> T {
        let executor = Arc::new(Executor::new());
        let ex = executor.clone();
        async_io::block_on(executor.run(async move {
            let mut scheduler = Scheduler::new();
            scheduler
                .manual(
                    "on-demand",
                    // Runs until its cancellation is signalled (at the stop's deadline).
                    job_fn(|(), fire: Fire| async move {
                        fire.cancellation().cancelled().await;
                        CanoResult::<()>::Err(CanoError::cancelled("stopped"))
                    }),
                    (),
                )
                .unwrap();
            let running = crate::start_scheduler(scheduler, ex.clone()).await.unwrap();
            test(running, ex).await
        }))
    }

    #[test]
    fn a_signal_stops_the_scheduler_and_cancels_what_outlives_the_grace() {
        with_scheduler(async |running, _| {
            running.trigger("on-demand").unwrap();
            let report = shutdown_on(&running, Duration::ZERO, async {})
                .await
                .unwrap();
            assert_eq!(report.cancelled.len(), 1, "the endless run is cancelled");
            assert!(running.trigger("on-demand").is_err(), "stopped for good");
        });
    }

    #[test]
    fn a_stop_elsewhere_returns_its_report_without_the_signal() {
        with_scheduler(async |running, executor| {
            let (stop, stop_requested) = futures::channel::oneshot::channel::<()>();
            let stopper = running.clone();
            executor
                .spawn(async move {
                    let _ = stop_requested.await;
                    stopper.stop_within(Duration::ZERO).await
                })
                .detach();
            running.trigger("on-demand").unwrap();
            let never = async {
                let _ = stop.send(());
                core::future::pending::<()>().await
            };
            let report = shutdown_on(&running, Duration::from_secs(3600), never)
                .await
                .unwrap();
            assert_eq!(report.cancelled.len(), 1, "the other stop's zero grace");
        });
    }

    #[test]
    fn a_signal_that_cannot_listen_leaves_the_scheduler_running() {
        with_scheduler(async |running, _| {
            let broken = async { Err(CanoError::configuration("no signals here")) };
            let error = running
                .stop_on(Duration::from_secs(1), broken)
                .await
                .unwrap_err();
            assert_eq!(error, CanoError::configuration("no signals here"));
            running.trigger("on-demand").unwrap();
        });
    }

    /// The real signal path, on Unix: SIGINT sent to this process stops the scheduler.
    #[cfg(unix)]
    #[test]
    fn sigint_stops_the_scheduler() {
        // Installed before anything sends SIGINT, so the signal can never kill the test.
        let _guard = Signals::new([Signal::Int]).unwrap();
        with_scheduler(async |running, executor| {
            running.trigger("on-demand").unwrap();
            let waiter = running.clone();
            let shutdown = executor
                .spawn(async move { shutdown_on_ctrl_c(&waiter, Duration::from_millis(10)).await });
            // Lets the spawned task poll once and register its listener; a SIGINT sent
            // before that would be missed (the test would then time out, not pass).
            async_io::Timer::after(Duration::from_millis(50)).await;
            let status = std::process::Command::new("kill")
                .args(["-INT", &std::process::id().to_string()])
                .status()
                .expect("run kill(1)");
            assert!(status.success());
            let timeout = async {
                async_io::Timer::after(Duration::from_secs(10)).await;
                panic!("no SIGINT seen within 10 s");
            };
            let futures::future::Either::Left((report, _)) =
                futures::future::select(Box::pin(shutdown), Box::pin(timeout)).await;
            assert_eq!(report.unwrap().cancelled.len(), 1);
        });
    }
}
