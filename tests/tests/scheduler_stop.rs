//! Stop semantics (deadline, cancellation, report, teardown order), dropping the last handle,
//! panics, and the driver holding one timer.

mod scheduler_support;

use std::sync::{Arc, Mutex};

use cano_core::scheduler::Scheduler;
use cano_core::testing::Simulation;
use cano_core::{CanoError, Clock, Instant, Status};
use scheduler_support::{Behaviour, Lifecycle, Recorder, millis, secs, start};

#[test]
fn stop_cancels_a_run_that_ignores_cancellation_at_the_deadline_and_reports_it() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    let stubborn = Behaviour {
        honour_stop: false,
        ..Behaviour::taking(secs(3600))
    };
    s.every_hours("stubborn", rec.job(stubborn), (), 2).unwrap();
    s.every_hours("polite", rec.job(Behaviour::taking(secs(3600))), (), 2)
        .unwrap();
    let running = start(&sim, s);
    sim.run_for(secs(10));
    assert_eq!(rec.in_flight("stubborn"), 1);
    let report = sim.block_on(running.stop_within(secs(5))).unwrap();
    // The polite run ended at once on the stop signal; the stubborn one, signalled at the
    // deadline (15 s), ignored it and was dropped one cancellation wind-down later.
    assert_eq!(
        sim.clock().now(),
        Instant::from_secs(15) + cano_core::scheduler::DEFAULT_CANCEL_WIND_DOWN
    );
    assert_eq!(report.cancelled.len(), 1);
    assert_eq!(report.cancelled[0].flow(), "stubborn");
    assert_eq!(report.cancelled[0], rec.runs_of("stubborn")[0].fire);
    assert_eq!(
        rec.in_flight("stubborn"),
        0,
        "the cancelled run was dropped"
    );
    assert_eq!(rec.runs_of("stubborn")[0].ended, None);
    assert_eq!(rec.runs_of("polite")[0].ended, Some(Instant::from_secs(10)));
    assert!(!running.has_running_flows());
    assert_eq!(sim.live_tasks(), 0);
    // A cancelled run is neither a success nor a failure.
    assert_eq!(running.status("stubborn").unwrap().failure_streak, 0);
    assert_eq!(running.status("stubborn").unwrap().status, Status::Idle);
}

#[test]
fn setup_is_fifo_teardown_is_lifo_and_teardown_errors_are_reported() {
    let sim = Simulation::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut s = Scheduler::new();
    for (name, fail) in [("a", false), ("b", true), ("c", false)] {
        let job = Lifecycle {
            teardown_error: fail.then(|| CanoError::resource_not_found("pool already closed")),
            ..Lifecycle::new(name, &log)
        };
        s.manual(name, job, ()).unwrap();
    }
    let running = start(&sim, s);
    let report = sim.block_on(running.stop()).unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "setup a",
            "setup b",
            "setup c",
            "teardown c",
            "teardown b",
            "teardown a"
        ]
    );
    assert_eq!(
        report.teardown_errors,
        [(
            "b".to_string(),
            CanoError::resource_not_found("pool already closed")
        )]
    );
}

#[test]
fn wait_returns_when_another_handle_stops() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.every_minutes("m", rec.job(Behaviour::INSTANT_OK), (), 1)
        .unwrap();
    let running = start(&sim, s);
    let stopper = running.clone();
    let clock = sim.clock();
    sim.spawner().spawn_boxed_later(clock, secs(600), stopper);
    let report = sim.block_on(running.wait()).unwrap();
    assert!(report.cancelled.is_empty());
    assert_eq!(sim.clock().now(), Instant::from_secs(600));
    // The stopper's timer was armed first, so the stop wins the tie with the fire at 600 s.
    assert_eq!(rec.count("m"), 10);
}

trait SpawnStopLater {
    fn spawn_boxed_later(
        &self,
        clock: cano_core::testing::FakeClock,
        after: std::time::Duration,
        handle: cano_core::RunningScheduler,
    );
}

impl SpawnStopLater for cano_core::testing::SimSpawner {
    fn spawn_boxed_later(
        &self,
        clock: cano_core::testing::FakeClock,
        after: std::time::Duration,
        handle: cano_core::RunningScheduler,
    ) {
        use cano_core::Spawner;
        self.spawn(Box::pin(async move {
            clock.sleep_until(clock.now() + after).await;
            handle.stop().await.unwrap();
        }))
        .unwrap();
    }
}

