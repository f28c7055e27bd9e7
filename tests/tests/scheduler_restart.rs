//! A scheduler with a schedule store, killed and started again on the fake clock: what was
//! acknowledged (`flush`) comes back (streak, backoff, trip, pause, buffered trigger), fires
//! missed while down are caught up per policy, and store faults lose nothing acknowledged.

mod scheduler_support;

use std::time::Duration;

use cano_core::jiff::{Timestamp, ToSpan};
use cano_core::persist::{FlowRecord, MemoryScheduleStore, ScheduleStore};
use cano_core::schedule::{MissedFirePolicy, OverlapPolicy, SchedulePolicy};
use cano_core::scheduler::{FlowInfo, RunningScheduler, Scheduler};
use cano_core::testing::Simulation;
use cano_core::{BackoffPolicy, Status};
use scheduler_support::{Behaviour, Recorder, secs};

const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn wall(s: i64) -> Timestamp {
    Timestamp::from_second(T0 + s).unwrap()
}

/// The flows of every process: a flow that always fails (backs off, trips), a per-minute
/// cron flow that catches up to 3 missed fires, a buffered manual flow whose runs take 30 s,
/// and an interval flow that gets paused.
fn scheduler(rec: &Recorder, store: &MemoryScheduleStore) -> Scheduler {
    let mut s = Scheduler::new().with_schedule_store(store.clone());
    s.every_seconds("flaky", rec.job(Behaviour::failing()), (), 10)
        .unwrap();
    s.set_backoff(
        "flaky",
        BackoffPolicy {
            initial: secs(15),
            multiplier: 2.0,
            max_delay: secs(60),
            jitter: 0.0,
            streak_limit: Some(6),
        },
    )
    .unwrap();
    s.cron(
        "minutely",
        rec.job(Behaviour::INSTANT_OK),
        (),
        "0 * * * * *",
    )
    .unwrap();
    s.set_missed_fires("minutely", MissedFirePolicy::RunAll { max: 3 })
        .unwrap();
    s.manual("buf", rec.job(Behaviour::taking(secs(30))), ())
        .unwrap();
    s.set_policy(
        "buf",
        SchedulePolicy {
            overlap: OverlapPolicy::BufferOne,
            ..SchedulePolicy::default()
        },
    )
    .unwrap();
    s.every_seconds("paused", rec.job(Behaviour::INSTANT_OK), (), 20)
        .unwrap();
    s
}

struct Process {
    sim: Simulation,
    rec: Recorder,
    running: RunningScheduler,
}

fn boot(store: &MemoryScheduleStore, at: Timestamp) -> Process {
    let sim = Simulation::starting_at(at);
    let rec = Recorder::new(sim.clock());
    let running = sim
        .block_on(scheduler(&rec, store).start(sim.clock(), sim.spawner()))
        .expect("start");
    Process { sim, rec, running }
}

/// Kills the process: its tasks are dropped where they stand, nothing more is written.
fn kill(p: Process) {
    let Process { sim, running, .. } = p;
    drop(sim);
    drop(running);
}

/// The script every first process follows, one step per second.
fn command(p: &Process, step: u64) {
    let r = &p.running;
    match step {
        50 | 300 => {
            r.trigger("buf").unwrap();
            r.trigger("buf").unwrap(); // held: BufferOne
        }
        100 => r.pause("paused").unwrap(),
        250 => r.resume("paused").unwrap(),
        400 => r.reset_flow("flaky").unwrap(),
        _ => {}
    }
}

fn tripped(info: &FlowInfo) -> bool {
    matches!(info.status, Status::Tripped { .. })
}

/// Whether `buf` held a trigger (a run in flight and one more accepted) when a process that
/// ran the script's steps before `kill_at` was killed: the steps at 50 and 300 trigger
/// twice, and a run takes 30 s.
fn buffered_at(kill_at: u64) -> bool {
    (51..80).contains(&kill_at) || (301..330).contains(&kill_at)
}

