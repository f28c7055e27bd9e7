//! Scheduler benchmarks, side by side with cano 0.12 and tokio-cron-scheduler 0.15 in the
//! same run (see ../shared/reference/perf-baseline.md §3 for the baseline figures):
//!
//! * `start_10k`: `start()` of 10 000 registered flows (goal ≤ 5 ms);
//! * `dispatch`: CPU per dispatched run with 1 000 flows on a 10 ms interval, for the pure
//!   core (poll → dispatch → outcome) and for the whole driver on a paused tokio runtime
//!   (goal ≤ 0.5 µs);
//! * `trigger_round_trip`: trigger → run → caller woken, repeat (goal ≤ 300 ns).
//!
//! Before the criterion groups, the binary prints figures criterion cannot measure (set
//! `CANO_BENCH_REPORTS=0` to skip them): heap bytes per registered flow from a counting
//! global allocator (goal ≤ 256 B), idle CPU with many flows, and process CPU per run on
//! real multi-threaded runtimes. Each memory and CPU row runs in a fresh process (this
//! binary again, with `CANO_BENCH_ROW` naming the row), so no row inherits another's heap,
//! timers or threads.
//!
//! cano 0.12's job is always a workflow; cano's rows run both a `job_fn` closure and a
//! 1-state `Workflow` (`workflow job`), the like-for-like one. Rows that compare `start()`
//! name their runtime flavour, and each pair uses the same one on both sides.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant as StdInstant};

use cano_core::jiff::Timestamp;
use cano_core::schedule::{FirstRun, IntervalMode, Schedule, SchedulePolicy};
use cano_core::scheduler::{Action, Fire, Job, RunningScheduler, Scheduler, SchedulerCore, job_fn};
use cano_core::testing::Simulation;
use cano_core::{CanoError, Instant};
use cano_tokio::{TokioClock, TokioSpawner};
use criterion::{BatchSize, Criterion, criterion_group};
use futures::StreamExt;
use futures::channel::mpsc;

#[path = "support/counting_alloc.rs"]
pub mod counting_alloc;
use counting_alloc::live;

/// Process CPU time in seconds: the sum over the process's threads of their time on a CPU
/// from `/proc/self/task/*/schedstat` (nanoseconds), else user + system from
/// `/proc/self/stat` (10 ms ticks, too coarse for the 1 s rows).
fn cpu_seconds() -> f64 {
    let from_schedstat = std::fs::read_dir("/proc/self/task").ok().map(|tasks| {
        tasks
            .filter_map(|task| {
                let path = task.ok()?.path().join("schedstat");
                let text = std::fs::read_to_string(path).ok()?;
                text.split_whitespace().next()?.parse::<f64>().ok()
            })
            .sum::<f64>()
            / 1e9
    });
    if let Some(seconds) = from_schedstat.filter(|s| *s > 0.0) {
        return seconds;
    }
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

// ---- the three schedulers' job types ----

fn our_counter(counter: &Arc<AtomicU64>) -> impl Job<()> + use<> {
    let counter = counter.clone();
    job_fn(move |(), _fire: Fire| {
        counter.fetch_add(1, Ordering::Relaxed);
        std::future::ready(Ok::<(), CanoError>(()))
    })
}

fn our_notifier(tx: mpsc::UnboundedSender<()>) -> impl Job<()> {
    job_fn(move |(), _fire: Fire| {
        let _ = tx.unbounded_send(());
        std::future::ready(Ok::<(), CanoError>(()))
    })
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum St {
    Run,
    Done,
}

struct Count(Arc<AtomicU64>, Option<mpsc::UnboundedSender<()>>);

#[cano012::task]
impl cano012::Task<St> for Count {
    async fn run_bare(&self) -> Result<cano012::TaskResult<St>, cano012::CanoError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        if let Some(tx) = &self.1 {
            let _ = tx.unbounded_send(());
        }
        Ok(cano012::TaskResult::Single(St::Done))
    }
}

impl cano_core::Task<St> for Count {
    async fn run_bare(&self) -> Result<cano_core::TaskResult<St>, CanoError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        if let Some(tx) = &self.1 {
            let _ = tx.unbounded_send(());
        }
        Ok(cano_core::TaskResult::Single(St::Done))
    }
}

