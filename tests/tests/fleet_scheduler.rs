//! Fleet mode through the whole scheduler (builder, async driver, handle) on the virtual-time
//! simulation: nodes share one in-memory fire ledger; each fire runs once fleet-wide; a
//! node that dies mid-run has its fire taken over, and a checkpointed workflow resumes from
//! its log there; commands given to one node reach the others.

mod durable_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cano_core::Workflow;
use cano_core::checkpoint::{RunLog, RunOutcome};
use cano_core::persist::{Fence, MemoryFireLedger, NodeId};
use cano_core::runtime::Clock;
use cano_core::scheduler::{Fire, RunningScheduler, Scheduler, job_fn};
use cano_core::testing::Simulation;
use durable_support::*;

fn ledger_on(sim: &Simulation) -> MemoryFireLedger {
    let clock = sim.clock();
    MemoryFireLedger::new(move || clock.wall_now())
}

/// A node running one cron flow `tick` every minute, counting its runs in `runs`.
fn tick_node(
    sim: &Simulation,
    ledger: &MemoryFireLedger,
    name: &str,
    runs: &Arc<AtomicU32>,
) -> RunningScheduler {
    let mut scheduler = Scheduler::new().with_fleet(ledger.view(), NodeId::new(name));
    let runs = runs.clone();
    scheduler
        .cron(
            "tick",
            job_fn(move |(), fire: Fire| {
                let runs = runs.clone();
                async move {
                    assert!(
                        fire.fence() > Fence::ZERO,
                        "a claimed run carries its fence"
                    );
                    assert!(!fire.is_takeover());
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            }),
            (),
            "* * * * *",
        )
        .unwrap();
    sim.block_on(scheduler.start(sim.clock(), sim.spawner()))
        .unwrap()
}

#[test]
fn three_nodes_run_each_fire_once_and_report_the_others() {
    let sim = Simulation::new();
    let ledger = ledger_on(&sim);
    let runs = Arc::new(AtomicU32::new(0));
    let nodes: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|n| tick_node(&sim, &ledger, n, &runs))
        .collect();
    sim.run_for(Duration::from_secs(3600));
    assert_eq!(runs.load(Ordering::SeqCst), 60);
    let infos: Vec<_> = nodes.iter().map(|n| n.status("tick").unwrap()).collect();
    assert_eq!(infos.iter().map(|i| i.run_count).sum::<u64>(), 60);
    assert_eq!(infos.iter().map(|i| i.fires_elsewhere).sum::<u64>(), 120);
    let status = nodes[0].fleet_status().unwrap();
    assert_eq!(status.node, NodeId::new("a"));
    assert!(status.ledger_available);
    assert_eq!(status.skew_warnings, 0);
    for node in &nodes {
        sim.block_on(node.stop()).unwrap();
    }
    let single = Scheduler::<()>::new();
    let running = sim
        .block_on(single.start(sim.clock(), sim.spawner()))
        .unwrap();
    assert!(
        running.fleet_status().is_none(),
        "no fleet, no fleet status"
    );
    sim.block_on(running.stop()).unwrap();
}

#[test]
fn a_pause_on_one_node_reaches_the_others_and_so_does_the_resume() {
    let sim = Simulation::new();
    let ledger = ledger_on(&sim);
    let runs = Arc::new(AtomicU32::new(0));
    let a = tick_node(&sim, &ledger, "a", &runs);
    let b = tick_node(&sim, &ledger, "b", &runs);
    sim.run_for(Duration::from_secs(30));
    a.pause("tick").unwrap();
    // Read back at b's next scan of the ledger (every 5 s by default).
    sim.run_for(Duration::from_secs(6));
    assert!(
        b.status("tick").unwrap().next_fire.is_none(),
        "b paused too"
    );
    sim.run_for(Duration::from_secs(600));
    assert_eq!(runs.load(Ordering::SeqCst), 0, "nothing ran while paused");
    b.resume("tick").unwrap();
    sim.run_for(Duration::from_secs(6));
    assert!(
        a.status("tick").unwrap().next_fire.is_some(),
        "a resumed too"
    );
    sim.run_for(Duration::from_secs(120));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    sim.block_on(a.stop()).unwrap();
    sim.block_on(b.stop()).unwrap();
}

fn nightly(env: &Env) -> Workflow<Order> {
    Workflow::bare()
        .register(Order::Reserve, Step::new("reserve", Order::Charge, env))
        .register(Order::Charge, Step::new("charge", Order::Done, env))
        .add_exit_state(Order::Done)
        .with_checkpoint_store(env.store.clone())
}

fn nightly_node(env: &Env, ledger: &MemoryFireLedger, name: &str) -> RunningScheduler {
    let mut scheduler = Scheduler::new().with_fleet(ledger.view(), NodeId::new(name));
    scheduler
        .cron("nightly", nightly(env), Order::Reserve, "0 0 * * *")
        .unwrap();
    env.sim
        .block_on(scheduler.start(env.clock.clone(), env.sim.spawner()))
        .unwrap()
}

#[test]
fn a_node_that_dies_mid_run_has_its_fire_taken_over_and_the_workflow_resumes() {
    let env = Env::new();
    let ledger = ledger_on(&env.sim);
    let a = nightly_node(&env, &ledger, "a");
    let b = nightly_node(&env, &ledger, "b");
    // The fire at midnight: its `charge` state hangs on the node that claimed it.
    env.crash.set("charge");
    env.sim.run_for(DAY + Duration::from_secs(10));
    let (dying, survivor) = if a.status("nightly").unwrap().run_count == 1 {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(dying.status("nightly").unwrap().run_count, 1);
    let run = "nightly@2026-01-02T00:00:00Z";
    assert!(matches!(env.log(run), RunLog::Unfinished(_)));
    // The node dies: its run is dropped, its claim is never completed.
    drop(dying);
    env.sim.run_for(Duration::from_secs(60));
    let info = survivor.status("nightly").unwrap();
    assert_eq!(info.takeovers, 1, "{info:?}");
    assert_eq!(env.log(run), RunLog::Finished(RunOutcome::Completed));
    assert_eq!(
        env.effects.count("reserve"),
        1,
        "the finished state did not run again"
    );
    assert_eq!(
        env.effects.count("charge"),
        2,
        "the state in flight ran again"
    );
    let record = env
        .sim
        .block_on(cano_core::persist::FireLedger::fire(
            &ledger,
            &cano_core::scheduler::FireId::new("nightly", "2026-01-02T00:00:00Z".parse().unwrap()),
        ))
        .unwrap()
        .value
        .unwrap();
    assert_eq!(record.takeovers, 1);
    assert_eq!(
        record.state,
        cano_core::persist::ClaimState::Done(cano_core::persist::FireOutcome::Succeeded)
    );
    env.sim.block_on(survivor.stop()).unwrap();
}