/// Kills a first process after each of many steps, starts a second one after a short or a
/// long downtime, and checks that what the first acknowledged came back.
#[test]
fn a_restart_at_any_point_restores_what_was_acknowledged() {
    for kill_at in (1..=480u64).step_by(7) {
        let store = MemoryScheduleStore::new();
        let a = boot(&store, wall(0));
        for step in 0..kill_at {
            command(&a, step);
            a.sim.run_for(secs(1));
            a.sim.block_on(a.running.flush()).expect("flush");
        }
        let before: Vec<FlowInfo> = a.running.list();
        let last_minutely = a.rec.runs_of("minutely").last().map(|r| r.fire.scheduled());
        let killed_wall = wall(kill_at as i64);
        kill(a);

        let down = if kill_at % 2 == 0 { 5 } else { 3605 };
        let restart = killed_wall + (down as i64).seconds();
        let b = boot(&store, restart);
        let after: Vec<FlowInfo> = b.running.list();
        for (x, y) in before.iter().zip(&after) {
            let ctx = format!("kill at {kill_at}, down {down} s, flow {}", x.id);
            assert_eq!(x.failure_streak, y.failure_streak, "{ctx}");
            assert_eq!(tripped(x), tripped(y), "{ctx}");
            assert_eq!(
                x.status == Status::Paused,
                y.status == Status::Paused,
                "{ctx}"
            );
            if let Some(until) = x.next_eligible.filter(|t| *t > restart) {
                assert_eq!(
                    y.next_eligible,
                    Some(until),
                    "{ctx}: the backoff window holds"
                );
            }
        }
        b.sim.run_for(secs(1));
        // The buffered trigger that never started starts now (the run in flight at the
        // kill is not re-run: its start was recorded).
        let buf = b.rec.count("buf");
        assert_eq!(buf, usize::from(buffered_at(kill_at)), "kill at {kill_at}");
        // The cron flow: the missed minutes, the most recent 3 at most.
        b.sim.run_for(secs(2));
        let caught: Vec<Timestamp> = b
            .rec
            .runs_of("minutely")
            .iter()
            .map(|r| r.fire.scheduled())
            .filter(|t| *t <= restart)
            .collect();
        let expected: Vec<Timestamp> = match last_minutely {
            None => Vec::new(),
            Some(last) => {
                let missed: Vec<Timestamp> = (1..)
                    .map(|m| last + (60 * m).seconds())
                    .take_while(|t| *t <= restart)
                    .collect();
                missed[missed.len().saturating_sub(3)..].to_vec()
            }
        };
        assert_eq!(caught, expected, "kill at {kill_at}, down {down} s");
        // A flow never restarts an earlier fire id.
        for flow in ["flaky", "minutely", "buf", "paused"] {
            let ids: Vec<_> = b
                .rec
                .runs_of(flow)
                .iter()
                .map(|r| r.fire.scheduled())
                .collect();
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{flow}: {ids:?}");
        }
        b.sim.block_on(b.running.stop()).unwrap();
    }
}

/// A changed schedule catches nothing up; its status is kept.
#[test]
fn a_changed_schedule_does_not_catch_up() {
    let store = MemoryScheduleStore::new();
    let a = boot(&store, wall(0));
    a.sim.run_for(secs(125));
    a.sim.block_on(a.running.flush()).unwrap();
    assert_eq!(a.rec.count("minutely"), 2);
    kill(a);
    let sim = Simulation::starting_at(wall(3600));
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new().with_schedule_store(store.clone());
    s.cron(
        "minutely",
        rec.job(Behaviour::INSTANT_OK),
        (),
        "30 * * * * *",
    )
    .unwrap();
    s.set_missed_fires("minutely", MissedFirePolicy::RunAll { max: 3 })
        .unwrap();
    let running = sim.block_on(s.start(sim.clock(), sim.spawner())).unwrap();
    sim.run_for(secs(5));
    assert_eq!(
        rec.count("minutely"),
        0,
        "the old schedule's fires are not caught up"
    );
    sim.run_for(secs(30));
    assert_eq!(rec.count("minutely"), 1);
    sim.block_on(running.stop()).unwrap();
}

/// A partitioned store: commands and runs go on, `flush` reports the error, the writes are
/// retried and go through once the partition heals; a lost acknowledgement is retried too.
/// After a restart the state is what was last acknowledged.
#[test]
fn store_faults_lose_nothing_acknowledged() {
    let store = MemoryScheduleStore::new();
    let view = store.view();
    let a = boot(&view, wall(0));
    a.sim.run_for(secs(1));
    a.sim.block_on(a.running.flush()).unwrap();
    view.faults().partition(true);
    a.running.pause("paused").unwrap();
    let err = a.sim.block_on(a.running.flush()).unwrap_err();
    assert!(err.to_string().contains("partitioned"), "{err}");
    // Runs go on while the store is away.
    a.sim.run_for(secs(30));
    assert!(a.rec.count("flaky") >= 2);
    let stale = records(&store);
    assert!(!stale["paused"].paused, "the pause did not reach the store");
    view.faults().partition(false);
    // Retries back off up to 60 s: within a minute the writes went through.
    a.sim.run_for(secs(61));
    a.sim.block_on(a.running.flush()).unwrap();
    assert!(records(&store)["paused"].paused);
    // A lost answer: the write was applied, the scheduler retries it anyway.
    view.faults().lose_acks(1);
    a.running.resume("paused").unwrap();
    assert!(a.sim.block_on(a.running.flush()).is_err());
    a.sim.run_for(secs(2));
    a.sim.block_on(a.running.flush()).unwrap();
    let acknowledged = a.running.status("flaky").unwrap();
    kill(a);
    let b = boot(&store, wall(200));
    assert_ne!(b.running.status("paused").unwrap().status, Status::Paused);
    assert_eq!(
        b.running.status("flaky").unwrap().failure_streak,
        acknowledged.failure_streak
    );
    b.sim.block_on(b.running.stop()).unwrap();
}

