//! Sagas on the fake clock: LIFO drain, the original error first, bounded and
//! panic-isolated compensations, timeout and cancellation drains, and drains that resume
//! after a crash without compensating anything twice.

mod durable_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cano_core::checkpoint::{CheckpointRow, RowKind, RunId, RunLog, RunOutcome};
use cano_core::{CancellationToken, CanoError, Clock, RunContext, Workflow};
use durable_support::*;

/// reserve (undoable) → charge (undoable) → ship (undoable) → pack (plain, fails or not).
fn saga(env: &Env, tweak: impl Fn(&mut Undoable), pack_fails: bool) -> Workflow<Order> {
    let mut undoables: Vec<Undoable> = vec![
        Undoable::new("reserve", Order::Charge, env),
        Undoable::new("charge", Order::Ship, env),
        Undoable::new("ship", Order::Failed, env),
    ];
    undoables.iter_mut().for_each(&tweak);
    let mut pack = Step::new("pack", Order::Done, env);
    pack.fail_for_good = pack_fails;
    let mut it = undoables.into_iter();
    Workflow::bare()
        .register_compensatable(Order::Reserve, it.next().unwrap())
        .register_compensatable(Order::Charge, it.next().unwrap())
        .register_compensatable(Order::Ship, it.next().unwrap())
        .register(Order::Failed, pack)
        .add_exit_state(Order::Done)
}

fn durable(env: &Env, wf: Workflow<Order>) -> Workflow<Order> {
    wf.with_checkpoint_store(env.store.clone())
        .with_workflow_id("saga-1")
}

fn undo_labels(env: &Env) -> Vec<String> {
    env.effects
        .labels()
        .into_iter()
        .filter(|l| l.starts_with("undo-") && !l.ends_with("-output"))
        .collect()
}

#[test]
fn a_failure_compensates_in_reverse_order_and_returns_the_original_error() {
    for checkpointed in [false, true] {
        let env = Env::new();
        let events = Arc::new(DurableEvents::default());
        let mut wf = saga(&env, |_| {}, true).with_observer(events.clone());
        if checkpointed {
            wf = durable(&env, wf);
        }
        let err = env
            .sim
            .block_on(wf.orchestrate_on(&env.clock, Order::Reserve))
            .unwrap_err();
        assert_eq!(
            err.category(),
            "retry_exhausted",
            "the original error, not a wrapper"
        );
        assert_eq!(
            undo_labels(&env),
            ["undo-ship", "undo-charge", "undo-reserve"]
        );
        let outputs: Vec<String> = env
            .effects
            .all()
            .into_iter()
            .filter(|e| e.contains("-output"))
            .collect();
        assert_eq!(
            outputs,
            [
                "undo-ship-output ship#1",
                "undo-charge-output charge#1",
                "undo-reserve-output reserve#1"
            ],
            "each compensation gets its own task's output back"
        );
        let seen = events.0.lock().unwrap().clone();
        assert!(seen.iter().any(|e| e.starts_with("rollback")), "{seen:?}");
        assert_eq!(
            seen.iter()
                .filter(|e| e.starts_with("compensated") && e.ends_with("true"))
                .count(),
            3
        );
        if checkpointed {
            assert_eq!(env.log("saga-1"), RunLog::Finished(RunOutcome::RolledBack));
        }
    }
}

#[test]
fn compensations_of_a_checkpointed_run_get_keys_naming_their_completion_rows() {
    let env = Env::new();
    let wf = durable(&env, saga(&env, |_| {}, true));
    let _ = env
        .sim
        .block_on(wf.orchestrate_on(&env.clock, Order::Reserve));
    let undo_keys: Vec<String> = env
        .effects
        .all()
        .into_iter()
        .filter(|e| e.starts_with("undo-") && !e.contains("-output"))
        .collect();
    // rows: 0 entry reserve, 1 completion reserve, 2 entry charge, 3 completion charge,
    // 4 entry ship, 5 completion ship, 6 entry failed (pack).
    assert_eq!(
        undo_keys,
        [
            "undo-ship saga-1/5/ship/1",
            "undo-charge saga-1/3/charge/1",
            "undo-reserve saga-1/1/reserve/1"
        ]
    );
}

