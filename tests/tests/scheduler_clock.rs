//! Cron flows and the two clocks on the fake clock: a simulated year of mixed interval and
//! cron flows, a suspend (wall jumps, monotonic does not), NTP steps backwards, both DST days
//! in America/New_York, the reference's cron scenarios, and workflows as jobs.

mod scheduler_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cano_core::backoff::BackoffPolicy;
use cano_core::jiff::{SignedDuration, Timestamp};
use cano_core::schedule::{IntervalMode, MissedFirePolicy};
use cano_core::scheduler::Scheduler;
use cano_core::testing::Simulation;
use cano_core::{
    CanoError, Clock, Instant, Resource, Resources, Status, Task, TaskResult, Workflow,
};
use scheduler_support::{Behaviour, Recorder, millis, secs, start};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn fire_times(rec: &Recorder, flow: &str) -> Vec<Timestamp> {
    rec.runs_of(flow)
        .iter()
        .map(|r| r.fire.scheduled())
        .collect()
}

const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

#[test]
fn a_simulated_year_of_mixed_interval_and_cron_flows_has_exact_counts() {
    let sim = Simulation::starting_at(ts("2026-01-01T00:00:00Z"));
    let rec = Recorder::new(sim.clock());
    let ok = || rec.job(Behaviour::INSTANT_OK);
    let mut s = Scheduler::new();
    s.every_hours("every-hour", ok(), (), 1).unwrap();
    s.every_minutes("every-90min-rate", ok(), (), 90).unwrap();
    s.set_interval_mode("every-90min-rate", IntervalMode::FixedRate)
        .unwrap();
    s.cron("hourly-utc", ok(), (), "0 0 * * * *").unwrap();
    s.cron(
        "daily-9-new-york",
        ok(),
        (),
        "CRON_TZ=America/New_York 0 0 9 * * *",
    )
    .unwrap();
    s.cron("nightly-230-new-york", ok(), (), "0 30 2 * * *")
        .unwrap();
    s.cron("weekdays-noon", ok(), (), "0 0 12 * * MON-FRI")
        .unwrap();
    s.manual("manual", ok(), ()).unwrap();
    s.set_time_zone(cano_core::jiff::tz::TimeZone::get("America/New_York").unwrap());
    s.set_wall_clock_check(Some(secs(HOUR)));
    let running = start(&sim, s);
    for _ in 0..3 {
        running.trigger("manual").unwrap();
        sim.run_for(secs(DAY));
    }
    let real = std::time::Instant::now();
    sim.run_until(Instant::from_secs(365 * DAY - 1));
    assert!(
        real.elapsed() < Duration::from_secs(60),
        "{:?}",
        real.elapsed()
    );

    assert_eq!(rec.count("every-hour"), 8760);
    assert_eq!(rec.count("every-90min-rate"), 5840);
    // Cron flows wait for their next match: 01:00 … 23:00 on 31 Dec.
    assert_eq!(rec.count("hourly-utc"), 8759);
    assert_eq!(rec.count("daily-9-new-york"), 365);
    // 02:30 New York (the scheduler's zone): the spring-forward day fires once at 03:00.
    assert_eq!(rec.count("nightly-230-new-york"), 365);
    // 2026 starts on a Thursday: 52 weeks and one weekday.
    assert_eq!(rec.count("weekdays-noon"), 261);
    assert_eq!(rec.count("manual"), 3);
    let nightly = fire_times(&rec, "nightly-230-new-york");
    assert!(
        nightly.contains(&ts("2026-03-08T07:00:00Z")),
        "the gap fires at its end"
    );
    assert!(
        nightly.contains(&ts("2026-11-01T07:30:00Z")),
        "02:30 EST, once"
    );
    let daily = fire_times(&rec, "daily-9-new-york");
    assert_eq!(daily[0], ts("2026-01-01T14:00:00Z"));
    assert_eq!(daily[364], ts("2026-12-31T14:00:00Z"));
    for info in running.list() {
        assert_eq!(info.missed_fires, 0, "{}", info.id);
        assert_eq!(info.skipped_fires, 0, "{}", info.id);
    }
    // Scheduled fires run on time: start == fire id for every cron run.
    let origin = ts("2026-01-01T00:00:00Z");
    for run in rec.runs_of("hourly-utc") {
        let started = origin + SignedDuration::from_micros(run.started.as_micros() as i64);
        assert_eq!(started, run.fire.scheduled());
    }
}

