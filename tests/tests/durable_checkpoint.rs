//! Checkpointed workflows on the fake clock: the log a run writes, resume at every state,
//! versions, stable state keys, conflicting ids, fenced zombies, idempotency keys and what a
//! failing store does to a run.

mod durable_support;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use cano_core::checkpoint::{
    CheckpointError, CheckpointRow, Fault, MemoryCheckpointStore, Operation, RowKind, RunId,
    RunLog, StateKey, check_store_contract,
};
use cano_core::{CanoError, Clock, RunContext, Task, TaskContext, TaskResult, Workflow};
use durable_support::*;

fn order_workflow(env: &Env) -> Workflow<Order> {
    FLOW.iter()
        .fold(Workflow::bare(), |wf, &state| {
            let label = match state {
                Order::Reserve => "reserve",
                Order::Charge => "charge",
                _ => "ship",
            };
            wf.register(state, Step::new(label, next_of(state), env))
        })
        .add_exit_states([Order::Done, Order::Failed])
        .with_checkpoint_store(env.store.clone())
        .with_workflow_id("order-1")
}

#[test]
fn the_memory_store_passes_the_store_contract() {
    futures::executor::block_on(check_store_contract(&MemoryCheckpointStore::new()));
}

#[test]
fn a_completed_run_writes_one_entry_row_per_state_then_finishes_its_log() {
    let env = Env::new();
    let events = Arc::new(DurableEvents::default());
    let wf = order_workflow(&env).with_observer(events.clone());
    let end = env
        .sim
        .block_on(wf.orchestrate_on(&env.clock, Order::Reserve));
    assert_eq!(end, Ok(Order::Done));
    assert_eq!(
        env.log("order-1"),
        RunLog::Finished(cano_core::checkpoint::RunOutcome::Completed)
    );
    assert_eq!(
        env.store.appends(),
        2,
        "row 0 comes with start; two appends follow"
    );
    assert_eq!(
        *events.0.lock().unwrap(),
        [
            "checkpoint order-1 0 StateEntry reserve",
            "checkpoint order-1 1 StateEntry charge",
            "checkpoint order-1 2 StateEntry ship",
        ]
    );
    assert_eq!(
        env.effects.all(),
        [
            "reserve order-1/0/reserve/1",
            "charge order-1/1/charge/1",
            "ship order-1/2/ship/1"
        ],
        "every task sees its idempotency key: run/visit/state/attempt"
    );
}

#[test]
fn a_run_resumed_after_a_crash_in_each_state_reruns_only_that_state_under_the_same_key() {
    for (at, label) in [(0usize, "reserve"), (1, "charge"), (2, "ship")] {
        let env = Env::new();
        env.crash.set(label);
        let wf = order_workflow(&env);
        let crashed = env.run_or_crash(
            wf.orchestrate_on(&env.clock, Order::Reserve),
            Duration::from_secs(60),
        );
        assert!(crashed.is_none(), "{label}: the run was still in flight");
        let rows = env.rows("order-1");
        assert_eq!(
            rows.len(),
            at + 1,
            "{label}: one entry row per state entered"
        );
        assert_eq!(rows.last().unwrap().state, label);

        // A new process: a fresh workflow value over the same store.
        let events = Arc::new(DurableEvents::default());
        let wf = order_workflow(&env).with_observer(events.clone());
        let end = env.sim.block_on(wf.resume_from_on(&env.clock, "order-1"));
        assert_eq!(end, Ok(Order::Done), "{label}");
        let resumed = format!("resume order-1 {:?}", FLOW[at]);
        assert!(events.0.lock().unwrap().contains(&resumed), "{label}");

        let effects = env.effects.all();
        for (i, state) in ["reserve", "charge", "ship"].iter().enumerate() {
            let runs = effects
                .iter()
                .filter(|e| e.starts_with(&format!("{state} ")))
                .count();
            let expected = if i == at { 2 } else { 1 };
            assert_eq!(
                runs, expected,
                "{label}: {state} ran {runs} time(s): {effects:?}"
            );
        }
        let keys: Vec<&String> = effects.iter().filter(|e| e.starts_with(label)).collect();
        assert_eq!(
            keys[0], keys[1],
            "{label}: the re-run sees the crashed attempt's key"
        );
        assert_eq!(
            env.log("order-1"),
            RunLog::Finished(cano_core::checkpoint::RunOutcome::Completed)
        );
    }
}