#[test]
fn a_failed_compensation_is_reported_after_the_original_error_and_the_drain_goes_on() {
    let env = Env::new();
    let wf = durable(
        &env,
        saga(
            &env,
            |u| {
                if u.label == "charge" {
                    u.undo_failures.store(1, Ordering::SeqCst)
                }
            },
            true,
        ),
    );
    let err = env
        .sim
        .block_on(wf.orchestrate_on(&env.clock, Order::Reserve))
        .unwrap_err();
    let CanoError::CompensationFailed { errors } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(errors.len(), 2);
    assert_eq!(
        errors[0].category(),
        "retry_exhausted",
        "the original error comes first"
    );
    assert_eq!(errors[1], CanoError::task_execution("undo-charge failed"));
    assert_eq!(
        undo_labels(&env),
        ["undo-ship", "undo-charge", "undo-reserve"],
        "never stops early"
    );
    assert!(
        matches!(env.log("saga-1"), RunLog::Unfinished(_)),
        "a dirty rollback keeps its log"
    );

    // Resuming the run finishes the drain: only the failed compensation runs again.
    let err = env
        .sim
        .block_on(wf.resume_from_on(&env.clock, "saga-1"))
        .unwrap_err();
    assert_eq!(err.category(), "workflow");
    assert!(
        err.to_string().contains("pack failed"),
        "names the original failure: {err}"
    );
    assert_eq!(
        undo_labels(&env),
        ["undo-ship", "undo-charge", "undo-reserve", "undo-charge"]
    );
    assert_eq!(env.log("saga-1"), RunLog::Finished(RunOutcome::RolledBack));
}

#[test]
fn a_panicking_compensation_is_isolated() {
    let env = Env::new();
    let wf = saga(&env, |u| u.undo_panics = u.label == "ship", true);
    let err = env
        .sim
        .block_on(wf.orchestrate_on(&env.clock, Order::Reserve))
        .unwrap_err();
    let CanoError::CompensationFailed { errors } = &err else {
        panic!("{err:?}")
    };
    assert!(
        errors[1].to_string().contains("undo-ship panicked"),
        "{err}"
    );
    assert_eq!(
        undo_labels(&env),
        ["undo-ship", "undo-charge", "undo-reserve"]
    );
}

#[test]
fn each_compensation_is_bounded_by_its_attempt_timeout_and_the_drain_by_its_budget() {
    let env = Env::new();
    let wf = saga(
        &env,
        |u| {
            u.undo_takes = Duration::from_secs(100);
            u.attempt_timeout = Some(Duration::from_secs(5));
        },
        true,
    )
    .with_compensation_timeout(Duration::from_secs(12));
    let start = env.clock.now();
    let err = env
        .sim
        .block_on(wf.orchestrate_on(&env.clock, Order::Reserve))
        .unwrap_err();
    let CanoError::CompensationFailed { errors } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(errors.len(), 4);
    assert!(
        errors[1].to_string().contains("took longer than 5s"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].to_string().contains("took longer than 5s"),
        "{}",
        errors[2]
    );
    assert!(
        errors[3].to_string().contains("took longer than 2s"),
        "the budget's rest: {}",
        errors[3]
    );
    assert_eq!(
        env.clock.now() - start,
        Duration::from_secs(3 + 12),
        "pack's three 1 s retry pauses, then a drain of exactly its budget"
    );
}

#[test]
fn a_total_timeout_drains_the_compensations() {
    let env = Env::new();
    env.crash.set("pack"); // pack hangs a day
    let mut wf = saga(&env, |_| {}, false).with_timeout(Duration::from_secs(30));
    wf = durable(&env, wf);
    let err = env
        .sim
        .block_on(wf.orchestrate_on(&env.clock, Order::Reserve))
        .unwrap_err();
    assert_eq!(err.category(), "timeout", "{err}");
    assert_eq!(
        undo_labels(&env),
        ["undo-ship", "undo-charge", "undo-reserve"]
    );
    assert_eq!(env.log("saga-1"), RunLog::Finished(RunOutcome::RolledBack));
}