/// A stop writes the last outcomes before it reports; what could not be written is listed.
#[test]
fn a_stop_writes_the_last_state_or_lists_what_it_could_not() {
    let store = MemoryScheduleStore::new();
    let view = store.view();
    let a = boot(&view, wall(0));
    a.sim.run_for(secs(1));
    a.running.trigger("buf").unwrap();
    let report = a.sim.block_on(a.running.stop()).unwrap();
    assert!(report.unsaved.is_empty());
    assert_eq!(records(&store)["buf"].last_fire, Some(wall(1)));

    let store = MemoryScheduleStore::new();
    let view = store.view();
    let b = boot(&view, wall(0));
    b.sim.run_for(secs(1));
    view.faults().partition(true);
    b.running.pause("paused").unwrap();
    let report = b.sim.block_on(b.running.stop()).unwrap();
    assert!(report.unsaved.contains(&"paused".to_string()), "{report:?}");
}

/// Without a store, a scheduler asks for no write and `flush` completes at once.
#[test]
fn without_a_store_flush_is_immediate() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.every_seconds("tick", rec.job(Behaviour::INSTANT_OK), (), 1)
        .unwrap();
    let running = sim.block_on(s.start(sim.clock(), sim.spawner())).unwrap();
    sim.run_for(Duration::from_secs(10));
    sim.block_on(running.flush()).unwrap();
    assert_eq!(rec.count("tick"), 11);
    sim.block_on(running.stop()).unwrap();
}

fn records(store: &MemoryScheduleStore) -> std::collections::HashMap<String, FlowRecord> {
    futures::executor::block_on(store.load_all())
        .unwrap()
        .into_iter()
        .map(|s| (s.flow.to_string(), s.record))
        .collect()
}

/// A store that notes, at each save, whether the fire it records as the flow's last had
/// already called its job.
#[derive(Clone, Default)]
struct CallsBeforeSaves {
    inner: MemoryScheduleStore,
    called: std::sync::Arc<std::sync::Mutex<Vec<Timestamp>>>,
    saved_before_the_call: std::sync::Arc<std::sync::Mutex<Vec<Timestamp>>>,
}

impl ScheduleStore for CallsBeforeSaves {
    async fn load_all(
        &self,
    ) -> cano_core::persist::PersistResult<Vec<cano_core::persist::StoredFlow>> {
        self.inner.load_all().await
    }
    async fn save(
        &self,
        flow: &str,
        record: &FlowRecord,
        fence: cano_core::persist::Fence,
    ) -> cano_core::persist::PersistResult<()> {
        if let Some(last) = record.last_fire
            && !self.called.lock().unwrap().contains(&last)
        {
            self.saved_before_the_call.lock().unwrap().push(last);
        }
        self.inner.save(flow, record, fence).await
    }
    async fn delete(
        &self,
        flow: &str,
        fence: cano_core::persist::Fence,
    ) -> cano_core::persist::PersistResult<()> {
        self.inner.delete(flow, fence).await
    }
}

/// A save records a fire as fired (a restart does not run it again), so it waits until the
/// fire's job was called: a crash between the write and the job's first step would lose
/// the fire. Here the runs' tasks are polled only after the loop yields, as on a busy
/// runtime.
#[test]
fn a_fire_is_stored_as_fired_only_once_its_job_was_called() {
    let store = CallsBeforeSaves::default();
    let sim = Simulation::starting_at(wall(0));
    let mut s = Scheduler::new().with_schedule_store(store.clone());
    let job = || {
        let called = std::sync::Arc::clone(&store.called);
        move |fire: cano_core::scheduler::Fire| {
            called.lock().unwrap().push(fire.id().scheduled());
            async { Ok::<(), cano_core::CanoError>(()) }
        }
    };
    // Every kind of fire: intervals, cron, manual triggers.
    for k in 0..4 {
        s.every_seconds(&format!("tick{k}"), job(), (), 10).unwrap();
    }
    s.cron("cron", job(), (), "*/15 * * * * *").unwrap();
    s.manual("manual", job(), ()).unwrap();
    let running = sim
        .block_on(s.start(sim.clock(), sim.spawner()))
        .expect("start");
    for _ in 0..6 {
        running.trigger("manual").expect("trigger");
        sim.run_for(secs(10));
    }
    let called = store.called.lock().unwrap().len();
    assert!(called >= 4 * 6 + 4 + 6, "the flows ran: {called} calls");
    let early = store.saved_before_the_call.lock().unwrap().clone();
    assert!(
        early.is_empty(),
        "fires stored before their job was called: {early:?}"
    );
    drop(running);
}