/// cano's 1-state workflow job: the same work as [`cano012_workflow`].
fn our_workflow(
    counter: &Arc<AtomicU64>,
    tx: Option<mpsc::UnboundedSender<()>>,
) -> cano_core::Workflow<St> {
    cano_core::Workflow::bare()
        .register(St::Run, Count(counter.clone(), tx))
        .add_exit_state(St::Done)
}

fn cano012_workflow(
    counter: &Arc<AtomicU64>,
    tx: Option<mpsc::UnboundedSender<()>>,
) -> cano012::Workflow<St> {
    cano012::Workflow::new(cano012::Resources::new())
        .register(St::Run, Count(counter.clone(), tx))
        .add_exit_state(St::Done)
}

fn tcs_job(every: Duration, counter: &Arc<AtomicU64>) -> tokio_cron_scheduler::Job {
    let counter = counter.clone();
    tokio_cron_scheduler::Job::new_repeated_async(every, move |_id, _lock| {
        let counter = counter.clone();
        Box::pin(async move {
            counter.fetch_add(1, Ordering::Relaxed);
        })
    })
    .unwrap()
}

fn current_thread(paused: bool) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(paused)
        .build()
        .unwrap()
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

fn ours(n: usize, every: Duration, first: FirstRun, counter: &Arc<AtomicU64>) -> Scheduler {
    let mut s = Scheduler::new();
    for i in 0..n {
        let id = format!("flow-{i}");
        s.every(&id, our_counter(counter), (), every).unwrap();
        if first == FirstRun::AfterInterval {
            s.set_first_run(&id, first).unwrap();
        }
    }
    s
}

/// [`ours`] with a 1-state workflow as every flow's job.
fn ours_workflows(
    n: usize,
    every: Duration,
    first: FirstRun,
    counter: &Arc<AtomicU64>,
) -> Scheduler<St> {
    let mut s = Scheduler::new();
    for i in 0..n {
        let id = format!("flow-{i}");
        s.every(&id, our_workflow(counter, None), St::Run, every)
            .unwrap();
        if first == FirstRun::AfterInterval {
            s.set_first_run(&id, first).unwrap();
        }
    }
    s
}

/// Times `iters` round trips of cano's manual flow `m` inside one `block_on`: trigger it
/// (again while its previous run is still finishing), then wait for the run's wake-up.
fn our_round_trips(
    rt: &tokio::runtime::Runtime,
    running: &RunningScheduler,
    rx: &mut mpsc::UnboundedReceiver<()>,
    iters: u64,
) -> Duration {
    rt.block_on(async {
        let started = StdInstant::now();
        for _ in 0..iters {
            while running.trigger("m").is_err() {
                tokio::task::yield_now().await;
            }
            black_box(rx.next().await);
        }
        started.elapsed()
    })
}

async fn ours_on_tokio<S: Clone + Send + Sync + 'static>(s: Scheduler<S>) -> RunningScheduler {
    s.start(TokioClock::new(), TokioSpawner::current())
        .await
        .unwrap()
}

fn with_fixed_rate<S: Clone + Send + Sync + 'static>(
    mut s: Scheduler<S>,
    n: usize,
) -> Scheduler<S> {
    for i in 0..n {
        s.set_interval_mode(&format!("flow-{i}"), IntervalMode::FixedRate)
            .unwrap();
    }
    s
}

fn cano012_every(n: usize, every: Duration, counter: &Arc<AtomicU64>) -> cano012::Scheduler<St> {
    let mut s = cano012::Scheduler::new();
    for i in 0..n {
        s.every(
            &format!("flow-{i}"),
            cano012_workflow(counter, None),
            St::Run,
            every,
        )
        .unwrap();
    }
    s
}

async fn tcs_every(
    n: usize,
    every: Duration,
    counter: &Arc<AtomicU64>,
) -> tokio_cron_scheduler::JobScheduler {
    let sched = tokio_cron_scheduler::JobScheduler::new().await.unwrap();
    for _ in 0..n {
        sched.add(tcs_job(every, counter)).await.unwrap();
    }
    sched.start().await.unwrap();
    sched
}

/// One of the three schedulers, started.
enum Started {
    Cano(RunningScheduler),
    Cano012(cano012::RunningScheduler<St>),
    Tcs(tokio_cron_scheduler::JobScheduler),
}

