//! cano's scheduler on embassy: one scheduler with four flows (an interval, a cron
//! expression on a fixed wall-clock epoch, a manual workflow with a split, and a flow that
//! backs off and trips), stopped gracefully with a run in flight; and a scheduler whose task
//! pool is full.
//!
//! Times are checked on embassy's clock, which is the one the scheduler sees. Nothing here
//! formats a `Timestamp` or a cano type with `Debug`: jiff's printer alone would add tens of
//! KiB of flash (see the crate docs of cano-embassy).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::time::Duration;

use cano_embassy::jiff::Timestamp;
use cano_embassy::schedule::RunStart;
use cano_embassy::scheduler::{Fire, FlowInfo, Scheduler, StopReport};
use cano_embassy::{
    BackoffPolicy, CanoError, CanoResult, Clock, EmbassyClock, EmbassySpawner, Instant, Pool,
    SpawnError, Status,
};
use cortex_m_semihosting::hprintln;
use embassy_executor::SendSpawner;

use super::{Env, MAX_LATENESS, Outcome};
use crate::HEAP;
use crate::split_workflow::{
    BRANCH_ENDS, BRANCHES, Joined, Log, QUORUM, SPLIT_TAKES, Step, split_workflow,
};

/// The scheduler's loop plus one run in flight per flow: every flow keeps the default
/// `OverlapPolicy::Skip`, and the split polls its branches inside its own run.
const SCHEDULER_POOL_SIZE: usize = 1 + 4;
static SCHEDULER_POOL: Pool<SCHEDULER_POOL_SIZE> = Pool::new();
/// Room for a scheduler's loop and nothing else.
static ONE_SLOT_POOL: Pool<1> = Pool::new();
/// The loop and one run of each of the two flows added at runtime.
static RUNTIME_POOL: Pool<3> = Pool::new();

/// The interval flow's runs take `INTERVAL_WORK`, and the next one starts `INTERVAL` after
/// the previous one ended (the default `IntervalMode::FixedDelay`).
const INTERVAL: Duration = Duration::from_millis(100);
const INTERVAL_WORK: Duration = Duration::from_millis(20);
/// Seconds 1, 2 and 30 of every minute.
const CRON: &str = "1,2,30 * * * * *";
/// 2026-01-01T12:00:00Z.
const NOON: i64 = 1_767_268_800;
/// The wall clock reads 12:00:00.800 at start: the cron flow fires 200 ms and 1200 ms later.
const WALL_AT_START_MS: i64 = NOON * 1000 + 800;
const FLAKY_INTERVAL: Duration = Duration::from_millis(20);
const FLAKY_TRIPS_AT: u32 = 3;
const FLAKY_ERROR: &str = "sensor offline";
const SPLIT_TRIGGERS: [Duration; 2] = [Duration::from_millis(300), Duration::from_millis(800)];
/// Between the interval's 11th run (0, 120, … 1200 ms) and its 12th (1320 ms), and after the
/// cron flow's second fire (1200 ms).
const STOP_AT: Duration = Duration::from_millis(1260);
const STOP_GRACE: Duration = Duration::from_millis(500);

/// How late a run may start, or a join or a stop end, on embassy's clock. Larger than the
/// other scenarios' [`MAX_LATENESS`]: the first run of each flow executes code that QEMU has
/// not translated yet, and the emulated clock runs on while it translates (3 to 8 ms
/// measured on an idle host, more on a loaded one). Still well below the differences the
/// checks tell apart (a 50 ms backoff from a 100 ms one, a 60 ms join from a 100 ms one).
const LATENESS: Duration = Duration::from_millis(25);

/// What the flows recorded, and what the scheduler said about them.
struct Observed {
    started: Instant,
    /// When each interval run began, and whether it saw the stop by the time it ended.
    interval_began: Vec<Instant>,
    interval_ended: Vec<bool>,
    /// Each cron run's scheduled wall time, and the wall time it began at.
    cron: Vec<(Timestamp, Timestamp)>,
    flaky: Vec<Instant>,
    split_begun: Vec<Instant>,
    split_joined: Vec<Joined>,
    before_stop: Vec<FlowInfo>,
    after_stop: Vec<FlowInfo>,
    report: StopReport,
    stop_took: Duration,
    trigger_after_stop: CanoResult<()>,
    /// Heap bytes in use before the scheduler was built, and the most in use while it ran.
    heap_before: usize,
    heap_peak: usize,
}

