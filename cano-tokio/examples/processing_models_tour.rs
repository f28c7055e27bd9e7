//! Every processing model in one checkpointed workflow (cano 0.12's `processing_models_tour`,
//! ported, plus cano 0.15's timer and stream tasks and its rate limiter):
//!
//! ```text
//!   Route (router) ─► Wait (poll) ─► Crunch (batch, rate limited) ─► Grind (stepped)
//!     ─► Ingest (stream, one window per step) ─► Cooldown (timer) ─► Done
//! ```
//!
//! An observer prints every checkpoint row as it is written. The run starts in the router, so
//! the run's first row names it (a log always says where a run began); entering a router
//! later writes nothing (it only decides: route the tour back through `Route` to see it).
//! Every other state writes its entry row, and the stepped and stream states write a cursor
//! row per step / window. The batch's items share a token bucket (a [`Resource`]),
//! so 8 items at concurrency 4 are paced at 40 per second after a burst of 4.
//!
//! Run with `cargo run -p cano-tokio --example processing_models_tour`.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use cano_tokio::checkpoint::{CheckpointRow, MemoryCheckpointStore, RunId, StateKey};
use cano_tokio::rate_limit::{RateLimiter, RateLimiterPolicy};
use cano_tokio::shapes::batch::{BatchRunner, BatchTask};
use cano_tokio::shapes::poll::{PollOutcome, PollRunner, PollTask};
use cano_tokio::shapes::router::RouterTask;
use cano_tokio::shapes::stream::{
    CloseReason, StreamRunner, StreamTask, StreamWindow, WindowSignal,
};
use cano_tokio::shapes::timer::{TimerOutcome, TimerRunner, TimerTask};
use cano_tokio::{
    CanoError, Resource, Resources, StepOutcome, SteppedTask, TaskConfig, TaskContext, TaskResult,
    TokioClock, Workflow, WorkflowExt, WorkflowObserver,
};
use futures::stream::{self, BoxStream, StreamExt};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Stage {
    Route,
    Wait,
    Crunch,
    Grind,
    Ingest,
    Cooldown,
    Done,
}

impl StateKey for Stage {
    fn state_key(&self) -> Cow<'static, str> {
        Cow::Owned(format!("{self:?}").to_lowercase())
    }
}

struct Config {
    proceed: bool,
}
impl Resource for Config {}

struct Counter {
    done: Arc<AtomicU32>,
    threshold: u32,
}
impl Resource for Counter {}

struct Router;
impl RouterTask<Stage> for Router {
    async fn route(&self, res: &Resources) -> Result<TaskResult<Stage>, CanoError> {
        if res.get::<Config, _>("config")?.proceed {
            println!("route    : config.proceed = true → Wait");
            Ok(TaskResult::Single(Stage::Wait))
        } else {
            Err(CanoError::configuration(
                "config.proceed must be true for this tour",
            ))
        }
    }
}

struct Waiter;
impl PollTask<Stage> for Waiter {
    async fn poll(&self, res: &Resources) -> Result<PollOutcome<Stage>, CanoError> {
        let counter = res.get::<Counter, _>("counter")?;
        if counter.done.load(Ordering::Acquire) >= counter.threshold {
            println!("wait     : the counter reached its threshold → Crunch");
            Ok(PollOutcome::Ready(TaskResult::Single(Stage::Crunch)))
        } else {
            Ok(PollOutcome::Pending {
                after: Duration::from_millis(5),
            })
        }
    }
}

struct Cruncher {
    clock: TokioClock,
    start: Instant,
}
impl BatchTask<Stage> for Cruncher {
    type Item = u32;
    type Output = u32;
    fn concurrency(&self) -> usize {
        4
    }
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }
    async fn load(&self, _res: &Resources) -> Result<Vec<u32>, CanoError> {
        Ok((1..=8).collect())
    }
    async fn process_item(&self, res: &Resources, item: &u32) -> Result<u32, CanoError> {
        res.get::<RateLimiter, _>("api")?
            .acquire(&self.clock)
            .await?;
        println!(
            "crunch   : item {item} at {:>3} ms",
            self.start.elapsed().as_millis()
        );
        Ok(item * item)
    }
    async fn finish(
        &self,
        _res: &Resources,
        outputs: Vec<Result<u32, CanoError>>,
    ) -> Result<TaskResult<Stage>, CanoError> {
        let sum: u32 = outputs.into_iter().filter_map(Result::ok).sum();
        println!("crunch   : 1² + … + 8² = {sum} → Grind");
        Ok(TaskResult::Single(Stage::Grind))
    }
}