impl Started {
    async fn stop(self) {
        match self {
            Started::Cano(s) => drop(s.stop().await.unwrap()),
            Started::Cano012(s) => s.stop().await.unwrap(),
            Started::Tcs(mut s) => s.shutdown().await.unwrap(),
        }
    }
}

#[derive(Clone, Copy)]
enum Peer {
    /// cano, a `job_fn` per flow.
    Cano,
    /// cano, a 1-state workflow per flow.
    CanoWorkflow,
    Cano012,
    Tcs,
}

impl Peer {
    async fn start(
        self,
        n: usize,
        every: Duration,
        first: FirstRun,
        counter: &Arc<AtomicU64>,
    ) -> Started {
        match self {
            Peer::Cano => Started::Cano(ours_on_tokio(ours(n, every, first, counter)).await),
            Peer::CanoWorkflow => {
                Started::Cano(ours_on_tokio(ours_workflows(n, every, first, counter)).await)
            }
            Peer::Cano012 => {
                Started::Cano012(cano012_every(n, every, counter).start().await.unwrap())
            }
            Peer::Tcs => Started::Tcs(tcs_every(n, every, counter).await),
        }
    }
}

// ---- printed reports ----

fn per_flow(before: isize, after: isize, n: usize) -> f64 {
    (after - before) as f64 / n as f64
}

/// Live heap bytes per flow of `peer` with `n` flows, started and settled, in a runtime of
/// its own (dropped before the next measurement).
fn bytes_per_flow(peer: Peer, n: usize, first: FirstRun, rt: tokio::runtime::Runtime) -> f64 {
    let counter = Arc::new(AtomicU64::new(0));
    let before = live();
    let started = rt.block_on(async {
        let started = peer
            .start(n, Duration::from_secs(3600), first, &counter)
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        started
    });
    let after = live();
    rt.block_on(started.stop());
    per_flow(before, after, n)
}

/// The memory rows: label, scheduler, first run, multi-thread runtime.
const MEMORY_ROWS: [(&str, Peer, FirstRun, bool); 6] = [
    (
        "cano every(1h), job_fn, first run at start",
        Peer::Cano,
        FirstRun::AtStart,
        false,
    ),
    (
        "cano every(1h), job_fn, first run after 1h",
        Peer::Cano,
        FirstRun::AfterInterval,
        false,
    ),
    (
        "cano every(1h), workflow job, first run at start",
        Peer::CanoWorkflow,
        FirstRun::AtStart,
        false,
    ),
    (
        "cano every(1h), workflow job, first run at start, mt(2)",
        Peer::CanoWorkflow,
        FirstRun::AtStart,
        true,
    ),
    (
        "cano 0.12 every(1h) (a workflow), mt(2)",
        Peer::Cano012,
        FirstRun::AtStart,
        true,
    ),
    (
        "tokio-cron-scheduler repeated(1h), mt(2)",
        Peer::Tcs,
        FirstRun::AtStart,
        true,
    ),
];

const MEMORY_FLOWS: usize = 10_000;

fn memory_row(row: usize) {
    let (label, peer, first, mt) = MEMORY_ROWS[row];
    let rt = if mt {
        multi_thread()
    } else {
        current_thread(false)
    };
    let bytes = bytes_per_flow(peer, MEMORY_FLOWS, first, rt);
    println!("{label:<58} {bytes:>8.0} B");
}

fn manual_memory_row() {
    let counter = Arc::new(AtomicU64::new(0));
    let rt = current_thread(false);
    let before = live();
    let mut s = Scheduler::new();
    for i in 0..MEMORY_FLOWS {
        s.manual(&format!("flow-{i}"), our_counter(&counter), ())
            .unwrap();
    }
    let running = rt.block_on(ours_on_tokio(s));
    let after = live();
    println!(
        "{:<58} {:>8.0} B",
        "cano manual, job_fn",
        per_flow(before, after, MEMORY_FLOWS)
    );
    rt.block_on(async { running.stop().await.unwrap() });
}

fn report_memory() {
    println!(
        "\n== heap bytes per registered flow ({MEMORY_FLOWS} flows, live after start + settle; \
         one process per row) =="
    );
    for row in 0..MEMORY_ROWS.len() {
        in_fresh_process(&format!("memory:{row}"));
    }
    in_fresh_process("memory:manual");
}