#[test]
fn a_cancelled_run_drains_the_compensations() {
    let env = Env::new();
    env.crash.set("pack");
    let wf = saga(&env, |_| {}, false);
    let (err, _) = run_cancelled_at(&env, &wf, Order::Reserve, Duration::from_secs(10));
    assert_eq!(err.unwrap_err().category(), "cancelled");
    assert_eq!(
        undo_labels(&env),
        ["undo-ship", "undo-charge", "undo-reserve"]
    );
}

#[test]
fn a_crash_between_a_completion_row_and_the_next_entry_does_not_compensate_twice() {
    // Real crash: the entry row after `charge`'s completion never lands.
    let env = Env::new();
    let store = FreezingStore::new(env.store.clone());
    store.freeze_on(RowKind::StateEntry, "ship");
    let wf = saga(&env, |_| {}, true)
        .with_checkpoint_store(store.clone())
        .with_workflow_id("saga-1");
    assert!(
        env.run_or_crash(
            wf.orchestrate_on(&env.clock, Order::Reserve),
            Duration::from_secs(60)
        )
        .is_none()
    );
    assert_eq!(
        kinds(&env.rows("saga-1")).last().unwrap(),
        &(RowKind::CompensationCompletion, "charge".to_string())
    );
    let err = env
        .sim
        .block_on(wf.resume_from_on(&env.clock, "saga-1"))
        .unwrap_err();
    assert_eq!(err.category(), "retry_exhausted");
    assert_eq!(
        env.effects.count("charge"),
        2,
        "the in-flight state re-ran (at-least-once)"
    );
    assert_eq!(
        undo_labels(&env),
        ["undo-ship", "undo-charge", "undo-reserve"],
        "but it is compensated once"
    );
    let outputs: Vec<String> = env
        .effects
        .all()
        .into_iter()
        .filter(|e| e.starts_with("undo-charge-output"))
        .collect();
    assert_eq!(
        outputs,
        ["undo-charge-output charge#2"],
        "with the re-run's output"
    );
}

#[test]
fn a_crash_after_a_completion_whose_rerun_fails_still_compensates_the_first_run() {
    // Seeded log: `reserve` completed, then `charge` completed and the process died before
    // entering `ship`. On resume `charge` fails for good: its first run's work must still be
    // undone (with the first run's output), once.
    let env = Env::new();
    let run = RunId::new("saga-1");
    let blob = |s: &str| cano_core::checkpoint::encode_blob(&s.to_string()).unwrap();
    env.store.seed(
        &run,
        vec![
            CheckpointRow::state_entry(0, "reserve".into(), 1),
            CheckpointRow::completion(1, "reserve".into(), "reserve".into(), 1, blob("reserve#0")),
            CheckpointRow::state_entry(2, "charge".into(), 1),
            CheckpointRow::completion(3, "charge".into(), "charge".into(), 1, blob("charge#0")),
        ],
    );
    // `charge` now fails in its state; its compensation stays registered (under its name,
    // on another state) so the first run's work can be undone.
    let failing_charge = Step {
        fail_for_good: true,
        ..Step::new("charge", Order::Ship, &env)
    };
    let wf = Workflow::bare()
        .register_compensatable(
            Order::Reserve,
            Undoable::new("reserve", Order::Charge, &env),
        )
        .register(Order::Charge, failing_charge)
        .register_compensatable(Order::Failed, Undoable::new("charge", Order::Ship, &env))
        .add_exit_state(Order::Done)
        .with_checkpoint_store(env.store.clone());
    let err = env
        .sim
        .block_on(wf.resume_from_on(&env.clock, run.clone()))
        .unwrap_err();
    assert_eq!(err.category(), "retry_exhausted", "{err}");
    let outputs: Vec<String> = env
        .effects
        .all()
        .into_iter()
        .filter(|e| e.contains("-output"))
        .collect();
    assert_eq!(
        outputs,
        [
            "undo-charge-output charge#0",
            "undo-reserve-output reserve#0"
        ],
        "both completed tasks are undone once, newest first, with their logged outputs"
    );
    assert_eq!(
        env.store.log(&run),
        RunLog::Finished(RunOutcome::RolledBack)
    );
}