#[test]
fn resuming_a_log_of_another_version_is_a_typed_error_that_keeps_the_log() {
    let env = Env::new();
    env.crash.set("charge");
    let v1 = order_workflow(&env).with_workflow_version(1);
    assert!(
        env.run_or_crash(
            v1.orchestrate_on(&env.clock, Order::Reserve),
            Duration::from_secs(60)
        )
        .is_none()
    );
    let v2 = order_workflow(&env).with_workflow_version(2);
    let err = env
        .sim
        .block_on(v2.resume_from_on(&env.clock, "order-1"))
        .unwrap_err();
    assert_eq!(
        err,
        CanoError::WorkflowVersionMismatch {
            stored: 1,
            expected: 2
        }
    );
    assert_eq!(err.category(), "workflow_version_mismatch");
    assert_eq!(env.rows("order-1").len(), 2, "the log is untouched");
    // The right version still resumes it.
    assert_eq!(
        env.sim.block_on(v1.resume_from_on(&env.clock, "order-1")),
        Ok(Order::Done)
    );
}

/// The same workflow after a refactor: variants renamed and reordered, `Debug` changed;
/// only the state keys stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Renamed {
    Finished,
    Shipping,
    Payment,
    Reservation,
}

impl StateKey for Renamed {
    fn state_key(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Renamed::Reservation => "reserve",
            Renamed::Payment => "charge",
            Renamed::Shipping => "ship",
            Renamed::Finished => "done",
        })
    }
}

struct Go(Renamed, Arc<std::sync::Mutex<Vec<Renamed>>>);
impl Task<Renamed> for Go {
    async fn run_with(&self, ctx: TaskContext<'_>) -> Result<TaskResult<Renamed>, CanoError> {
        assert!(ctx.idempotency_key().is_some());
        self.1.lock().unwrap().push(self.0);
        Ok(TaskResult::Single(match self.0 {
            Renamed::Reservation => Renamed::Payment,
            Renamed::Payment => Renamed::Shipping,
            _ => Renamed::Finished,
        }))
    }
}

#[test]
fn a_log_resumes_across_renamed_and_reordered_states_and_a_vanished_key_is_named() {
    let env = Env::new();
    env.crash.set("charge");
    let old = order_workflow(&env);
    assert!(
        env.run_or_crash(
            old.orchestrate_on(&env.clock, Order::Reserve),
            Duration::from_secs(60)
        )
        .is_none()
    );

    let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
    let new = Workflow::bare()
        .register(Renamed::Shipping, Go(Renamed::Shipping, ran.clone()))
        .register(Renamed::Payment, Go(Renamed::Payment, ran.clone()))
        .register(Renamed::Reservation, Go(Renamed::Reservation, ran.clone()))
        .add_exit_state(Renamed::Finished)
        .with_checkpoint_store(env.store.clone());
    assert_eq!(
        env.sim.block_on(new.resume_from_on(&env.clock, "order-1")),
        Ok(Renamed::Finished)
    );
    assert_eq!(
        *ran.lock().unwrap(),
        [Renamed::Payment, Renamed::Shipping],
        "resumed at the in-flight state"
    );

    // A log naming a key this workflow no longer has.
    let run = RunId::new("order-2");
    env.store.seed(
        &run,
        vec![CheckpointRow::state_entry(0, "gift-wrap".into(), 1)],
    );
    let err = env
        .sim
        .block_on(new.resume_from_on(&env.clock, run.clone()))
        .unwrap_err();
    assert_eq!(err.category(), "workflow");
    assert!(err.to_string().contains("`gift-wrap`"), "{err}");
    assert_eq!(
        env.store.rows(&run).len(),
        1,
        "the log is kept for a workflow that knows the key"
    );
}

#[test]
fn two_states_with_one_key_fail_validation() {
    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    enum Twin {
        A,
        B,
        End,
    }
    impl StateKey for Twin {
        fn state_key(&self) -> Cow<'static, str> {
            Cow::Borrowed(if *self == Twin::End { "end" } else { "same" })
        }
    }
    struct To(Twin);
    impl Task<Twin> for To {
        async fn run_bare(&self) -> Result<TaskResult<Twin>, CanoError> {
            Ok(TaskResult::Single(self.0.clone()))
        }
    }
    let wf = Workflow::bare()
        .register(Twin::A, To(Twin::B))
        .register(Twin::B, To(Twin::End))
        .add_exit_state(Twin::End)
        .with_checkpoint_store(MemoryCheckpointStore::new())
        .with_workflow_id("twins");
    let err = wf.validate().unwrap_err();
    assert_eq!(err.category(), "configuration");
    assert!(err.to_string().contains("`same`"), "{err}");
}

