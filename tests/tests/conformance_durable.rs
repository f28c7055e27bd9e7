//! Durable workflows written once and run on every runtime (fake clock, tokio paused, tokio
//! multi-thread, smol, embassy): a checkpointed run that "crashes" (its future is dropped
//! mid-state) and is resumed, a scheduler that resumes a crashed fire's run by itself at
//! start, and a saga whose rollback runs in reverse with a compensation bounded by its
//! attempt timeout.

use std::borrow::Cow;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cano_core::checkpoint::{
    CheckpointRow, MemoryCheckpointStore, RunId, RunLog, RunOutcome, StateKey,
};
use cano_core::scheduler::Scheduler;
use cano_core::{
    CanoError, Clock, CompensatableTask, RunContext, Task, TaskConfig, TaskContext, TaskResult,
    Workflow,
};
use cano_tests::conformance;
use cano_tests::harness::Harness;
use futures::future::{Either, select};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Leg {
    First,
    Second,
    Third,
    Done,
}

impl StateKey for Leg {
    fn state_key(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Leg::First => "first",
            Leg::Second => "second",
            Leg::Third => "third",
            Leg::Done => "done",
        })
    }
}

type Log = Arc<Mutex<Vec<String>>>;

/// Records `label key`, sleeps `sleep` on its first call only, then goes to `next`.
struct Hop<C> {
    label: &'static str,
    next: Leg,
    clock: C,
    sleep_first: Option<Duration>,
    log: Log,
}

impl<C: Clock> Task<Leg> for Hop<C> {
    async fn run_with(&self, ctx: TaskContext<'_>) -> Result<TaskResult<Leg>, CanoError> {
        let first = {
            let mut log = self.log.lock().unwrap();
            let key = ctx
                .idempotency_key()
                .map(|k| k.to_string())
                .unwrap_or_default();
            let first = !log.iter().any(|e| e.starts_with(self.label));
            log.push(format!("{} {key}", self.label));
            first
        };
        if let (true, Some(d)) = (first, self.sleep_first) {
            self.clock.sleep_until(self.clock.now() + d).await;
        }
        Ok(TaskResult::Single(self.next))
    }
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }
}

fn checkpointed_run_is_resumed_after_a_crash<H: Harness>() {
    let (crashed, resumed, log, final_log) = H::run(|clock, spawner| async move {
        let unit = H::UNIT;
        let log: Log = Arc::default();
        let store = MemoryCheckpointStore::new().with_tombstones(4);
        let hop = |label, next, sleep_first| Hop {
            label,
            next,
            clock: clock.clone(),
            sleep_first,
            log: log.clone(),
        };
        let wf = Workflow::bare()
            .register(Leg::First, hop("first", Leg::Second, None))
            .register(Leg::Second, hop("second", Leg::Third, Some(unit * 1000)))
            .register(Leg::Third, hop("third", Leg::Done, None))
            .add_exit_state(Leg::Done)
            .with_checkpoint_store(store.clone())
            .with_workflow_id("leg-1");
        let ctx = RunContext::new(clock.clone()).with_spawner(spawner.clone());
        let crash_at = clock.now() + unit * 5;
        let crashed = match select(
            pin!(wf.orchestrate_with(ctx.clone(), Leg::First)),
            pin!(clock.sleep_until(crash_at)),
        )
        .await
        {
            Either::Left((result, _)) => Some(result),
            Either::Right(_) => None,
        };
        let resumed = wf.resume_from_with(ctx, "leg-1").await;
        let final_log = store.log(&RunId::new("leg-1"));
        let entries = log.lock().unwrap().clone();
        (crashed, resumed, entries, final_log)
    });
    assert_eq!(crashed, None, "{}: the run was dropped mid-state", H::NAME);
    assert_eq!(resumed, Ok(Leg::Done), "{}", H::NAME);
    assert_eq!(
        log,
        [
            "first leg-1/0/first/1",
            "second leg-1/1/second/1",
            "second leg-1/1/second/1",
            "third leg-1/2/third/1"
        ],
        "{}: only the in-flight state re-ran, under its original key",
        H::NAME
    );
    assert_eq!(
        final_log,
        RunLog::Finished(RunOutcome::Completed),
        "{}",
        H::NAME
    );
}

/// A compensatable leg: its compensation records itself and may sleep.
struct Undo<C> {
    label: &'static str,
    next: Leg,
    clock: C,
    undo_sleeps: Duration,
    log: Log,
}

impl<C: Clock> CompensatableTask<Leg> for Undo<C> {
    type Output = String;
    async fn run(&self, _ctx: TaskContext<'_>) -> Result<(TaskResult<Leg>, String), CanoError> {
        Ok((
            TaskResult::Single(self.next),
            format!("{}-receipt", self.label),
        ))
    }
    async fn compensate(&self, _ctx: TaskContext<'_>, receipt: String) -> Result<(), CanoError> {
        self.log.lock().unwrap().push(format!("undo {receipt}"));
        if !self.undo_sleeps.is_zero() {
            self.clock
                .sleep_until(self.clock.now() + self.undo_sleeps)
                .await;
        }
        Ok(())
    }
    fn config(&self) -> TaskConfig {
        let unit = if self.undo_sleeps.is_zero() {
            Duration::from_secs(3600)
        } else {
            self.undo_sleeps / 10
        };
        TaskConfig::minimal().with_attempt_timeout(unit)
    }
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.label)
    }
}