#[test]
fn a_crash_in_the_middle_of_a_drain_resumes_it_without_rerunning_finished_compensations() {
    let env = Env::new();
    let store = FreezingStore::new(env.store.clone());
    // The process dies while writing the done row of `charge`'s compensation.
    store.freeze_on(RowKind::CompensationDone { completion: 3 }, "failed");
    let wf = saga(&env, |_| {}, true)
        .with_checkpoint_store(store.clone())
        .with_workflow_id("saga-1");
    assert!(
        env.run_or_crash(
            wf.orchestrate_on(&env.clock, Order::Reserve),
            Duration::from_secs(60)
        )
        .is_none()
    );
    assert_eq!(undo_labels(&env), ["undo-ship", "undo-charge"]);
    let pack_calls = env.effects.count("pack");

    let err = env
        .sim
        .block_on(wf.resume_from_on(&env.clock, "saga-1"))
        .unwrap_err();
    assert!(err.to_string().contains("pack failed"), "{err}");
    assert_eq!(
        undo_labels(&env),
        ["undo-ship", "undo-charge", "undo-charge", "undo-reserve"],
        "ship's finished compensation is not re-run; charge's (done row lost) runs again; the drain ends"
    );
    assert_eq!(
        env.effects.count("pack"),
        pack_calls,
        "the failed forward state is not re-run"
    );
    assert_eq!(env.log("saga-1"), RunLog::Finished(RunOutcome::RolledBack));
}

#[test]
fn a_rollback_leaves_a_readable_trail_in_the_log() {
    let env = Env::new();
    let wf = durable(
        &env,
        saga(
            &env,
            |u| {
                if u.label == "reserve" {
                    u.undo_failures.store(1, Ordering::SeqCst)
                }
            },
            true,
        ),
    );
    let _ = env
        .sim
        .block_on(wf.orchestrate_on(&env.clock, Order::Reserve));
    let rows = env.rows("saga-1");
    let kinds: Vec<RowKind> = rows.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            RowKind::StateEntry,
            RowKind::CompensationCompletion,
            RowKind::StateEntry,
            RowKind::CompensationCompletion,
            RowKind::StateEntry,
            RowKind::CompensationCompletion,
            RowKind::StateEntry,
            RowKind::RollbackStarted,
            RowKind::CompensationDone { completion: 5 },
            RowKind::CompensationDone { completion: 3 },
        ],
        "reserve's compensation failed: no done row, so a resume retries it"
    );
}

#[test]
fn compensatable_tasks_need_unique_names() {
    let env = Env::new();
    let wf = Workflow::bare()
        .register_compensatable(Order::Reserve, Undoable::new("same", Order::Charge, &env))
        .register_compensatable(Order::Charge, Undoable::new("same", Order::Done, &env))
        .add_exit_state(Order::Done);
    let err = wf.validate().unwrap_err();
    assert!(err.to_string().contains("`same`"), "{err}");
}

// ---------------------------------------------------------------------------------------
// A compensatable task in flight when the run is cancelled or times out finishes first (as
// in cano 0.15), its completion is recorded, and the drain undoes it too.

