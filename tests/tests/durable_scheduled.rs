//! Scheduled checkpointed workflows: each fire runs under a log named by its `FireId`, and a
//! later process finds a flow's unfinished runs and resumes or abandons them.

mod durable_support;

use std::time::Duration;

use cano_core::checkpoint::{Recovery, RunId, RunLog, RunOutcome};
use cano_core::scheduler::Scheduler;
use cano_core::{RunContext, Workflow};
use durable_support::*;

fn scheduled_workflow(env: &Env) -> Workflow<Order> {
    Workflow::bare()
        .register(Order::Reserve, Step::new("reserve", Order::Charge, env))
        .register(Order::Charge, Step::new("charge", Order::Done, env))
        .add_exit_state(Order::Done)
        .with_checkpoint_store(env.store.clone())
}

/// Fires the manual flow `report` once; its `charge` state hangs, and the scheduler is
/// stopped (the run is cancelled at the stop's deadline, its log left unfinished).
fn interrupted_fire(env: &Env) -> RunId {
    env.crash.set("charge");
    let mut scheduler = Scheduler::new();
    scheduler
        .manual("report", scheduled_workflow(env), Order::Reserve)
        .unwrap();
    let running = env
        .sim
        .block_on(scheduler.start(env.clock.clone(), env.sim.spawner()))
        .unwrap();
    running.trigger("report").unwrap();
    env.sim.run_for(Duration::from_secs(60));
    let report = env
        .sim
        .block_on(running.stop_within(Duration::from_secs(1)))
        .unwrap();
    assert_eq!(report.cancelled.len(), 1, "{report:?}");
    let fire = report.cancelled[0].to_string();
    assert!(fire.starts_with("report@"), "{fire}");
    RunId::new(fire)
}

/// Runs the recovery scan of the `report` flow's runs (`report@…`) with `recovery`.
fn recover_reports(
    env: &Env,
    wf: &Workflow<Order>,
    recovery: Recovery,
) -> cano_core::checkpoint::RecoveryReport {
    env.sim
        .block_on(wf.recover_runs(RunContext::new(env.clock.clone()), "report@", recovery))
        .unwrap()
}

#[test]
fn a_scheduled_run_is_logged_under_its_fire_id_and_resumed_by_the_recovery_scan() {
    let env = Env::new();
    let run = interrupted_fire(&env);
    assert!(matches!(env.store.log(&run), RunLog::Unfinished(_)));
    assert_eq!(
        env.effects.all(),
        [
            format!("reserve {run}/0/reserve/1"),
            format!("charge {run}/1/charge/1")
        ],
        "tasks of a scheduled run see keys built on the fire id"
    );

    // A new process: the recovery scan finds the flow's unfinished run and resumes it.
    let wf = scheduled_workflow(&env);
    let other = RunId::new("other-flow@2026-01-01T00:00:00Z");
    env.store.seed(
        &other,
        vec![cano_core::checkpoint::CheckpointRow::state_entry(
            0,
            "reserve".into(),
            1,
        )],
    );
    let report = recover_reports(&env, &wf, Recovery::Resume);
    assert_eq!(report.resumed, [(run.clone(), Ok(()))]);
    assert!(report.abandoned.is_empty());
    assert_eq!(env.store.log(&run), RunLog::Finished(RunOutcome::Completed));
    assert_eq!(
        env.effects.count("charge"),
        2,
        "the in-flight state ran again"
    );
    assert_eq!(env.effects.count("reserve"), 1);
    assert!(
        matches!(env.store.log(&other), RunLog::Unfinished(_)),
        "other flows' runs are left alone"
    );
}

#[test]
fn a_flow_set_to_abandon_finishes_its_unfinished_logs_without_running_them() {
    let env = Env::new();
    let run = interrupted_fire(&env);
    let wf = scheduled_workflow(&env);
    let report = recover_reports(&env, &wf, Recovery::Abandon);
    assert_eq!(report.abandoned, std::slice::from_ref(&run));
    assert_eq!(env.store.log(&run), RunLog::Finished(RunOutcome::Abandoned));
    assert_eq!(env.effects.count("charge"), 1, "nothing ran");
}

// ---------------------------------------------------------------------------------------
// The recovery scan a scheduler runs by itself at start.

