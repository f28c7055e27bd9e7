//! The process that `tests/redb_crash.rs` kills: it runs checkpointed saga workflows on a
//! redb store and records every side effect in an append-only file, keyed by the
//! idempotency key the engine hands the task, so the test can tell what ran how often
//! across process deaths.
//!
//! Usage: `redb_crash_child <dir> <generation> <first run> <end run> <concurrency>`.
//! Runs `run-<first>` … `run-<end - 1>`: resumes the unfinished ones, starts the unknown
//! ones, skips the finished ones (the store keeps tombstones), and exits 0 when all ended.
//! Every run goes reserve → charge → pack (three compensatable states) → ship → done;
//! `ship` fails for every third run (`run-0`, `run-3`, …), which rolls the run back:
//! pack, charge and reserve are compensated, in that order.
//!
//! Prints `ready` on stdout once the store is open.
//!
//! Effect lines (one `write` each, so a kill never tears one):
//! * `G <generation>`: this process started;
//! * `E <generation> <run> <visit> <state> <attempt>`: a forward state's work happened;
//! * `C <generation> <run> <visit> <state>`: a compensation's work happened.

use cano_tests::crash::EffectLog;
use std::borrow::Cow;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use cano_core::checkpoint::{CheckpointStore, RunId, RunLog, StateKey};
use cano_core::{
    CanoError, CompensatableTask, Task, TaskConfig, TaskContext, TaskResult, Workflow,
};
use cano_redb::RedbStore;
use cano_tokio::WorkflowExt;
use futures::StreamExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Order {
    Reserve,
    Charge,
    Pack,
    Ship,
    Done,
}

impl StateKey for Order {
    fn state_key(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Order::Reserve => "reserve",
            Order::Charge => "charge",
            Order::Pack => "pack",
            Order::Ship => "ship",
            Order::Done => "done",
        })
    }
}

/// Half of each state's or compensation's work happens before its effect is recorded, half
/// after: short, so kills land on every boundary, inside work, and inside drains.
const HALF_WORK: Duration = Duration::from_millis(1);

struct Effects {
    log: EffectLog,
    generation: u64,
}

impl Effects {
    fn record(&self, line: std::fmt::Arguments<'_>) {
        self.log.record(line);
    }

    async fn forward(&self, ctx: &TaskContext<'_>) -> Result<(), CanoError> {
        let key = ctx
            .idempotency_key()
            .ok_or_else(|| CanoError::workflow("a checkpointed task has a key"))?;
        tokio::time::sleep(HALF_WORK).await;
        self.record(format_args!(
            "E {} {} {} {} {}",
            self.generation,
            key.run(),
            key.visit(),
            key.state(),
            key.attempt()
        ));
        tokio::time::sleep(HALF_WORK).await;
        Ok(())
    }
}

struct Undoable {
    name: &'static str,
    next: Order,
    effects: Arc<Effects>,
}

impl CompensatableTask<Order> for Undoable {
    type Output = String;

    async fn run(&self, ctx: TaskContext<'_>) -> Result<(TaskResult<Order>, String), CanoError> {
        self.effects.forward(&ctx).await?;
        let key = ctx
            .idempotency_key()
            .map(|k| k.to_string())
            .unwrap_or_default();
        Ok((TaskResult::Single(self.next), key))
    }

    async fn compensate(&self, ctx: TaskContext<'_>, _output: String) -> Result<(), CanoError> {
        let key = ctx
            .idempotency_key()
            .ok_or_else(|| CanoError::workflow("a compensation has a key"))?;
        tokio::time::sleep(HALF_WORK).await;
        self.effects.record(format_args!(
            "C {} {} {} {}",
            self.effects.generation,
            key.run(),
            key.visit(),
            key.state()
        ));
        tokio::time::sleep(HALF_WORK).await;
        Ok(())
    }

    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.name)
    }
}

struct Ship {
    effects: Arc<Effects>,
}

impl Task<Order> for Ship {
    async fn run_with(&self, ctx: TaskContext<'_>) -> Result<TaskResult<Order>, CanoError> {
        self.effects.forward(&ctx).await?;
        let run = ctx
            .idempotency_key()
            .map(|k| k.run().to_string())
            .unwrap_or_default();
        if fails(&run) {
            return Err(CanoError::task_execution(format!(
                "{run}: the carrier refused"
            )));
        }
        Ok(TaskResult::Single(Order::Done))
    }

    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }
}

/// Every third run's `ship` fails.
fn fails(run: &str) -> bool {
    run.strip_prefix("run-")
        .and_then(|n| n.parse::<u64>().ok())
        .is_some_and(|n| n.is_multiple_of(3))
}

fn workflow(store: RedbStore, effects: &Arc<Effects>) -> Workflow<Order> {
    let undoable = |name, next| Undoable {
        name,
        next,
        effects: Arc::clone(effects),
    };
    Workflow::bare()
        .register_compensatable(Order::Reserve, undoable("reserve", Order::Charge))
        .register_compensatable(Order::Charge, undoable("charge", Order::Pack))
        .register_compensatable(Order::Pack, undoable("pack", Order::Ship))
        .register(
            Order::Ship,
            Ship {
                effects: Arc::clone(effects),
            },
        )
        .add_exit_state(Order::Done)
        .with_checkpoint_store(store)
}

async fn drive(store: &RedbStore, workflow: &Workflow<Order>, run: RunId) -> Result<(), String> {
    let ended = match store.load(&run).await.map_err(|e| e.to_string())? {
        RunLog::Finished(_) => return Ok(()),
        RunLog::Unknown => {
            workflow
                .clone()
                .with_workflow_id(run.clone())
                .orchestrate(Order::Reserve)
                .await
        }
        RunLog::Unfinished(_) => workflow.resume_from(run.clone()).await,
    };
    match ended {
        Ok(Order::Done) if !fails(run.as_str()) => Ok(()),
        // A clean rollback returns the original error; a drain resumed after a death says
        // the run was rolling back (the test checks the store's `RolledBack` tombstone).
        Err(CanoError::TaskExecution(_) | CanoError::Workflow(_)) if fails(run.as_str()) => Ok(()),
        other => Err(format!("{run} ended with {other:?}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, generation, first, end, concurrency] = args.as_slice() else {
        eprintln!("usage: redb_crash_child <dir> <generation> <first> <end> <concurrency>");
        return ExitCode::from(2);
    };
    let dir = PathBuf::from(dir);
    let parse = |s: &str| s.parse::<u64>().expect("a number");
    let (generation, first, end) = (parse(generation), parse(first), parse(end));
    let concurrency = parse(concurrency) as usize;
    let effects = Arc::new(Effects {
        log: EffectLog::open(&dir, false),
        generation,
    });
    effects.record(format_args!("G {generation}"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let result: Result<(), String> = rt.block_on(async {
        let store = RedbStore::builder()
            .tombstones(1 << 20)
            .open(dir.join("store.redb"))
            .await
            .map_err(|e| e.to_string())?;
        // Tell the test the store is open: its kill delays count from here, so they land
        // in the work whatever the machine's load does to start-up.
        println!("ready");
        std::io::stdout().flush().map_err(|e| e.to_string())?;
        let workflow = workflow(store.clone(), &effects);
        let results: Vec<Result<(), String>> = futures::stream::iter(first..end)
            .map(|i| {
                let store = store.clone();
                let workflow = &workflow;
                async move { drive(&store, workflow, RunId::new(format!("run-{i}"))).await }
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        results.into_iter().collect()
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redb_crash_child: {e}");
            ExitCode::FAILURE
        }
    }
}