fn backoff() -> BackoffPolicy {
    BackoffPolicy {
        initial: Duration::from_millis(50),
        multiplier: 2.0,
        jitter: 0.0,
        ..BackoffPolicy::with_trip(FLAKY_TRIPS_AT)
    }
}

pub async fn four_flows_then_graceful_stop(Env { clock, .. }: Env) -> Outcome {
    let observed = run_four_flows(clock).await?;
    check_interval(&observed)?;
    check_cron(&observed)?;
    check_flaky(&observed)?;
    check_split(&observed)?;
    check_stop(&observed)
}

async fn run_four_flows(clock: EmbassyClock) -> Result<Observed, String> {
    HEAP.reset_peak();
    let heap_before = HEAP.used();
    let spawner = EmbassySpawner::from_send_spawner(
        SendSpawner::for_current_executor().await,
        &SCHEDULER_POOL,
    );
    let (interval_began, interval_ended) = (Log::new(), Log::new());
    let (cron, flaky) = (Log::new(), Log::new());
    let (split_begun, split_joined) = (Log::new(), Log::new());

    let (began, ended) = (interval_began.clone(), interval_ended.clone());
    let interval_job = move |fire: Fire| {
        let (began, ended) = (began.clone(), ended.clone());
        async move {
            let clock = fire.clock();
            began.push(clock.now());
            clock.sleep_until(clock.now() + INTERVAL_WORK).await;
            ended.push(fire.is_stopping());
            Ok::<(), CanoError>(())
        }
    };
    let log = cron.clone();
    let cron_job = move |fire: Fire| {
        log.push((fire.id().scheduled(), fire.clock().wall_now()));
        async { Ok::<(), CanoError>(()) }
    };
    let log = flaky.clone();
    let flaky_job = move |fire: Fire| {
        log.push(fire.clock().now());
        async { Err::<(), CanoError>(CanoError::task_execution(FLAKY_ERROR)) }
    };
    let workflow = split_workflow(&split_begun, &split_joined);

    let mut scheduler = Scheduler::new();
    scheduler
        .every("interval", interval_job, Step::Begin, INTERVAL)
        .and_then(|()| scheduler.cron("cron", cron_job, Step::Begin, CRON))
        .and_then(|()| scheduler.manual("split", workflow, Step::Begin))
        .and_then(|()| scheduler.every("flaky", flaky_job, Step::Begin, FLAKY_INTERVAL))
        .and_then(|()| scheduler.set_backoff("flaky", backoff()))
        .map_err(|e| format!("registration failed: {e}"))?;

    let wall_at_start =
        Timestamp::from_millisecond(WALL_AT_START_MS).map_err(|_| "wall time out of range")?;
    let t0 = clock.now();
    clock.set_wall_now(wall_at_start);
    let running = scheduler
        .start(clock, spawner)
        .await
        .map_err(|e| format!("start failed: {e}"))?;
    let started = clock.now();
    for at in SPLIT_TRIGGERS {
        clock.sleep_until(t0 + at).await;
        running
            .trigger("split")
            .map_err(|e| format!("trigger failed: {e}"))?;
    }
    clock.sleep_until(t0 + STOP_AT).await;
    let before_stop = running.list();
    // A run in flight while the scheduler stops; the grace lets it finish.
    running
        .trigger("interval")
        .map_err(|e| format!("trigger failed: {e}"))?;
    let stop_began = clock.now();
    let report = running
        .stop_within(STOP_GRACE)
        .await
        .map_err(|e| format!("stop failed: {e}"))?;
    let stop_took = clock.now() - stop_began;
    Ok(Observed {
        started,
        interval_began: interval_began.entries(),
        interval_ended: interval_ended.entries(),
        cron: cron.entries(),
        flaky: flaky.entries(),
        split_begun: split_begun.entries(),
        split_joined: split_joined.entries(),
        before_stop,
        after_stop: running.list(),
        report,
        stop_took,
        trigger_after_stop: running.trigger("interval"),
        heap_before,
        heap_peak: HEAP.peak(),
    })
}

