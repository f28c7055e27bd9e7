//! cano-tokio implements cano's runtime contract: its clock sleeps until a deadline on
//! tokio's (pausable) time, and its spawner runs futures concurrently.

use std::time::Duration;

use cano_tokio::jiff::Timestamp;
use cano_tokio::{Clock, Instant, Spawner, TokioClock, TokioSpawner};
use futures::channel::oneshot;

#[tokio::test(start_paused = true)]
async fn clock_sleeps_exactly_until_the_deadline_under_paused_time() {
    let clock = TokioClock::new();
    // Every clock of the process shares one origin, so a new clock does not read zero;
    // deadlines are relative to its first reading.
    let start = clock.now();
    assert_eq!(clock.now(), start, "paused time stands still");
    let deadline = start + Duration::from_secs(6 * 3600);
    clock.sleep_until(deadline).await;
    assert_eq!(clock.now(), deadline);
    // A deadline in the past completes at once.
    clock.sleep_until(start + Duration::from_secs(1)).await;
    assert_eq!(clock.now(), deadline);
    clock.sleep_until(Instant::ZERO).await;
    assert_eq!(clock.now(), deadline);
}

#[tokio::test(start_paused = true)]
async fn wall_anchor_follows_paused_time() {
    let anchor: Timestamp = "2026-03-08T06:59:00Z".parse().unwrap();
    let clock = TokioClock::with_wall_anchor(anchor);
    clock
        .sleep_until(clock.now() + Duration::from_secs(90))
        .await;
    assert_eq!(
        clock.wall_now(),
        "2026-03-08T07:00:30Z".parse::<Timestamp>().unwrap()
    );
}

#[tokio::test(start_paused = true)]
async fn a_never_deadline_does_not_complete() {
    let clock = TokioClock::new();
    let never = clock.sleep_until(Instant::MAX);
    let result = tokio::time::timeout(Duration::from_secs(10 * 365 * 86_400), never).await;
    assert!(result.is_err(), "Instant::MAX must never complete");
}

/// Each future waits for the other's message, so they can only finish if they run
/// concurrently.
async fn spawn_two_that_need_each_other(spawner: &TokioSpawner) {
    let (to_b, from_a) = oneshot::channel::<u32>();
    let (to_a, from_b) = oneshot::channel::<u32>();
    let (done_a, a_done) = oneshot::channel::<u32>();
    let (done_b, b_done) = oneshot::channel::<u32>();
    spawner
        .spawn(Box::pin(async move {
            to_b.send(1).unwrap();
            let got = from_b.await.unwrap();
            done_a.send(got).unwrap();
        }))
        .unwrap();
    spawner
        .spawn(Box::pin(async move {
            let got = from_a.await.unwrap();
            to_a.send(got + 1).unwrap();
            done_b.send(got).unwrap();
        }))
        .unwrap();
    assert_eq!(a_done.await.unwrap(), 2);
    assert_eq!(b_done.await.unwrap(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn spawner_runs_two_futures_concurrently_on_current_thread() {
    spawn_two_that_need_each_other(&TokioSpawner::current()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawner_runs_two_futures_concurrently_on_multi_thread() {
    spawn_two_that_need_each_other(&TokioSpawner::current()).await;
}

#[test]
fn spawner_outside_a_runtime_is_an_error_not_a_panic() {
    assert_eq!(
        TokioSpawner::try_current().unwrap_err(),
        cano_tokio::SpawnError::Shutdown
    );
}

#[test]
fn a_scheduler_cannot_start_outside_a_runtime_and_says_so() {
    use cano_tokio::{CanoError, Scheduler, SpawnError, TokioRuntime};
    use std::task::{Context, Poll, Waker};
    let start = std::pin::pin!(Scheduler::<()>::new().start_in(&TokioRuntime::current()));
    // No runtime to block on here: the refusal is immediate, on the first poll.
    let Poll::Ready(result) = start.poll(&mut Context::from_waker(Waker::noop())) else {
        panic!("starting outside a runtime must fail at once");
    };
    assert_eq!(result.unwrap_err(), CanoError::Spawn(SpawnError::Shutdown));
}

#[test]
fn a_runtime_from_a_handle_starts_a_scheduler_from_outside_it() {
    use cano_tokio::{Scheduler, TokioRuntime};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let runtime = TokioRuntime::from_handle(rt.handle().clone());
    let running = rt
        .block_on(Scheduler::<()>::new().start_in(&runtime))
        .unwrap();
    rt.block_on(running.stop()).unwrap();
}