#[test]
fn a_panicking_run_is_a_failure_of_its_flow_only() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    let panicky = Behaviour {
        panic: true,
        ..Behaviour::failing_until(1)
    };
    s.every_seconds("panicky", rec.job(panicky), (), 10)
        .unwrap();
    s.every_seconds("steady", rec.job(Behaviour::INSTANT_OK), (), 10)
        .unwrap();
    let running = start(&sim, s);
    sim.run_until_stalled();
    match running.status("panicky").unwrap().status {
        Status::Backoff { last_error, .. } => {
            assert!(last_error.contains("panicked"), "{last_error}")
        }
        other => panic!("{other:?}"),
    }
    sim.run_for(secs(25));
    assert_eq!(rec.count("steady"), 3);
    assert_eq!(rec.count("panicky"), 3);
    assert_eq!(running.status("panicky").unwrap().status, Status::Completed);
}

#[test]
fn a_dead_driver_is_an_error_not_a_hang() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.manual("m", rec.job(Behaviour::INSTANT_OK), ()).unwrap();
    let running = start(&sim, s);
    drop(sim); // the runtime goes away with the loop in it
    let err = futures::executor::block_on(running.wait()).unwrap_err();
    assert!(err.to_string().contains("terminated unexpectedly"), "{err}");
}

#[test]
fn one_timer_for_ten_thousand_flows_and_no_work_while_idle() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    for i in 0..10_000u64 {
        s.every(
            &format!("f{i}"),
            rec.job(Behaviour::INSTANT_OK),
            (),
            secs(3600 + i),
        )
        .unwrap();
        s.set_first_run(
            &format!("f{i}"),
            cano_core::schedule::FirstRun::AfterInterval,
        )
        .unwrap();
    }
    let running = start(&sim, s);
    sim.run_until_stalled();
    assert_eq!(clock.pending_sleeps(), 1, "one timer for all flows");
    assert_eq!(clock.next_deadline(), Some(Instant::from_secs(3600)));
    // Idle: nothing is ready to poll until that deadline.
    assert_eq!(sim.run_until_stalled(), 0);
    sim.run_for(millis(3_599_999));
    assert_eq!(rec.runs().len(), 0);
    sim.run_for(secs(3));
    assert_eq!(rec.runs().len(), 3);
    assert_eq!(clock.pending_sleeps(), 1);
    drop(running);
}

#[test]
fn a_polite_run_that_winds_down_on_stop_is_cancelled_not_failed() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.every_hours("polite", rec.job(Behaviour::taking(secs(3600))), (), 2)
        .unwrap();
    let running = start(&sim, s);
    sim.run_for(secs(10));
    let report = sim.block_on(running.stop_within(secs(5))).unwrap();
    assert!(report.cancelled.is_empty(), "{report:?}");
    let info = running.status("polite").unwrap();
    assert_eq!(info.failure_streak, 0, "{info:?}");
    assert!(
        !matches!(info.status, Status::Backoff { .. } | Status::Tripped { .. }),
        "{info:?}"
    );
}

/// A workflow running when the stop begins gets the whole grace period: its cancellation
/// token fires at the deadline, not at the start of the stop.
#[test]
fn a_workflow_run_in_flight_gets_the_grace_period() {
    use cano_core::{Task, TaskConfig, TaskResult, Workflow};

    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    enum Step {
        Work,
        Done,
    }
    struct Slow<C>(C);
    impl<C: Clock> Task<Step> for Slow<C> {
        async fn run_bare(&self) -> Result<TaskResult<Step>, CanoError> {
            self.0.sleep_until(self.0.now() + millis(500)).await;
            Ok(TaskResult::Single(Step::Done))
        }
        fn config(&self) -> TaskConfig {
            TaskConfig::minimal()
        }
    }

    let sim = Simulation::new();
    let workflow = Workflow::bare()
        .register(Step::Work, Slow(sim.clock()))
        .add_exit_state(Step::Done);
    let mut s = Scheduler::new();
    s.every_hours("report", workflow, Step::Work, 1).unwrap();
    let running = start(&sim, s);
    sim.run_for(millis(100));
    assert_eq!(running.status("report").unwrap().status, Status::Running);
    let report = sim.block_on(running.stop_within(secs(10))).unwrap();
    assert!(report.cancelled.is_empty(), "{report:?}");
    // The run finished normally, 400 ms into the grace.
    assert_eq!(sim.clock().now(), Instant::from_millis(500));
    let info = running.status("report").unwrap();
    assert_eq!((info.status, info.failure_streak), (Status::Completed, 0));

    // With a grace shorter than the run, it is cancelled at the deadline and reported.
    let mut s = Scheduler::new();
    let workflow = Workflow::bare()
        .register(Step::Work, Slow(sim.clock()))
        .add_exit_state(Step::Done);
    s.every_hours("report", workflow, Step::Work, 1).unwrap();
    let running = start(&sim, s);
    sim.run_for(millis(100));
    let report = sim.block_on(running.stop_within(millis(200))).unwrap();
    assert_eq!(report.cancelled.len(), 1, "{report:?}");
    assert_eq!(running.status("report").unwrap().failure_streak, 0);
}

