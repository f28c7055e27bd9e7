//! The reference's scheduler tests (cano 0.12 `scheduler/{builder,running}.rs`, §5.1 of the
//! inventory), converted from real time and timeouts to the fake clock: every count is
//! exact.

mod scheduler_support;

use cano_core::backoff::BackoffPolicy;
use cano_core::scheduler::{Fire, Job, Scheduler, job_fn};
use cano_core::testing::Simulation;
use cano_core::{CanoError, Clock, Instant, Status};
use futures::future::BoxFuture;
use scheduler_support::{Behaviour, Recorder, millis, poll_once, secs, start};

fn backoff_ms(initial: u64, limit: Option<u32>) -> BackoffPolicy {
    BackoffPolicy {
        initial: millis(initial),
        jitter: 0.0,
        streak_limit: limit,
        ..BackoffPolicy::default()
    }
}

fn message(e: CanoError) -> String {
    e.to_string()
}

// ---- builder.rs ----

#[test]
fn creation_is_empty() {
    let s: Scheduler = Scheduler::new();
    assert!(s.is_empty());
    assert_eq!(s.len(), 0);
    assert!(!s.contains("x"));
}

#[test]
fn every_variants_and_manual_register() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.every_seconds("s", rec.job(Behaviour::INSTANT_OK), (), 1)
        .unwrap();
    s.every_minutes("m", rec.job(Behaviour::INSTANT_OK), (), 1)
        .unwrap();
    s.every_hours("h", rec.job(Behaviour::INSTANT_OK), (), 1)
        .unwrap();
    s.every("d", rec.job(Behaviour::INSTANT_OK), (), millis(1500))
        .unwrap();
    s.manual("man", rec.job(Behaviour::INSTANT_OK), ()).unwrap();
    assert_eq!(s.len(), 5);
    assert!(["s", "m", "h", "d", "man"].iter().all(|id| s.contains(id)));
}

#[test]
fn duplicate_id_and_zero_interval_are_configuration_errors() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.manual("a", rec.job(Behaviour::INSTANT_OK), ()).unwrap();
    let dup = s
        .manual("a", rec.job(Behaviour::INSTANT_OK), ())
        .unwrap_err();
    assert_eq!(dup.category(), "configuration");
    assert_eq!(message(dup), "Configuration error: Flow 'a' already exists");
    let zero = s
        .every_seconds("z", rec.job(Behaviour::INSTANT_OK), (), 0)
        .unwrap_err();
    assert_eq!(zero.category(), "configuration");
    assert!(!s.contains("z"));
    assert_eq!(s.len(), 1);
}

// ---- running.rs ----

struct FailingSetup {
    name: &'static str,
    fail: bool,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Job<()> for FailingSetup {
    fn run<'a>(&'a self, _: (), _: Fire) -> BoxFuture<'a, cano_core::CanoResult<()>> {
        Box::pin(async { Ok(()) })
    }
    fn setup(&self) -> BoxFuture<'_, cano_core::CanoResult<()>> {
        self.log
            .lock()
            .unwrap()
            .push(format!("setup {}", self.name));
        let fail = self.fail;
        Box::pin(async move {
            if fail {
                Err(CanoError::configuration("no database"))
            } else {
                Ok(())
            }
        })
    }
    fn teardown(&self) -> BoxFuture<'_, cano_core::CanoResult<()>> {
        self.log
            .lock()
            .unwrap()
            .push(format!("teardown {}", self.name));
        Box::pin(async { Ok(()) })
    }
}

#[test]
fn start_rejects_a_failing_setup_and_tears_down_what_was_set_up() {
    let sim = Simulation::new();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut s = Scheduler::new();
    for (name, fail) in [("a", false), ("b", false), ("c", true), ("d", false)] {
        s.manual(
            name,
            FailingSetup {
                name,
                fail,
                log: log.clone(),
            },
            (),
        )
        .unwrap();
    }
    let err = sim
        .block_on(s.start(sim.clock(), sim.spawner()))
        .unwrap_err();
    assert_eq!(err, CanoError::configuration("no database"));
    assert_eq!(
        *log.lock().unwrap(),
        ["setup a", "setup b", "setup c", "teardown b", "teardown a"]
    );
    assert_eq!(sim.live_tasks(), 0);
}