#[test]
fn a_second_live_run_with_the_same_id_is_a_conflict_and_the_first_is_unharmed() {
    let env = Env::new();
    env.crash.set("charge"); // the first run waits a day in `charge`
    let wf = order_workflow(&env);
    let (first, second) = env.sim.block_on(async {
        let first = wf.orchestrate_on(&env.clock, Order::Reserve);
        let second = async {
            env.clock
                .sleep_until(env.clock.now() + Duration::from_secs(1))
                .await;
            wf.orchestrate_on(&env.clock, Order::Reserve).await
        };
        futures::future::join(first, second).await
    });
    assert!(
        matches!(
            second,
            Err(CanoError::CheckpointStore(CheckpointError::Conflict { .. }))
        ),
        "{second:?}"
    );
    assert_eq!(first, Ok(Order::Done));
    assert_eq!(env.count_label("reserve"), 1, "the loser ran nothing");
}

trait CountLabel {
    fn count_label(&self, label: &str) -> usize;
}
impl CountLabel for Env {
    fn count_label(&self, label: &str) -> usize {
        self.effects.count(label)
    }
}

#[test]
fn a_zombie_run_is_fenced_out_after_another_process_resumes_its_log() {
    let env = Env::new();
    env.crash.set("charge");
    let zombie_wf = order_workflow(&env);
    let rescuer_wf = order_workflow(&env);
    let (zombie, rescuer) = env.sim.block_on(async {
        let zombie = zombie_wf.orchestrate_on(&env.clock, Order::Reserve);
        let rescuer = async {
            // The zombie looks dead (stuck in `charge`): another process takes over.
            env.clock
                .sleep_until(env.clock.now() + Duration::from_secs(60))
                .await;
            rescuer_wf.resume_from_on(&env.clock, "order-1").await
        };
        futures::future::join(zombie, rescuer).await
    });
    assert_eq!(rescuer, Ok(Order::Done));
    assert!(
        matches!(
            zombie,
            Err(CanoError::CheckpointStore(CheckpointError::Fenced { .. }))
        ),
        "the zombie's next write is rejected: {zombie:?}"
    );
    assert_eq!(
        env.effects.count("ship"),
        1,
        "only the owner ran the state after the takeover"
    );
}

#[test]
fn retries_see_increasing_attempts_under_one_visit() {
    let env = Env::new();
    let charge = Step::new("charge", Order::Ship, &env);
    charge
        .failures
        .store(2, std::sync::atomic::Ordering::SeqCst);
    let wf = Workflow::bare()
        .register(Order::Reserve, Step::new("reserve", Order::Charge, &env))
        .register(Order::Charge, charge)
        .register(Order::Ship, Step::new("ship", Order::Done, &env))
        .add_exit_state(Order::Done)
        .with_checkpoint_store(env.store.clone())
        .with_workflow_id("order-1");
    assert_eq!(
        env.sim
            .block_on(wf.orchestrate_on(&env.clock, Order::Reserve)),
        Ok(Order::Done)
    );
    assert_eq!(
        env.effects.all(),
        [
            "reserve order-1/0/reserve/1",
            "charge order-1/1/charge/1",
            "charge order-1/1/charge/2",
            "charge order-1/1/charge/3",
            "ship order-1/2/ship/1",
        ]
    );
}

#[test]
fn a_failed_run_without_compensations_keeps_its_log_for_a_resume() {
    let env = Env::new();
    let mut charge = Step::new("charge", Order::Ship, &env);
    charge.fail_for_good = true;
    let wf = Workflow::bare()
        .register(Order::Reserve, Step::new("reserve", Order::Charge, &env))
        .register(Order::Charge, charge)
        .register(Order::Ship, Step::new("ship", Order::Done, &env))
        .add_exit_state(Order::Done)
        .with_checkpoint_store(env.store.clone())
        .with_workflow_id("order-1");
    let err = env
        .sim
        .block_on(wf.orchestrate_on(&env.clock, Order::Reserve))
        .unwrap_err();
    assert_eq!(err.category(), "retry_exhausted");
    assert_eq!(kinds(&env.rows("order-1")).len(), 2);
    // Fixed, redeployed: the resume goes on from `charge`.
    let fixed = order_workflow(&env);
    assert_eq!(
        env.sim
            .block_on(fixed.resume_from_on(&env.clock, "order-1")),
        Ok(Order::Done)
    );
    assert_eq!(env.effects.count("reserve"), 1);
}

