//! Shared fixtures for the workflow test files: a scriptable task, a recording observer and
//! a runner on the virtual-time simulation.
#![allow(dead_code, unreachable_pub)]

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cano_core::testing::{FakeClock, Simulation};
use cano_core::{
    CanoError, Clock, HealthStatus, Instant, Resource, Resources, Task, TaskConfig, TaskId,
    TaskResult, Workflow, WorkflowObserver,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum St {
    Start,
    A,
    B,
    C,
    Fan,
    Join,
    Done,
    Failed,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Next(St),
    Fail(&'static str),
    Panic,
}

/// A task that follows a script: one outcome per call (the last one repeats), optionally
/// sleeping on a fake clock first. It counts calls, records when each call started, and
/// tracks how many calls were in flight at once.
pub struct Job {
    pub name: &'static str,
    pub clock: Option<FakeClock>,
    pub delay: Duration,
    pub script: Mutex<VecDeque<Outcome>>,
    pub config: TaskConfig,
    pub calls: Arc<AtomicUsize>,
    pub started_at: Arc<Mutex<Vec<Instant>>>,
    pub in_flight: Arc<AtomicUsize>,
    pub max_in_flight: Arc<AtomicUsize>,
}

impl Job {
    pub fn new(outcomes: impl IntoIterator<Item = Outcome>) -> Self {
        Job {
            name: "job",
            clock: None,
            delay: Duration::ZERO,
            script: Mutex::new(outcomes.into_iter().collect()),
            config: TaskConfig::minimal(),
            calls: Arc::new(AtomicUsize::new(0)),
            started_at: Arc::new(Mutex::new(Vec::new())),
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn ok(next: St) -> Self {
        Job::new([Outcome::Next(next)])
    }

    pub fn fail(message: &'static str) -> Self {
        Job::new([Outcome::Fail(message)])
    }

    /// Fails `times` times, then goes to `next`.
    pub fn flaky(times: usize, next: St) -> Self {
        let mut script: Vec<Outcome> = (0..times).map(|_| Outcome::Fail("flaky")).collect();
        script.push(Outcome::Next(next));
        Job::new(script)
    }

    pub fn sleeping(mut self, clock: &FakeClock, delay: Duration) -> Self {
        self.clock = Some(clock.clone());
        self.delay = delay;
        self
    }

    pub fn with_config(mut self, config: TaskConfig) -> Self {
        self.config = config;
        self
    }

    pub fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    pub fn calls(&self) -> Arc<AtomicUsize> {
        self.calls.clone()
    }

    pub fn share_counters(mut self, other: &Job) -> Self {
        self.calls = other.calls.clone();
        self.in_flight = other.in_flight.clone();
        self.max_in_flight = other.max_in_flight.clone();
        self.started_at = other.started_at.clone();
        self
    }
}

impl Task<St> for Job {
    async fn run(&self, _res: &Resources) -> Result<TaskResult<St>, CanoError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now_in_flight = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight
            .fetch_max(now_in_flight, Ordering::SeqCst);
        if let Some(clock) = &self.clock {
            self.started_at.lock().unwrap().push(clock.now());
            if !self.delay.is_zero() {
                clock.sleep_until(clock.now() + self.delay).await;
            }
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let outcome = {
            let mut script = self.script.lock().unwrap();
            if script.len() > 1 {
                script.pop_front().unwrap()
            } else {
                script.front().cloned().expect("a job needs a script")
            }
        };
        match outcome {
            Outcome::Next(next) => Ok(TaskResult::Single(next)),
            Outcome::Fail(message) => Err(CanoError::task_execution(message)),
            Outcome::Panic => panic!("job {} exploded", self.name),
        }
    }

    fn config(&self) -> TaskConfig {
        self.config.clone()
    }

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.name)
    }
}

/// A workflow whose state `A` runs `job` and whose exit state is `Done`, with the job's
/// call counter.
pub fn single(job: Job) -> (Workflow<St>, Arc<AtomicUsize>) {
    let calls = job.calls();
    let workflow = Workflow::bare()
        .register(St::A, job)
        .add_exit_state(St::Done);
    (workflow, calls)
}

/// Records every observer event as a line of text.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<String>>);

impl Recorder {
    pub fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
}

impl WorkflowObserver<St> for Recorder {
    fn on_state_enter(&self, state: &St) {
        self.push(format!("enter {state:?}"));
    }
    fn on_task_start(&self, task: TaskId<'_>) {
        self.push(format!("start {task}"));
    }
    fn on_task_success(&self, task: TaskId<'_>) {
        self.push(format!("success {task}"));
    }
    fn on_task_failure(&self, task: TaskId<'_>, error: &CanoError) {
        self.push(format!("failure {task}: {}", error.category()));
    }
    fn on_retry(&self, task: TaskId<'_>, attempt: u32) {
        self.push(format!("retry {task} #{attempt}"));
    }
    fn on_circuit_open(&self, task: TaskId<'_>) {
        self.push(format!("circuit-open {task}"));
    }
    fn on_resource_error(&self, error: &CanoError) {
        self.push(format!("resource-error {}", error.message()));
    }
}

/// Runs `workflow` from `initial` on a fresh simulation; returns the result and the virtual
/// time it took.
pub fn run<K: Send + Sync + 'static>(
    workflow: &Workflow<St, K>,
    initial: St,
) -> (Result<St, CanoError>, Duration) {
    let sim = Simulation::new();
    run_in(&sim, workflow, initial)
}

pub fn run_in<K: Send + Sync + 'static>(
    sim: &Simulation,
    workflow: &Workflow<St, K>,
    initial: St,
) -> (Result<St, CanoError>, Duration) {
    let clock = sim.clock();
    let start = clock.now();
    let result = sim.block_on(workflow.orchestrate_on(&clock, initial));
    (result, clock.now() - start)
}

/// A resource that logs its lifecycle and can be told to fail setup or teardown.
pub struct Probe {
    pub name: &'static str,
    pub log: Arc<Mutex<Vec<String>>>,
    pub setup_fails: bool,
    pub teardown_fails: bool,
    pub health: HealthStatus,
}

impl Probe {
    pub fn new(name: &'static str, log: &Arc<Mutex<Vec<String>>>) -> Self {
        Probe {
            name,
            log: log.clone(),
            setup_fails: false,
            teardown_fails: false,
            health: HealthStatus::Healthy,
        }
    }
}

impl Resource for Probe {
    async fn setup(&self) -> Result<(), CanoError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("setup {}", self.name));
        if self.setup_fails {
            Err(CanoError::generic(format!("{} setup failed", self.name)))
        } else {
            Ok(())
        }
    }
    async fn teardown(&self) -> Result<(), CanoError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("teardown {}", self.name));
        if self.teardown_fails {
            Err(CanoError::generic(format!("{} teardown failed", self.name)))
        } else {
            Ok(())
        }
    }
    async fn health(&self) -> HealthStatus {
        self.health.clone()
    }
}