#[test]
fn stop_interrupts_long_interval_and_backoff_sleeps_at_once() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.every_hours("hourly", rec.job(Behaviour::INSTANT_OK), (), 1)
        .unwrap();
    s.every_seconds("failing", rec.job(Behaviour::failing()), (), 1)
        .unwrap();
    s.set_backoff("failing", backoff_ms(60_000, None)).unwrap();
    let running = start(&sim, s);
    sim.run_for(secs(2));
    let before = sim.clock().now();
    let report = sim.block_on(running.stop()).unwrap();
    assert_eq!(sim.clock().now(), before, "stop took no virtual time");
    assert!(report.cancelled.is_empty());
    assert_eq!(sim.live_tasks(), 0);
}

#[test]
fn manual_trigger_runs_and_clones_share_state() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.manual("m", rec.job(Behaviour::INSTANT_OK), ()).unwrap();
    let running = start(&sim, s);
    let info = running.status("m").unwrap();
    assert_eq!(info.status, Status::Idle);
    assert_eq!(info.run_count, 0);
    assert_eq!(info.last_run, None);
    let clone = running.clone();
    clone.trigger("m").unwrap();
    sim.run_until_stalled();
    let info = running.status("m").unwrap();
    assert_eq!(info.run_count, 1);
    assert_eq!(info.status, Status::Completed);
    assert_eq!(info.last_run, Some(sim.clock().wall_now()));
    assert_eq!(rec.count("m"), 1);
}

#[test]
fn list_status_and_unknown_ids() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    for id in ["c", "a", "b"] {
        s.manual(id, rec.job(Behaviour::INSTANT_OK), ()).unwrap();
    }
    let running = start(&sim, s);
    let ids: Vec<String> = running.list().into_iter().map(|i| i.id).collect();
    assert_eq!(ids, ["c", "a", "b"]);
    assert!(running.status("nope").is_none());
    let err = running.trigger("nope").unwrap_err();
    assert_eq!(
        message(err),
        "Workflow error: No workflow registered with id 'nope'"
    );
    assert!(running.reset_flow("nope").is_err());
    assert!(running.pause("nope").is_err());
    assert!(running.next_fires("nope", 3).is_err());
}

#[test]
fn manual_trigger_rejects_overlap() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.manual("slow", rec.job(Behaviour::taking(millis(300))), ())
        .unwrap();
    let running = start(&sim, s);
    running.trigger("slow").unwrap();
    sim.run_for(millis(100));
    assert!(running.has_running_flows());
    let err = running.trigger("slow").unwrap_err();
    assert_eq!(
        message(err),
        "Workflow error: Flow 'slow' is already running"
    );
    sim.run_for(millis(300));
    assert!(!running.has_running_flows());
    assert_eq!(running.status("slow").unwrap().run_count, 1);
}

#[test]
fn twenty_sequential_triggers_all_run() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.manual("m", rec.job(Behaviour::taking(millis(1))), ())
        .unwrap();
    let running = start(&sim, s);
    for _ in 0..20 {
        running.trigger("m").unwrap();
        sim.run_for(millis(2));
    }
    assert_eq!(running.status("m").unwrap().run_count, 20);
    assert_eq!(rec.count("m"), 20);
    // Only the driver loop is left: no run task lingers.
    assert_eq!(sim.live_tasks(), 1);
}

#[test]
fn calls_after_stop_report_not_running_and_stop_is_idempotent() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.manual("m", rec.job(Behaviour::INSTANT_OK), ()).unwrap();
    let running = start(&sim, s);
    let first = sim.block_on(running.stop()).unwrap();
    let second = sim.block_on(running.stop_within(secs(1))).unwrap();
    assert_eq!(first, second);
    let err = message(running.trigger("m").unwrap_err());
    assert!(err.contains("Scheduler not running"), "{err}");
    assert!(running.reset_flow("m").is_err());
    // Read-only views keep working.
    assert_eq!(running.status("m").unwrap().status, Status::Idle);
    assert_eq!(running.list().len(), 1);
}

#[test]
fn trigger_during_the_graceful_stop_window_reports_not_running() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.manual(
        "slow",
        rec.job(Behaviour {
            honour_stop: false,
            ..Behaviour::taking(millis(400))
        }),
        (),
    )
    .unwrap();
    let running = start(&sim, s);
    running.trigger("slow").unwrap();
    sim.run_until_stalled();
    let stopper = running.clone();
    let stop = sim.block_on(async {
        let mut stop = Box::pin(stopper.stop());
        // Begin the stop, then trigger while it waits for the run.
        assert!(poll_once(&mut stop).await.is_pending());
        let err = running.trigger("slow").unwrap_err();
        assert!(err.to_string().contains("Scheduler not running"));
        stop.await
    });
    let report = stop.unwrap();
    assert!(report.cancelled.is_empty(), "the run finished in time");
    assert_eq!(sim.clock().now(), Instant::from_millis(400));
    assert_eq!(
        rec.runs_of("slow")[0].ended,
        Some(Instant::from_millis(400))
    );
}