struct Grinder;
impl SteppedTask<Stage> for Grinder {
    type Cursor = u32;
    async fn step(
        &self,
        _ctx: TaskContext<'_>,
        cursor: Option<u32>,
    ) -> Result<StepOutcome<u32, Stage>, CanoError> {
        let n = cursor.unwrap_or(0) + 1;
        println!("grind    : step {n}");
        Ok(if n >= 3 {
            StepOutcome::Done(TaskResult::Single(Stage::Ingest))
        } else {
            StepOutcome::More(n)
        })
    }
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }
}

/// Reads "events" 0..7 in windows of three; the cursor is the next event's number.
struct Events;
impl StreamTask<Stage> for Events {
    type Item = u32;
    type Output = u32;
    type Cursor = u32;
    fn window(&self) -> StreamWindow {
        StreamWindow::Count(3)
    }
    async fn open<'a>(
        &'a self,
        _res: &'a Resources,
        from: Option<u32>,
    ) -> Result<BoxStream<'a, Result<u32, CanoError>>, CanoError> {
        Ok(stream::iter((from.unwrap_or(0)..7).map(Ok)).boxed())
    }
    async fn process_item(&self, _res: &Resources, event: u32) -> Result<(u32, u32), CanoError> {
        Ok((event * 100, event + 1))
    }
    async fn flush_window(
        &self,
        _res: &Resources,
        outputs: Vec<u32>,
    ) -> Result<WindowSignal<Stage>, CanoError> {
        println!("ingest   : flushed window {outputs:?}");
        Ok(WindowSignal::Continue)
    }
    async fn on_close(
        &self,
        _res: &Resources,
        why: CloseReason,
    ) -> Result<TaskResult<Stage>, CanoError> {
        println!("ingest   : stream closed ({why:?}) → Cooldown");
        Ok(TaskResult::Single(Stage::Cooldown))
    }
}

struct Cooldown;
impl TimerTask<Stage> for Cooldown {
    async fn wait(&self, _res: &Resources) -> Result<TimerOutcome, CanoError> {
        Ok(TimerOutcome::Duration(Duration::from_millis(50)))
    }
    async fn after_wait(&self, _res: &Resources) -> Result<TaskResult<Stage>, CanoError> {
        println!("cooldown : 50 ms later → Done");
        Ok(TaskResult::Single(Stage::Done))
    }
}

struct PrintRows;
impl WorkflowObserver<Stage> for PrintRows {
    fn on_checkpoint(&self, _run: &RunId, row: &CheckpointRow) {
        println!(
            "           [checkpoint row {}: {:?} {}]",
            row.sequence, row.kind, row.state
        );
    }
}

#[tokio::main]
async fn main() -> Result<(), CanoError> {
    const THRESHOLD: u32 = 4;
    let done = Arc::new(AtomicU32::new(0));
    let ticker = done.clone();
    tokio::spawn(async move {
        for _ in 0..THRESHOLD {
            tokio::time::sleep(Duration::from_millis(8)).await;
            ticker.fetch_add(1, Ordering::Release);
        }
    });
    let api = RateLimiter::new(RateLimiterPolicy::per_second(40).with_max_tokens(4))?;
    let resources = Resources::new()
        .insert("config", Config { proceed: true })?
        .insert(
            "counter",
            Counter {
                done,
                threshold: THRESHOLD,
            },
        )?
        .insert("api", api)?;

    println!("=== processing models tour ===\n");
    let clock = TokioClock::new();
    let store = MemoryCheckpointStore::new();
    let workflow = Workflow::new(resources)
        .register_router(Stage::Route, Router)
        .register(Stage::Wait, PollRunner::new(Waiter, clock))
        .register(
            Stage::Crunch,
            BatchRunner::new(
                Cruncher {
                    clock,
                    start: Instant::now(),
                },
                clock,
            ),
        )
        .register_stepped(Stage::Grind, Grinder)
        .register_stepped(Stage::Ingest, StreamRunner::new(Events, clock))
        .register(Stage::Cooldown, TimerRunner::new(Cooldown, clock))
        .add_exit_state(Stage::Done)
        .with_checkpoint_store(store.clone())
        .with_workflow_id("processing-models-tour")
        .with_observer(Arc::new(PrintRows));

    let result = workflow.orchestrate(Stage::Route).await?;
    assert_eq!(result, Stage::Done);
    println!("\ncompleted at {result:?}");
    let left = store.rows(&RunId::new("processing-models-tour")).len();
    println!("checkpoint rows left after the finished run: {left}");
    Ok(())
}