#[test]
fn a_suspend_goes_through_the_missed_fire_policy() {
    let sim = Simulation::starting_at(ts("2026-01-01T10:10:00Z"));
    let clock = sim.clock();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.cron("skip", rec.job(Behaviour::INSTANT_OK), (), "0 0 * * * *")
        .unwrap();
    s.cron("once", rec.job(Behaviour::INSTANT_OK), (), "0 0 * * * *")
        .unwrap();
    s.set_missed_fires(
        "once",
        MissedFirePolicy::RunOnce {
            window: secs(12 * HOUR),
        },
    )
    .unwrap();
    s.every_minutes("interval", rec.job(Behaviour::INSTANT_OK), (), 30)
        .unwrap();
    let running = start(&sim, s);
    sim.run_for(secs(600));
    // The lid closes for eight hours: the wall clock jumps, the monotonic clock stands still.
    clock.suspend(secs(8 * HOUR));
    assert_eq!(clock.now(), Instant::from_secs(600));
    sim.run_for(secs(300));
    // The wall-clock check (every minute by default) noticed the jump.
    assert!(rec.runs_of("skip").is_empty());
    assert_eq!(running.status("skip").unwrap().missed_fires, 8);
    assert_eq!(
        running.status("skip").unwrap().next_fire,
        Some(ts("2026-01-01T19:00:00Z"))
    );
    assert_eq!(fire_times(&rec, "once"), [ts("2026-01-01T18:00:00Z")]);
    assert_eq!(running.status("once").unwrap().missed_fires, 7);
    sim.run_for(secs(HOUR));
    assert_eq!(fire_times(&rec, "skip"), [ts("2026-01-01T19:00:00Z")]);
    assert_eq!(fire_times(&rec, "once").len(), 2);
    // Interval flows live on the monotonic clock: the suspend did not count as time.
    assert_eq!(rec.start_secs("interval"), [0.0, 1800.0, 3600.0]);
}

#[test]
fn without_the_wall_clock_check_a_suspend_is_noticed_at_the_next_planned_wake() {
    let sim = Simulation::starting_at(ts("2026-01-01T10:10:00Z"));
    let clock = sim.clock();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.cron("skip", rec.job(Behaviour::INSTANT_OK), (), "0 0 * * * *")
        .unwrap();
    s.set_wall_clock_check(None);
    let running = start(&sim, s);
    clock.suspend(secs(8 * HOUR));
    sim.run_for(secs(50 * 60));
    // Woke at 19:00 wall (the planned 11:00 plus the suspend): that fire is on time.
    assert_eq!(fire_times(&rec, "skip"), [ts("2026-01-01T19:00:00Z")]);
    assert_eq!(running.status("skip").unwrap().missed_fires, 8);
    assert_eq!(clock.pending_sleeps(), 1);
}

/// A minutely cron from 10:00:30; at 10:05:30 the wall clock steps back by `hours`; then
/// `then` of virtual time passes. Returns the fire ids.
fn minutely_with_step_back(hours: i64, then: Duration) -> (Vec<Timestamp>, u64) {
    let sim = Simulation::starting_at(ts("2026-01-01T10:00:30Z"));
    let clock = sim.clock();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.cron(
        "minutely",
        rec.job(Behaviour::INSTANT_OK),
        (),
        "0 * * * * *",
    )
    .unwrap();
    let running = start(&sim, s);
    sim.run_for(secs(5 * 60));
    assert_eq!(rec.count("minutely"), 5);
    clock.step_wall(SignedDuration::from_hours(-hours));
    sim.run_for(then);
    let missed = running.status("minutely").unwrap().missed_fires;
    (fire_times(&rec, "minutely"), missed)
}