#[test]
fn failing_flows_register_fine_and_park_in_backoff() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.manual("f", rec.job(Behaviour::failing()), ()).unwrap();
    let running = start(&sim, s);
    running.trigger("f").unwrap();
    sim.run_until_stalled();
    let info = running.status("f").unwrap();
    match info.status {
        Status::Backoff {
            streak, last_error, ..
        } => {
            assert_eq!(streak, 1);
            assert_eq!(last_error, "Task execution error: Test failure");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(info.failure_streak, 1);
    assert!(info.next_eligible.is_some());
}

#[test]
fn backoff_progression_extends_the_interval() {
    // 50 ms interval, backoff 150 / 300 / 600 / 1200 ms: runs at 0, 150, 450, 1050 ms.
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.every("f", rec.job(Behaviour::failing()), (), millis(50))
        .unwrap();
    s.set_backoff("f", backoff_ms(150, None)).unwrap();
    let running = start(&sim, s);
    sim.run_for(millis(1300));
    assert_eq!(rec.start_secs("f"), [0.0, 0.15, 0.45, 1.05]);
    assert_eq!(running.status("f").unwrap().failure_streak, 4);
}

#[test]
fn trip_on_streak_limit_stops_dispatch() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.every("f", rec.job(Behaviour::failing()), (), millis(10))
        .unwrap();
    s.set_backoff("f", backoff_ms(10, Some(3))).unwrap();
    let running = start(&sim, s);
    sim.run_for(secs(60));
    let info = running.status("f").unwrap();
    assert!(
        matches!(info.status, Status::Tripped { streak: 3, .. }),
        "{info:?}"
    );
    assert_eq!(info.run_count, 3);
    assert_eq!(info.next_fire, None);
    let err = running.trigger("f").unwrap_err();
    assert_eq!(
        message(err),
        "Workflow error: Flow 'f' is tripped — call reset_flow before triggering"
    );
}

#[test]
fn reset_flow_clears_the_trip_and_resumes() {
    // Fails until the 5th attempt; trips at 2: reset twice, then it completes.
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.every("f", rec.job(Behaviour::failing_until(4)), (), millis(10))
        .unwrap();
    s.set_backoff("f", backoff_ms(10, Some(2))).unwrap();
    let running = start(&sim, s);
    for _ in 0..2 {
        sim.run_for(secs(1));
        assert!(matches!(
            running.status("f").unwrap().status,
            Status::Tripped { streak: 2, .. }
        ));
        running.reset_flow("f").unwrap();
        assert_eq!(running.status("f").unwrap().status, Status::Idle);
    }
    sim.run_for(millis(5));
    let info = running.status("f").unwrap();
    assert_eq!(info.status, Status::Completed);
    assert_eq!(info.failure_streak, 0);
    assert_eq!(rec.count("f"), 5);
}

#[test]
fn streak_resets_on_success() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.every("f", rec.job(Behaviour::failing_until(2)), (), millis(10))
        .unwrap();
    s.set_backoff("f", backoff_ms(10, None)).unwrap();
    let running = start(&sim, s);
    sim.run_for(millis(25));
    assert_eq!(running.status("f").unwrap().failure_streak, 2);
    sim.run_for(millis(30));
    let info = running.status("f").unwrap();
    assert_eq!(info.failure_streak, 0);
    assert_eq!(info.next_eligible, None);
}

#[test]
fn trigger_is_blocked_when_tripped_and_accepted_after_reset() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.manual("m", rec.job(Behaviour::failing_until(1)), ())
        .unwrap();
    s.set_backoff("m", BackoffPolicy::with_trip(1)).unwrap();
    let running = start(&sim, s);
    running.trigger("m").unwrap();
    sim.run_until_stalled();
    assert!(
        running
            .trigger("m")
            .unwrap_err()
            .to_string()
            .contains("tripped")
    );
    running.reset_flow("m").unwrap();
    running.trigger("m").unwrap();
    sim.run_until_stalled();
    assert_eq!(running.status("m").unwrap().status, Status::Completed);
}

#[test]
fn set_backoff_unknown_id_is_a_configuration_error() {
    let mut s: Scheduler = Scheduler::new();
    let err = s
        .set_backoff("ghost", BackoffPolicy::default())
        .unwrap_err();
    assert_eq!(
        message(err),
        "Configuration error: Flow 'ghost' not found — cannot set backoff"
    );
}

