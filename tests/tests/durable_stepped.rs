//! Stepped tasks on the fake clock: a cursor row after each step, per-step retries that
//! reuse the cursor, and a resume that starts from the newest cursor.

mod durable_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cano_core::checkpoint::{RowKind, decode_blob};
use cano_core::testing::FakeClock;
use cano_core::{
    CanoError, Clock, StepOutcome, SteppedTask, TaskConfig, TaskContext, TaskResult, Workflow,
};
use durable_support::*;

/// Each step's (cursor, idempotency key).
type Calls = Arc<Mutex<Vec<(Option<u32>, String)>>>;
/// The batch whose step hangs (a crash), once.
type HangAt = Arc<Mutex<Option<u32>>>;

/// Copies 5 batches; step n (cursor n-1 → n) is recorded with its key. Optionally fails a
/// step's first attempt, or hangs in one step (a crash).
struct CopyBatches {
    calls: Calls,
    fail_first_attempt_of: Option<u32>,
    hang_at: HangAt,
    clock: FakeClock,
}

impl SteppedTask<Order> for CopyBatches {
    type Cursor = u32;
    async fn step(
        &self,
        ctx: TaskContext<'_>,
        cursor: Option<u32>,
    ) -> Result<StepOutcome<u32, Order>, CanoError> {
        let key = ctx
            .idempotency_key()
            .map_or("-".to_string(), |k| k.to_string());
        self.calls.lock().unwrap().push((cursor, key.clone()));
        let done = cursor.unwrap_or(0) + 1;
        let hang = {
            let mut at = self.hang_at.lock().unwrap();
            let hit = *at == Some(done);
            if hit {
                *at = None;
            }
            hit
        };
        if hang {
            self.clock.sleep_until(self.clock.now() + DAY).await;
        }
        let attempts_from_here = self
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _)| *c == cursor)
            .count();
        if self.fail_first_attempt_of == Some(done) && attempts_from_here == 1 {
            return Err(CanoError::task_execution("flaky step"));
        }
        Ok(if done == 5 {
            StepOutcome::Done(TaskResult::Single(Order::Done))
        } else {
            StepOutcome::More(done)
        })
    }
    fn config(&self) -> TaskConfig {
        TaskConfig::new().with_fixed_retry(2, Duration::from_secs(1))
    }
    fn name(&self) -> std::borrow::Cow<'static, str> {
        "copy".into()
    }
}

fn copy_workflow(env: &Env, task: CopyBatches, durable: bool) -> Workflow<Order> {
    let wf = Workflow::bare()
        .register(Order::Reserve, Step::new("reserve", Order::Charge, env))
        .register_stepped(Order::Charge, task)
        .add_exit_state(Order::Done);
    if durable {
        wf.with_checkpoint_store(env.store.clone())
            .with_workflow_id("copy-1")
    } else {
        wf
    }
}

fn copier(env: &Env) -> (CopyBatches, Calls, HangAt) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let hang = Arc::new(Mutex::new(None));
    (
        CopyBatches {
            calls: calls.clone(),
            fail_first_attempt_of: None,
            hang_at: hang.clone(),
            clock: env.clock.clone(),
        },
        calls,
        hang,
    )
}

#[test]
fn a_stepped_task_threads_its_cursor_without_a_store() {
    let env = Env::new();
    let (task, calls, _) = copier(&env);
    let wf = copy_workflow(&env, task, false);
    assert_eq!(
        env.sim
            .block_on(wf.orchestrate_on(&env.clock, Order::Reserve)),
        Ok(Order::Done)
    );
    let cursors: Vec<Option<u32>> = calls.lock().unwrap().iter().map(|c| c.0).collect();
    assert_eq!(cursors, [None, Some(1), Some(2), Some(3), Some(4)]);
}

#[test]
fn each_step_writes_a_cursor_row_and_a_retry_reuses_the_steps_cursor() {
    let env = Env::new();
    let (mut task, calls, _) = copier(&env);
    task.fail_first_attempt_of = Some(3);
    let wf = copy_workflow(&env, task, true);
    assert_eq!(
        env.sim
            .block_on(wf.orchestrate_on(&env.clock, Order::Reserve)),
        Ok(Order::Done)
    );
    let calls = calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            (None, "copy-1/1/charge/1".to_string()),
            (Some(1), "copy-1/2/charge/1".to_string()),
            (Some(2), "copy-1/3/charge/1".to_string()),
            (Some(2), "copy-1/3/charge/2".to_string()),
            (Some(3), "copy-1/4/charge/1".to_string()),
            (Some(4), "copy-1/5/charge/1".to_string()),
        ],
        "the retry of step 3 starts from the same cursor, under the same visit"
    );
}

#[test]
fn a_resumed_stepped_state_starts_from_its_newest_cursor() {
    let env = Env::new();
    let (task, calls, hang) = copier(&env);
    *hang.lock().unwrap() = Some(4);
    let wf = copy_workflow(&env, task, true);
    assert!(
        env.run_or_crash(
            wf.orchestrate_on(&env.clock, Order::Reserve),
            Duration::from_secs(60)
        )
        .is_none()
    );
    let rows = env.rows("copy-1");
    let cursor_rows: Vec<u32> = rows
        .iter()
        .filter(|r| r.kind == RowKind::StepCursor)
        .map(|r| decode_blob::<u32>(r.blob.as_deref().unwrap()).unwrap())
        .collect();
    assert_eq!(cursor_rows, [1, 2, 3], "one cursor row per finished step");

    let crashed_key = calls.lock().unwrap().last().unwrap().1.clone();
    let resumed = env.sim.block_on(wf.resume_from_on(&env.clock, "copy-1"));
    assert_eq!(resumed, Ok(Order::Done));
    let calls = calls.lock().unwrap().clone();
    let after: Vec<Option<u32>> = calls[4..].iter().map(|c| c.0).collect();
    assert_eq!(
        after,
        [Some(3), Some(4)],
        "the in-flight step re-ran from cursor 3, then went on"
    );
    assert_eq!(calls[4].1, crashed_key, "under the crashed step's key");
    assert_eq!(
        env.effects.count("reserve"),
        1,
        "earlier states are not re-run"
    );
}