#[test]
fn an_ntp_step_backwards_neither_double_fires_nor_drifts() {
    // 10:01 … 10:05 already fired: they are not fired again when the wall clock repeats
    // them, and nothing fires for the hour it takes the wall clock to catch up.
    let (fires, _) = minutely_with_step_back(1, secs(HOUR));
    assert_eq!(fires.len(), 5);
    let (fires, missed) = minutely_with_step_back(1, secs(HOUR + 60));
    assert_eq!(fires.len(), 6);
    assert_eq!(fires[5], ts("2026-01-01T10:06:00Z"));
    assert!(fires.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(missed, 0);
}

#[test]
fn a_large_step_backwards_is_a_correction_that_restarts_from_the_new_time() {
    // Vixie's rule: a change of three hours or more is a correction, not a DST-like shift.
    let (fires, _) = minutely_with_step_back(5, secs(3 * 60));
    assert_eq!(fires.len(), 8, "{fires:?}");
    assert_eq!(fires[5], ts("2026-01-01T05:06:00Z"));
}

#[test]
fn a_correction_during_a_run_restarts_that_flow_from_the_new_time_too() {
    // An hourly cron whose run takes 10 minutes; the wall clock steps back 5 h mid-run.
    let sim = Simulation::starting_at(ts("2026-01-01T09:59:00Z"));
    let clock = sim.clock();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.cron(
        "hourly",
        rec.job(Behaviour::taking(secs(600))),
        (),
        "0 0 * * * *",
    )
    .unwrap();
    let running = start(&sim, s);
    sim.run_for(secs(6 * 60)); // 10:05, the 10:00 run in flight
    assert_eq!(rec.in_flight("hourly"), 1);
    clock.step_wall(SignedDuration::from_hours(-5)); // 05:05
    sim.run_for(secs(3 * HOUR)); // until 08:05 on the new wall clock
    let fires = fire_times(&rec, "hourly");
    assert_eq!(
        fires,
        [
            ts("2026-01-01T10:00:00Z"),
            ts("2026-01-01T06:00:00Z"),
            ts("2026-01-01T07:00:00Z"),
            ts("2026-01-01T08:00:00Z"),
        ],
        "the busy flow restarts from the corrected wall time, not 11:00"
    );
    assert_eq!(running.status("hourly").unwrap().missed_fires, 0);
}

fn dst_day(from: &str, days: u64, expr_fixed: &str) -> (Recorder, Vec<Timestamp>) {
    let sim = Simulation::starting_at(ts(from));
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.cron(
        "hourly",
        rec.job(Behaviour::INSTANT_OK),
        (),
        "CRON_TZ=America/New_York 0 0 * * * *",
    )
    .unwrap();
    s.cron("fixed", rec.job(Behaviour::INSTANT_OK), (), expr_fixed)
        .unwrap();
    let _running = start(&sim, s);
    sim.run_for(secs(days * DAY));
    let fixed = fire_times(&rec, "fixed");
    (rec, fixed)
}

fn local_day_count(rec: &Recorder, flow: &str, day: &str) -> usize {
    let tz = cano_core::jiff::tz::TimeZone::get("America/New_York").unwrap();
    fire_times(rec, flow)
        .iter()
        .filter(|t| tz.to_datetime(**t).date().to_string() == day)
        .count()
}

#[test]
fn both_dst_days_in_new_york() {
    let cases = [
        // Spring forward: 02:30 does not exist on 8 March, so the fixed-time job fires once
        // when the gap ends (03:00 EDT); the local day has 23 hours.
        (
            "2026-03-07T12:00:00Z",
            "CRON_TZ=America/New_York 0 30 2 * * *",
            ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"],
            "2026-03-08",
            23,
        ),
        // Fall back: 01:30 happens twice on 1 November; the fixed-time job fires at the first
        // only, the hourly job at both 01:00s (a 25-hour day).
        (
            "2026-10-31T12:00:00Z",
            "CRON_TZ=America/New_York 0 30 1 * * *",
            ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"],
            "2026-11-01",
            25,
        ),
    ];
    for (from, fixed_expr, expected, day, hours) in cases {
        let (rec, fixed) = dst_day(from, 2, fixed_expr);
        assert_eq!(fixed, expected.map(ts), "{day}");
        assert_eq!(local_day_count(&rec, "hourly", day), hours, "{day}");
        let fires = fire_times(&rec, "hourly");
        assert!(
            fires
                .windows(2)
                .all(|w| w[1] - w[0] == SignedDuration::from_hours(1)),
            "{day}: one fire per real hour, none doubled or lost"
        );
    }
}

// ---- the reference's cron scenarios ----

#[test]
fn cron_expressions_are_checked_at_registration() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.cron("ok", rec.job(Behaviour::INSTANT_OK), (), "0 */5 * * * *")
        .unwrap();
    let err = s
        .cron("bad", rec.job(Behaviour::INSTANT_OK), (), "61 * * * * *")
        .unwrap_err();
    assert_eq!(err.category(), "configuration");
    assert!(err.to_string().contains("invalid cron expression"), "{err}");
    let CanoError::InvalidCron(cause) = &err else {
        panic!("expected the typed cron error, got {err:?}")
    };
    assert_eq!(cause.span(), 0..2, "the span points at `61`");
    assert!(!s.contains("bad"));
}

#[test]
fn stop_interrupts_a_cron_sleep() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.cron("daily", rec.job(Behaviour::INSTANT_OK), (), "0 0 0 * * *")
        .unwrap();
    let running = start(&sim, s);
    sim.run_for(secs(60));
    let before = sim.clock().now();
    sim.block_on(running.stop()).unwrap();
    assert_eq!(sim.clock().now(), before);
    assert_eq!(sim.live_tasks(), 0);
}

