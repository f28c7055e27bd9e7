//! Pins the heap a scheduler's flow costs (issue 15): a flow with a `job_fn` job, and what a
//! 1-state `Workflow` as its job adds (it was ~800 B more per flow than a `job_fn` job).
//! Allocation sizes are deterministic, so these are exact counts, not timings: a change that
//! makes a flow or a plain workflow allocate more fails here.
//!
//! The counting allocator counts per thread (the virtual-time `Simulation` runs everything
//! on the calling thread), so tests of this binary running in parallel do not disturb each
//! other.
#![allow(missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cano_core::schedule::{FirstRun, RunStart};
use cano_core::scheduler::{Fire, Job, Scheduler, job_fn};
use cano_core::testing::Simulation;
use cano_core::{CanoError, Clock, RunContext, Task, TaskResult, Workflow};

/// Forwards to [`System`], counting the bytes live on the allocating thread.
struct PerThreadCounting;

thread_local! {
    /// Bytes allocated minus bytes freed on this thread (a block freed on another thread
    /// counts there; the tests here allocate and free on one).
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// Allocations (and reallocations) made on this thread.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    /// The largest block allocated on this thread since [`largest_allocation_of`] reset it.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn count(bytes: isize) {
    // `try_with`: the allocator also runs while a thread's locals are being torn down.
    let _ = LIVE.try_with(|live| live.set(live.get() + bytes));
}

fn count_allocation(bytes: usize) {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(bytes)));
}

// A global allocator can only be written with `unsafe`; it forwards to `System` unchanged.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for PerThreadCounting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        count_allocation(layout.size());
        // SAFETY: forwarded with the caller's layout, as GlobalAlloc requires.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        count_allocation(new_size);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: PerThreadCounting = PerThreadCounting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

/// The largest block allocated on this thread while `run` ran.
fn largest_allocation_of(run: impl FnOnce()) -> usize {
    LARGEST.with(|largest| largest.set(0));
    run();
    LARGEST.with(Cell::get)
}

/// Heap bytes `make` leaves live on this thread.
fn heap_of<T>(make: impl FnOnce() -> T) -> (T, isize) {
    let before = live();
    let value = make();
    (value, live() - before)
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum St {
    Run,
    Done,
}

impl cano_core::checkpoint::StateKey for St {
    fn state_key(&self) -> std::borrow::Cow<'static, str> {
        match self {
            St::Run => "run".into(),
            St::Done => "done".into(),
        }
    }
}

/// The benchmark's task (tests/benches/scheduler.rs): count, then finish.
struct Count(Arc<AtomicU64>);

impl Task<St> for Count {
    async fn run_bare(&self) -> Result<TaskResult<St>, CanoError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(TaskResult::Single(St::Done))
    }
}

fn one_state_workflow(counter: &Arc<AtomicU64>) -> Workflow<St> {
    Workflow::bare()
        .register(St::Run, Count(counter.clone()))
        .add_exit_state(St::Done)
}

fn counting_job(counter: &Arc<AtomicU64>) -> impl Job<()> + use<> {
    let counter = counter.clone();
    job_fn(move |(), _fire: Fire| {
        counter.fetch_add(1, Ordering::Relaxed);
        std::future::ready(Ok::<(), CanoError>(()))
    })
}

/// A 1-state workflow boxed as a scheduler keeps its job: the struct and everything it
/// allocates (its empty resources, the registered task, the state table). 200 B on a
/// 64-bit target on 2026-12-02 (issue 15: its rarely set settings behind one pointer, a
/// task's name and config in one 24-byte label); it was 240 B, and 764 B before that.
/// Exact: one more byte fails.
const WORKFLOW_JOB_BYTES_MAX: isize = 200;

/// What a flow with that workflow as its job holds beyond one with a `job_fn` job, after
/// `start()` and its first run (so nothing a run leaves behind escapes). 200 B on a 64-bit
/// target on 2026-12-02 (240 B before the workflow changes above, 248 B before issue 15's
/// slot and job changes); it was ~800 B. Exact: one more byte a flow fails.
const EXTRA_BYTES_PER_WORKFLOW_FLOW_MAX: isize = 200;

const FLOWS: isize = 500;