/// A spawner that refuses once its budget of spawns is used up, like a full embassy pool.
#[derive(Clone)]
struct BudgetSpawner {
    inner: cano_core::testing::SimSpawner,
    left: Arc<std::sync::atomic::AtomicUsize>,
}

impl cano_core::Spawner for BudgetSpawner {
    fn spawn(&self, future: cano_core::BoxFuture) -> Result<(), cano_core::SpawnError> {
        use std::sync::atomic::Ordering;
        self.left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .map_err(|_| cano_core::SpawnError::PoolFull)?;
        self.inner.spawn(future)
    }
}

#[test]
fn a_trigger_the_runtime_refuses_is_an_error_and_a_failed_run() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.manual("m", rec.job(Behaviour::INSTANT_OK), ()).unwrap();
    // One slot: the scheduler's own loop takes it, so the trigger's run cannot be spawned.
    let spawner = BudgetSpawner {
        inner: sim.spawner(),
        left: Arc::new(std::sync::atomic::AtomicUsize::new(1)),
    };
    let running = sim.block_on(s.start(sim.clock(), spawner)).unwrap();
    let err = running.trigger("m").unwrap_err();
    assert_eq!(err, CanoError::Spawn(cano_core::SpawnError::PoolFull));
    sim.run_for(millis(10));
    assert_eq!(rec.count("m"), 0, "the job never ran");
    let info = running.status("m").unwrap();
    assert_eq!(info.failure_streak, 1, "{info:?}");
    assert!(!running.has_running_flows());
}

/// A runtime that drops every run after its first poll, as a runtime shutting down might.
#[derive(Clone)]
struct DroppingSpawner {
    inner: cano_core::testing::SimSpawner,
    spawned: Arc<std::sync::atomic::AtomicUsize>,
}

impl cano_core::Spawner for DroppingSpawner {
    fn spawn(&self, mut future: cano_core::BoxFuture) -> Result<(), cano_core::SpawnError> {
        use std::sync::atomic::Ordering;
        // The first spawn is the scheduler's own loop: keep it.
        if self.spawned.fetch_add(1, Ordering::SeqCst) == 0 {
            return self.inner.spawn(future);
        }
        self.inner
            .spawn(Box::pin(futures::future::poll_fn(move |cx| {
                let _ = future.as_mut().poll(cx);
                std::task::Poll::Ready(())
            })))
    }
}

#[test]
fn a_run_its_runtime_drops_ends_as_cancelled_and_stop_still_returns() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.every_hours("hourly", rec.job(Behaviour::taking(secs(60))), (), 1)
        .unwrap();
    let spawner = DroppingSpawner {
        inner: sim.spawner(),
        spawned: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
    };
    let running = sim.block_on(s.start(sim.clock(), spawner)).unwrap();
    sim.run_for(secs(10));
    assert_eq!(rec.count("hourly"), 1, "the run started");
    assert!(!running.has_running_flows(), "the dropped run ended");
    let info = running.status("hourly").unwrap();
    assert_eq!(
        info.failure_streak, 0,
        "a dropped run is not a failure: {info:?}"
    );
    // The flow is re-armed: the next hour's fire happens.
    sim.run_for(secs(3600));
    assert_eq!(rec.count("hourly"), 2);
    let report = sim.block_on(running.stop_within(secs(5))).unwrap();
    assert!(report.cancelled.is_empty(), "{report:?}");
}

/// The rule lives in the pure core: after `stop`, a run ending with `Cancelled` is cancelled;
/// before it, the same outcome is an ordinary failure.
#[test]
fn the_core_decides_that_cancelled_during_a_stop_is_not_a_failure() {
    use cano_core::jiff::Timestamp;
    use cano_core::schedule::Schedule;
    use cano_core::scheduler::SchedulerCore;

    let wall = Timestamp::UNIX_EPOCH;
    let cancelled = CanoError::cancelled("stopping");
    let mut core = SchedulerCore::new();
    let flow = core.add_flow("m", Schedule::Manual).unwrap();
    core.start(Instant::ZERO, wall);

    let run = core.trigger(flow, Instant::ZERO, wall).unwrap().unwrap();
    core.finish(run.run, Instant::from_secs(1), wall, Err(&cancelled))
        .unwrap();
    assert_eq!(
        core.info(flow, Instant::from_secs(1), wall).failure_streak,
        1
    );

    let run = core
        .trigger(flow, Instant::from_secs(2), wall)
        .unwrap()
        .unwrap();
    core.begin_stop(Instant::from_secs(2), std::time::Duration::from_secs(30));
    core.finish(run.run, Instant::from_secs(3), wall, Err(&cancelled))
        .unwrap();
    let info = core.info(flow, Instant::from_secs(3), wall);
    assert_eq!(
        info.failure_streak, 1,
        "unchanged by the cancelled run: {info:?}"
    );
    assert!(!core.has_running_flows());
}
