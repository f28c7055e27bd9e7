//! How runs start ([`RunStart`]): a run the loop's first poll finishes costs no task, a run
//! that waits is handed to the spawner without losing its wake-up, a slow first poll moves
//! its flow to spawned runs, a pass spends a bounded time on inline polls, and a spawner's
//! refusal after a first poll is a failed run, as a refused spawn always is.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use cano_core::schedule::{INLINE_START_BUDGET, RunStart, Schedule, SchedulePolicy};
use cano_core::scheduler::{Fire, FlowOptions, RunningScheduler, Scheduler, job_fn};
use cano_core::testing::{FakeClock, SimSpawner, Simulation};
use cano_core::{BoxFuture, CanoError, Clock, SpawnError, Spawner, Status};

/// A spawner onto the simulation that counts what it is given and refuses once its
/// budget (if any) is used up, like a full embassy pool.
#[derive(Clone)]
struct CountingSpawner {
    inner: SimSpawner,
    spawned: Arc<AtomicUsize>,
    budget: Option<usize>,
    /// Fake time each spawn takes (on `clock`).
    busy_per_spawn: Duration,
    clock: FakeClock,
}

impl CountingSpawner {
    fn new(sim: &Simulation) -> Self {
        CountingSpawner {
            inner: sim.spawner(),
            spawned: Arc::new(AtomicUsize::new(0)),
            budget: None,
            busy_per_spawn: Duration::ZERO,
            clock: sim.clock(),
        }
    }

    /// Futures spawned besides the scheduler's loop.
    fn runs_spawned(&self) -> usize {
        self.spawned.load(Ordering::SeqCst) - 1
    }
}

impl Spawner for CountingSpawner {
    fn spawn(&self, future: BoxFuture) -> Result<(), SpawnError> {
        let n = self.spawned.load(Ordering::SeqCst);
        if self.budget.is_some_and(|budget| n >= budget) {
            return Err(SpawnError::PoolFull);
        }
        self.spawned.fetch_add(1, Ordering::SeqCst);
        self.clock.advance(self.busy_per_spawn);
        self.inner.spawn(future)
    }
}

/// A job that counts its runs in `runs` and, before it returns, takes `busy` of (fake)
/// time without waiting, then waits `wait` on the fire's clock.
fn job(
    runs: &Arc<AtomicU64>,
    clock: &FakeClock,
    busy: Duration,
    wait: Duration,
) -> impl cano_core::scheduler::Job<()> + use<> {
    let (runs, clock) = (runs.clone(), clock.clone());
    job_fn(move |(), fire: Fire| {
        let (runs, clock) = (runs.clone(), clock.clone());
        async move {
            clock.advance(busy);
            if !wait.is_zero() {
                let clock = fire.clock();
                clock.sleep_until(clock.now() + wait).await;
            }
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<(), CanoError>(())
        }
    })
}

/// A simulation, its counting spawner, and a scheduler whose flows count their runs.
struct Fixture {
    sim: Simulation,
    spawner: CountingSpawner,
    scheduler: Option<Scheduler<()>>,
}

impl Fixture {
    fn new() -> Self {
        let sim = Simulation::new();
        let spawner = CountingSpawner::new(&sim);
        Fixture {
            sim,
            spawner,
            scheduler: Some(Scheduler::new()),
        }
    }

    /// Adds flow `id` every `every` (its first run at start), counting into a new counter.
    fn every(&mut self, id: &str, every: Duration, busy: Duration, wait: Duration) -> Runs {
        let runs = Runs::default();
        let job = job(&runs.0, &self.sim.clock(), busy, wait);
        let scheduler = self.scheduler.as_mut().expect("not started");
        scheduler.every(id, job, (), every).unwrap();
        runs
    }

    fn start(&mut self) -> RunningScheduler {
        let scheduler = self.scheduler.take().expect("started once");
        self.sim
            .block_on(scheduler.start(self.sim.clock(), self.spawner.clone()))
            .expect("start")
    }

    fn stop(&self, running: RunningScheduler) {
        drop(self.sim.block_on(running.stop()).expect("stop"));
    }
}

/// Runs that finished.
#[derive(Clone, Default)]
struct Runs(Arc<AtomicU64>);

