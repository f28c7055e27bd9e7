//! The scenarios the firmware runs, one function each. To add one, write an
//! `async fn(Env) -> Outcome` and list it in [`ALL`].

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::Future;
use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;

use cano_embassy::jiff::Timestamp;
use cano_embassy::{Clock, EmbassyClock, EmbassySpawner, Instant, Spawner};
use futures::channel::oneshot;
use futures::future::{BoxFuture, join_all};

use crate::host;

/// Slots for the futures a scenario spawns at once.
pub const POOL_SIZE: usize = 4;

/// What every scenario gets: the clock and a spawner over a pool of [`POOL_SIZE`].
#[derive(Clone, Copy)]
pub struct Env {
    pub clock: EmbassyClock,
    pub spawner: EmbassySpawner<POOL_SIZE>,
}

/// `Err` explains what went wrong.
pub type Outcome = Result<(), String>;

pub struct Scenario {
    pub name: &'static str,
    pub run: fn(Env) -> BoxFuture<'static, Outcome>,
}

/// `Scenario { name, run: |env| Box::pin(function(env)) }`.
macro_rules! scenario {
    ($name:literal, $function:path) => {
        Scenario {
            name: $name,
            run: |env| Box::pin($function(env)),
        }
    };
}

pub const ALL: &[Scenario] = &[
    scenario!(
        "clock sleeps to deadlines, waking in order",
        sleeps_to_deadlines
    ),
    scenario!(
        "spawner runs two futures concurrently",
        two_futures_run_concurrently
    ),
    scenario!(
        "a full pool is an error, not a panic",
        full_pool_is_an_error
    ),
    scenario!(
        "wall clock follows its epoch and set_wall_now",
        wall_clock_follows_its_epoch
    ),
    scenario!(
        "embassy time agrees with the host clock",
        time_agrees_with_the_host
    ),
    scenario!(
        "scheduler: interval, cron, split workflow, backoff and trip; graceful stop",
        scheduler::four_flows_then_graceful_stop
    ),
    scenario!(
        "scheduler: a full pool is a failed run, not a panic",
        scheduler::full_pool_is_a_failed_run
    ),
    scenario!(
        "scheduler: flows added, cancelled and removed while it runs",
        scheduler::flows_added_and_removed_at_runtime
    ),
];

/// How late after its deadline a sleeper may observe the clock: the wake-up happens on the
/// deadline's tick, and reading the clock may slip past one more.
const MAX_LATENESS: Duration = Duration::from_millis(5);

/// `return Err(format!(..))` unless the condition holds.
macro_rules! check {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err(format!($($message)+));
        }
    };
}

// After `check!`, which it uses.
mod scheduler;

/// Spawns `future` through cano's spawner and returns a receiver for its output.
fn spawn_with_result<T: Send + 'static>(
    spawner: &EmbassySpawner<POOL_SIZE>,
    future: impl Future<Output = T> + Send + 'static,
) -> Result<oneshot::Receiver<T>, String> {
    let (sender, receiver) = oneshot::channel();
    spawner
        .spawn(Box::pin(async move {
            let _ = sender.send(future.await);
        }))
        .map_err(|error| format!("spawn failed: {error}"))?;
    Ok(receiver)
}

async fn sleeps_to_deadlines(Env { clock, spawner }: Env) -> Outcome {
    let t0 = clock.now();
    let wake_order = Arc::new(AtomicU32::new(0));
    let mut results = Vec::new();
    // Spawned out of deadline order on purpose.
    for (id, millis) in [(3u32, 300u64), (1, 100), (2, 200)] {
        let deadline = t0 + Duration::from_millis(millis);
        let wake_order = wake_order.clone();
        results.push(spawn_with_result(&spawner, async move {
            clock.sleep_until(deadline).await;
            let woke = clock.now();
            (
                id,
                deadline,
                woke,
                wake_order.fetch_add(1, Ordering::Relaxed),
            )
        })?);
    }
    for result in join_all(results).await {
        let (id, deadline, woke, position) = result.map_err(|_| "a sleeper vanished")?;
        check!(
            woke >= deadline,
            "sleeper {id} woke early: {woke:?} < {deadline:?}"
        );
        check!(
            woke - deadline <= MAX_LATENESS,
            "sleeper {id} woke {} µs late",
            (woke - deadline).as_micros() as u64
        );
        check!(
            position + 1 == id,
            "sleeper {id} woke in position {}",
            position + 1
        );
    }
    Ok(())
}