use cano_core::checkpoint::CheckpointRow;
use cano_core::scheduler::schedule::OverlapPolicy;
use cano_core::scheduler::{FlowInfo, RecoveryCounts, RunningScheduler};
use std::sync::Arc;

fn counts(info: &FlowInfo) -> (u64, u64, u64) {
    let RecoveryCounts {
        resumed,
        abandoned,
        failed,
        ..
    } = info.recovered;
    (resumed, abandoned, failed)
}

/// A second process: a scheduler with the flow `report` (manual unless `every` is set) on
/// the same store, started; `adjust` sets it up before the start.
fn restarted(
    env: &Env,
    wf: Workflow<Order>,
    adjust: impl FnOnce(&mut Scheduler<Order>),
) -> RunningScheduler {
    let mut scheduler = Scheduler::new();
    scheduler.manual("report", wf, Order::Reserve).unwrap();
    adjust(&mut scheduler);
    env.sim
        .block_on(scheduler.start(env.clock.clone(), env.sim.spawner()))
        .unwrap()
}

#[test]
fn a_new_scheduler_resumes_a_crashed_run_at_its_in_flight_state_exactly_once() {
    let env = Env::new();
    let run = interrupted_fire(&env);
    let events = Arc::new(DurableEvents::default());
    let wf = scheduled_workflow(&env).with_observer(events.clone());
    let running = restarted(&env, wf, |_| {});
    env.sim.run_for(Duration::from_secs(3600));

    assert_eq!(env.store.log(&run), RunLog::Finished(RunOutcome::Completed));
    assert_eq!(
        env.effects.all(),
        [
            format!("reserve {run}/0/reserve/1"),
            format!("charge {run}/1/charge/1"),
            format!("charge {run}/1/charge/1"),
        ],
        "only the in-flight state ran again, once, with the keys it had"
    );
    let info = running.status("report").unwrap();
    assert_eq!(counts(&info), (1, 0, 0), "{info:?}");
    assert_eq!(info.run_count, 1, "the resumed run is a run of the flow");
    assert_eq!(info.failure_streak, 0);
    let heard = events.0.lock().unwrap().clone();
    assert_eq!(
        heard
            .iter()
            .filter(|e| e.starts_with("resume "))
            .collect::<Vec<_>>(),
        [&format!("resume {run} Charge")],
        "{heard:?}"
    );
    let report = env.sim.block_on(running.stop()).unwrap();
    assert!(report.cancelled.is_empty());

    // A third start finds nothing left to do.
    let running = restarted(&env, scheduled_workflow(&env), |_| {});
    env.sim.run_for(Duration::from_secs(60));
    assert_eq!(counts(&running.status("report").unwrap()), (0, 0, 0));
    assert_eq!(env.effects.count("charge"), 2);
    env.sim.block_on(running.stop()).unwrap();
}

#[test]
fn a_flow_set_to_abandon_finishes_the_log_at_start_and_runs_nothing() {
    let env = Env::new();
    let run = interrupted_fire(&env);
    let events = Arc::new(AbandonEvents::default());
    let wf = scheduled_workflow(&env).with_observer(events.clone());
    let running = restarted(&env, wf, |s| {
        s.set_recovery("report", cano_core::scheduler::Recovery::Abandon)
            .unwrap();
    });
    env.sim.run_for(Duration::from_secs(3600));
    assert_eq!(env.store.log(&run), RunLog::Finished(RunOutcome::Abandoned));
    assert_eq!(env.effects.count("charge"), 1, "nothing ran");
    assert_eq!(env.effects.count("reserve"), 1, "nothing ran");
    let info = running.status("report").unwrap();
    assert_eq!(counts(&info), (0, 1, 0), "{info:?}");
    assert_eq!(info.run_count, 0);
    assert_eq!(*events.0.lock().unwrap(), [run.to_string()]);
    env.sim.block_on(running.stop()).unwrap();
}

#[derive(Default)]
struct AbandonEvents(std::sync::Mutex<Vec<String>>);

impl cano_core::WorkflowObserver<Order> for AbandonEvents {
    fn on_abandon(&self, run: &RunId) {
        self.0.lock().unwrap().push(run.to_string());
    }
}