/// reserve (undoable, instant) → charge (undoable, `charge_takes`) → ship (plain, 5 s) → Done.
fn slow_charge(env: &Env, charge_takes: Duration) -> Workflow<Order> {
    let mut charge = Undoable::new("charge", Order::Ship, env);
    charge.run_takes = charge_takes;
    let ship = SlowStep {
        takes: Duration::from_secs(5),
        effects: env.effects.clone(),
        clock: env.clock.clone(),
    };
    Workflow::bare()
        .register_compensatable(Order::Reserve, Undoable::new("reserve", Order::Charge, env))
        .register_compensatable(Order::Charge, charge)
        .register(Order::Ship, ship)
        .add_exit_state(Order::Done)
        .with_checkpoint_store(env.store.clone())
        .with_workflow_id("saga-1")
}

/// Records `ship`, then sleeps `takes`, then goes to `Done`.
struct SlowStep {
    takes: Duration,
    effects: Effects,
    clock: cano_core::testing::FakeClock,
}

impl cano_core::Task<Order> for SlowStep {
    async fn run_with(
        &self,
        ctx: cano_core::TaskContext<'_>,
    ) -> Result<cano_core::TaskResult<Order>, CanoError> {
        self.effects.record("ship", &ctx);
        self.clock.sleep_until(self.clock.now() + self.takes).await;
        self.effects.record("shipped", &ctx);
        Ok(cano_core::TaskResult::Single(Order::Done))
    }
    fn config(&self) -> cano_core::TaskConfig {
        cano_core::TaskConfig::minimal()
    }
}

/// Runs `wf` from `first` with a token cancelled `cancel_at` after the start; returns the
/// result and when (after the start) the run returned.
fn run_cancelled_at(
    env: &Env,
    wf: &Workflow<Order>,
    first: Order,
    cancel_at: Duration,
) -> (Result<Order, CanoError>, Duration) {
    let token = CancellationToken::new();
    let ctx = RunContext::new(env.clock.clone()).with_cancellation(token.clone());
    let start = env.clock.now();
    env.sim.block_on(async {
        let run = async {
            let result = wf.orchestrate_with(ctx, first).await;
            (result, env.clock.now() - start)
        };
        let cancel = async {
            env.clock.sleep_until(start + cancel_at).await;
            token.cancel();
        };
        futures::future::join(run, cancel).await.0
    })
}

fn completions(env: &Env) -> Vec<String> {
    env.store
        .rows(&RunId::new("saga-1"))
        .iter()
        .filter(|r| r.kind == RowKind::CompensationCompletion)
        .map(|r| r.task.to_string())
        .collect()
}

#[test]
fn a_cancel_while_a_compensatable_task_runs_lets_it_finish_then_undoes_it() {
    let env = Env::new();
    let events = Arc::new(DurableEvents::default());
    let wf = slow_charge(&env, Duration::from_secs(10)).with_observer(events.clone());
    let (result, returned) = run_cancelled_at(&env, &wf, Order::Reserve, Duration::from_secs(3));
    assert_eq!(result.unwrap_err().category(), "cancelled");
    assert_eq!(returned, Duration::from_secs(10), "charge ran to its end");
    assert_eq!(
        env.effects.labels(),
        [
            "reserve",
            "charge",
            "undo-charge",
            "undo-charge-output",
            "undo-reserve",
            "undo-reserve-output"
        ],
        "ship never started; both were undone, newest first"
    );
    assert_eq!(
        env.effects.all()[2..]
            .iter()
            .filter(|e| e.contains("-output"))
            .collect::<Vec<_>>(),
        [
            "undo-charge-output charge#1",
            "undo-reserve-output reserve#1"
        ]
    );
    assert_eq!(env.log("saga-1"), RunLog::Finished(RunOutcome::RolledBack));
    let heard = events.0.lock().unwrap().clone();
    assert!(
        heard
            .iter()
            .any(|e| e == "checkpoint saga-1 3 CompensationCompletion charge"),
        "charge's completion row was written: {heard:?}"
    );
    assert!(
        !heard.iter().any(|e| e.contains(" ship")),
        "no entry row for ship: {heard:?}"
    );
}