struct Fail;
impl Task<Leg> for Fail {
    async fn run_bare(&self) -> Result<TaskResult<Leg>, CanoError> {
        Err(CanoError::task_execution("third leg failed"))
    }
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }
}

fn saga_rolls_back_in_reverse<H: Harness>() {
    let (result, log, final_log) = H::run(|clock, spawner| async move {
        let unit = H::UNIT;
        let log: Log = Arc::default();
        let store = MemoryCheckpointStore::new().with_tombstones(4);
        let wf = Workflow::bare()
            .register_compensatable(
                Leg::First,
                Undo {
                    label: "first",
                    next: Leg::Second,
                    clock: clock.clone(),
                    undo_sleeps: Duration::ZERO,
                    log: log.clone(),
                },
            )
            .register_compensatable(
                Leg::Second,
                // Its compensation takes 10 units but may take 1: a bounded failure.
                Undo {
                    label: "second",
                    next: Leg::Third,
                    clock: clock.clone(),
                    undo_sleeps: unit * 10,
                    log: log.clone(),
                },
            )
            .register(Leg::Third, Fail)
            .add_exit_state(Leg::Done)
            .with_checkpoint_store(store.clone())
            .with_workflow_id("saga");
        let ctx = RunContext::new(clock.clone()).with_spawner(spawner);
        let result = wf.orchestrate_with(ctx, Leg::First).await;
        let final_log = store.log(&RunId::new("saga"));
        let entries = log.lock().unwrap().clone();
        (result, entries, final_log)
    });
    let Err(CanoError::CompensationFailed { errors }) = result else {
        panic!("{}: {result:?}", H::NAME)
    };
    assert_eq!(
        errors[0],
        CanoError::task_execution("third leg failed"),
        "{}",
        H::NAME
    );
    assert_eq!(
        errors[1].category(),
        "timeout",
        "{}: {}",
        H::NAME,
        errors[1]
    );
    assert_eq!(errors.len(), 2, "{}", H::NAME);
    assert_eq!(
        log,
        ["undo second-receipt", "undo first-receipt"],
        "{}",
        H::NAME
    );
    assert!(
        matches!(final_log, RunLog::Unfinished(_)),
        "{}: a dirty rollback keeps its log",
        H::NAME
    );
}

/// A scheduler started on a store that holds an unfinished run of its flow (a previous
/// process died in `second`) resumes it by itself: `second` runs again under the key it had,
/// then `third`, and `FlowInfo` counts the resume.
fn scheduler_resumes_a_crashed_fire_at_start<H: Harness>() {
    let (log, final_log, recovered, run_count) = H::run(|clock, spawner| async move {
        let log: Log = Arc::default();
        let store = MemoryCheckpointStore::new().with_tombstones(4);
        let run = RunId::new("report@2026-01-01T00:00:00Z");
        store.seed(
            &run,
            vec![
                CheckpointRow::state_entry(0, "first".into(), 1),
                CheckpointRow::state_entry(1, "second".into(), 1),
            ],
        );
        let hop = |label, next| Hop {
            label,
            next,
            clock: clock.clone(),
            sleep_first: None,
            log: log.clone(),
        };
        let wf = Workflow::bare()
            .register(Leg::First, hop("first", Leg::Second))
            .register(Leg::Second, hop("second", Leg::Third))
            .register(Leg::Third, hop("third", Leg::Done))
            .add_exit_state(Leg::Done)
            .with_checkpoint_store(store.clone());
        let mut scheduler = Scheduler::new();
        scheduler.manual("report", wf, Leg::First).unwrap();
        let running = scheduler.start(clock.clone(), spawner).await.unwrap();
        clock.sleep_until(clock.now() + H::UNIT * 20).await;
        let info = running.status("report").unwrap();
        running.stop().await.unwrap();
        let entries = log.lock().unwrap().clone();
        (
            entries,
            store.log(&run),
            info.recovered.resumed,
            info.run_count,
        )
    });
    assert_eq!(
        log,
        [
            "second report@2026-01-01T00:00:00Z/1/second/1",
            "third report@2026-01-01T00:00:00Z/2/third/1"
        ],
        "{}",
        H::NAME
    );
    assert_eq!(
        final_log,
        RunLog::Finished(RunOutcome::Completed),
        "{}",
        H::NAME
    );
    assert_eq!((recovered, run_count), (1, 1), "{}", H::NAME);
}

conformance!(checkpointed_run_is_resumed_after_a_crash);
conformance!(scheduler_resumes_a_crashed_fire_at_start);
conformance!(saga_rolls_back_in_reverse);