#[test]
fn a_one_state_workflow_as_a_job_stays_small() {
    let counter = Arc::new(AtomicU64::new(0));
    drop(one_state_workflow(&counter)); // first use of any lazily built global
    let (job, bytes) = heap_of(|| Box::new(one_state_workflow(&counter)) as Box<dyn Job<St>>);
    assert!(
        bytes <= WORKFLOW_JOB_BYTES_MAX,
        "a 1-state workflow job takes {bytes} B of heap (at most {WORKFLOW_JOB_BYTES_MAX} B)"
    );
    drop(job);
}

/// Heap bytes per flow of `FLOWS` hourly flows whose first run is at start, after `start()`
/// and that run, on the virtual-time simulation.
fn bytes_per_started_flow<S: Clone + Send + Sync + 'static>(
    register: impl Fn(&mut Scheduler<S>, &str),
) -> isize {
    started_bytes(FLOWS, register) / FLOWS
}

/// Heap bytes `flows` such flows and their scheduler hold after `start()` and 300 ms.
fn started_bytes<S: Clone + Send + Sync + 'static>(
    flows: isize,
    register: impl Fn(&mut Scheduler<S>, &str),
) -> isize {
    let sim = Simulation::new();
    let before = live();
    let mut scheduler = Scheduler::new();
    for i in 0..flows {
        register(&mut scheduler, &format!("flow-{i:04}"));
    }
    let running = sim
        .block_on(scheduler.start(sim.clock(), sim.spawner()))
        .expect("start");
    sim.run_for(Duration::from_millis(300));
    let bytes = live() - before;
    drop(sim.block_on(running.stop()).expect("stop"));
    bytes
}

/// Heap bytes per flow of `FLOWS` flows beyond what a scheduler with none holds (its event
/// ring and such, which grow with features such as `metrics`, not with flows).
fn bytes_per_flow_beyond_an_empty_scheduler(
    register: impl Fn(&mut Scheduler<()>, &str) + Copy,
) -> isize {
    (started_bytes(FLOWS, register) - started_bytes(0, register)) / FLOWS
}

#[test]
fn a_flow_with_a_one_state_workflow_job_costs_little_more_than_a_job_fn_flow() {
    let counter = Arc::new(AtomicU64::new(0));
    let every = Duration::from_secs(3600);
    // Warm up whatever the scheduler and the simulation build once per process.
    bytes_per_started_flow(|s: &mut Scheduler<()>, id| {
        s.every(id, counting_job(&counter), (), every).unwrap();
    });
    let job_fn_flow = bytes_per_started_flow(|s: &mut Scheduler<()>, id| {
        s.every(id, counting_job(&counter), (), every).unwrap();
    });
    let workflow_flow = bytes_per_started_flow(|s: &mut Scheduler<St>, id| {
        s.every(id, one_state_workflow(&counter), St::Run, every)
            .unwrap();
    });
    assert_eq!(
        counter.load(Ordering::Relaxed),
        3 * FLOWS as u64,
        "every flow ran once, at start"
    );
    let extra = workflow_flow - job_fn_flow;
    assert!(
        extra <= EXTRA_BYTES_PER_WORKFLOW_FLOW_MAX,
        "a workflow flow takes {workflow_flow} B, {extra} B more than a job_fn flow's \
         {job_fn_flow} B (at most {EXTRA_BYTES_PER_WORKFLOW_FLOW_MAX} B more)"
    );
}

/// Heap bytes per hourly `job_fn` flow before its first run (first run after the interval),
/// after `start()`, beyond what an empty scheduler holds: the flow's slot in the core
/// (104 B), its id, its job and the queue's and job table's entries. 211 B on a 64-bit
/// target on 2026-12-02, with or without the workspace's features (227 B before the last
/// fire id and the pending fire lost their `Option`s' 8 bytes each; it was ~300 B): an
/// 8-byte regression fails.
const JOB_FN_FLOW_BYTES_MAX: isize = 216;

/// The same after the first run at start: the run history's entry (24 B; it was 40) and
/// the run's bookkeeping the flow keeps. 248 B on a 64-bit target on 2026-12-04, 258 B
/// with the workspace's features (observers keep a larger event ring): the run finished in the loop's first poll
/// ([`RunStart::Inline`]), so the virtual-time executor keeps nothing of a spawned task
/// (~57 B a flow when every run was spawned: 305 B, 310 B with the workspace's features;
/// ~575 B before issue 15). An 8-byte regression fails in a workspace build.
const JOB_FN_FLOW_AFTER_RUN_BYTES_MAX: isize = 263;

