//! Flows changed on a running scheduler (fake clock): added, removed and replaced during a
//! run and during a stop, `cancel_flow` (not a failure), and the run history's bounds.

mod scheduler_support;

use std::sync::{Arc, Mutex};

use cano_core::persist::{MemoryScheduleStore, ScheduleStore};
use cano_core::scheduler::schedule::{FirstRun, OverlapPolicy, Schedule, SchedulePolicy};
use cano_core::scheduler::{
    FlowOptions, InFlight, RunOutcome, RunningScheduler, Scheduler, SchedulerError, job_fn,
};
use cano_core::testing::Simulation;
use cano_core::{BackoffPolicy, CanoError, Clock, Cron, Status};
use futures::FutureExt;
use scheduler_support::{Behaviour, Lifecycle, Recorder, millis, secs, start};

fn scheduler_error(e: &CanoError) -> &SchedulerError {
    e.as_scheduler_error()
        .unwrap_or_else(|| panic!("not a scheduler error: {e}"))
}

fn every(s: u64) -> Schedule {
    Schedule::Every(secs(s))
}

fn after_interval() -> FlowOptions {
    FlowOptions::default().with_policy(SchedulePolicy {
        first_run: FirstRun::AfterInterval,
        ..SchedulePolicy::default()
    })
}

/// A scheduler with one long-running manual flow, `long` (10 s per run), started.
fn with_a_long_run(sim: &Simulation, rec: &Recorder) -> RunningScheduler {
    let mut s = Scheduler::new();
    s.manual("long", rec.job(Behaviour::taking(secs(10))), ())
        .unwrap();
    let running = start(sim, s);
    running.trigger("long").unwrap();
    sim.run_for(secs(1));
    assert_eq!(rec.in_flight("long"), 1);
    running
}

#[test]
fn a_flow_added_during_a_run_fires_from_now_and_bad_additions_are_typed_errors() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let running = with_a_long_run(&sim, &rec);
    sim.block_on(running.add_flow_with(
        "added",
        every(2),
        after_interval(),
        rec.job(Behaviour::INSTANT_OK),
        (),
    ))
    .unwrap();
    sim.run_for(secs(6)); // at 3, 5, 7 s
    assert_eq!(rec.start_secs("added"), [3.0, 5.0, 7.0]);
    assert_eq!(
        running
            .list()
            .iter()
            .map(|f| f.id.as_str())
            .collect::<Vec<_>>(),
        ["long", "added"]
    );

    let add = |id: &str, schedule: Schedule, options: FlowOptions| {
        sim.block_on(running.add_flow_with(
            id,
            schedule,
            options,
            rec.job(Behaviour::INSTANT_OK),
            (),
        ))
        .unwrap_err()
    };
    let dup = add("long", every(1), FlowOptions::default());
    assert!(scheduler_error(&dup).is_duplicate_flow());
    assert_eq!(
        dup.to_string(),
        "Configuration error: Flow 'long' already exists"
    );
    let zero = add("zero", Schedule::Every(secs(0)), FlowOptions::default());
    assert_eq!(
        *scheduler_error(&zero),
        SchedulerError::ZeroInterval { id: "zero".into() }
    );
    let empty = add("", every(1), FlowOptions::default());
    assert_eq!(*scheduler_error(&empty), SchedulerError::EmptyFlowId);
    let bad_policy = add(
        "bad",
        every(1),
        FlowOptions::default().with_policy(SchedulePolicy {
            overlap: OverlapPolicy::AllowConcurrent(0),
            ..SchedulePolicy::default()
        }),
    );
    assert!(matches!(
        scheduler_error(&bad_policy),
        SchedulerError::InvalidPolicy { .. }
    ));
    let bad_backoff = add(
        "bad",
        every(1),
        FlowOptions::default().with_backoff(BackoffPolicy {
            multiplier: f64::NAN,
            ..BackoffPolicy::default()
        }),
    );
    assert_eq!(bad_backoff.category(), "configuration");
    // A bad cron expression is refused before anything exists (as the builder's `cron`).
    let cron = Cron::parse("61 * * * *")
        .map_err(CanoError::from)
        .unwrap_err();
    assert!(matches!(cron, CanoError::InvalidCron(_)));
    assert_eq!(running.list().len(), 2, "nothing was added by the refusals");
    // A cron flow added at runtime fires at its next match.
    sim.block_on(running.add_flow(
        "minutely",
        Schedule::Cron(Cron::parse("* * * * *").unwrap()),
        rec.job(Behaviour::INSTANT_OK),
        (),
    ))
    .unwrap();
    sim.run_for(secs(120));
    assert_eq!(rec.count("minutely"), 2);
    sim.block_on(running.stop()).unwrap();
}