/// The cancel instant swept across the run: while `charge` (0–5 s) runs, it finishes and
/// is undone with `reserve`; while `ship` (5–10 s) runs, ship is dropped and both are
/// undone; after 10 s the run has completed.
#[test]
fn the_cancel_instant_swept_across_a_compensatable_task_and_the_next_state() {
    let charge_takes = Duration::from_secs(5);
    for tenths in 1..=110u64 {
        let cancel_at = Duration::from_millis(tenths * 100);
        let env = Env::new();
        let wf = slow_charge(&env, charge_takes);
        // Rows are kept until the run finishes: peek at them by tombstone-free store state.
        let (result, returned) = run_cancelled_at(&env, &wf, Order::Reserve, cancel_at);
        let labels = env.effects.labels();
        let case = format!("cancel at {cancel_at:?}: {result:?} after {returned:?}, {labels:?}");
        if cancel_at < charge_takes {
            assert_eq!(
                result.as_ref().unwrap_err().category(),
                "cancelled",
                "{case}"
            );
            assert_eq!(returned, charge_takes, "{case}");
            assert_eq!(
                labels,
                [
                    "reserve",
                    "charge",
                    "undo-charge",
                    "undo-charge-output",
                    "undo-reserve",
                    "undo-reserve-output"
                ],
                "{case}"
            );
        } else if cancel_at < charge_takes + Duration::from_secs(5) {
            assert_eq!(
                result.as_ref().unwrap_err().category(),
                "cancelled",
                "{case}"
            );
            assert_eq!(returned, cancel_at, "{case}: ship is dropped at once");
            assert_eq!(
                labels,
                [
                    "reserve",
                    "charge",
                    "ship",
                    "undo-charge",
                    "undo-charge-output",
                    "undo-reserve",
                    "undo-reserve-output"
                ],
                "{case}"
            );
        } else {
            assert_eq!(result, Ok(Order::Done), "{case}");
            assert_eq!(labels, ["reserve", "charge", "ship", "shipped"], "{case}");
            assert_eq!(env.log("saga-1"), RunLog::Finished(RunOutcome::Completed));
            continue;
        }
        assert_eq!(
            env.log("saga-1"),
            RunLog::Finished(RunOutcome::RolledBack),
            "{case}"
        );
        assert!(completions(&env).is_empty(), "{case}: the log is finished");
    }
}

/// The same sweep for the total timeout: a timeout while `charge` runs lets it finish
/// (within the compensation budget, 10 s here; by default it is half the total timeout).
#[test]
fn a_total_timeout_swept_across_a_compensatable_task_lets_it_finish() {
    for secs in 1..=12u64 {
        let env = Env::new();
        let timeout = Duration::from_secs(secs);
        let wf = slow_charge(&env, Duration::from_secs(5))
            .with_timeout(timeout)
            .with_compensation_timeout(Duration::from_secs(10));
        let start = env.clock.now();
        let result = env
            .sim
            .block_on(wf.orchestrate_on(&env.clock, Order::Reserve));
        let returned = env.clock.now() - start;
        let labels = env.effects.labels();
        let case = format!("timeout {timeout:?}: {result:?} after {returned:?}, {labels:?}");
        match secs {
            1..=4 => {
                assert_eq!(result.unwrap_err().category(), "timeout", "{case}");
                assert_eq!(returned, Duration::from_secs(5), "{case}");
                assert_eq!(
                    labels.iter().filter(|l| *l == "undo-charge").count(),
                    1,
                    "{case}"
                );
                assert!(!labels.contains(&"ship".to_string()), "{case}");
            }
            5..=9 => {
                assert_eq!(result.unwrap_err().category(), "timeout", "{case}");
                assert_eq!(returned, timeout, "{case}");
                assert!(labels.contains(&"undo-charge".to_string()), "{case}");
            }
            _ => assert_eq!(result, Ok(Order::Done), "{case}"),
        }
    }
}