#[test]
fn an_append_that_fails_stops_the_run_before_the_unrecorded_state_and_a_resume_continues() {
    let env = Env::new();
    env.store
        .inject(Fault::on(Operation::Append).at_sequence(2));
    let wf = order_workflow(&env);
    let err = env
        .sim
        .block_on(wf.orchestrate_on(&env.clock, Order::Reserve))
        .unwrap_err();
    assert!(
        matches!(
            err,
            CanoError::CheckpointStore(CheckpointError::Unavailable(_))
        ),
        "{err:?}"
    );
    assert_eq!(
        env.effects.count("ship"),
        0,
        "a state whose entry was not recorded does not run"
    );
    assert_eq!(env.rows("order-1").len(), 2);
    assert_eq!(
        env.sim.block_on(wf.resume_from_on(&env.clock, "order-1")),
        Ok(Order::Done)
    );
    assert_eq!(
        env.effects.labels(),
        ["reserve", "charge", "charge", "ship"],
        "the resume re-ran the last recorded state, then went on"
    );
}

#[test]
fn a_failing_start_runs_nothing_and_a_failing_finish_still_returns_the_result() {
    let env = Env::new();
    env.store.inject(Fault::on(Operation::Start));
    let wf = order_workflow(&env);
    let err = env
        .sim
        .block_on(wf.orchestrate_on(&env.clock, Order::Reserve))
        .unwrap_err();
    assert!(matches!(
        err,
        CanoError::CheckpointStore(CheckpointError::Unavailable(_))
    ));
    assert!(env.effects.all().is_empty());

    env.store.inject(Fault::on(Operation::Finish));
    assert_eq!(
        env.sim
            .block_on(wf.orchestrate_on(&env.clock, Order::Reserve)),
        Ok(Order::Done)
    );
    assert!(
        matches!(env.log("order-1"), RunLog::Unfinished(_)),
        "the log stays (a resume would re-run the last state: at-least-once)"
    );
}

#[test]
fn an_acknowledgement_lost_after_the_write_is_still_a_failed_run_that_resumes() {
    let env = Env::new();
    env.store
        .inject(Fault::on(Operation::Append).at_sequence(1).after_write());
    let wf = order_workflow(&env);
    assert!(
        env.sim
            .block_on(wf.orchestrate_on(&env.clock, Order::Reserve))
            .is_err()
    );
    assert_eq!(env.effects.labels(), ["reserve"], "charge never ran");
    assert_eq!(env.rows("order-1").len(), 2, "but its entry row landed");
    assert_eq!(
        env.sim.block_on(wf.resume_from_on(&env.clock, "order-1")),
        Ok(Order::Done)
    );
    assert_eq!(env.effects.labels(), ["reserve", "charge", "ship"]);
}

#[test]
fn misuse_is_a_clear_error() {
    let env = Env::new();
    let no_id = Workflow::bare()
        .register(Order::Reserve, Step::new("reserve", Order::Done, &env))
        .add_exit_state(Order::Done)
        .with_checkpoint_store(env.store.clone());
    let err = env
        .sim
        .block_on(no_id.orchestrate_on(&env.clock, Order::Reserve))
        .unwrap_err();
    assert!(err.to_string().contains("with_workflow_id"), "{err}");

    let no_store = Workflow::bare()
        .register(Order::Reserve, Step::new("reserve", Order::Done, &env))
        .add_exit_state(Order::Done);
    let err = env
        .sim
        .block_on(no_store.resume_from_on(&env.clock, "x"))
        .unwrap_err();
    assert_eq!(err.category(), "configuration");
    assert!(err.to_string().contains("with_checkpoint_store"), "{err}");

    // Compensations without a store: the run has a ledger, but nothing to resume from.
    let saga_only = Workflow::bare()
        .register_compensatable(Order::Reserve, Undoable::new("reserve", Order::Done, &env))
        .add_exit_state(Order::Done);
    let err = env
        .sim
        .block_on(saga_only.resume_from_on(&env.clock, "x"))
        .unwrap_err();
    assert_eq!(err.category(), "configuration");
    assert!(err.to_string().contains("with_checkpoint_store"), "{err}");

    let unknown = order_workflow(&env);
    let err = env
        .sim
        .block_on(unknown.resume_from_on(&env.clock, "never"))
        .unwrap_err();
    assert!(
        matches!(
            err,
            CanoError::CheckpointStore(CheckpointError::NotFound { .. })
        ),
        "{err:?}"
    );
    let _ = RunContext::new(env.clock.clone());
}