#[test]
fn trigger_overrides_the_backoff_window_and_success_clears_it() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.every_seconds("f", rec.job(Behaviour::failing_until(1)), (), 1)
        .unwrap();
    s.set_backoff("f", backoff_ms(60_000, None)).unwrap();
    let running = start(&sim, s);
    sim.run_until_stalled();
    assert!(matches!(
        running.status("f").unwrap().status,
        Status::Backoff { .. }
    ));
    sim.run_for(secs(5));
    assert_eq!(rec.count("f"), 1, "the window holds scheduled fires back");
    running.trigger("f").unwrap();
    sim.run_until_stalled();
    let info = running.status("f").unwrap();
    assert_eq!(info.status, Status::Completed);
    assert_eq!(info.next_eligible, None);
    // Scheduled fires resume one interval after the triggered run.
    sim.run_for(secs(1));
    assert_eq!(rec.count("f"), 3);
}

#[test]
fn trip_reset_trip_roundtrip_in_one_session() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.manual("m", rec.job(Behaviour::failing()), ()).unwrap();
    s.set_backoff("m", backoff_ms(10, Some(2))).unwrap();
    let running = start(&sim, s);
    for round in 0..3 {
        for _ in 0..2 {
            running.trigger("m").unwrap();
            sim.run_until_stalled();
        }
        assert!(
            matches!(
                running.status("m").unwrap().status,
                Status::Tripped { streak: 2, .. }
            ),
            "round {round}"
        );
        running.reset_flow("m").unwrap();
    }
    assert_eq!(rec.count("m"), 6);
}

#[test]
fn ticks_are_suppressed_inside_the_backoff_window() {
    // The reference used an every-second cron; a fixed-rate 1 s grid has the same fires.
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.every_seconds("f", rec.job(Behaviour::failing()), (), 1)
        .unwrap();
    s.set_interval_mode("f", cano_core::schedule::IntervalMode::FixedRate)
        .unwrap();
    s.set_backoff("f", backoff_ms(60_000, None)).unwrap();
    let running = start(&sim, s);
    sim.run_for(millis(3200));
    let info = running.status("f").unwrap();
    assert_eq!(info.run_count, 1);
    assert_eq!(info.skipped_fires, 3);
    assert_eq!(info.missed_fires, 0);
}

#[test]
fn reset_during_an_inflight_run_restarts_the_streak_at_one() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.manual(
        "m",
        rec.job(Behaviour {
            fail_until: u32::MAX,
            ..Behaviour::taking(millis(100))
        }),
        (),
    )
    .unwrap();
    s.set_backoff("m", backoff_ms(1, None)).unwrap();
    let running = start(&sim, s);
    for _ in 0..3 {
        running.trigger("m").unwrap();
        sim.run_for(millis(200));
    }
    assert_eq!(running.status("m").unwrap().failure_streak, 3);
    running.trigger("m").unwrap();
    sim.run_for(millis(50));
    running.reset_flow("m").unwrap();
    assert_eq!(running.status("m").unwrap().status, Status::Running);
    sim.run_for(millis(100));
    assert_eq!(running.status("m").unwrap().failure_streak, 1);
}

#[test]
fn dropping_the_last_handle_without_stop_ends_every_task() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.every(
        "tick",
        rec.job(Behaviour::taking(millis(5))),
        (),
        millis(10),
    )
    .unwrap();
    let running = start(&sim, s);
    let clone = running.clone();
    sim.run_for(millis(100));
    drop(running);
    sim.run_for(millis(100));
    let count = rec.count("tick");
    assert!(count > 5);
    drop(clone);
    sim.run_until_idle();
    assert_eq!(sim.live_tasks(), 0, "no task outlives the scheduler");
    assert_eq!(rec.in_flight("tick"), 0);
    sim.run_for(secs(10));
    assert_eq!(rec.count("tick"), count, "executions freeze");
}

#[test]
fn closures_with_input_are_jobs() {
    let sim = Simulation::new();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut s = Scheduler::new();
    let log = seen.clone();
    s.manual(
        "sum",
        job_fn(move |n: u32, fire: Fire| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push((n, fire.id().flow().to_string()));
                Ok(())
            }
        }),
        7,
    )
    .unwrap();
    let running = sim.block_on(s.start(sim.clock(), sim.spawner())).unwrap();
    running.trigger("sum").unwrap();
    sim.run_until_stalled();
    assert_eq!(*seen.lock().unwrap(), [(7, "sum".to_string())]);
}