fn millis(duration: Duration) -> u64 {
    duration.as_millis() as u64
}

/// The time between consecutive instants, in milliseconds.
fn gaps_ms(instants: &[Instant]) -> Vec<u64> {
    instants.windows(2).map(|w| millis(w[1] - w[0])).collect()
}

/// Whether `actual` is `expected`, or late by at most [`LATENESS`].
fn on_time(actual: Duration, expected: Duration) -> bool {
    actual >= expected && actual - expected <= LATENESS
}

/// `Status` without its `Debug`, which prints timestamps with jiff's printer.
fn status_name(status: &Status) -> &'static str {
    match status {
        Status::Idle => "idle",
        Status::Running => "running",
        Status::Completed => "completed",
        Status::Backoff { .. } => "in backoff",
        Status::Tripped { .. } => "tripped",
        Status::Paused => "paused",
        _ => "in an unknown status",
    }
}

fn flow<'a>(flows: &'a [FlowInfo], id: &str) -> Result<&'a FlowInfo, String> {
    flows
        .iter()
        .find(|f| f.id == id)
        .ok_or_else(|| format!("flow {id} is missing from list()"))
}

/// Runs at start, then `INTERVAL` after each run ended; the run triggered at the stop
/// finished inside the grace.
fn check_interval(seen: &Observed) -> Outcome {
    let began = &seen.interval_began;
    let scheduled = (STOP_AT.as_millis() / (INTERVAL + INTERVAL_WORK).as_millis() + 1) as usize;
    hprintln!(
        "       interval every {} ms after a {} ms run: {} runs by {} ms, {:?} ms apart, plus 1 triggered at the stop",
        millis(INTERVAL),
        millis(INTERVAL_WORK),
        began.len().saturating_sub(1),
        millis(STOP_AT),
        gaps_ms(&began[..began.len().saturating_sub(1)]),
    );
    check!(
        began.len() == scheduled + 1,
        "interval: {} runs began, expected {scheduled} scheduled and 1 triggered",
        began.len()
    );
    check!(
        on_time(began[0] - seen.started, Duration::ZERO),
        "interval: the first run began {} ms after start",
        millis(began[0] - seen.started)
    );
    check!(
        began[..scheduled]
            .windows(2)
            .all(|w| on_time(w[1] - w[0], INTERVAL + INTERVAL_WORK)),
        "interval: runs began {:?} ms apart",
        gaps_ms(began)
    );
    // Every run finished; only the last one saw the stop.
    let saw_stop: Vec<bool> = (0..began.len()).map(|i| i == scheduled).collect();
    check!(
        seen.interval_ended == saw_stop,
        "interval: runs ended seeing the stop {:?}, expected {saw_stop:?}",
        seen.interval_ended
    );
    let (before, after) = (
        flow(&seen.before_stop, "interval")?,
        flow(&seen.after_stop, "interval")?,
    );
    check!(
        before.run_count == scheduled as u64
            && after.run_count == began.len() as u64
            && after.status == Status::Completed,
        "interval: run_count {} before the stop, {} and {} after it",
        before.run_count,
        after.run_count,
        status_name(&after.status)
    );
    Ok(())
}