#[test]
fn runs_of_other_flows_ad_hoc_ids_and_foreign_names_are_left_alone() {
    let env = Env::new();
    let row = || vec![CheckpointRow::state_entry(0, "reserve".into(), 1)];
    let strangers = [
        "other@2026-01-01T00:00:00Z",
        // The flow `report@x`'s run, not `report`'s.
        "report@x@2026-01-01T00:00:00Z",
        "report",
        "report@",
        "report@yesterday",
        // Not how a fire id displays (nanoseconds; a lower-case offset): not ours.
        "report@2026-01-01T00:00:00.000000001Z",
        "report@2026-01-01T00:00:00+00:00",
        "reports@2026-01-01T00:00:00Z",
    ];
    for id in strangers {
        env.store.seed(&RunId::new(id), row());
    }
    let running = restarted(&env, scheduled_workflow(&env), |_| {});
    env.sim.run_for(Duration::from_secs(3600));
    for id in strangers {
        assert!(
            matches!(env.store.log(&RunId::new(id)), RunLog::Unfinished(_)),
            "{id} was touched"
        );
    }
    assert!(env.effects.all().is_empty(), "{:?}", env.effects.all());
    let info = running.status("report").unwrap();
    assert_eq!(counts(&info), (0, 0, 0));
    assert_eq!(info.run_count, 0);
    env.sim.block_on(running.stop()).unwrap();
}

#[test]
fn a_stop_during_a_resumed_run_cancels_it_at_the_grace_and_leaves_its_log() {
    let env = Env::new();
    let run = interrupted_fire(&env);
    env.crash.set("charge"); // the resumed run hangs in `charge` too
    let running = restarted(&env, scheduled_workflow(&env), |_| {});
    env.sim.run_for(Duration::from_secs(60));
    assert_eq!(
        env.effects.count("charge"),
        2,
        "the resumed run is in `charge`"
    );
    assert_eq!(
        running.status("report").unwrap().status,
        cano_core::scheduler::flow::Status::Running
    );
    let report = env
        .sim
        .block_on(running.stop_within(Duration::from_secs(1)))
        .unwrap();
    assert_eq!(
        report
            .cancelled
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [run.to_string()],
        "the resumed run is cancelled under its own fire id"
    );
    assert!(
        matches!(env.store.log(&run), RunLog::Unfinished(_)),
        "a cancelled resume leaves the log for the next start"
    );
}

#[test]
fn a_resumed_run_that_fails_is_counted_failed_and_is_a_failure_of_its_flow() {
    let env = Env::new();
    let run = interrupted_fire(&env);
    let mut charge = Step::new("charge", Order::Done, &env);
    charge.fail_for_good = true;
    let wf = Workflow::bare()
        .register(Order::Reserve, Step::new("reserve", Order::Charge, &env))
        .register(Order::Charge, charge)
        .add_exit_state(Order::Done)
        .with_checkpoint_store(env.store.clone());
    let running = restarted(&env, wf, |_| {});
    env.sim.run_for(Duration::from_secs(3600));
    let info = running.status("report").unwrap();
    assert_eq!(counts(&info), (0, 0, 1), "{info:?}");
    assert_eq!(info.failure_streak, 1);
    assert!(matches!(env.store.log(&run), RunLog::Unfinished(_)));
    env.sim.block_on(running.stop()).unwrap();
}

/// An interval flow fires at start; with a resumed run in flight its overlap policy
/// decides: `Skip` starts no fresh run beside it, `AllowConcurrent(2)` does.
#[test]
fn a_resumed_run_is_the_flows_live_run_for_its_overlap_policy() {
    for (overlap, fresh_runs) in [
        (OverlapPolicy::Skip, 0),
        (OverlapPolicy::BufferOne, 0),
        (OverlapPolicy::AllowConcurrent(2), 1),
    ] {
        let env = Env::new();
        let run = interrupted_fire(&env);
        env.crash.set("charge"); // the resumed run hangs in `charge`
        let mut scheduler = Scheduler::new();
        scheduler
            .every(
                "report",
                scheduled_workflow(&env),
                Order::Reserve,
                Duration::from_secs(7200),
            )
            .unwrap();
        scheduler.set_overlap("report", overlap).unwrap();
        let running = env
            .sim
            .block_on(scheduler.start(env.clock.clone(), env.sim.spawner()))
            .unwrap();
        env.sim.run_for(Duration::from_secs(3600));
        assert_eq!(
            env.effects.count("reserve"),
            1 + fresh_runs,
            "{overlap:?}: {:?}",
            env.effects.all()
        );
        let info = running.status("report").unwrap();
        assert_eq!(info.run_count, 1 + fresh_runs as u64, "{overlap:?}");
        let report = env
            .sim
            .block_on(running.stop_within(Duration::from_secs(1)))
            .unwrap();
        assert!(
            report
                .cancelled
                .iter()
                .any(|f| f.to_string() == run.as_str()),
            "{overlap:?}: {report:?}"
        );
    }
}