#[test]
fn a_job_fn_flow_stays_within_its_heap_budget() {
    let counter = Arc::new(AtomicU64::new(0));
    let every = Duration::from_secs(3600);
    let at_start = |s: &mut Scheduler<()>, id: &str| {
        s.every(id, counting_job(&counter), (), every).unwrap();
    };
    let after_interval = |s: &mut Scheduler<()>, id: &str| {
        s.every(id, counting_job(&counter), (), every).unwrap();
        s.set_first_run(id, FirstRun::AfterInterval).unwrap();
    };
    // Warm up whatever the scheduler and the simulation build once per process.
    bytes_per_started_flow(at_start);
    let before_first_run = bytes_per_flow_beyond_an_empty_scheduler(after_interval);
    let after_first_run = bytes_per_flow_beyond_an_empty_scheduler(at_start);
    assert_eq!(
        counter.load(Ordering::Relaxed),
        2 * FLOWS as u64,
        "the flows whose first run is at start ran once, the others not yet"
    );
    assert!(
        before_first_run <= JOB_FN_FLOW_BYTES_MAX,
        "a job_fn flow takes {before_first_run} B before its first run \
         (at most {JOB_FN_FLOW_BYTES_MAX} B)"
    );
    assert!(
        after_first_run <= JOB_FN_FLOW_AFTER_RUN_BYTES_MAX,
        "a job_fn flow takes {after_first_run} B after its first run \
         (at most {JOB_FN_FLOW_AFTER_RUN_BYTES_MAX} B)"
    );
}

/// Allocations per scheduled run in a steady stream of runs (100 `job_fn` flows every
/// 10 ms, on the virtual-time simulation, once the first second warmed it up): the run's
/// future and the job's future, and nothing of the driver's own. The loop's first poll
/// finishes the run ([`RunStart::Inline`]), so there is no task and no waker (2.17 per run
/// on 2026-12-04; 3 when every run was spawned). Its abort signal and cancellation token
/// are reused from ended runs; they were two more allocations per run, and the driver's
/// tables regrew after every burst.
const ALLOCATIONS_PER_STEADY_RUN_MAX: u64 = 2;

/// Allocations per run that `metrics` telemetry adds when it is compiled in (a workspace
/// build unifies cano-core's features, and cano-tokio's tests turn it on): the labels of each
/// of the two per-run metrics' keys, which the `metrics` facade builds for every report, even
/// to its no-op recorder. (The `flow` label shares the flow id's string; it was two more.)
const TELEMETRY_ALLOCATIONS_PER_RUN_MAX: u64 = 2;

/// A `metrics` recorder that counts the runs cano reports (`cano_scheduler_flow_runs_total`)
/// and hands back no-op handles, so it allocates nothing of its own.
#[derive(Default)]
struct RunsReported(std::sync::atomic::AtomicU64);

