//! cano-smol implements cano's runtime contract. async-io has no virtual time, so these are
//! the adapter's few real-clock smoke tests: short sleeps, loose upper bounds.

use std::sync::Arc;
use std::time::Duration;

use async_executor::Executor;
use cano_smol::{Clock, Instant, SmolClock, SmolSpawner, Spawner};
use futures::channel::oneshot;

#[test]
fn clock_sleeps_until_the_deadline() {
    let clock = SmolClock::new();
    let deadline = clock.now() + Duration::from_millis(30);
    futures_lite::future::block_on(clock.sleep_until(deadline));
    assert!(
        clock.now() >= deadline,
        "woke at {:?}, before {:?}",
        clock.now(),
        deadline
    );
    // Past deadlines complete at once.
    futures_lite::future::block_on(clock.sleep_until(Instant::ZERO));
}

#[test]
fn spawner_runs_two_futures_concurrently() {
    let ex = Arc::new(Executor::new());
    let spawner = SmolSpawner::new(ex.clone());
    let clock = SmolClock::new();
    let (to_b, from_a) = oneshot::channel::<u32>();
    let (to_a, from_b) = oneshot::channel::<u32>();
    let (done, all_done) = oneshot::channel::<(u32, u32)>();
    let c = clock;
    spawner
        .spawn(Box::pin(async move {
            // Sleeping first proves a timer does not block the other future.
            c.sleep_until(c.now() + Duration::from_millis(10)).await;
            to_b.send(1).unwrap();
            let got = from_b.await.unwrap();
            done.send((1, got)).unwrap();
        }))
        .unwrap();
    spawner
        .spawn(Box::pin(async move {
            let got = from_a.await.unwrap();
            to_a.send(got + 1).unwrap();
        }))
        .unwrap();
    let result = futures_lite::future::block_on(ex.run(all_done)).unwrap();
    assert_eq!(result, (1, 2));
}

#[test]
fn a_scheduler_cannot_start_without_an_executor_and_says_so() {
    use cano_smol::{CanoError, Scheduler, SmolRuntime, SpawnError};
    let start = Scheduler::<()>::new().start_in(&SmolRuntime::without_executor());
    assert_eq!(
        futures_lite::future::block_on(start).unwrap_err(),
        CanoError::Spawn(SpawnError::Shutdown)
    );
}