/// Fires exactly at seconds 1 and 2 on the wall clock, then plans second 30.
fn check_cron(seen: &Observed) -> Outcome {
    let seconds: Vec<i64> = seen
        .cron
        .iter()
        .map(|(at, _)| at.as_second() - NOON)
        .collect();
    let late_ms: Vec<i64> = seen
        .cron
        .iter()
        .map(|(at, began)| began.as_millisecond() - at.as_millisecond())
        .collect();
    let next_fire = flow(&seen.before_stop, "cron")?
        .next_fire
        .map_or(-1, |at| at.as_second() - NOON);
    hprintln!(
        "       cron \"{}\" from 12:00:00.800: fired at seconds {:?} past noon, {:?} ms late; next at second {}",
        CRON,
        seconds,
        late_ms,
        next_fire
    );
    let expected = [(NOON + 1) * 1000, (NOON + 2) * 1000];
    check!(
        seen.cron
            .iter()
            .map(|(at, _)| at.as_millisecond())
            .eq(expected),
        "cron: fired at {seconds:?} s past noon, expected exactly [1, 2]"
    );
    check!(
        late_ms
            .iter()
            .all(|&late| late >= 0 && late <= LATENESS.as_millis() as i64),
        "cron: runs began {late_ms:?} ms after their wall times"
    );
    check!(
        next_fire == 30,
        "cron: next fire at second {next_fire} past noon, expected 30"
    );
    let after = flow(&seen.after_stop, "cron")?;
    check!(
        after.run_count == 2 && after.status == Status::Completed,
        "cron: run_count {} and {} after the stop",
        after.run_count,
        status_name(&after.status)
    );
    Ok(())
}

/// Fails at start, 50 ms later and 100 ms after that, then trips and stays tripped.
fn check_flaky(seen: &Observed) -> Outcome {
    let info = flow(&seen.after_stop, "flaky")?;
    hprintln!(
        "       flaky every {} ms: {} failed runs, {:?} ms apart, then {} with a streak of {}",
        millis(FLAKY_INTERVAL),
        seen.flaky.len(),
        gaps_ms(&seen.flaky),
        status_name(&info.status),
        info.failure_streak
    );
    let policy = backoff();
    let delays: Vec<u64> = (1..FLAKY_TRIPS_AT)
        .map(|streak| millis(policy.delay_without_jitter(streak)))
        .collect();
    check!(
        seen.flaky.len() == FLAKY_TRIPS_AT as usize
            && (seen.flaky.windows(2).zip(&delays))
                .all(|(w, &delay)| on_time(w[1] - w[0], Duration::from_millis(delay))),
        "flaky: runs {:?} ms apart, expected {delays:?}",
        gaps_ms(&seen.flaky)
    );
    let tripped = match &info.status {
        Status::Tripped { streak, last_error } => {
            *streak == FLAKY_TRIPS_AT && last_error.ends_with(FLAKY_ERROR)
        }
        _ => false,
    };
    check!(
        tripped && info.failure_streak == FLAKY_TRIPS_AT,
        "flaky: {} with a streak of {}, expected tripped after {FLAKY_TRIPS_AT} failures",
        status_name(&info.status),
        info.failure_streak
    );
    check!(
        info.run_count == u64::from(FLAKY_TRIPS_AT) && info.next_fire.is_none(),
        "flaky: run_count {}, and a next fire planned: {}",
        info.run_count,
        info.next_fire.is_some()
    );
    Ok(())
}

/// Each triggered run joined as soon as the quorum was met, with every branch accounted for.
fn check_split(seen: &Observed) -> Outcome {
    for (began, joined) in seen.split_begun.iter().zip(&seen.split_joined) {
        hprintln!(
            "       split into {} branches, quorum {}: joined after {} ms, branches {:?}",
            BRANCHES.len(),
            QUORUM,
            millis(joined.at - *began),
            joined.ends
        );
    }
    let runs = SPLIT_TRIGGERS.len();
    check!(
        seen.split_begun.len() == runs && seen.split_joined.len() == runs,
        "split: {} runs began and {} joined, expected {runs}",
        seen.split_begun.len(),
        seen.split_joined.len()
    );
    for (began, joined) in seen.split_begun.iter().zip(&seen.split_joined) {
        // Concurrent branches: not their 220 ms sum; the quorum: not the slowest's 100 ms.
        check!(
            on_time(joined.at - *began, SPLIT_TAKES),
            "split: joined {} ms after it began, expected {}",
            millis(joined.at - *began),
            millis(SPLIT_TAKES)
        );
        check!(
            joined.ends == BRANCH_ENDS,
            "split: branches ended {:?}, expected {BRANCH_ENDS:?}",
            joined.ends
        );
    }
    let after = flow(&seen.after_stop, "split")?;
    check!(
        after.run_count == runs as u64 && after.status == Status::Completed,
        "split: run_count {} and {} after the stop",
        after.run_count,
        status_name(&after.status)
    );
    Ok(())
}