#[test]
fn a_flow_of_another_input_type_can_be_added() {
    let sim = Simulation::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let running = start(&sim, Scheduler::<()>::new());
    let sink = seen.clone();
    let job = job_fn(move |n: u64, _fire| {
        let sink = sink.clone();
        async move {
            sink.lock().unwrap().push(n);
            Ok(())
        }
    });
    sim.block_on(running.add_flow("numbers", every(10), job, 7_u64))
        .unwrap();
    sim.run_for(secs(25));
    assert_eq!(*seen.lock().unwrap(), [7, 7, 7]);
    sim.block_on(running.stop()).unwrap();
}

#[test]
fn removing_a_flow_with_wait_lets_its_run_finish_then_tears_its_job_down() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut s = Scheduler::new();
    s.manual("long", rec.job(Behaviour::taking(secs(10))), ())
        .unwrap();
    s.every_seconds("kept", Lifecycle::new("kept", &log), (), 1)
        .unwrap();
    let running = start(&sim, s);
    sim.block_on(running.add_flow("life", Schedule::Manual, Lifecycle::new("life", &log), ()))
        .unwrap();
    running.trigger("long").unwrap();
    sim.run_for(secs(1));
    let started = sim.clock().now();
    sim.block_on(running.remove_flow("long", InFlight::Wait))
        .unwrap();
    assert_eq!(
        sim.clock().now().saturating_duration_since(started),
        secs(9),
        "remove_flow waited for the run in flight"
    );
    let run = &rec.runs_of("long")[0];
    assert!(run.ended.is_some());
    assert!(running.status("long").is_none());
    let unknown = running.trigger("long").unwrap_err();
    assert!(scheduler_error(&unknown).is_unknown_flow());
    sim.block_on(running.remove_flow("life", InFlight::Wait))
        .unwrap();
    assert_eq!(log.lock().unwrap().last().unwrap(), "teardown life");
    // The id is free again.
    sim.block_on(running.add_flow("long", Schedule::Manual, rec.job(Behaviour::INSTANT_OK), ()))
        .unwrap();
    running.trigger("long").unwrap();
    sim.run_until_stalled();
    assert_eq!(rec.count("long"), 2);
    let missing = sim
        .block_on(running.remove_flow("nope", InFlight::Wait))
        .unwrap_err();
    assert!(scheduler_error(&missing).is_unknown_flow());
    let report = sim.block_on(running.stop()).unwrap();
    assert!(report.teardown_errors.is_empty());
    let log = log.lock().unwrap();
    assert_eq!(
        log.iter().filter(|l| *l == "teardown life").count(),
        1,
        "{log:?}"
    );
    assert_eq!(log.last().unwrap(), "teardown kept");
}

#[test]
fn removing_with_cancel_drops_the_run_after_its_grace_and_wind_down_as_cancelled() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let ignores_stop = Behaviour {
        honour_stop: false,
        ..Behaviour::taking(secs(60))
    };
    let mut s = Scheduler::new();
    s.set_cancel_wind_down(secs(2));
    s.manual("long", rec.job(ignores_stop), ()).unwrap();
    let running = start(&sim, s);
    running.trigger("long").unwrap();
    sim.run_for(secs(1));
    let mut events = running.subscribe();
    sim.block_on(running.remove_flow(
        "long",
        InFlight::Cancel {
            grace: millis(2500),
        },
    ))
    .unwrap();
    // Signalled at 3.5 s (after the grace), ignored, dropped at 5.5 s (the wind-down).
    assert_eq!(sim.clock().now().as_micros(), 5_500_000);
    assert_eq!(rec.in_flight("long"), 0, "the run was dropped");
    assert_eq!(rec.runs_of("long")[0].ended, None, "dropped, not ended");
    let mut lines = Vec::new();
    while let Some(Some(event)) = futures::StreamExt::next(&mut events).now_or_never() {
        lines.push(event);
    }
    assert!(matches!(
        lines[0],
        cano_core::scheduler::SchedulerEvent::FlowRemoved { .. }
    ));
    assert!(matches!(
        &lines[1],
        cano_core::scheduler::SchedulerEvent::FireEnded { outcome: RunOutcome::Cancelled, duration, .. }
            if *duration == millis(5500)
    ));
    let report = sim.block_on(running.stop()).unwrap();
    assert!(
        report.cancelled.is_empty(),
        "nothing left for the stop to cancel"
    );
}