/// A compensatable task that does not finish within one compensation budget of the
/// cancellation is dropped (it has no completion row, so only the work before it is undone).
#[test]
fn the_grace_of_an_in_flight_compensatable_task_is_one_compensation_budget() {
    let env = Env::new();
    let wf = slow_charge(&env, Duration::from_secs(100))
        .with_compensation_timeout(Duration::from_secs(2));
    let (result, returned) = run_cancelled_at(&env, &wf, Order::Reserve, Duration::from_secs(1));
    assert_eq!(result.unwrap_err().category(), "cancelled");
    assert_eq!(
        returned,
        Duration::from_secs(3),
        "cancel at 1 s + a 2 s budget"
    );
    assert_eq!(
        undo_labels(&env),
        ["undo-reserve"],
        "charge never completed, so it is not undone"
    );
    assert_eq!(env.log("saga-1"), RunLog::Finished(RunOutcome::RolledBack));
}

/// Fails its first attempt; retried after a 10 s pause.
struct FlakyCharge {
    calls: Arc<std::sync::atomic::AtomicU32>,
}

impl cano_core::CompensatableTask<Order> for FlakyCharge {
    type Output = u32;
    async fn run(
        &self,
        _ctx: cano_core::TaskContext<'_>,
    ) -> Result<(cano_core::TaskResult<Order>, u32), CanoError> {
        match self.calls.fetch_add(1, Ordering::SeqCst) {
            0 => Err(CanoError::task_execution("flaked")),
            n => Ok((cano_core::TaskResult::Single(Order::Done), n)),
        }
    }
    async fn compensate(&self, _ctx: cano_core::TaskContext<'_>, _: u32) -> Result<(), CanoError> {
        Ok(())
    }
    fn config(&self) -> cano_core::TaskConfig {
        cano_core::TaskConfig::new().with_fixed_retry(3, Duration::from_secs(10))
    }
}

/// A cancel during a compensatable task's retry pause starts no new attempt.
#[test]
fn a_cancel_during_a_retry_pause_starts_no_new_attempt() {
    let env = Env::new();
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let wf = Workflow::bare()
        .register_compensatable(
            Order::Charge,
            FlakyCharge {
                calls: calls.clone(),
            },
        )
        .add_exit_state(Order::Done);
    let (result, _) = run_cancelled_at(&env, &wf, Order::Charge, Duration::from_secs(3));
    assert_eq!(result.unwrap_err().category(), "cancelled");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "no attempt after the cancel"
    );
    assert!(env.clock.now() <= cano_core::Instant::ZERO + Duration::from_secs(10));
}

// Scheduled sagas: the scheduler cancels a run in two phases (signal, then drop one
// cancellation wind-down later), so a cancelled saga drains its compensations.

use cano_core::scheduler::{RunOutcome as FireOutcome, RunningScheduler, Scheduler};

/// A scheduler with the manual flow `saga` running `wf`, fired once, 10 s in (its `pack`
/// state hangs, so the run is in flight until it is cancelled).
fn scheduled_saga(env: &Env, wf: Workflow<Order>, wind_down: Option<Duration>) -> RunningScheduler {
    env.crash.set("pack");
    let mut scheduler = Scheduler::new();
    if let Some(wind_down) = wind_down {
        scheduler.set_cancel_wind_down(wind_down);
    }
    scheduler.manual("saga", wf, Order::Reserve).unwrap();
    let running = env
        .sim
        .block_on(scheduler.start(env.clock.clone(), env.sim.spawner()))
        .unwrap();
    running.trigger("saga").unwrap();
    env.sim.run_for(Duration::from_secs(10));
    assert!(running.has_running_flows());
    assert!(undo_labels(env).is_empty());
    running
}