/// The stop waited for the run in flight, not for the whole grace, and cancelled nothing.
fn check_stop(seen: &Observed) -> Outcome {
    let report = &seen.report;
    hprintln!(
        "       heap: {} B in use before the scheduler was built, at most {} B while it ran",
        seen.heap_before,
        seen.heap_peak
    );
    hprintln!(
        "       stop within {} ms with a {} ms run in flight: took {} ms, {} runs cancelled, {} teardown errors",
        millis(STOP_GRACE),
        millis(INTERVAL_WORK),
        millis(seen.stop_took),
        report.cancelled.len(),
        report.teardown_errors.len()
    );
    check!(
        report.cancelled.is_empty() && report.teardown_errors.is_empty(),
        "stop: {} runs cancelled, {} teardown errors",
        report.cancelled.len(),
        report.teardown_errors.len()
    );
    check!(
        on_time(seen.stop_took, INTERVAL_WORK),
        "stop: took {} ms with a {} ms run in flight",
        millis(seen.stop_took),
        millis(INTERVAL_WORK)
    );
    check!(
        seen.trigger_after_stop.is_err(),
        "a trigger after the stop was accepted"
    );
    Ok(())
}

/// A run that cannot be spawned is a failure of its flow; a loop that cannot be spawned is
/// an error of `start`.
pub async fn full_pool_is_a_failed_run(Env { clock, .. }: Env) -> Outcome {
    let executor = SendSpawner::for_current_executor().await;
    let spawner = EmbassySpawner::from_send_spawner(executor, &ONE_SLOT_POOL);
    // It waits, so its run needs a task: "starved" starts inline (its first poll waits and
    // the loop hands it to the spawner), "starved-spawned" is spawned before any poll.
    let job = |fire: Fire| async move {
        let clock = fire.clock();
        clock
            .sleep_until(clock.now() + Duration::from_millis(1))
            .await;
        Ok::<(), CanoError>(())
    };
    let mut scheduler = Scheduler::<()>::new();
    for id in ["starved", "starved-spawned"] {
        scheduler
            .every(id, job, (), INTERVAL)
            .map_err(|e| format!("registration failed: {e}"))?;
    }
    scheduler
        .set_run_start("starved-spawned", RunStart::Spawned)
        .map_err(|e| format!("set_run_start failed: {e}"))?;
    // The loop takes the only slot; the first runs, due at once, find none.
    let running = scheduler
        .start(clock, spawner)
        .await
        .map_err(|e| format!("start failed: {e}"))?;
    let mut second = Scheduler::<()>::new();
    second
        .every("never", job, (), INTERVAL)
        .map_err(|e| format!("registration failed: {e}"))?;
    let second_start = second.start(clock, spawner).await.map(drop);
    clock.sleep_until(clock.now() + MAX_LATENESS).await;
    let infos = ["starved", "starved-spawned"].map(|id| running.status(id));
    let report = running.stop_within(Duration::ZERO).await;
    check!(
        second_start == Err(CanoError::Spawn(SpawnError::PoolFull)),
        "starting a scheduler on a full pool did not fail with PoolFull"
    );
    let pool_full = CanoError::Spawn(SpawnError::PoolFull).to_string();
    for info in infos {
        let info = info.ok_or("a flow is missing")?;
        let last_error = match &info.status {
            Status::Backoff { last_error, .. } => last_error.as_str(),
            _ => "",
        };
        hprintln!(
            "       {}: {} (\"{}\")",
            info.id,
            status_name(&info.status),
            last_error
        );
        check!(
            info.failure_streak == 1 && info.run_count == 1 && last_error == pool_full,
            "{}: a run that could not be spawned left {} with a streak of {}",
            info.id,
            status_name(&info.status),
            info.failure_streak
        );
    }
    check!(
        report.is_ok_and(|r| r.cancelled.is_empty()),
        "the stop failed"
    );
    Ok(())
}