/// Runs this binary again with `CANO_BENCH_ROW=row`, passing its output through.
fn in_fresh_process(row: &str) {
    let exe = std::env::current_exe().expect("the bench binary's path");
    let output = std::process::Command::new(exe)
        .env("CANO_BENCH_ROW", row)
        .output()
        .expect("the bench binary runs");
    print!("{}", String::from_utf8_lossy(&output.stdout));
    if !output.status.success() {
        println!(
            "row {row} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Process CPU over `window` (after a settle), as a percentage of one core and per run.
async fn cpu_over(counter: &Arc<AtomicU64>, settle: Duration, window: Duration) -> (u64, f64, f64) {
    tokio::time::sleep(settle).await;
    let (r0, c0) = (counter.load(Ordering::SeqCst), cpu_seconds());
    tokio::time::sleep(window).await;
    let (r1, c1) = (counter.load(Ordering::SeqCst), cpu_seconds());
    let runs = r1 - r0;
    let cpu = c1 - c0;
    (
        runs,
        cpu / window.as_secs_f64() * 100.0,
        cpu * 1e6 / runs.max(1) as f64,
    )
}

fn report_idle() {
    println!("\n== idle: one timer, no work ==");
    // The fake clock counts pending timers exactly.
    let sim = Simulation::new();
    let counter = Arc::new(AtomicU64::new(0));
    let s = ours(
        100_000,
        Duration::from_secs(3600),
        FirstRun::AfterInterval,
        &counter,
    );
    let running = sim.block_on(s.start(sim.clock(), sim.spawner())).unwrap();
    sim.run_until_stalled();
    let polls_while_idle = sim.run_until_stalled();
    println!(
        "cano, 100 000 flows on the fake clock: {} pending timer(s), {} task polls while idle",
        sim.clock().pending_sleeps(),
        polls_while_idle
    );
    drop(running);

    let window = Duration::from_secs(3);
    for (label, peer, n) in [
        ("cano, 100 000 flows every(1h)", Peer::Cano, 100_000),
        ("cano 0.12, 10 000 flows every(1h)", Peer::Cano012, 10_000),
        (
            "tokio-cron-scheduler, 10 000 jobs repeated(1h)",
            Peer::Tcs,
            10_000,
        ),
    ] {
        let rt = multi_thread();
        let percent = rt.block_on(async {
            let started = peer
                .start(
                    n,
                    Duration::from_secs(3600),
                    FirstRun::AfterInterval,
                    &counter,
                )
                .await;
            let (_, percent, _) = cpu_over(&counter, Duration::from_secs(1), window).await;
            started.stop().await;
            percent
        });
        println!("{label} on tokio mt(2): {percent:.3} % of a core over {window:?}");
    }
}

/// The per-run CPU rows: label, multi-thread runtime, scheduler, interval, fixed rate.
const DISPATCH_ROWS: [(&str, bool, Peer, Duration, bool); 9] = [
    (
        "tokio ct: cano every(10ms) fixed delay, job_fn",
        false,
        Peer::Cano,
        TEN_MS,
        false,
    ),
    (
        "tokio ct: cano every(10ms) fixed delay, workflow job",
        false,
        Peer::CanoWorkflow,
        TEN_MS,
        false,
    ),
    (
        "tokio ct: cano 0.12 every(10ms) (a workflow)",
        false,
        Peer::Cano012,
        TEN_MS,
        false,
    ),
    (
        "tokio mt(2): cano every(10ms) fixed delay, job_fn",
        true,
        Peer::Cano,
        TEN_MS,
        false,
    ),
    (
        "tokio mt(2): cano every(10ms) fixed delay, workflow job",
        true,
        Peer::CanoWorkflow,
        TEN_MS,
        false,
    ),
    (
        "tokio mt(2): cano every(10ms) fixed rate, job_fn",
        true,
        Peer::Cano,
        TEN_MS,
        true,
    ),
    (
        "tokio mt(2): cano 0.12 every(10ms) (a workflow)",
        true,
        Peer::Cano012,
        TEN_MS,
        false,
    ),
    (
        "tokio mt(2): tokio-cron-scheduler repeated(1s), its floor",
        true,
        Peer::Tcs,
        Duration::from_secs(1),
        false,
    ),
    (
        "tokio mt(2): cano every(1s), workflow job, as the row above",
        true,
        Peer::CanoWorkflow,
        Duration::from_secs(1),
        false,
    ),
];

const TEN_MS: Duration = Duration::from_millis(10);

fn dispatch_row(row: usize) {
    let (label, mt, peer, every, fixed_rate) = DISPATCH_ROWS[row];
    let settle = Duration::from_millis(300);
    let rt = if mt {
        multi_thread()
    } else {
        current_thread(false)
    };
    let counter = Arc::new(AtomicU64::new(0));
    let window = if every >= Duration::from_secs(1) {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(2)
    };
    let (runs, _, us) = rt.block_on(async {
        let started = if fixed_rate {
            Started::Cano(
                ours_on_tokio(with_fixed_rate(
                    ours(1000, every, FirstRun::AtStart, &counter),
                    1000,
                ))
                .await,
            )
        } else {
            peer.start(1000, every, FirstRun::AtStart, &counter).await
        };
        let out = cpu_over(&counter, settle, window).await;
        started.stop().await;
        out
    });
    println!("{label}: {runs} runs in {window:?}, {us:.2} µs CPU per run");
}

fn report_dispatch_cpu() {
    println!("\n== process CPU per run, 1 000 flows, real time, one process per row ==");
    for row in 0..DISPATCH_ROWS.len() {
        in_fresh_process(&format!("dispatch:{row}"));
    }
}

// ---- criterion groups ----

/// `start()` of 10 000 flows, each pair on the same runtime flavour: current-thread (`ct`)
/// and multi-thread with 2 workers (`mt`).
fn start_10k(c: &mut Criterion) {
    const N: usize = 10_000;
    let mut group = c.benchmark_group("start_10k");
    group.sample_size(10);
    let counter = Arc::new(AtomicU64::new(0));
    let hour = Duration::from_secs(3600);
    let (ct, mt) = (current_thread(false), multi_thread());
    for (flavour, rt) in [("ct", &ct), ("mt", &mt)] {
        group.bench_function(format!("cano/job_fn/start/{flavour}"), |b| {
            b.iter_batched(
                || ours(N, hour, FirstRun::AtStart, &counter),
                |s| rt.block_on(ours_on_tokio(s)),
                BatchSize::PerIteration,
            )
        });
        group.bench_function(format!("cano/workflow/start/{flavour}"), |b| {
            b.iter_batched(
                || ours_workflows(N, hour, FirstRun::AtStart, &counter),
                |s| rt.block_on(ours_on_tokio(s)),
                BatchSize::PerIteration,
            )
        });
        group.bench_function(format!("cano012/start/{flavour}"), |b| {
            b.iter_batched(
                || cano012_every(N, hour, &counter),
                |s| rt.block_on(async { s.start().await.unwrap() }),
                BatchSize::PerIteration,
            )
        });
    }
    for (name, peer, rt) in [
        ("cano/job_fn/register+start/ct", Peer::Cano, &ct),
        ("cano/workflow/register+start/ct", Peer::CanoWorkflow, &ct),
        ("cano012/register+start/ct", Peer::Cano012, &ct),
        ("cano/job_fn/register+start/mt", Peer::Cano, &mt),
        ("cano/workflow/register+start/mt", Peer::CanoWorkflow, &mt),
        ("cano012/register+start/mt", Peer::Cano012, &mt),
        ("tokio-cron-scheduler/register+start/mt", Peer::Tcs, &mt),
    ] {
        group.bench_function(name, |b| {
            b.iter_with_large_drop(|| rt.block_on(peer.start(N, hour, FirstRun::AtStart, &counter)))
        });
    }
    group.finish();
}

fn dispatch(c: &mut Criterion) {
    const FLOWS: usize = 1000;
    let ten_ms = Duration::from_millis(10);
    let mut group = c.benchmark_group("dispatch_1000_flows_10ms");
    group.bench_function("cano/core poll+finish per run", |b| {
        let mut core = SchedulerCore::new();
        for i in 0..FLOWS {
            let id = core
                .add_flow(&format!("flow-{i}"), Schedule::Every(ten_ms))
                .unwrap();
            core.set_policy(
                id,
                SchedulePolicy {
                    interval_mode: IntervalMode::FixedRate,
                    ..SchedulePolicy::default()
                },
            )
            .unwrap();
        }
        let wall0 = Timestamp::UNIX_EPOCH;
        let mut now = Instant::ZERO;
        core.start(now, wall0);
        let mut batch = Vec::with_capacity(FLOWS);
        b.iter_custom(|iters| {
            let started = StdInstant::now();
            let mut done = 0u64;
            while done < iters {
                let wall = wall0 + Duration::from_micros(now.as_micros());
                while let Action::Start(d) = core.poll(now, wall) {
                    batch.push(d.run);
                }
                for run in batch.drain(..) {
                    core.finish(run, now, wall, Ok(())).unwrap();
                    done += 1;
                }
                now = core
                    .next_wake()
                    .expect("interval flows always have a next fire");
            }
            started.elapsed()
        })
    });
    for (name, peer) in [
        ("cano/driver on paused tokio, job_fn", Peer::Cano),
        (
            "cano/driver on paused tokio, workflow job",
            Peer::CanoWorkflow,
        ),
        ("cano012 on paused tokio", Peer::Cano012),
    ] {
        group.bench_function(name, |b| {
            let rt = current_thread(true);
            let counter = Arc::new(AtomicU64::new(0));
            let started = rt.block_on(async {
                match peer {
                    Peer::Cano => Started::Cano(
                        ours_on_tokio(with_fixed_rate(
                            ours(FLOWS, ten_ms, FirstRun::AtStart, &counter),
                            FLOWS,
                        ))
                        .await,
                    ),
                    Peer::CanoWorkflow => Started::Cano(
                        ours_on_tokio(with_fixed_rate(
                            ours_workflows(FLOWS, ten_ms, FirstRun::AtStart, &counter),
                            FLOWS,
                        ))
                        .await,
                    ),
                    _ => peer.start(FLOWS, ten_ms, FirstRun::AtStart, &counter).await,
                }
            });
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let target = counter.load(Ordering::SeqCst) + iters;
                    let started = StdInstant::now();
                    while counter.load(Ordering::SeqCst) < target {
                        tokio::time::sleep(ten_ms).await;
                    }
                    started.elapsed()
                })
            });
            rt.block_on(started.stop());
        });
    }
    group.finish();
}

