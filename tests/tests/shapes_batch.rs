//! Batch tasks on the fake clock: concurrency limit, per-item retries and timeouts (cano 0.12
//! had no item timeout), outputs in input order, which errors fail the batch and which do not.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cano_core::shapes::batch::{BatchRunner, BatchTask, DynBatchTask};
use cano_core::testing::{FakeClock, Simulation};
use cano_core::{
    CanoError, Clock, Instant, Resources, RetryMode, TaskConfig, TaskResult, Workflow,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum St {
    Batch,
    Done,
}

/// One item: how long it works, how many of its first attempts fail, whether it panics.
#[derive(Debug, Clone, Copy, Default)]
struct Item {
    id: u32,
    work_secs: u64,
    failing_attempts: u32,
    panics: bool,
}

fn item(id: u32, work_secs: u64) -> Item {
    Item {
        id,
        work_secs,
        ..Item::default()
    }
}

type Seen = Arc<Mutex<Option<Vec<Result<u32, CanoError>>>>>;

struct Job {
    clock: FakeClock,
    items: Vec<Item>,
    load_fails: bool,
    finish_fails: bool,
    concurrency: usize,
    retry: RetryMode,
    timeout: Option<Duration>,
    in_flight: AtomicUsize,
    max_in_flight: Arc<AtomicUsize>,
    attempts: Mutex<HashMap<u32, u32>>,
    loaded: AtomicBool,
    seen: Seen,
}

impl Job {
    fn new(clock: &FakeClock, items: Vec<Item>) -> Self {
        Job {
            clock: clock.clone(),
            items,
            load_fails: false,
            finish_fails: false,
            concurrency: 1,
            retry: RetryMode::None,
            timeout: None,
            in_flight: AtomicUsize::new(0),
            max_in_flight: Arc::default(),
            attempts: Mutex::default(),
            loaded: AtomicBool::new(false),
            seen: Arc::default(),
        }
    }
}

impl BatchTask<St> for Job {
    type Item = Item;
    type Output = u32;
    fn concurrency(&self) -> usize {
        self.concurrency
    }
    fn item_retry(&self) -> RetryMode {
        self.retry.clone()
    }
    fn item_timeout(&self) -> Option<Duration> {
        self.timeout
    }
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }
    async fn load(&self, _res: &Resources) -> Result<Vec<Item>, CanoError> {
        self.loaded.store(true, Ordering::SeqCst);
        if self.load_fails {
            return Err(CanoError::task_execution("load failed"));
        }
        Ok(self.items.clone())
    }
    async fn process_item(&self, _res: &Resources, item: &Item) -> Result<u32, CanoError> {
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap();
            let n = attempts.entry(item.id).or_insert(0);
            *n += 1;
            *n
        };
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        struct Leave<'a>(&'a AtomicUsize);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _leave = Leave(&self.in_flight);
        self.clock
            .sleep_until(self.clock.now() + Duration::from_secs(item.work_secs))
            .await;
        if item.panics {
            panic!("item {} exploded", item.id);
        }
        if attempt <= item.failing_attempts {
            return Err(CanoError::task_execution(format!(
                "item {} attempt {attempt}",
                item.id
            )));
        }
        Ok(item.id * 10)
    }
    async fn finish(
        &self,
        _res: &Resources,
        outputs: Vec<Result<u32, CanoError>>,
    ) -> Result<TaskResult<St>, CanoError> {
        *self.seen.lock().unwrap() = Some(outputs);
        if self.finish_fails {
            return Err(CanoError::task_execution("finish failed"));
        }
        Ok(TaskResult::Single(St::Done))
    }
}

struct Outcome {
    result: Result<St, CanoError>,
    seen: Option<Vec<Result<u32, CanoError>>>,
    elapsed: Duration,
    max_in_flight: usize,
    job: Arc<Job>,
}

fn run(sim: &Simulation, job: Job) -> Outcome {
    let job = Arc::new(job);
    let clock = sim.clock();
    let wf = Workflow::bare()
        .register(St::Batch, BatchRunner::new(job.clone(), clock.clone()))
        .add_exit_state(St::Done);
    let start = clock.now();
    let result = sim.block_on(wf.orchestrate_on(&clock, St::Batch));
    let seen = job.seen.lock().unwrap().take();
    Outcome {
        result,
        seen,
        elapsed: clock.now() - start,
        max_in_flight: job.max_in_flight.load(Ordering::SeqCst),
        job,
    }
}