impl Runs {
    fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

const TEN_MS: Duration = Duration::from_millis(10);
const HOURLY: Duration = Duration::from_secs(3600);
const AT_ONCE: Duration = Duration::ZERO;

#[test]
fn a_run_its_first_poll_finishes_is_never_spawned() {
    let mut f = Fixture::new();
    let runs: Vec<Runs> = ["a", "b", "c"]
        .iter()
        .map(|id| f.every(id, TEN_MS, AT_ONCE, AT_ONCE))
        .collect();
    let running = f.start();
    f.sim.run_for(Duration::from_millis(95));
    let ran: u64 = runs.iter().map(Runs::get).sum();
    assert_eq!(ran, 30, "each flow ran at 0, 10, …, 90 ms");
    assert_eq!(f.spawner.runs_spawned(), 0, "no run needed a task");
    let recorded: u64 = ["a", "b", "c"]
        .iter()
        .map(|id| running.status(id).unwrap().run_count)
        .sum();
    assert_eq!(recorded, ran, "every inline run was recorded as a run");
    f.stop(running);
}

#[test]
fn a_spawned_flow_spawns_every_run() {
    let mut f = Fixture::new();
    let runs = f.every("a", TEN_MS, AT_ONCE, AT_ONCE);
    let scheduler = f.scheduler.as_mut().unwrap();
    scheduler.set_run_start("a", RunStart::Spawned).unwrap();
    let running = f.start();
    f.sim.run_for(Duration::from_millis(95));
    assert_eq!(runs.get(), 10);
    assert_eq!(f.spawner.runs_spawned(), 10);
    f.stop(running);
}

#[test]
fn a_run_that_waits_is_spawned_after_its_first_poll_and_its_wake_up_is_kept() {
    let mut f = Fixture::new();
    // Waits 3 ms on the fire's clock: its timer was registered with the first poll's no-op
    // waker, and the spawned task's poll must register it again.
    let runs = f.every("a", TEN_MS, AT_ONCE, Duration::from_millis(3));
    let running = f.start();
    f.sim.run_for(Duration::from_millis(2));
    assert_eq!(runs.get(), 0, "still waiting");
    assert_eq!(running.status("a").unwrap().status, Status::Running);
    f.sim.run_for(Duration::from_millis(2));
    assert_eq!(runs.get(), 1, "woke at 3 ms and finished");
    assert_eq!(f.spawner.runs_spawned(), 1);
    let info = running.status("a").unwrap();
    assert_eq!((info.status, info.run_count), (Status::Completed, 1));
    f.stop(running);
}

#[test]
fn a_first_poll_over_the_budget_moves_its_flow_to_spawned_runs() {
    let mut f = Fixture::new();
    let over = INLINE_START_BUDGET + Duration::from_micros(1);
    let slow = f.every("slow", TEN_MS, over, AT_ONCE);
    let quick = f.every("quick", TEN_MS, INLINE_START_BUDGET, AT_ONCE);
    let running = f.start();
    f.sim.run_for(Duration::from_millis(95));
    let (slow, quick) = (slow.get(), quick.get());
    assert!(slow >= 9 && quick >= 9, "{slow} and {quick} runs");
    // The first pass polls "slow" inline (registered first): over the budget, so its later
    // runs are spawned, and the pass spawns "quick". Later, "quick" (exactly the budget, not
    // over it) is always polled inline.
    assert_eq!(
        f.spawner.runs_spawned() as u64,
        (slow - 1) + 1,
        "every run of slow but its first ({slow} runs) and quick's first"
    );
    f.stop(running);
}

#[test]
fn a_pass_spawns_its_remaining_runs_once_its_inline_polls_spent_the_budget() {
    let mut f = Fixture::new();
    // Hourly, first run at start: all four in the loop's first pass.
    let runs: Vec<Runs> = ["a", "b", "c", "d"]
        .iter()
        .map(|id| f.every(id, HOURLY, INLINE_START_BUDGET / 2, AT_ONCE))
        .collect();
    let running = f.start();
    f.sim.run_for(Duration::from_millis(1));
    assert_eq!(runs.iter().map(Runs::get).sum::<u64>(), 4);
    // a, b and c are polled inline (the pass had spent 0, 25 and 50 µs before each: not
    // over the budget); d is spawned (75 µs).
    assert_eq!(f.spawner.runs_spawned(), 1);
    f.stop(running);
}

#[test]
fn a_refused_spawn_after_a_first_poll_is_a_failed_run() {
    let mut f = Fixture::new();
    f.spawner.budget = Some(1); // the scheduler's loop takes the one slot
    let runs = f.every("waits", HOURLY, AT_ONCE, Duration::from_millis(1));
    let running = f.start();
    f.sim.run_for(Duration::from_millis(5));
    assert_eq!(runs.get(), 0, "the run never got past its wait");
    let info = running.status("waits").unwrap();
    assert_eq!((info.run_count, info.failure_streak), (1, 1), "{info:?}");
    let Status::Backoff { last_error, .. } = info.status else {
        panic!("the refusal is a failed run, not a cancelled one: {info:?}");
    };
    assert!(last_error.contains("task pool is full"), "{last_error}");
    f.stop(running);
}

/// An error whose text cannot be written: rendering it for the run's record panics, outside
/// the job's own panic isolation.
#[derive(Debug)]
struct Unprintable;

impl std::fmt::Display for Unprintable {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("this error cannot be displayed")
    }
}