#[test]
fn replacing_a_flow_during_a_run_changes_its_schedule_hash_and_keeps_fire_ids_increasing() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let store = MemoryScheduleStore::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut s = Scheduler::new().with_schedule_store(store.clone());
    s.every_seconds("tick", rec.job(Behaviour::taking(secs(3))), (), 10)
        .unwrap();
    let running = start(&sim, s);
    sim.run_for(secs(1)); // the run at 0 s is in flight until 3 s
    sim.block_on(running.flush()).unwrap();
    let hash_before = sim.block_on(store.load_all()).unwrap()[0]
        .record
        .schedule_hash;
    let started = sim.clock().now();
    sim.block_on(running.replace_flow(
        "tick",
        every(4),
        FlowOptions::default(),
        Lifecycle::new("new tick", &log),
        (),
        InFlight::Wait,
    ))
    .unwrap();
    assert_eq!(
        sim.clock().now().saturating_duration_since(started),
        secs(2),
        "replace_flow waited for the old job's run"
    );
    assert_eq!(log.lock().unwrap()[..], ["setup new tick"]);
    sim.block_on(running.flush()).unwrap();
    let rows = sim.block_on(store.load_all()).unwrap();
    assert_eq!(rows.len(), 1);
    assert_ne!(
        rows[0].record.schedule_hash, hash_before,
        "the row was rewritten"
    );
    let old_fire = rec.runs_of("tick")[0].fire.clone();
    let mut history_fires = Vec::new();
    sim.run_for(secs(10));
    assert_eq!(rec.count("tick"), 1, "the old job runs no more");
    for record in running.history("tick").unwrap() {
        history_fires.push(record.fire);
    }
    assert!(history_fires.len() >= 3, "{history_fires:?}");
    assert_eq!(
        history_fires[0], old_fire,
        "history kept across the replacement"
    );
    assert!(
        history_fires.windows(2).all(|w| w[0] < w[1]),
        "{history_fires:?}"
    );
    assert_eq!(running.list().len(), 1);
    sim.block_on(running.stop()).unwrap();
    assert_eq!(log.lock().unwrap().last().unwrap(), "teardown new tick");
}

#[test]
fn every_change_is_refused_once_a_stop_began_even_during_its_grace() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let ignores_stop = Behaviour {
        honour_stop: false,
        ..Behaviour::taking(secs(10))
    };
    let mut s = Scheduler::new();
    s.manual("long", rec.job(ignores_stop), ()).unwrap();
    let running = start(&sim, s);
    running.trigger("long").unwrap();
    sim.run_for(secs(1));
    let mut stop = Box::pin(running.stop_within(secs(5)));
    assert!(
        (&mut stop).now_or_never().is_none(),
        "the stop waits for the run"
    );
    let stopped = |e: CanoError| assert!(scheduler_error(&e).is_stopped(), "{e}");
    stopped(
        sim.block_on(running.add_flow("new", every(1), rec.job(Behaviour::INSTANT_OK), ()))
            .unwrap_err(),
    );
    stopped(
        sim.block_on(running.remove_flow("long", InFlight::Wait))
            .unwrap_err(),
    );
    stopped(
        sim.block_on(running.replace_flow(
            "long",
            every(1),
            FlowOptions::default(),
            rec.job(Behaviour::INSTANT_OK),
            (),
            InFlight::Wait,
        ))
        .unwrap_err(),
    );
    stopped(running.cancel_flow("long").unwrap_err());
    let report = sim.block_on(stop).unwrap();
    assert_eq!(report.cancelled.len(), 1);
    stopped(
        sim.block_on(running.add_flow("new", every(1), rec.job(Behaviour::INSTANT_OK), ()))
            .unwrap_err(),
    );
    assert!(
        running.status("long").is_some(),
        "the flow is still there after the stop"
    );
}

