//! Shared fixtures for the durable workflow tests: states with stable keys, tasks that record
//! their side effects under their idempotency keys, a "crash" (dropping a run's future at a
//! chosen virtual time) and a store wrapper that can freeze a chosen write forever.
#![allow(dead_code, unreachable_pub)]

use std::borrow::Cow;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cano_core::checkpoint::{
    CheckpointResult, CheckpointRow, CheckpointStore, Fence, MemoryCheckpointStore, RowKind, RunId,
    RunLog, RunOutcome, StateKey,
};
use cano_core::testing::{FakeClock, Simulation};
use cano_core::{
    CanoError, Clock, CompensatableTask, Task, TaskConfig, TaskContext, TaskResult,
    WorkflowObserver,
};
use futures::future::{Either, select};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Order {
    Reserve,
    Charge,
    Ship,
    Done,
    Failed,
}

impl StateKey for Order {
    fn state_key(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Order::Reserve => "reserve",
            Order::Charge => "charge",
            Order::Ship => "ship",
            Order::Done => "done",
            Order::Failed => "failed",
        })
    }
}

pub const FLOW: [Order; 3] = [Order::Reserve, Order::Charge, Order::Ship];

pub fn next_of(state: Order) -> Order {
    match state {
        Order::Reserve => Order::Charge,
        Order::Charge => Order::Ship,
        _ => Order::Done,
    }
}

/// Side effects, in order, each as `label key` (the key is `-` without a store).
#[derive(Clone, Default)]
pub struct Effects(Arc<Mutex<Vec<String>>>);

impl Effects {
    pub fn record(&self, label: &str, ctx: &TaskContext<'_>) {
        let key = ctx
            .idempotency_key()
            .map_or_else(|| "-".to_string(), |key| key.to_string());
        self.0.lock().unwrap().push(format!("{label} {key}"));
    }
    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    pub fn labels(&self) -> Vec<String> {
        self.all()
            .iter()
            .map(|e| e.split(' ').next().unwrap().to_string())
            .collect()
    }
    pub fn count(&self, label: &str) -> usize {
        self.labels().iter().filter(|l| *l == label).count()
    }
}

/// Which label "crashes" (sleeps a day) on its next call; cleared when it fires, so the
/// resumed run goes through.
#[derive(Clone, Default)]
pub struct CrashAt(Arc<Mutex<Option<String>>>);

impl CrashAt {
    pub fn set(&self, label: &str) {
        *self.0.lock().unwrap() = Some(label.to_string());
    }
    fn fires(&self, label: &str) -> bool {
        let mut at = self.0.lock().unwrap();
        if at.as_deref() == Some(label) {
            *at = None;
            true
        } else {
            false
        }
    }
}

/// A state's task: records its effect, may crash (hang), fail, then names the next state.
pub struct Step {
    pub label: &'static str,
    pub next: Order,
    pub effects: Effects,
    pub crash: CrashAt,
    pub clock: FakeClock,
    /// Fail this many calls first.
    pub failures: Arc<AtomicU32>,
    pub fail_for_good: bool,
}

impl Step {
    pub fn new(label: &'static str, next: Order, env: &Env) -> Self {
        Step {
            label,
            next,
            effects: env.effects.clone(),
            crash: env.crash.clone(),
            clock: env.clock.clone(),
            failures: Arc::new(AtomicU32::new(0)),
            fail_for_good: false,
        }
    }
}

impl Task<Order> for Step {
    async fn run_with(&self, ctx: TaskContext<'_>) -> Result<TaskResult<Order>, CanoError> {
        self.effects.record(self.label, &ctx);
        if self.crash.fires(self.label) {
            self.clock.sleep_until(self.clock.now() + DAY).await;
        }
        if self.fail_for_good {
            return Err(CanoError::task_execution(format!("{} failed", self.label)));
        }
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(CanoError::task_execution(format!("{} flaked", self.label)));
        }
        Ok(TaskResult::Single(self.next))
    }
    fn config(&self) -> TaskConfig {
        TaskConfig::new().with_fixed_retry(3, Duration::from_secs(1))
    }
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.label)
    }
}