async fn two_futures_run_concurrently(Env { clock, spawner }: Env) -> Outcome {
    let t0 = clock.now();
    let sleeper = |millis| async move {
        clock.sleep_until(t0 + Duration::from_millis(millis)).await;
        clock.now()
    };
    let slow = spawn_with_result(&spawner, sleeper(300))?;
    let fast = spawn_with_result(&spawner, sleeper(200))?;
    let slow = slow.await.map_err(|_| "the slow future vanished")?;
    let fast = fast.await.map_err(|_| "the fast future vanished")?;
    let total = clock.now() - t0;
    check!(
        fast < slow,
        "fast finished at {fast:?}, after slow at {slow:?}"
    );
    // One after the other would take 500 ms.
    check!(
        total >= Duration::from_millis(300) && total <= Duration::from_millis(300) + MAX_LATENESS,
        "both took {} ms together",
        total.as_millis() as u64
    );
    Ok(())
}

async fn full_pool_is_an_error(Env { clock, spawner }: Env) -> Outcome {
    let t0 = clock.now();
    let release = t0 + Duration::from_millis(50);
    for slot in 0..spawner.capacity() {
        spawner
            .spawn(Box::pin(clock.sleep_until(release)))
            .map_err(|error| format!("slot {slot} of {}: {error}", spawner.capacity()))?;
    }
    let when_full = spawner.spawn(Box::pin(async {}));
    check!(
        when_full == Err(cano_embassy::SpawnError::PoolFull),
        "spawning into a full pool gave {when_full:?}"
    );
    // The sleepers finish at `release` and free their slots.
    clock.sleep_until(release + Duration::from_millis(1)).await;
    let reused = spawn_with_result(&spawner, async { 42 })?;
    check!(
        reused.await == Ok(42),
        "a freed slot did not run its future"
    );
    Ok(())
}

async fn wall_clock_follows_its_epoch(Env { clock: other, .. }: Env) -> Outcome {
    // Integer arithmetic on purpose: jiff's parser, printer and panicking operators would
    // add tens of KiB of flash to this firmware.
    fn micros(at: Instant) -> i64 {
        i64::try_from(at.as_micros()).unwrap_or(i64::MAX)
    }
    // Two clock readings in a row may straddle a tick.
    const ONE_TICK_US: i64 = 1_000;

    const NEW_YEAR_2026: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
    let epoch = Timestamp::from_second(NEW_YEAR_2026).map_err(|_| "epoch out of range")?;
    let clock = EmbassyClock::with_wall_epoch(epoch);
    clock
        .sleep_until(clock.now() + Duration::from_millis(100))
        .await;
    let (now, wall) = (clock.now(), clock.wall_now());
    let drift = wall.as_microsecond() - epoch.as_microsecond() - micros(now);
    check!(
        drift.abs() <= ONE_TICK_US,
        "wall {} µs is not epoch {} µs + {} µs",
        wall.as_microsecond(),
        epoch.as_microsecond(),
        micros(now)
    );

    const MID_2026: i64 = 1_780_315_200; // 2026-06-01T12:00:00Z, say from SNTP
    let synced = Timestamp::from_second(MID_2026).map_err(|_| "sync time out of range")?;
    let before = clock.now();
    clock.set_wall_now(synced);
    clock.sleep_until(before + Duration::from_millis(50)).await;
    let (now, wall) = (clock.now(), clock.wall_now());
    let drift = (wall.as_microsecond() - synced.as_microsecond()) - (micros(now) - micros(before));
    check!(
        drift.abs() <= ONE_TICK_US,
        "{} µs after set_wall_now, wall moved {} µs",
        micros(now) - micros(before),
        wall.as_microsecond() - synced.as_microsecond()
    );
    // The wall clock is the device's: every handle sees the same one.
    check!(
        other.wall_epoch() == clock.wall_epoch(),
        "another EmbassyClock has a different epoch"
    );
    Ok(())
}

async fn time_agrees_with_the_host(Env { clock, .. }: Env) -> Outcome {
    const SLEEP: Duration = Duration::from_millis(500);
    let host_start = host::elapsed_ms().ok_or("the host has no SYS_ELAPSED")?;
    let start = clock.now();
    clock.sleep_until(start + SLEEP).await;
    let embassy_ms = (clock.now() - start).as_millis() as u64;
    let host_ms = host::elapsed_ms().ok_or("the host has no SYS_ELAPSED")? - host_start;
    // A wrong SysTick clock (CORE_HZ) is off by a factor of two or more; a loaded host only
    // makes the emulator a little late.
    check!(
        host_ms * 10 >= embassy_ms * 7 && host_ms * 2 <= embassy_ms * 3,
        "embassy measured {embassy_ms} ms while the host measured {host_ms} ms"
    );
    Ok(())
}