#[test]
fn outputs_are_in_input_order_whatever_order_items_finish_in() {
    let sim = Simulation::new();
    let items: Vec<Item> = (0..6).map(|i| item(i, u64::from(6 - i))).collect();
    let mut job = Job::new(&sim.clock(), items);
    job.concurrency = 6;
    let out = run(&sim, job);
    assert_eq!(out.result, Ok(St::Done));
    assert_eq!(
        out.seen.unwrap(),
        (0..6).map(|i| Ok(i * 10)).collect::<Vec<_>>()
    );
    assert_eq!(out.elapsed, Duration::from_secs(6));
}

#[test]
fn at_most_concurrency_items_run_at_once() {
    for concurrency in 1..=8usize {
        for n in [0usize, 1, 5, 7] {
            let sim = Simulation::new();
            let items: Vec<Item> = (0..n as u32).map(|i| item(i, 1)).collect();
            let mut job = Job::new(&sim.clock(), items);
            job.concurrency = concurrency;
            let out = run(&sim, job);
            assert_eq!(out.result, Ok(St::Done));
            assert_eq!(
                out.max_in_flight,
                concurrency.min(n),
                "c={concurrency} n={n}"
            );
            let waves = n.div_ceil(concurrency) as u64;
            assert_eq!(
                out.elapsed,
                Duration::from_secs(waves),
                "c={concurrency} n={n}"
            );
            assert_eq!(out.seen.unwrap().len(), n);
        }
    }
}

#[test]
fn an_item_error_is_its_entry_and_does_not_fail_the_batch() {
    let sim = Simulation::new();
    let mut bad = item(1, 0);
    bad.failing_attempts = u32::MAX;
    let job = Job::new(&sim.clock(), vec![item(0, 0), bad, item(2, 0)]);
    let out = run(&sim, job);
    assert_eq!(out.result, Ok(St::Done));
    assert_eq!(
        out.seen.unwrap(),
        vec![
            Ok(0),
            Err(CanoError::task_execution("item 1 attempt 1")),
            Ok(20)
        ]
    );
}

#[test]
fn items_are_retried_with_the_item_retry_pauses() {
    let sim = Simulation::new();
    let mut flaky = item(1, 0);
    flaky.failing_attempts = 2;
    let mut hopeless = item(2, 0);
    hopeless.failing_attempts = u32::MAX;
    let mut job = Job::new(&sim.clock(), vec![item(0, 0), flaky, hopeless]);
    job.retry = RetryMode::fixed(2, Duration::from_secs(3));
    let out = run(&sim, job);
    let seen = out.seen.unwrap();
    assert_eq!(seen[0], Ok(0));
    assert_eq!(seen[1], Ok(10));
    assert_eq!(
        seen[2],
        Err(CanoError::retry_exhausted(
            3,
            CanoError::task_execution("item 2 attempt 3")
        ))
    );
    let attempts = out.job.attempts.lock().unwrap().clone();
    assert_eq!(attempts, HashMap::from([(0, 1), (1, 3), (2, 3)]));
    // Sequential: two pauses of 3 s for each of the two retried items.
    assert_eq!(out.elapsed, Duration::from_secs(12));
}

#[test]
fn a_hung_item_times_out_and_the_batch_goes_on() {
    // cano 0.12 had no per-item timeout: this batch would never finish.
    let sim = Simulation::new();
    let mut job = Job::new(
        &sim.clock(),
        vec![item(0, 1), item(1, 1_000_000), item(2, 1)],
    );
    job.timeout = Some(Duration::from_secs(5));
    job.concurrency = 3;
    let out = run(&sim, job);
    assert_eq!(out.result, Ok(St::Done));
    let seen = out.seen.unwrap();
    assert_eq!(seen[0], Ok(0));
    assert_eq!(seen[1].as_ref().unwrap_err().category(), "timeout");
    assert_eq!(seen[2], Ok(20));
    assert_eq!(out.elapsed, Duration::from_secs(5));
}

#[test]
fn a_timed_out_attempt_is_retried() {
    let sim = Simulation::new();
    let mut job = Job::new(&sim.clock(), vec![item(0, 10)]);
    job.timeout = Some(Duration::from_secs(4));
    job.retry = RetryMode::fixed(1, Duration::from_secs(1));
    let out = run(&sim, job);
    let seen = out.seen.unwrap();
    assert_eq!(seen[0].as_ref().unwrap_err().category(), "retry_exhausted");
    assert_eq!(out.elapsed, Duration::from_secs(9));
}