#[test]
fn cron_ticks_are_suppressed_in_the_backoff_window() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.cron(
        "every-second",
        rec.job(Behaviour::failing()),
        (),
        "* * * * * *",
    )
    .unwrap();
    s.set_backoff(
        "every-second",
        BackoffPolicy {
            initial: secs(60),
            jitter: 0.0,
            ..BackoffPolicy::default()
        },
    )
    .unwrap();
    let running = start(&sim, s);
    sim.run_for(millis(4200));
    let info = running.status("every-second").unwrap();
    assert_eq!(info.run_count, 1);
    assert_eq!(info.skipped_fires, 3);
    assert!(matches!(info.status, Status::Backoff { .. }));
}

// ---- workflows as jobs ----

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Step {
    Start,
    Done,
}

struct Count(Arc<Mutex<u32>>);

impl Task<Step> for Count {
    async fn run_bare(&self) -> Result<TaskResult<Step>, CanoError> {
        *self.0.lock().unwrap() += 1;
        Ok(TaskResult::Single(Step::Done))
    }
}

struct Logged(&'static str, Arc<Mutex<Vec<String>>>);

impl Resource for Logged {
    async fn setup(&self) -> Result<(), CanoError> {
        self.1.lock().unwrap().push(format!("setup {}", self.0));
        Ok(())
    }
    async fn teardown(&self) -> Result<(), CanoError> {
        self.1.lock().unwrap().push(format!("teardown {}", self.0));
        Ok(())
    }
}

fn workflow(
    name: &'static str,
    log: &Arc<Mutex<Vec<String>>>,
    runs: &Arc<Mutex<u32>>,
) -> Workflow<Step> {
    let resources = Resources::new()
        .insert("res", Logged(name, log.clone()))
        .unwrap();
    Workflow::new(resources)
        .register(Step::Start, Count(runs.clone()))
        .add_exit_state(Step::Done)
}

#[test]
fn workflows_run_as_jobs_with_resources_up_from_start_to_stop() {
    let sim = Simulation::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let runs = Arc::new(Mutex::new(0));
    let mut s = Scheduler::new();
    s.every_minutes("a", workflow("a", &log, &runs), Step::Start, 10)
        .unwrap();
    s.cron(
        "b",
        workflow("b", &log, &runs),
        Step::Start,
        "0 */15 * * * *",
    )
    .unwrap();
    s.manual("c", workflow("c", &log, &runs), Step::Start)
        .unwrap();
    let running = start(&sim, s);
    running.trigger("c").unwrap();
    sim.run_for(secs(HOUR));
    // a: 0, 10, …, 60 min (7); b: 15, 30, 45, 60 min (4); c: once.
    assert_eq!(*runs.lock().unwrap(), 12);
    assert_eq!(running.status("a").unwrap().status, Status::Completed);
    sim.block_on(running.stop()).unwrap();
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
}

#[test]
fn misconfigured_workflows_fail_start() {
    let sim = Simulation::new();
    let runs = Arc::new(Mutex::new(0));
    let mut s = Scheduler::new();
    let no_exit = Workflow::bare().register(Step::Start, Count(runs.clone()));
    s.manual("no-exit", no_exit, Step::Start).unwrap();
    let err = sim
        .block_on(s.start(sim.clock(), sim.spawner()))
        .unwrap_err();
    assert_eq!(err.category(), "configuration");
    assert!(err.to_string().contains("no-exit"), "{err}");

    let mut s = Scheduler::new();
    let only_done = Workflow::bare()
        .register(Step::Done, Count(runs.clone()))
        .add_exit_state(Step::Done);
    s.manual("unregistered-start", only_done, Step::Start)
        .unwrap();
    let err = sim
        .block_on(s.start(sim.clock(), sim.spawner()))
        .unwrap_err();
    assert_eq!(err.category(), "configuration");
}

#[test]
fn a_stop_gives_a_running_workflow_its_grace_then_cancels_it_at_the_deadline() {
    struct Slow;
    impl Task<Step> for Slow {
        async fn run_bare(&self) -> Result<TaskResult<Step>, CanoError> {
            futures::future::pending::<()>().await;
            Ok(TaskResult::Single(Step::Done))
        }
    }
    let sim = Simulation::new();
    let mut s = Scheduler::new();
    let wf = Workflow::bare()
        .register(Step::Start, Slow)
        .add_exit_state(Step::Done);
    s.manual("slow", wf, Step::Start).unwrap();
    let running = start(&sim, s);
    running.trigger("slow").unwrap();
    sim.run_for(secs(1));
    let report = sim.block_on(running.stop_within(secs(10))).unwrap();
    // The workflow ran until the deadline (its token fires there), then was cancelled and
    // reported; a cancelled run is not a failure.
    assert_eq!(report.cancelled.len(), 1, "{report:?}");
    assert_eq!(report.cancelled[0].flow(), "slow");
    assert_eq!(sim.clock().now(), Instant::from_secs(11));
    assert!(!running.has_running_flows());
    assert_eq!(running.status("slow").unwrap().failure_streak, 0);
}
