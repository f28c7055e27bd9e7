//! Stepped tasks on tokio: a long job in resumable steps, with a crash in the middle (cano
//! 0.12's `stepped_task` example, ported, and showing what 0.12's only told you to test).
//!
//! `Crunch` processes 8 items, one per step; after each step the workflow writes the cursor
//! (items done so far) into the run's checkpoint log. The first "process" is killed after
//! about 3 steps (its future is dropped, as a dying process leaves it). A second workflow on
//! the same store resumes the run: it starts `Crunch` from the last checkpointed cursor, so
//! only the step that was in flight runs again.
//!
//! The store is cano's in-memory [`MemoryCheckpointStore`]; a real deployment uses a durable
//! one (the checkpoint store contract is the same).
//!
//! Run with `cargo run -p cano-tokio --example stepped_task`.

use std::borrow::Cow;
use std::time::Duration;

use cano_tokio::checkpoint::{MemoryCheckpointStore, RowKind, RunId, StateKey};
use cano_tokio::{
    CanoError, StepOutcome, SteppedTask, Task, TaskConfig, TaskContext, TaskResult, Workflow,
    WorkflowExt,
};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Stage {
    Crunch,
    Report,
    Done,
}

impl StateKey for Stage {
    fn state_key(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Stage::Crunch => "crunch",
            Stage::Report => "report",
            Stage::Done => "done",
        })
    }
}

struct Cruncher {
    total: u32,
}

impl SteppedTask<Stage> for Cruncher {
    /// (items processed, items in all)
    type Cursor = (u32, u32);

    async fn step(
        &self,
        ctx: TaskContext<'_>,
        cursor: Option<(u32, u32)>,
    ) -> Result<StepOutcome<(u32, u32), Stage>, CanoError> {
        let (done, total) = cursor.unwrap_or((0, self.total));
        tokio::time::sleep(Duration::from_millis(30)).await;
        let key = ctx
            .idempotency_key()
            .map(|k| k.to_string())
            .unwrap_or_default();
        println!("crunch  : item {}/{total} processed (key {key})", done + 1);
        if done + 1 >= total {
            Ok(StepOutcome::Done(TaskResult::Single(Stage::Report)))
        } else {
            Ok(StepOutcome::More((done + 1, total)))
        }
    }

    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }
}

struct Reporter;

impl Task<Stage> for Reporter {
    async fn run_bare(&self) -> Result<TaskResult<Stage>, CanoError> {
        println!("report  : all items processed");
        Ok(TaskResult::Single(Stage::Done))
    }
}

fn workflow(store: &MemoryCheckpointStore) -> Workflow<Stage> {
    Workflow::bare()
        .register_stepped(Stage::Crunch, Cruncher { total: 8 })
        .register(Stage::Report, Reporter)
        .add_exit_state(Stage::Done)
        .with_checkpoint_store(store.clone())
        .with_workflow_id("stepped-demo")
}

#[tokio::main]
async fn main() -> Result<(), CanoError> {
    let store = MemoryCheckpointStore::new();
    println!("=== stepped_task example (8 items) ===\n");

    println!("-- first process: killed after ~100 ms");
    let first = workflow(&store);
    let run = first.orchestrate(Stage::Crunch);
    if tokio::time::timeout(Duration::from_millis(100), run)
        .await
        .is_ok()
    {
        return Err(CanoError::workflow(
            "the run finished before the simulated crash",
        ));
    }
    let rows = store.rows(&RunId::new("stepped-demo"));
    let cursors = rows
        .iter()
        .filter(|r| r.kind == RowKind::StepCursor)
        .count();
    println!(
        "checkpoint log: {} rows, {cursors} cursor rows\n",
        rows.len()
    );

    println!("-- second process: resumes the run");
    let result = workflow(&store).resume_from("stepped-demo").await?;
    assert_eq!(result, Stage::Done);
    println!("\ncompleted at {result:?}");
    let left = store.rows(&RunId::new("stepped-demo")).len();
    println!("checkpoint rows left after the finished run: {left}");
    Ok(())
}