#[test]
fn a_scheduled_saga_stopped_past_its_grace_compensates_before_the_stop_completes() {
    let env = Env::new();
    let running = scheduled_saga(
        &env,
        saga(&env, |u| u.undo_takes = Duration::from_secs(2), false),
        None,
    );
    let stop_at = env.clock.now();
    let report = env
        .sim
        .block_on(running.stop_within(Duration::from_secs(1)))
        .unwrap();
    assert_eq!(
        undo_labels(&env),
        ["undo-ship", "undo-charge", "undo-reserve"],
        "drained newest first before the stop completed"
    );
    // The grace, then three compensations of 2 s each: well inside the wind-down.
    assert_eq!(env.clock.now() - stop_at, Duration::from_secs(7));
    assert_eq!(report.cancelled.len(), 1, "{report:?}");
    assert_eq!(report.cancelled[0].flow(), "saga");
    let history = running.history("saga").unwrap();
    assert_eq!(history.last().unwrap().outcome, FireOutcome::Cancelled);
    assert_eq!(running.status("saga").unwrap().failure_streak, 0);
}

#[test]
fn a_scheduled_saga_that_outlives_the_wind_down_is_dropped_and_the_stop_completes() {
    let env = Env::new();
    // Each compensation takes an hour and the budget allows it: the drain outlives the
    // wind-down.
    let wf = saga(&env, |u| u.undo_takes = Duration::from_secs(3600), false)
        .with_compensation_timeout(Duration::from_secs(4 * 3600));
    let running = scheduled_saga(&env, wf, Some(Duration::from_secs(20)));
    let stop_at = env.clock.now();
    let report = env
        .sim
        .block_on(running.stop_within(Duration::from_secs(1)))
        .unwrap();
    assert_eq!(
        env.clock.now() - stop_at,
        Duration::from_secs(21),
        "the grace, then the wind-down"
    );
    assert_eq!(undo_labels(&env), ["undo-ship"], "dropped mid-drain");
    assert_eq!(report.cancelled.len(), 1, "{report:?}");
    assert!(!running.has_running_flows());
    assert_eq!(env.sim.live_tasks(), 0);
    let history = running.history("saga").unwrap();
    assert_eq!(history.last().unwrap().outcome, FireOutcome::Cancelled);
}

#[test]
fn a_zero_wind_down_drops_a_scheduled_saga_at_the_deadline_without_compensating() {
    let env = Env::new();
    let running = scheduled_saga(&env, saga(&env, |_| {}, false), Some(Duration::ZERO));
    let stop_at = env.clock.now();
    let report = env
        .sim
        .block_on(running.stop_within(Duration::from_secs(1)))
        .unwrap();
    assert_eq!(env.clock.now() - stop_at, Duration::from_secs(1));
    assert!(
        undo_labels(&env).is_empty(),
        "dropped at once: {:?}",
        undo_labels(&env)
    );
    assert_eq!(report.cancelled.len(), 1, "{report:?}");
}

#[test]
fn cancel_flow_on_a_running_saga_compensates_and_is_not_a_failure() {
    let env = Env::new();
    let running = scheduled_saga(
        &env,
        saga(&env, |u| u.undo_takes = Duration::from_secs(1), false),
        None,
    );
    assert_eq!(running.cancel_flow("saga").unwrap(), 1);
    env.sim.run_for(Duration::from_secs(5));
    assert!(!running.has_running_flows());
    assert_eq!(
        undo_labels(&env),
        ["undo-ship", "undo-charge", "undo-reserve"],
        "drained newest first"
    );
    let history = running.history("saga").unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.outcome, FireOutcome::Cancelled);
    let ended = last.ended.duration_since(last.started);
    assert_eq!(
        ended,
        jiff::SignedDuration::from_secs(13),
        "started at 0 s, cancelled at 10 s, three 1 s compensations"
    );
    let info = running.status("saga").unwrap();
    assert_eq!(info.failure_streak, 0, "{info:?}");
    // The flow goes on: a later run is not cancelled by the earlier signal.
    running.trigger("saga").unwrap();
    env.sim.run_for(Duration::from_secs(1));
    let history = running.history("saga").unwrap();
    assert_eq!(history.last().unwrap().outcome, FireOutcome::Succeeded);
    let report = env.sim.block_on(running.stop()).unwrap();
    assert!(report.cancelled.is_empty(), "{report:?}");
}