/// Flows added to a running scheduler fire on their schedule; `cancel_flow` drops a run
/// without a failure; a removed flow runs no more and leaves `list()`.
pub async fn flows_added_and_removed_at_runtime(Env { clock, .. }: Env) -> Outcome {
    use alloc::sync::Arc;
    use cano_embassy::Schedule;
    use cano_embassy::scheduler::InFlight;
    use core::sync::atomic::{AtomicU32, Ordering};

    const EVERY: Duration = Duration::from_millis(50);
    let executor = SendSpawner::for_current_executor().await;
    let spawner = EmbassySpawner::from_send_spawner(executor, &RUNTIME_POOL);
    let running = Scheduler::<()>::new()
        .start(clock, spawner)
        .await
        .map_err(|e| format!("start failed: {e}"))?;
    let runs = Arc::new(AtomicU32::new(0));
    let counter = runs.clone();
    let counting = move |_: Fire| {
        counter.fetch_add(1, Ordering::Relaxed);
        async { Ok::<(), CanoError>(()) }
    };
    let t0 = clock.now();
    running
        .add_flow("added", Schedule::Every(EVERY), counting, ())
        .await
        .map_err(|e| format!("add_flow failed: {e}"))?;
    // At 0, 50 and 100 ms.
    clock.sleep_until(t0 + EVERY * 2 + EVERY / 2).await;
    let fired = runs.load(Ordering::Relaxed);
    // A long run that honours its cancellation: `cancel_flow` signals it and it ends at once
    // (one that ignored it would be dropped after the scheduler's cancel wind-down).
    let stuck = |fire: Fire| async move {
        let clock = fire.clock();
        let sleep = clock.sleep_until(clock.now() + Duration::from_secs(10));
        let cancelled = fire.cancellation().cancelled();
        futures::pin_mut!(sleep, cancelled);
        match futures::future::select(sleep, cancelled).await {
            futures::future::Either::Left(_) => Ok::<(), CanoError>(()),
            futures::future::Either::Right(_) => Err(CanoError::cancelled("cancel_flow")),
        }
    };
    running
        .add_flow("stuck", Schedule::Manual, stuck, ())
        .await
        .map_err(|e| format!("add_flow failed: {e}"))?;
    running
        .trigger("stuck")
        .map_err(|e| format!("trigger failed: {e}"))?;
    let cancelled = running
        .cancel_flow("stuck")
        .map_err(|e| format!("cancel_flow failed: {e}"))?;
    // The signal, the run's own end and the loop's record of it: a few polls.
    clock.sleep_until(clock.now() + MAX_LATENESS * 4).await;
    let stuck_info = running.status("stuck").ok_or("flow stuck is missing")?;
    running
        .remove_flow("added", InFlight::Wait)
        .await
        .map_err(|e| format!("remove_flow failed: {e}"))?;
    let after_removal = runs.load(Ordering::Relaxed);
    clock.sleep_until(clock.now() + EVERY * 3).await;
    let later = runs.load(Ordering::Relaxed);
    let ids: Vec<String> = running.list().into_iter().map(|f| f.id).collect();
    let report = running
        .stop_within(Duration::ZERO)
        .await
        .map_err(|e| format!("stop failed: {e}"))?;
    hprintln!(
        "       added every {} ms: {} runs in {} ms; cancel_flow cancelled {} run(s), leaving {} with a streak of {}; removed: {} more runs; flows left {:?}",
        millis(EVERY),
        fired,
        millis(EVERY * 2 + EVERY / 2),
        cancelled,
        status_name(&stuck_info.status),
        stuck_info.failure_streak,
        later - after_removal,
        ids
    );
    check!(fired == 3, "added: {fired} runs in 125 ms, expected 3");
    check!(
        cancelled == 1 && stuck_info.failure_streak == 0 && stuck_info.status == Status::Idle,
        "cancel_flow: {cancelled} cancelled, then {} with a streak of {}",
        status_name(&stuck_info.status),
        stuck_info.failure_streak
    );
    check!(
        later == after_removal,
        "removed: {} runs after the removal",
        later - after_removal
    );
    check!(ids == ["stuck"], "flows left {ids:?}, expected [\"stuck\"]");
    check!(
        report.cancelled.is_empty() && report.teardown_errors.is_empty(),
        "stop: {} cancelled, {} teardown errors",
        report.cancelled.len(),
        report.teardown_errors.len()
    );
    Ok(())
}
