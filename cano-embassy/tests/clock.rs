//! `EmbassyClock` on the testkit's virtual time: exact deadlines over a simulated day, the
//! edge deadlines of the `Clock` contract, and the wall clock's epoch.

use core::future::{Future, poll_fn};
use core::pin::pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use std::sync::{Arc, Mutex};

use cano_embassy::jiff::{SignedDuration, Timestamp};
use cano_embassy::{Clock, EmbassyClock, EmbassySpawner, Instant, Pool, Spawner};
use cano_embassy_testkit::{block_on_virtual, run_virtual};

const HOUR: u64 = 3_600;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Wake-ups as (sleeper id, deadline, `now()` right after waking).
type WakeLog = Arc<Mutex<Vec<(u32, Instant, Instant)>>>;

static DAY_POOL: Pool<8> = Pool::new();

#[test]
fn sleepers_over_a_virtual_day_wake_exactly_at_their_deadlines_in_order() {
    let log = WakeLog::default();
    let (log_in, log_done) = (log.clone(), log.clone());
    // Spawned out of order on purpose; the last one re-arms every 15 minutes for 24 hours.
    let one_shots = [
        (1, 23 * HOUR),
        (2, HOUR),
        (3, 7 * HOUR + 1_800),
        (4, 1),
        (5, 12 * HOUR),
    ];
    let expected_wakes = one_shots.len() + 96;
    let real_start = std::time::Instant::now();
    let mut t0 = Instant::ZERO;
    let t0_out = &mut t0;
    let virtual_ticks = run_virtual(
        move |spawner| {
            let clock = EmbassyClock::new();
            let spawner = EmbassySpawner::new(spawner, &DAY_POOL);
            let t0 = clock.now();
            *t0_out = t0;
            for (id, offset) in one_shots {
                let log = log_in.clone();
                spawner
                    .spawn(Box::pin(async move {
                        let deadline = t0 + secs(offset);
                        clock.sleep_until(deadline).await;
                        log.lock().unwrap().push((id, deadline, clock.now()));
                    }))
                    .unwrap();
            }
            spawner
                .spawn(Box::pin(async move {
                    let mut deadline = t0;
                    for _ in 0..96 {
                        deadline += secs(900);
                        clock.sleep_until(deadline).await;
                        log_in.lock().unwrap().push((0, deadline, clock.now()));
                    }
                }))
                .unwrap();
        },
        || log_done.lock().unwrap().len() == expected_wakes,
    );
    let log = log.lock().unwrap();
    for &(id, deadline, woke) in log.iter() {
        assert_eq!(woke, deadline, "sleeper {id} woke late or early");
    }
    let deadlines: Vec<Instant> = log.iter().map(|w| w.1).collect();
    assert!(deadlines.is_sorted(), "wake order: {log:?}");
    let one_shot_order: Vec<u32> = log.iter().map(|w| w.0).filter(|&id| id != 0).collect();
    assert_eq!(one_shot_order, [4, 2, 3, 5, 1]);
    assert_eq!(log.last().unwrap().1, t0 + secs(24 * HOUR));
    assert_eq!(
        virtual_ticks,
        embassy_time::Duration::from_secs(24 * HOUR).as_ticks()
    );
    // Informational only (no timed assertion): a simulated day takes milliseconds.
    eprintln!(
        "24 virtual hours took {:?} of real time",
        real_start.elapsed()
    );
}

#[test]
fn a_reached_deadline_completes_on_the_first_poll() {
    run_virtual(
        |_| {
            let clock = EmbassyClock::new();
            let mut cx = Context::from_waker(Waker::noop());
            for deadline in [Instant::ZERO, clock.now()] {
                let sleep = pin!(clock.sleep_until(deadline));
                assert_eq!(sleep.poll(&mut cx), Poll::Ready(()), "{deadline:?}");
            }
        },
        || true,
    );
}