/// A compensatable step: its output is `label#n` (n = its call count), its compensation
/// records `undo-label output`.
pub struct Undoable {
    pub label: &'static str,
    pub next: Order,
    pub effects: Effects,
    pub crash: CrashAt,
    pub clock: FakeClock,
    pub calls: Arc<AtomicU32>,
    /// The compensation fails this many times first.
    pub undo_failures: Arc<AtomicU32>,
    pub undo_panics: bool,
    /// The compensation sleeps this long.
    pub undo_takes: Duration,
    /// The forward run sleeps this long (after recording its effect).
    pub run_takes: Duration,
    pub attempt_timeout: Option<Duration>,
}

impl Undoable {
    pub fn new(label: &'static str, next: Order, env: &Env) -> Self {
        Undoable {
            label,
            next,
            effects: env.effects.clone(),
            crash: env.crash.clone(),
            clock: env.clock.clone(),
            calls: Arc::new(AtomicU32::new(0)),
            undo_failures: Arc::new(AtomicU32::new(0)),
            undo_panics: false,
            undo_takes: Duration::ZERO,
            run_takes: Duration::ZERO,
            attempt_timeout: None,
        }
    }
}

impl CompensatableTask<Order> for Undoable {
    type Output = String;
    async fn run(&self, ctx: TaskContext<'_>) -> Result<(TaskResult<Order>, String), CanoError> {
        self.effects.record(self.label, &ctx);
        if self.crash.fires(self.label) {
            self.clock.sleep_until(self.clock.now() + DAY).await;
        }
        if !self.run_takes.is_zero() {
            self.clock
                .sleep_until(self.clock.now() + self.run_takes)
                .await;
        }
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok((TaskResult::Single(self.next), format!("{}#{n}", self.label)))
    }
    async fn compensate(&self, ctx: TaskContext<'_>, output: String) -> Result<(), CanoError> {
        let undo = format!("undo-{}", self.label);
        self.effects.record(&undo, &ctx);
        self.effects
            .0
            .lock()
            .unwrap()
            .push(format!("{undo}-output {output}"));
        if self.crash.fires(&undo) {
            self.clock.sleep_until(self.clock.now() + DAY).await;
        }
        if !self.undo_takes.is_zero() {
            self.clock
                .sleep_until(self.clock.now() + self.undo_takes)
                .await;
        }
        if self.undo_panics {
            panic!("{undo} panicked");
        }
        if self
            .undo_failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(CanoError::task_execution(format!("{undo} failed")));
        }
        Ok(())
    }
    fn config(&self) -> TaskConfig {
        match self.attempt_timeout {
            Some(t) => TaskConfig::minimal().with_attempt_timeout(t),
            None => TaskConfig::minimal(),
        }
    }
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.label)
    }
}

pub const DAY: Duration = Duration::from_secs(86_400);

/// Everything a test shares: the simulation, the store, effects and the crash switch.
pub struct Env {
    pub sim: Simulation,
    pub clock: FakeClock,
    pub store: MemoryCheckpointStore,
    pub effects: Effects,
    pub crash: CrashAt,
}

impl Env {
    pub fn new() -> Self {
        let sim = Simulation::new();
        Env {
            clock: sim.clock(),
            sim,
            store: MemoryCheckpointStore::new().with_tombstones(16),
            effects: Effects::default(),
            crash: CrashAt::default(),
        }
    }

    /// Runs `run` until it ends (`Some`) or `after` of virtual time passes (`None`: the
    /// future is dropped mid-flight, as a process dying would leave it).
    pub fn run_or_crash<T>(&self, run: impl Future<Output = T>, after: Duration) -> Option<T> {
        let clock = self.clock.clone();
        self.sim.block_on(async move {
            let deadline = clock.now() + after;
            match select(pin!(run), pin!(clock.sleep_until(deadline))).await {
                Either::Left((done, _)) => Some(done),
                Either::Right(_) => None,
            }
        })
    }