/// A setup that is still running when a stop begins: the flow is not added and its job is
/// torn down again.
#[test]
fn a_stop_during_an_added_flows_setup_refuses_it_and_tears_it_down() {
    struct SlowSetup(Arc<Mutex<Vec<&'static str>>>, cano_core::testing::FakeClock);
    impl cano_core::scheduler::Job<()> for SlowSetup {
        fn run<'a>(
            &'a self,
            _: (),
            _: cano_core::scheduler::Fire,
        ) -> futures::future::BoxFuture<'a, cano_core::CanoResult<()>> {
            Box::pin(async { Ok(()) })
        }
        fn setup(&self) -> futures::future::BoxFuture<'_, cano_core::CanoResult<()>> {
            Box::pin(async move {
                self.1.sleep_until(self.1.now() + secs(5)).await;
                self.0.lock().unwrap().push("setup");
                Ok(())
            })
        }
        fn teardown(&self) -> futures::future::BoxFuture<'_, cano_core::CanoResult<()>> {
            self.0.lock().unwrap().push("teardown");
            Box::pin(async { Ok(()) })
        }
    }
    let sim = Simulation::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let running = start(&sim, Scheduler::<()>::new());
    let stopper = running.clone();
    let clock = sim.clock();
    let (added, report) = sim.block_on(futures::future::join(
        running.add_flow(
            "slow",
            Schedule::Manual,
            SlowSetup(log.clone(), clock.clone()),
            (),
        ),
        async move {
            clock.sleep_until(clock.now() + secs(1)).await;
            stopper.stop().await
        },
    ));
    assert!(scheduler_error(&added.unwrap_err()).is_stopped());
    assert!(report.is_ok());
    assert_eq!(*log.lock().unwrap(), ["setup", "teardown"]);
    assert!(running.status("slow").is_none());
}

#[test]
fn cancel_flow_is_not_a_failure_and_the_schedule_goes_on() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    // Fails once (streak 1, backoff 4 s), then each run takes 30 s.
    let behaviour = Behaviour {
        fail_until: 1,
        ..Behaviour::taking(secs(30))
    };
    s.every_seconds("flow", rec.job(behaviour), (), 60).unwrap();
    s.set_backoff(
        "flow",
        BackoffPolicy {
            initial: secs(4),
            jitter: 0.0,
            ..BackoffPolicy::default()
        },
    )
    .unwrap();
    let running = start(&sim, s);
    sim.run_for(secs(31));
    assert_eq!(running.status("flow").unwrap().failure_streak, 1);
    assert_eq!(
        running.cancel_flow("flow").unwrap(),
        0,
        "nothing in flight: a no-op"
    );
    sim.run_for(secs(60)); // the second run started at 90 s
    assert_eq!(rec.in_flight("flow"), 1);
    assert_eq!(running.cancel_flow("flow").unwrap(), 1);
    sim.run_until_stalled();
    // It honours the signal: it winds down at once, with `CanoError::Cancelled`.
    assert_eq!(rec.in_flight("flow"), 0, "wound down at once");
    assert_eq!(rec.runs_of("flow")[1].ended, Some(sim.clock().now()));
    let info = running.status("flow").unwrap();
    assert_eq!(info.failure_streak, 1, "not counted as a failure");
    assert!(
        matches!(info.status, Status::Backoff { streak: 1, .. }),
        "{:?}",
        info.status
    );
    let history = running.history("flow").unwrap();
    assert_eq!(history.last().unwrap().outcome, RunOutcome::Cancelled);
    // Fixed delay: the next run comes one interval after the cancelled run's end.
    sim.run_for(secs(61));
    assert_eq!(rec.count("flow"), 3);
    let unknown = running.cancel_flow("nope").unwrap_err();
    assert!(scheduler_error(&unknown).is_unknown_flow());
    sim.block_on(running.stop()).unwrap();
}