fn trigger_round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("trigger_round_trip");
    let rt = current_thread(false);
    group.bench_function("cano/job_fn/current_thread", |b| {
        let (tx, mut rx) = mpsc::unbounded();
        let running = rt.block_on(async {
            let mut s = Scheduler::new();
            s.manual("m", our_notifier(tx), ()).unwrap();
            ours_on_tokio(s).await
        });
        b.iter_custom(|iters| our_round_trips(&rt, &running, &mut rx, iters));
    });
    group.bench_function("cano/workflow/current_thread", |b| {
        let (tx, mut rx) = mpsc::unbounded();
        let counter = Arc::new(AtomicU64::new(0));
        let running = rt.block_on(async {
            let mut s = Scheduler::new();
            s.manual("m", our_workflow(&counter, Some(tx)), St::Run)
                .unwrap();
            ours_on_tokio(s).await
        });
        b.iter_custom(|iters| our_round_trips(&rt, &running, &mut rx, iters));
    });
    group.bench_function("cano012/current_thread", |b| {
        let (tx, mut rx) = mpsc::unbounded();
        let counter = Arc::new(AtomicU64::new(0));
        let running = rt.block_on(async {
            let mut s = cano012::Scheduler::new();
            s.manual("m", cano012_workflow(&counter, Some(tx)), St::Run)
                .unwrap();
            s.start().await.unwrap()
        });
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = StdInstant::now();
                for _ in 0..iters {
                    while running.trigger("m").await.is_err() {
                        tokio::task::yield_now().await;
                    }
                    black_box(rx.next().await);
                }
                started.elapsed()
            })
        });
    });
    group.finish();
}

criterion_group!(benches, start_10k, dispatch, trigger_round_trip);

fn main() {
    if let Ok(row) = std::env::var("CANO_BENCH_ROW") {
        match row.split_once(':') {
            Some(("memory", "manual")) => manual_memory_row(),
            Some(("memory", n)) => memory_row(n.parse().expect("a row number")),
            Some(("dispatch", n)) => dispatch_row(n.parse().expect("a row number")),
            _ => panic!("unknown CANO_BENCH_ROW {row}"),
        }
        return;
    }
    if std::env::var("CANO_BENCH_REPORTS").as_deref() != Ok("0") {
        report_memory();
        report_idle();
        report_dispatch_cpu();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