#[test]
fn a_panicking_item_is_that_items_error() {
    let sim = Simulation::new();
    let mut boom = item(1, 0);
    boom.panics = true;
    let mut job = Job::new(&sim.clock(), vec![item(0, 0), boom, item(2, 0)]);
    job.concurrency = 2;
    let out = run(&sim, job);
    assert_eq!(out.result, Ok(St::Done));
    let seen = out.seen.unwrap();
    assert_eq!((seen[0].clone(), seen[2].clone()), (Ok(0), Ok(20)));
    assert!(
        seen[1]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("item 1 exploded")
    );
}

#[test]
fn a_load_error_fails_the_state_and_finish_is_not_called() {
    let sim = Simulation::new();
    let mut job = Job::new(&sim.clock(), vec![item(0, 0)]);
    job.load_fails = true;
    let out = run(&sim, job);
    assert_eq!(out.result, Err(CanoError::task_execution("load failed")));
    assert!(out.seen.is_none());
    assert!(out.job.attempts.lock().unwrap().is_empty());
}

#[test]
fn a_finish_error_fails_the_state() {
    let sim = Simulation::new();
    let mut job = Job::new(&sim.clock(), vec![item(0, 0)]);
    job.finish_fails = true;
    let out = run(&sim, job);
    assert_eq!(out.result, Err(CanoError::task_execution("finish failed")));
    assert_eq!(out.seen.unwrap(), vec![Ok(0)]);
}

#[test]
fn an_empty_load_calls_finish_with_nothing() {
    let sim = Simulation::new();
    let mut job = Job::new(&sim.clock(), vec![]);
    job.concurrency = 4;
    let out = run(&sim, job);
    assert_eq!(out.result, Ok(St::Done));
    assert_eq!(out.seen, Some(vec![]));
}

#[test]
fn zero_concurrency_is_a_configuration_error_before_loading() {
    let sim = Simulation::new();
    let mut job = Job::new(&sim.clock(), vec![item(0, 0)]);
    job.concurrency = 0;
    let out = run(&sim, job);
    assert_eq!(out.result.unwrap_err().category(), "configuration");
    assert!(!out.job.loaded.load(Ordering::SeqCst));
}

/// A batch of another type, for the heterogeneous registration test.
struct Doubling;
impl BatchTask<St> for Doubling {
    type Item = Item;
    type Output = u32;
    async fn load(&self, _res: &Resources) -> Result<Vec<Item>, CanoError> {
        Ok(vec![item(4, 0)])
    }
    async fn process_item(&self, _res: &Resources, item: &Item) -> Result<u32, CanoError> {
        Ok(item.id * 2)
    }
    async fn finish(
        &self,
        _res: &Resources,
        outputs: Vec<Result<u32, CanoError>>,
    ) -> Result<TaskResult<St>, CanoError> {
        assert_eq!(outputs, vec![Ok(8)]);
        Ok(TaskResult::Single(St::Batch))
    }
}

#[test]
fn batch_tasks_of_different_types_share_a_dyn_form() {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    enum Two {
        First,
        Second,
        Done,
    }
    let sim = Simulation::new();
    let clock = sim.clock();
    let job = Arc::new(Job::new(&clock, vec![item(1, 2)]));
    let tasks: Vec<Box<dyn DynBatchTask<St, Item, u32>>> =
        vec![Box::new(Doubling), Box::new(job.clone())];
    // Adapt St → Two through a router-free mapping: each batch's next state is looked up.
    let mut tasks = tasks.into_iter();
    let (first, second) = (tasks.next().unwrap(), tasks.next().unwrap());
    struct Map<T>(T, Two);
    impl<T: cano_core::Task<St>> cano_core::Task<Two> for Map<T> {
        async fn run(&self, res: &Resources) -> Result<TaskResult<Two>, CanoError> {
            self.0.run(res).await.map(|_| TaskResult::Single(self.1))
        }
        fn config(&self) -> TaskConfig {
            TaskConfig::minimal()
        }
    }
    let wf = Workflow::bare()
        .register(
            Two::First,
            Map(BatchRunner::new(first, clock.clone()), Two::Second),
        )
        .register(
            Two::Second,
            Map(BatchRunner::new(second, clock.clone()), Two::Done),
        )
        .add_exit_state(Two::Done);
    assert_eq!(
        sim.block_on(wf.orchestrate_on(&clock, Two::First)),
        Ok(Two::Done)
    );
    assert_eq!(job.seen.lock().unwrap().clone(), Some(vec![Ok(10)]));
    assert_eq!(clock.now(), Instant::from_secs(2));
}
