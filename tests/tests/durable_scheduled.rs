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
    let report = env
        .sim
        .block_on(wf.recover_runs(
            RunContext::new(env.clock.clone()),
            "report@",
            Recovery::Resume,
        ))
        .unwrap();
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
    let report = env
        .sim
        .block_on(wf.recover_runs(
            RunContext::new(env.clock.clone()),
            "report@",
            Recovery::Abandon,
        ))
        .unwrap();
    assert_eq!(report.abandoned, std::slice::from_ref(&run));
    assert_eq!(env.store.log(&run), RunLog::Finished(RunOutcome::Abandoned));
    assert_eq!(env.effects.count("charge"), 1, "nothing ran");
}
