//! The harness itself: exact jumps to deadlines, and loud failures instead of hangs.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::sync::Mutex;

use cano_embassy_testkit::{block_on_virtual, run_virtual};
use embassy_time::{Duration, Instant, Timer};

/// (task, tick it woke at), in wake order.
static WAKES: Mutex<Vec<(u32, u64)>> = Mutex::new(Vec::new());

#[embassy_executor::task(pool_size = 3)]
async fn sleeper(id: u32, start: Instant, after: Duration) {
    Timer::at(start + after).await;
    WAKES
        .lock()
        .unwrap()
        .push((id, Instant::now().as_ticks() - start.as_ticks()));
}

#[test]
fn time_jumps_exactly_to_each_deadline() {
    let ticks = run_virtual(
        |spawner| {
            // Read inside `init`: only then does this test own the clock.
            let start = Instant::now();
            for (id, secs) in [(1, 86_400), (2, 1), (3, 3_600)] {
                spawner.spawn(sleeper(id, start, Duration::from_secs(secs)).unwrap());
            }
        },
        || WAKES.lock().unwrap().len() == 3,
    );
    let tick = |secs| Duration::from_secs(secs).as_ticks();
    assert_eq!(
        *WAKES.lock().unwrap(),
        [(2, tick(1)), (3, tick(3_600)), (1, tick(86_400))]
    );
    assert_eq!(ticks, tick(86_400));
}

#[test]
#[should_panic(expected = "deadlock")]
fn nothing_ready_and_no_timer_is_a_deadlock() {
    block_on_virtual(|_| core::future::pending::<()>());
}

#[test]
fn block_on_virtual_returns_the_output_once_the_future_completes() {
    let (slept, output) = block_on_virtual(|_| async {
        let start = Instant::now();
        Timer::after_secs(90).await;
        (start.elapsed(), "done")
    });
    assert_eq!((slept, output), (Duration::from_secs(90), "done"));
}

/// Wakes itself on every poll and never finishes.
struct Spin;

impl Future for Spin {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[embassy_executor::task]
async fn spins_forever() {
    Spin.await;
}

#[test]
#[should_panic(expected = "livelock")]
fn endless_self_waking_is_a_livelock() {
    run_virtual(|spawner| spawner.spawn(spins_forever().unwrap()), || false);
}