impl std::error::Error for Unprintable {}

#[test]
fn a_panic_outside_the_jobs_isolation_fails_the_run_not_the_loop() {
    let mut f = Fixture::new();
    let job = job_fn(|(), _: Fire| async {
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(Unprintable);
        Err::<(), CanoError>(CanoError::from(boxed))
    });
    let scheduler = f.scheduler.as_mut().unwrap();
    scheduler.every("unprintable", job, (), TEN_MS).unwrap();
    let healthy = f.every("healthy", TEN_MS, AT_ONCE, AT_ONCE);
    let running = f.start();
    f.sim.run_for(Duration::from_millis(25));
    assert_eq!(
        healthy.get(),
        3,
        "the loop went on starting runs: 0, 10, 20 ms"
    );
    let info = running.status("unprintable").unwrap();
    assert_eq!(info.run_count, 1, "{info:?}");
    let Status::Backoff { last_error, .. } = info.status else {
        panic!("the run failed: {info:?}");
    };
    assert!(
        last_error.contains("this error cannot be displayed"),
        "{last_error}"
    );
    f.stop(running);
}

#[test]
fn a_flow_added_at_run_time_keeps_the_run_start_it_was_given() {
    let mut f = Fixture::new();
    let running = f.start();
    let (spawned_runs, inline_runs) = (Runs::default(), Runs::default());
    for (id, run_start, runs) in [
        ("spawned", RunStart::Spawned, &spawned_runs),
        ("inline", RunStart::Inline, &inline_runs),
    ] {
        let options = FlowOptions::default().with_policy(SchedulePolicy {
            run_start,
            ..SchedulePolicy::default()
        });
        let job = job(&runs.0, &f.sim.clock(), AT_ONCE, AT_ONCE);
        f.sim
            .block_on(running.add_flow_with(id, Schedule::Every(TEN_MS), options, job, ()))
            .unwrap();
    }
    f.sim.run_for(Duration::from_millis(45));
    assert_eq!((spawned_runs.get(), inline_runs.get()), (5, 5));
    assert_eq!(f.spawner.runs_spawned(), 5, "only the Spawned flow's runs");
    f.stop(running);
}

#[test]
fn a_spawn_between_two_inline_polls_is_not_charged_to_the_second() {
    let mut f = Fixture::new();
    // Each spawn takes just over the budget (on the fake clock). "b", between two inline
    // flows, is spawned: were that spawn charged to "c"'s inline poll, c would be slow and
    // move to spawned runs.
    let a = f.every("a", HOURLY, INLINE_START_BUDGET / 2, AT_ONCE);
    let b = f.every("b", HOURLY, AT_ONCE, AT_ONCE);
    let c = f.every("c", HOURLY, AT_ONCE, AT_ONCE);
    let scheduler = f.scheduler.as_mut().unwrap();
    scheduler.set_run_start("b", RunStart::Spawned).unwrap();
    f.spawner.busy_per_spawn = INLINE_START_BUDGET + Duration::from_micros(1);
    let running = f.start();
    f.sim.run_for(Duration::from_millis(1));
    assert_eq!((a.get(), b.get(), c.get()), (1, 1, 1));
    // a inline (25 µs), b spawned, c inline (no time of its own): none of them slow.
    assert_eq!(f.spawner.runs_spawned(), 1);
    // Their next runs (an hour later) start inline the same way: c was not moved to spawned
    // runs by b's spawn.
    f.sim.run_for(HOURLY);
    assert_eq!((a.get(), b.get(), c.get()), (2, 2, 2));
    assert_eq!(f.spawner.runs_spawned(), 2, "b's two runs and nothing else");
    f.stop(running);
}