#[test]
fn history_keeps_the_last_n_runs_with_their_errors_and_zero_keeps_none() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.every_seconds("flaky", rec.job(Behaviour::failing_until(5)), (), 10)
        .unwrap();
    s.set_backoff(
        "flaky",
        BackoffPolicy {
            initial: secs(1),
            jitter: 0.0,
            ..BackoffPolicy::default()
        },
    )
    .unwrap();
    s.set_history_limit(3);
    let running = start(&sim, s);
    sim.run_for(secs(35)); // runs at 0, 10, 20, 30 s: all failures
    let history = running.history("flaky").unwrap();
    assert_eq!(history.len(), 3);
    assert!(history.windows(2).all(|w| w[0].fire < w[1].fire));
    assert_eq!(history[0].fire.scheduled(), sim_wall(&sim, 10));
    assert!(
        history
            .iter()
            .all(|r| r.error() == Some("Task execution error: Test failure"))
    );
    assert!(history.iter().all(|r| r.started <= r.ended));
    sim.run_for(secs(60));
    let history = running.history("flaky").unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history.last().unwrap().outcome, RunOutcome::Succeeded);
    assert_eq!(history.last().unwrap().error(), None);
    sim.block_on(running.stop()).unwrap();
    assert_eq!(
        running.history("flaky").unwrap().len(),
        3,
        "kept after the stop"
    );

    let mut s = Scheduler::new();
    s.every_seconds("off", rec.job(Behaviour::INSTANT_OK), (), 1)
        .unwrap();
    s.set_history_limit(0);
    let running = start(&sim, s);
    sim.run_for(secs(10));
    assert!(running.history("off").unwrap().is_empty());
    sim.block_on(running.stop()).unwrap();
}

fn sim_wall(sim: &Simulation, secs_after_start: i64) -> cano_core::jiff::Timestamp {
    let start = sim.clock().wall_now()
        - cano_core::jiff::SignedDuration::from_micros(sim.clock().now().as_micros() as i64);
    start + cano_core::jiff::SignedDuration::from_secs(secs_after_start)
}

/// Adding and removing over and over reuses the removed flows' places: the scheduler does
/// not grow.
#[test]
fn flows_added_and_removed_forever_reuse_their_places() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let running = start(&sim, Scheduler::<()>::new());
    for round in 0..500 {
        let id = format!("f{round}");
        sim.block_on(running.add_flow(&id, every(1), rec.job(Behaviour::INSTANT_OK), ()))
            .unwrap();
        sim.run_for(millis(10));
        sim.block_on(running.remove_flow(&id, InFlight::Wait))
            .unwrap();
    }
    assert!(running.list().is_empty());
    assert_eq!(rec.runs().len(), 500, "each flow ran once, at its addition");
    sim.block_on(running.add_flow("last", every(1), rec.job(Behaviour::INSTANT_OK), ()))
        .unwrap();
    assert_eq!(running.list().len(), 1);
    sim.block_on(running.stop()).unwrap();
}

/// A replacement that cancels the old job's run after a grace signals that run alone: a
/// run of the new job started during the grace (the flow allows overlap) runs on, though
/// runs of one flow share a cancellation token until the flow's runs are asked to cancel.
#[test]
fn a_replacement_with_a_grace_signals_only_the_old_runs() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.manual("flow", rec.job(Behaviour::taking(secs(60))), ())
        .unwrap();
    let running = start(&sim, s);
    running.trigger("flow").unwrap();
    sim.run_for(secs(1));
    let overlapping = FlowOptions::default().with_policy(SchedulePolicy {
        overlap: OverlapPolicy::AllowConcurrent(2),
        ..SchedulePolicy::default()
    });
    let replaced = running.replace_flow(
        "flow",
        Schedule::Manual,
        overlapping,
        rec.job(Behaviour::taking(secs(10))),
        (),
        InFlight::Cancel { grace: secs(5) },
    );
    let trigger = async {
        sim.clock().sleep_until(sim.clock().now() + secs(1)).await;
        running.trigger("flow").unwrap();
    };
    sim.block_on(futures::future::join(replaced, trigger))
        .0
        .unwrap();
    // The old run was signalled at 6 s and wound down then; the new one (from 2 s) runs on.
    let runs = rec.runs_of("flow");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].ended, Some(cano_core::Instant::from_secs(6)));
    assert_eq!(runs[1].ended, None, "still running");
    sim.run_for(secs(10));
    let history = running.history("flow").unwrap();
    let outcomes: Vec<_> = history.iter().map(|r| r.outcome.clone()).collect();
    assert_eq!(outcomes, [RunOutcome::Cancelled, RunOutcome::Succeeded]);
    assert_eq!(
        rec.runs_of("flow")[1].ended,
        Some(cano_core::Instant::from_secs(12))
    );
    sim.block_on(running.stop()).unwrap();
}
