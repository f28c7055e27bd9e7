//! Crash and resume a checkpointed workflow, for real.
//!
//! ```text
//! cargo run -p cano-redb --example crash_resume   # starts order-42, crashes in `charge`
//! cargo run -p cano-redb --example crash_resume   # resumes order-42 at `charge`, finishes
//! ```
//!
//! The first run starts the workflow and the process dies in the middle of the `charge`
//! state (`std::process::exit`, so nothing is cleaned up, as in a crash). The second run
//! finds the unfinished run in the store, resumes it: `charge` runs again (at-least-once)
//! with the same idempotency key as before, so a payment API keyed by it charges once; then
//! `ship` runs and the run finishes. A third run starts a new order. Pass a path to use
//! another store file (default: `cano-redb-crash-resume.redb` in the temp directory).

use std::borrow::Cow;
use std::path::PathBuf;

use cano_core::checkpoint::{CheckpointStore, RunId, StateKey};
use cano_core::{CanoError, Task, TaskContext, TaskResult, Workflow};
use cano_redb::RedbStore;
use cano_tokio::WorkflowExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Order {
    Reserve,
    Charge,
    Ship,
    Done,
}

/// The names the log records: stable across renames of the enum's variants.
impl StateKey for Order {
    fn state_key(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Order::Reserve => "reserve",
            Order::Charge => "charge",
            Order::Ship => "ship",
            Order::Done => "done",
        })
    }
}

struct Step {
    next: Order,
    /// Crash in this state when the run is new (not resumed).
    crash: bool,
}

impl Task<Order> for Step {
    async fn run_with(&self, ctx: TaskContext<'_>) -> Result<TaskResult<Order>, CanoError> {
        let key = ctx
            .idempotency_key()
            .map_or_else(|| "-".to_owned(), |key| key.to_string());
        println!("  running with idempotency key {key}");
        if self.crash {
            println!("  crashing in the middle of this state (run the example again)");
            std::process::exit(1);
        }
        Ok(TaskResult::Single(self.next))
    }
}

fn workflow(store: RedbStore, crash_in_charge: bool) -> Workflow<Order> {
    Workflow::bare()
        .register(
            Order::Reserve,
            Step {
                next: Order::Charge,
                crash: false,
            },
        )
        .register(
            Order::Charge,
            Step {
                next: Order::Ship,
                crash: crash_in_charge,
            },
        )
        .register(
            Order::Ship,
            Step {
                next: Order::Done,
                crash: false,
            },
        )
        .add_exit_state(Order::Done)
        .with_checkpoint_store(store)
        .with_observer(std::sync::Arc::new(Print))
}

struct Print;

impl cano_core::WorkflowObserver<Order> for Print {
    fn on_state_enter(&self, state: &Order) {
        println!("state {state:?}");
    }
    fn on_resume(&self, run: &RunId, state: &Order) {
        println!("resuming {run} at {state:?}");
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("cano-redb-crash-resume.redb"));
    let store = RedbStore::open(&path).await?;
    println!("store: {}", path.display());

    let unfinished = store.list_unfinished().await?;
    if let Some(run) = unfinished.first() {
        println!("found unfinished run {run}");
        let end = workflow(store.clone(), false)
            .resume_from(run.clone())
            .await?;
        println!("{run} finished in {end:?}; run again to start a new order");
    } else {
        let run = RunId::new("order-42");
        println!("starting {run}");
        let end = workflow(store.clone(), true)
            .with_workflow_id(run.clone())
            .orchestrate(Order::Reserve)
            .await?;
        println!("{run} finished in {end:?}");
    }
    Ok(())
}