#[test]
fn a_plain_workflow_gives_tasks_no_key_and_touches_no_store() {
    let env = Env::new();
    let wf = Workflow::bare()
        .register(Order::Reserve, Step::new("reserve", Order::Done, &env))
        .add_exit_state(Order::Done)
        .with_workflow_id("ignored-without-a-store");
    assert_eq!(
        env.sim
            .block_on(wf.orchestrate_on(&env.clock, Order::Reserve)),
        Ok(Order::Done)
    );
    assert_eq!(env.effects.all(), ["reserve -"]);
    assert!(!wf.is_checkpointed());
}

#[test]
fn row_kinds_of_a_checkpointed_run_are_entries_only() {
    let env = Env::new();
    env.crash.set("ship");
    let wf = order_workflow(&env);
    assert!(
        env.run_or_crash(
            wf.orchestrate_on(&env.clock, Order::Reserve),
            Duration::from_secs(5)
        )
        .is_none()
    );
    assert_eq!(
        kinds(&env.rows("order-1")),
        [
            (RowKind::StateEntry, "reserve".to_string()),
            (RowKind::StateEntry, "charge".to_string()),
            (RowKind::StateEntry, "ship".to_string()),
        ]
    );
    assert!(
        env.rows("order-1")
            .iter()
            .all(|row| row.workflow_version == 1)
    );
}

/// Counts what it spawns, then hands it to the simulation's spawner.
#[derive(Clone)]
struct CountingSpawner {
    inner: cano_core::testing::SimSpawner,
    spawned: Arc<std::sync::atomic::AtomicUsize>,
}

impl cano_core::runtime::Spawner for CountingSpawner {
    fn spawn(
        &self,
        future: cano_core::runtime::BoxFuture,
    ) -> Result<(), cano_core::runtime::SpawnError> {
        self.spawned
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.spawn(future)
    }
}

/// A checkpointed run reaches its ledgered code on a context with the clock and spawner
/// erased: a split asking for spawned branches still gets the caller's spawner (and its
/// sleeps the caller's clock), not the in-place fallback.
#[test]
fn a_checkpointed_run_spawns_split_branches_on_the_callers_spawner() {
    let env = Env::new();
    let branches = vec![
        Step::new("left", Order::Done, &env),
        Step::new("right", Order::Done, &env),
    ];
    let wf = Workflow::bare()
        .register_split(
            Order::Reserve,
            branches,
            cano_core::JoinConfig::new(cano_core::JoinStrategy::All, Order::Done)
                .with_spawned_branches(),
        )
        .add_exit_states([Order::Done, Order::Failed])
        .with_checkpoint_store(env.store.clone())
        .with_workflow_id("split-1");
    let spawned = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let spawner = CountingSpawner {
        inner: env.sim.spawner(),
        spawned: spawned.clone(),
    };
    let ctx = RunContext::new(env.clock.clone()).with_spawner(spawner);
    let end = env.sim.block_on(wf.orchestrate_with(ctx, Order::Reserve));
    assert_eq!(end, Ok(Order::Done));
    assert_eq!(
        spawned.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one per branch"
    );
    assert_eq!(
        env.log("split-1"),
        RunLog::Finished(cano_core::checkpoint::RunOutcome::Completed)
    );
}

/// The scheduler's recovery scan reaches a workflow through `Job::recoverable`: a
/// checkpointed workflow and its clones answer, a plain one does not (its recovery code
/// is reached only through a pointer the checkpoint store sets).
#[test]
fn only_a_checkpointed_workflow_and_its_clones_are_recoverable() {
    use cano_core::scheduler::Job;
    let env = Env::new();
    let plain = Workflow::bare()
        .register(Order::Reserve, Step::new("reserve", Order::Done, &env))
        .add_exit_state(Order::Done);
    assert!(Job::<Order>::recoverable(&plain).is_none());
    let checkpointed = plain.clone().with_checkpoint_store(env.store.clone());
    assert!(Job::<Order>::recoverable(&checkpointed).is_some());
    assert!(Job::<Order>::recoverable(&checkpointed.clone()).is_some());
}