/// Records `label key`, sleeps `takes`, goes to `next`.
struct Timed {
    label: &'static str,
    next: Order,
    takes: Duration,
    env_effects: Effects,
    clock: cano_core::testing::FakeClock,
}

impl cano_core::Task<Order> for Timed {
    async fn run_with(
        &self,
        ctx: cano_core::TaskContext<'_>,
    ) -> Result<cano_core::TaskResult<Order>, cano_core::CanoError> {
        use cano_core::Clock;
        self.env_effects.record(self.label, &ctx);
        self.clock.sleep_until(self.clock.now() + self.takes).await;
        Ok(cano_core::TaskResult::Single(self.next))
    }
    fn config(&self) -> cano_core::TaskConfig {
        cano_core::TaskConfig::minimal()
    }
}

/// reserve → charge → ship, 10 s each.
fn timed_workflow(env: &Env) -> Workflow<Order> {
    let step = |label, next| Timed {
        label,
        next,
        takes: Duration::from_secs(10),
        env_effects: env.effects.clone(),
        clock: env.clock.clone(),
    };
    Workflow::bare()
        .register(Order::Reserve, step("reserve", Order::Charge))
        .register(Order::Charge, step("charge", Order::Ship))
        .register(Order::Ship, step("ship", Order::Done))
        .add_exit_state(Order::Done)
        .with_checkpoint_store(env.store.clone())
}

/// The first process is stopped (grace 0: the run is cancelled at once) at every second of
/// the run; the next start resumes it: every state runs, only the one in flight twice (under
/// one key), and the run is counted once.
#[test]
fn a_run_stopped_at_any_instant_is_resumed_at_its_in_flight_state_once() {
    for secs in 1..30u64 {
        let env = Env::new();
        let mut scheduler = Scheduler::new();
        scheduler
            .manual("report", timed_workflow(&env), Order::Reserve)
            .unwrap();
        let running = env
            .sim
            .block_on(scheduler.start(env.clock.clone(), env.sim.spawner()))
            .unwrap();
        running.trigger("report").unwrap();
        env.sim.run_for(Duration::from_secs(secs));
        let report = env
            .sim
            .block_on(running.stop_within(Duration::ZERO))
            .unwrap();
        assert_eq!(report.cancelled.len(), 1, "at {secs} s: {report:?}");
        let run = RunId::new(report.cancelled[0].to_string());
        let before = env.effects.all();
        let in_flight = before.last().unwrap().clone();

        let running = restarted_with(&env, timed_workflow(&env));
        env.sim.run_for(Duration::from_secs(60));
        let info = running.status("report").unwrap();
        assert_eq!(counts(&info), (1, 0, 0), "at {secs} s: {info:?}");
        assert_eq!(env.store.log(&run), RunLog::Finished(RunOutcome::Completed));
        let after = env.effects.all();
        assert_eq!(after[..before.len()], before[..]);
        assert_eq!(
            after[before.len()],
            in_flight,
            "at {secs} s: the in-flight state re-runs first, with its key"
        );
        let labels = env.effects.labels();
        for label in ["reserve", "charge", "ship"] {
            let expected = 1 + usize::from(in_flight.starts_with(label));
            assert_eq!(
                labels.iter().filter(|l| *l == label).count(),
                expected,
                "at {secs} s: {after:?}"
            );
        }
        env.sim.block_on(running.stop()).unwrap();
    }
}

fn restarted_with(env: &Env, wf: Workflow<Order>) -> RunningScheduler {
    restarted(env, wf, |_| {})
}
