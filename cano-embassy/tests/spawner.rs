//! `EmbassySpawner` on the testkit's virtual time: concurrency, and a full pool as an error.

use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll};
use core::time::Duration;
use std::sync::{Arc, Mutex};

use cano_embassy::{Clock, EmbassyClock, EmbassySpawner, Instant, Pool, SpawnError, Spawner};
use cano_embassy_testkit::{block_on_virtual, run_virtual};

const fn assert_runtime_contract<T: Clone + Send + Sync + 'static>() {}
const _: () = assert_runtime_contract::<EmbassySpawner<4>>();
const _: () = assert_runtime_contract::<EmbassyClock>();

static TWO_POOL: Pool<2> = Pool::new();

#[test]
fn two_futures_run_concurrently() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (log_in, log_done) = (log.clone(), log.clone());
    let mut t0 = Instant::ZERO;
    let t0_out = &mut t0;
    let ticks = run_virtual(
        move |spawner| {
            let clock = EmbassyClock::new();
            let spawner = EmbassySpawner::new(spawner, &TWO_POOL);
            let t0 = clock.now();
            *t0_out = t0;
            for (name, secs) in [("slow", 10), ("fast", 4)] {
                let log = log_in.clone();
                spawner
                    .spawn(Box::pin(async move {
                        clock.sleep_until(t0 + Duration::from_secs(secs)).await;
                        log.lock().unwrap().push((name, clock.now() - t0));
                    }))
                    .unwrap();
            }
        },
        || log_done.lock().unwrap().len() == 2,
    );
    assert_eq!(
        *log.lock().unwrap(),
        [
            ("fast", Duration::from_secs(4)),
            ("slow", Duration::from_secs(10))
        ]
    );
    // Both ran at once: the run took as long as the slower one, not the sum.
    assert_eq!(ticks, embassy_time::Duration::from_secs(10).as_ticks());
}

/// A future that records whether it was ever polled.
struct Probe(Arc<AtomicBool>);

impl Future for Probe {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        self.0.store(true, Ordering::SeqCst);
        Poll::Ready(())
    }
}

static WORKER_POOL: Pool<2> = Pool::new();

#[test]
fn a_full_pool_is_an_error_until_a_slot_frees() {
    let rejected_polled = Arc::new(AtomicBool::new(false));
    let reused_polled = Arc::new(AtomicBool::new(false));
    let (rejected, reused) = (rejected_polled.clone(), reused_polled.clone());
    let (when_full, after_free) = block_on_virtual(|spawner| async move {
        let clock = EmbassyClock::new();
        let workers = EmbassySpawner::new(spawner, &WORKER_POOL);
        let t0 = clock.now();
        for minutes in [1, 2] {
            let work = clock.sleep_until(t0 + Duration::from_secs(60 * minutes));
            workers.spawn(Box::pin(work)).unwrap();
        }
        let when_full = workers.spawn(Box::pin(Probe(rejected)));

        // The one-minute worker finishes and frees its slot.
        clock.sleep_until(t0 + Duration::from_secs(61)).await;
        let after_free = workers.spawn(Box::pin(Probe(reused)));
        clock.sleep_until(t0 + Duration::from_secs(62)).await;
        (when_full, after_free)
    });
    assert_eq!(when_full, Err(SpawnError::PoolFull));
    assert!(
        !rejected_polled.load(Ordering::SeqCst),
        "a rejected future must not run"
    );
    assert_eq!(after_free, Ok(()));
    assert!(
        reused_polled.load(Ordering::SeqCst),
        "the freed slot runs the next future"
    );
}

static EMPTY_POOL: Pool<0> = Pool::new();

#[test]
fn a_pool_of_zero_refuses_everything() {
    run_virtual(
        |spawner| {
            let spawner = EmbassySpawner::new(spawner, &EMPTY_POOL);
            assert_eq!(spawner.capacity(), 0);
            assert_eq!(spawner.spawn(Box::pin(async {})), Err(SpawnError::PoolFull));
            assert_eq!(format!("{spawner:?}"), "EmbassySpawner { capacity: 0, .. }");
        },
        || true,
    );
}