    pub fn rows(&self, run: &str) -> Vec<CheckpointRow> {
        self.store.rows(&RunId::new(run))
    }

    pub fn log(&self, run: &str) -> RunLog {
        self.store.log(&RunId::new(run))
    }
}

pub fn kinds(rows: &[CheckpointRow]) -> Vec<(RowKind, String)> {
    rows.iter().map(|r| (r.kind, r.state.to_string())).collect()
}

/// A store that freezes forever on the write of one row (by kind and state), once: the
/// process "dies" with that write in flight and never landed.
#[derive(Clone)]
pub struct FreezingStore {
    pub inner: MemoryCheckpointStore,
    pub freeze: Arc<Mutex<Option<(RowKind, String)>>>,
}

impl FreezingStore {
    pub fn new(inner: MemoryCheckpointStore) -> Self {
        FreezingStore {
            inner,
            freeze: Arc::default(),
        }
    }
    pub fn freeze_on(&self, kind: RowKind, state: &str) {
        *self.freeze.lock().unwrap() = Some((kind, state.to_string()));
    }
}

impl CheckpointStore for FreezingStore {
    fn start(
        &self,
        run: &RunId,
        first: &CheckpointRow,
    ) -> impl Future<Output = CheckpointResult<Fence>> + Send {
        self.inner.start(run, first)
    }
    fn resume(&self, run: &RunId) -> impl Future<Output = CheckpointResult<Fence>> + Send {
        self.inner.resume(run)
    }
    async fn append(&self, run: &RunId, fence: Fence, row: &CheckpointRow) -> CheckpointResult<()> {
        let frozen = {
            let mut freeze = self.freeze.lock().unwrap();
            let hit = freeze
                .as_ref()
                .is_some_and(|(kind, state)| *kind == row.kind && *state == row.state);
            if hit {
                *freeze = None;
            }
            hit
        };
        if frozen {
            std::future::pending::<()>().await;
        }
        self.inner.append(run, fence, row).await
    }
    fn load(&self, run: &RunId) -> impl Future<Output = CheckpointResult<RunLog>> + Send {
        self.inner.load(run)
    }
    fn finish(
        &self,
        run: &RunId,
        fence: Fence,
        outcome: RunOutcome,
    ) -> impl Future<Output = CheckpointResult<()>> + Send {
        self.inner.finish(run, fence, outcome)
    }
    fn list_unfinished(&self) -> impl Future<Output = CheckpointResult<Vec<RunId>>> + Send {
        self.inner.list_unfinished()
    }
}

/// Records the durable observer events.
#[derive(Default)]
pub struct DurableEvents(pub Mutex<Vec<String>>);

impl WorkflowObserver<Order> for DurableEvents {
    fn on_checkpoint(&self, run: &RunId, row: &CheckpointRow) {
        self.0.lock().unwrap().push(format!(
            "checkpoint {run} {} {:?} {}",
            row.sequence, row.kind, row.state
        ));
    }
    fn on_resume(&self, run: &RunId, state: &Order) {
        self.0
            .lock()
            .unwrap()
            .push(format!("resume {run} {state:?}"));
    }
    fn on_rollback_start(&self, error: &CanoError) {
        self.0
            .lock()
            .unwrap()
            .push(format!("rollback {}", error.message()));
    }
    fn on_compensation_start(&self, task: cano_core::TaskId<'_>) {
        self.0.lock().unwrap().push(format!("compensate {task}"));
    }
    fn on_compensation_finish(&self, task: cano_core::TaskId<'_>, outcome: Result<(), &CanoError>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("compensated {task} {}", outcome.is_ok()));
    }
}