impl metrics::Recorder for RunsReported {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        if key.name() == "cano_scheduler_flow_runs_total" {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        metrics::Counter::noop()
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

/// Allocations per tick (one wake of the loop that starts the tick's 100 runs) besides the
/// runs' own: the loop's sleep and the simulation's timer and queue bookkeeping, measured at
/// 5 per tick up to 64 runs a tick and 17 at 100 (what grows past 64 is not yet traced to
/// its owner; it is not the driver's tables, whose kept size moved without moving it). One
/// more allocation per run would add 100 per tick and fails.
const ALLOCATIONS_PER_TICK_MAX: u64 = 20;

#[test]
fn a_steady_stream_of_runs_allocates_only_the_runs_own_futures() {
    const STEADY_FLOWS: u64 = 100;
    const TICKS: u64 = 100;
    let reported = RunsReported::default();
    // The simulation runs every task on this thread, where the recorder is installed.
    let _recorder = metrics::set_default_local_recorder(&reported);
    let counter = Arc::new(AtomicU64::new(0));
    let sim = Simulation::new();
    let mut scheduler = Scheduler::new();
    for i in 0..STEADY_FLOWS {
        scheduler
            .every(
                &format!("flow-{i:03}"),
                counting_job(&counter),
                (),
                Duration::from_millis(10),
            )
            .unwrap();
    }
    let running = sim
        .block_on(scheduler.start(sim.clock(), sim.spawner()))
        .expect("start");
    sim.run_for(Duration::from_secs(1));
    let (runs_before, reported_before, allocations_before) = (
        counter.load(Ordering::Relaxed),
        reported.0.load(Ordering::Relaxed),
        ALLOCATIONS.with(Cell::get),
    );
    sim.run_for(Duration::from_millis(10 * TICKS));
    let runs = counter.load(Ordering::Relaxed) - runs_before;
    let runs_reported = reported.0.load(Ordering::Relaxed) - reported_before;
    let allocations = ALLOCATIONS.with(Cell::get) - allocations_before;
    drop(sim.block_on(running.stop()).expect("stop"));
    assert_eq!(runs, TICKS * STEADY_FLOWS, "every flow ran every 10 ms");
    let budget = ALLOCATIONS_PER_STEADY_RUN_MAX * runs
        + TELEMETRY_ALLOCATIONS_PER_RUN_MAX * runs_reported
        + ALLOCATIONS_PER_TICK_MAX * TICKS;
    assert!(
        allocations <= budget,
        "{allocations} allocations for {runs} runs ({runs_reported} reported to `metrics`) in \
         {TICKS} ticks ({:.2} per run; at most {ALLOCATIONS_PER_STEADY_RUN_MAX} per run, \
         {TELEMETRY_ALLOCATIONS_PER_RUN_MAX} per reported run and {ALLOCATIONS_PER_TICK_MAX} \
         per tick)",
        allocations as f64 / runs as f64
    );
}

/// The largest task a scheduled `job_fn` run may spawn as, on a 64-bit target: the run's
/// own state (its fire, tokens, abort signal, outcome bookkeeping) and the job's boxed
/// future, held once. 400 B on 2026-12-03 with `tracing` and `metrics` compiled in (as in a
/// workspace build; 360 B without); it was 952 B (792 B) while the abort guard and the panic
/// isolation were `async fn`s that each kept their argument beside their pinned copy of it
/// (issue 15: every run's task was that big). Exact: one more byte fails.
const RUN_TASK_BYTES_MAX: usize = 400;

/// A spawner onto the simulation that notes the size of each future it is given.
#[derive(Clone)]
struct SizingSpawner {
    inner: cano_core::testing::SimSpawner,
    sizes: Arc<std::sync::Mutex<Vec<usize>>>,
}

impl cano_core::Spawner for SizingSpawner {
    fn spawn(&self, future: cano_core::BoxFuture) -> Result<(), cano_core::SpawnError> {
        self.sizes
            .lock()
            .unwrap()
            .push(std::mem::size_of_val(&*future));
        self.inner.spawn(future)
    }
}

#[test]
fn a_scheduled_run_holds_its_jobs_future_once() {
    let counter = Arc::new(AtomicU64::new(0));
    let sim = Simulation::new();
    let spawner = SizingSpawner {
        inner: sim.spawner(),
        sizes: Arc::default(),
    };
    let mut scheduler = Scheduler::new();
    scheduler
        .every(
            "flow",
            counting_job(&counter),
            (),
            Duration::from_millis(10),
        )
        .unwrap();
    // Spawned before its first poll, so every run's task is measured (inline, a run this
    // job's first poll finishes is never spawned).
    scheduler.set_run_start("flow", RunStart::Spawned).unwrap();
    let running = sim
        .block_on(scheduler.start(sim.clock(), spawner.clone()))
        .expect("start");
    // What `start` spawned (the scheduler's loop) is not a run.
    spawner.sizes.lock().unwrap().clear();
    sim.run_for(Duration::from_millis(100));
    let runs = counter.load(Ordering::Relaxed);
    let sizes = std::mem::take(&mut *spawner.sizes.lock().unwrap());
    drop(sim.block_on(running.stop()).expect("stop"));
    assert!(runs >= 10, "{runs} runs in 100 ms");
    assert_eq!(sizes.len() as u64, runs, "one task per run: {sizes:?}");
    let largest = sizes.iter().copied().max().unwrap_or_default();
    assert!(
        largest <= RUN_TASK_BYTES_MAX,
        "a run's task is {largest} B (at most {RUN_TASK_BYTES_MAX} B)"
    );
}

/// The largest block a scheduled run of a 1-state workflow job allocates, on a 64-bit
/// target: the run's one box (`Workflow::run_fsm_boxed`: the state machine raced against the
/// run's cancellation token, inside the run's telemetry). 568 B on 2026-12-03 with `tracing`
/// and `metrics` compiled in (as in a workspace build; 368 B without). It was 1 680 B while
/// the telemetry wrapper kept the run it was given beside the pinned copy it awaited; 952 B
/// (704 B) while the guard held its stop future's nested blocks and the stop's error across
/// the wait for a compensatable task; 856 B (608 B) while the run loop and the guard were
/// `async fn`s (each kept a second copy of its arguments, the guard a third of the clock)
/// and the loop's awaits held the matches around them. Exact: one more byte fails.
const WORKFLOW_RUN_BOX_BYTES_MAX: usize = 568;

#[test]
fn a_scheduled_workflow_run_holds_its_state_machine_once() {
    let counter = Arc::new(AtomicU64::new(0));
    let sim = Simulation::new();
    let mut scheduler = Scheduler::new();
    scheduler
        .every(
            "flow",
            one_state_workflow(&counter),
            St::Run,
            Duration::from_millis(10),
        )
        .unwrap();
    let running = sim
        .block_on(scheduler.start(sim.clock(), sim.spawner()))
        .expect("start");
    // Past the first runs, so what the scheduler builds once is not counted.
    sim.run_for(Duration::from_millis(100));
    let runs_before = counter.load(Ordering::Relaxed);
    let largest = largest_allocation_of(|| sim.run_for(Duration::from_millis(100)));
    let runs = counter.load(Ordering::Relaxed) - runs_before;
    drop(sim.block_on(running.stop()).expect("stop"));
    assert!(runs >= 10, "{runs} runs in 100 ms");
    assert!(
        largest <= WORKFLOW_RUN_BOX_BYTES_MAX,
        "a scheduled workflow run allocates a {largest} B block \
         (at most {WORKFLOW_RUN_BOX_BYTES_MAX} B)"
    );
}

/// The largest block a run of a 1-state workflow with a resource allocates, on a 64-bit
/// target: the box that holds the resource lifecycle around the run. 528 B on 2026-12-03
/// with `tracing` and `metrics` compiled in (352 B without); it was 2 096 B while that box
/// and the telemetry wrapper inside it each kept the run they were given beside the pinned
/// copy they awaited (1 280 B with only the wrapper fixed), and 720 B (488 B) while the run
/// loop was an `async fn`. Exact: one more byte fails.
const RESOURCED_RUN_BOX_BYTES_MAX: usize = 528;

#[test]
fn a_workflow_run_with_resources_holds_its_state_machine_once() {
    struct Idle;
    impl cano_core::Resource for Idle {}
    let counter = Arc::new(AtomicU64::new(0));
    let resources = cano_core::Resources::new().insert("idle", Idle).unwrap();
    let workflow = Workflow::new(resources)
        .register(St::Run, Count(counter.clone()))
        .add_exit_state(St::Done);
    let sim = Simulation::new();
    let run = || {
        let ended = sim.block_on(workflow.orchestrate_on(&sim.clock(), St::Run));
        assert_eq!(ended.expect("the run"), St::Done);
    };
    run(); // first use of any lazily built global
    let largest = largest_allocation_of(run);
    assert_eq!(counter.load(Ordering::Relaxed), 2, "both runs ran the task");
    assert!(
        largest <= RESOURCED_RUN_BOX_BYTES_MAX,
        "a workflow run with resources allocates a {largest} B block \
         (at most {RESOURCED_RUN_BOX_BYTES_MAX} B)"
    );
}

/// A job that takes `millis` ms (on the fire's clock) and counts.
fn slow_job(counter: &Arc<AtomicU64>, millis: u64) -> impl Job<()> + use<> {
    let counter = counter.clone();
    job_fn(move |(), fire: Fire| {
        let counter = counter.clone();
        let done = fire
            .clock()
            .sleep_until(fire.clock().now() + Duration::from_millis(millis));
        async move {
            done.await;
            counter.fetch_add(1, Ordering::Relaxed);
            Ok::<(), CanoError>(())
        }
    })
}

/// What a flow whose first run (at start) takes 1 to 10 ms may hold after it, beyond what
/// a flow whose run ends at once holds: nothing but rounding. The burst of runs at start
/// grows the loop's batch of runs to start; the loop let go of it only if every run had
/// ended by the time the first run's end woke it, so when the runs ended at different
/// times (on a multi-thread runtime, or with jobs that await anything) the loop slept an
/// hour holding ~90 B a flow of it (~150 B on tokio multi-thread). Only a build without
/// telemetry shows it (`.ci/run` runs this file so): telemetry's observers wake the loop at
/// every event, and so let it go.
const EXTRA_BYTES_PER_SLOW_FIRST_RUN_MAX: isize = 8;

#[test]
fn a_burst_of_runs_that_end_after_the_loop_slept_leaves_nothing_behind() {
    let counter = Arc::new(AtomicU64::new(0));
    let every = Duration::from_secs(3600);
    // Spawned, as the slow flows' runs are once their first poll waits: what the
    // simulation keeps of a spawned task is the same on both sides.
    let quick = |s: &mut Scheduler<()>, id: &str| {
        s.every(id, counting_job(&counter), (), every).unwrap();
        s.set_run_start(id, RunStart::Spawned).unwrap();
    };
    let slow = |s: &mut Scheduler<()>, id: &str| {
        let millis = 1 + u64::from(id.as_bytes()[id.len() - 1] - b'0');
        s.every(id, slow_job(&counter, millis), (), every).unwrap();
    };
    bytes_per_started_flow(quick);
    let quick_flow = bytes_per_flow_beyond_an_empty_scheduler(quick);
    let slow_flow = bytes_per_flow_beyond_an_empty_scheduler(slow);
    assert_eq!(
        counter.load(Ordering::Relaxed),
        3 * FLOWS as u64,
        "every flow ran once, at start"
    );
    assert!(
        slow_flow - quick_flow <= EXTRA_BYTES_PER_SLOW_FIRST_RUN_MAX,
        "a flow whose first run took 1-10 ms holds {slow_flow} B after it, one whose run \
         ended at once {quick_flow} B (at most {EXTRA_BYTES_PER_SLOW_FIRST_RUN_MAX} B more)"
    );
}

/// The size of the future of a plain run of a 1-state workflow (`orchestrate_with`, no
/// resources, on the simulation's clock), on a 64-bit target: what a caller moves and
/// awaits. 416 B on 2026-12-03 with `tracing` and `metrics` compiled in (as in a workspace
/// build; 216 B without). It was 608 B (368 B) while the run loop was an `async fn`, which
/// keeps a second copy of its arguments (the run context among them), and while its awaits
/// held the matches around them. Exact: one more byte fails.
const PLAIN_RUN_FUTURE_BYTES_MAX: usize = 416;

#[test]
fn a_plain_workflow_run_holds_its_arguments_once() {
    let counter = Arc::new(AtomicU64::new(0));
    let workflow = one_state_workflow(&counter);
    let sim = Simulation::new();
    let run = workflow.orchestrate_with(RunContext::new(sim.clock()), St::Run);
    let bytes = std::mem::size_of_val(&run);
    assert_eq!(sim.block_on(run), Ok(St::Done));
    assert_eq!(counter.load(Ordering::Relaxed), 1);
    assert!(
        bytes <= PLAIN_RUN_FUTURE_BYTES_MAX,
        "a plain workflow run's future is {bytes} B (at most {PLAIN_RUN_FUTURE_BYTES_MAX} B)"
    );
}

/// The largest block a checkpointed run of a 1-state workflow allocates (into a
/// `MemoryCheckpointStore`, on the simulation's clock), on a 64-bit target: the box of the
/// ledgered run, which opens the log, runs the loop on a context it owns and lends, and
/// settles the log (telemetry wraps it outside the box, so the figure is the same in every
/// build). 952 B on 2026-12-03: the run's context has its clock and spawner erased (16 B
/// more than the simulation's clock and no spawner; the ledgered run is reached through a
/// function pointer, so a program without checkpoints or sagas links none of it). It was
/// 936 B before that, and 976 B while the ledgered run and the loop were `async fn`s that
/// kept a second copy of their arguments and a clone of the clock. Exact: one more byte
/// fails.
const CHECKPOINTED_RUN_BOX_BYTES_MAX: usize = 952;

#[test]
fn a_checkpointed_workflow_run_holds_its_arguments_once() {
    let counter = Arc::new(AtomicU64::new(0));
    let store = cano_core::checkpoint::MemoryCheckpointStore::new();
    let workflow = one_state_workflow(&counter)
        .with_checkpoint_store(store)
        .with_workflow_id("checkpointed");
    let sim = Simulation::new();
    let run = || {
        let ended = sim.block_on(workflow.orchestrate_on(&sim.clock(), St::Run));
        assert_eq!(ended.expect("the run"), St::Done);
    };
    run(); // first use of any lazily built global, and the store's first rows
    let largest = largest_allocation_of(run);
    assert_eq!(counter.load(Ordering::Relaxed), 2, "both runs ran the task");
    assert!(
        largest <= CHECKPOINTED_RUN_BOX_BYTES_MAX,
        "a checkpointed workflow run allocates a {largest} B block \
         (at most {CHECKPOINTED_RUN_BOX_BYTES_MAX} B)"
    );
}