#[test]
fn a_future_deadline_is_pending_until_its_tick() {
    let late = block_on_virtual(|_| async {
        let clock = EmbassyClock::new();
        let deadline = clock.now() + Duration::from_micros(1);
        let mut sleep = pin!(clock.sleep_until(deadline));
        poll_fn(|cx| {
            assert!(sleep.as_mut().poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        sleep.await;
        clock.now() - deadline
    });
    assert_eq!(late, Duration::ZERO);
}

static NEVER_POOL: Pool<1> = Pool::new();

#[test]
fn instant_max_never_completes() {
    let woke = Arc::new(AtomicBool::new(false));
    let woke_in = woke.clone();
    let slept = block_on_virtual(|spawner| async move {
        let clock = EmbassyClock::new();
        EmbassySpawner::new(spawner, &NEVER_POOL)
            .spawn(Box::pin(async move {
                clock.sleep_until(Instant::MAX).await;
                woke_in.store(true, Ordering::SeqCst);
            }))
            .unwrap();
        let start = clock.now();
        clock.sleep_until(start + secs(365 * 24 * HOUR)).await;
        clock.now() - start
    });
    assert_eq!(slept, secs(365 * 24 * HOUR));
    assert!(
        !woke.load(Ordering::SeqCst),
        "sleep_until(Instant::MAX) completed"
    );
}

#[test]
#[should_panic(expected = "deadlock")]
fn instant_max_is_not_woken_even_when_nothing_else_waits() {
    // With nothing else to wait for, the harness finds no pending timer at all, rather than
    // jumping to the end of time and waking the sleeper.
    block_on_virtual(|_| EmbassyClock::new().sleep_until(Instant::MAX));
}

#[test]
fn monotonic_now_is_embassy_time_in_microseconds() {
    run_virtual(
        |_| {
            let embassy_now = embassy_time::Instant::now();
            let micros =
                u128::from(embassy_now.as_ticks()) * 1_000_000 / u128::from(embassy_time::TICK_HZ);
            let micros = u64::try_from(micros).unwrap();
            assert_eq!(EmbassyClock::new().now(), Instant::from_micros(micros));
        },
        || true,
    );
}

#[test]
fn wall_time_is_the_epoch_plus_monotonic_time_and_can_be_set_later() {
    let since_tick_zero =
        |clock: EmbassyClock| SignedDuration::try_from(clock.now().elapsed_since_origin()).unwrap();
    let (wall, at_max, epoch_at_min) = block_on_virtual(|_| async move {
        let epoch: Timestamp = "2026-03-29T00:00:00Z".parse().unwrap();
        let clock = EmbassyClock::with_wall_epoch(epoch);
        assert_eq!(clock.wall_epoch(), epoch);
        assert_eq!(clock.wall_now(), epoch + since_tick_zero(clock));

        clock.sleep_until(clock.now() + secs(HOUR)).await;
        assert_eq!(clock.wall_now(), epoch + since_tick_zero(clock));

        // SNTP reports the real time: wall time jumps, monotonic time does not.
        let before = clock.now();
        let sntp: Timestamp = "2026-03-29T09:15:00Z".parse().unwrap();
        clock.set_wall_now(sntp);
        assert_eq!(clock.now(), before);
        assert_eq!(clock.wall_now(), sntp);
        // Every handle shares the one wall clock.
        assert_eq!(EmbassyClock::new().wall_now(), sntp);

        clock.sleep_until(clock.now() + secs(1_800)).await;
        let wall = clock.wall_now();

        // Out-of-range settings saturate instead of panicking.
        clock.set_wall_epoch(Timestamp::MAX);
        let at_max = clock.wall_now();
        clock.set_wall_now(Timestamp::MIN);
        (wall, at_max, clock.wall_epoch())
    });
    assert_eq!(wall, "2026-03-29T09:45:00Z".parse::<Timestamp>().unwrap());
    assert_eq!(at_max, Timestamp::MAX);
    assert_eq!(epoch_at_min, Timestamp::MIN);
}
