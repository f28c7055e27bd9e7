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
//! real multi-threaded runtimes.
#![allow(missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicU64, Ordering};
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

// ---- a counting allocator: live heap bytes ----

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// A global allocator can only be written with `unsafe`; it forwards to `System` unchanged.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout, as GlobalAlloc requires.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::SeqCst)
}

/// Process CPU time (user + system) from /proc/self/stat, in seconds.
fn cpu_seconds() -> f64 {
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

async fn ours_on_tokio(s: Scheduler) -> RunningScheduler {
    s.start(TokioClock::new(), TokioSpawner::current())
        .await
        .unwrap()
}

// ---- printed reports ----

fn per_flow(before: isize, after: isize, n: usize) -> f64 {
    (after - before) as f64 / n as f64
}

fn report_memory() {
    const N: usize = 10_000;
    println!("\n== heap bytes per registered flow ({N} flows, live after start + settle) ==");
    let counter = Arc::new(AtomicU64::new(0));

    let rt = current_thread(false);
    for (label, first) in [
        ("cano every(1h), first run at start", FirstRun::AtStart),
        (
            "cano every(1h), first run after 1h",
            FirstRun::AfterInterval,
        ),
    ] {
        let before = live();
        let running = rt.block_on(async {
            let running = ours_on_tokio(ours(N, Duration::from_secs(3600), first, &counter)).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            running
        });
        let after = live();
        println!("{label:<45} {:>8.0} B", per_flow(before, after, N));
        rt.block_on(async { running.stop().await.unwrap() });
    }
    {
        let before = live();
        let mut s = Scheduler::new();
        for i in 0..N {
            s.manual(&format!("flow-{i}"), our_counter(&counter), ())
                .unwrap();
        }
        let running = rt.block_on(ours_on_tokio(s));
        let after = live();
        println!(
            "{:<45} {:>8.0} B",
            "cano manual",
            per_flow(before, after, N)
        );
        rt.block_on(async { running.stop().await.unwrap() });
    }

    drop(rt);
    {
        let rt = multi_thread();
        let before = live();
        let running = rt.block_on(async {
            let mut s = cano012::Scheduler::new();
            for i in 0..N {
                s.every(
                    &format!("flow-{i}"),
                    cano012_workflow(&counter, None),
                    St::Run,
                    Duration::from_secs(3600),
                )
                .unwrap();
            }
            let running = s.start().await.unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            running
        });
        let after = live();
        println!(
            "{:<45} {:>8.0} B",
            "cano 0.12 every(1h)",
            per_flow(before, after, N)
        );
        rt.block_on(async { running.stop().await.unwrap() });
    }
    {
        let rt = multi_thread();
        let before = live();
        let sched = rt.block_on(async {
            let sched = tokio_cron_scheduler::JobScheduler::new().await.unwrap();
            for _ in 0..N {
                sched
                    .add(tcs_job(Duration::from_secs(3600), &counter))
                    .await
                    .unwrap();
            }
            sched.start().await.unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            sched
        });
        let after = live();
        println!(
            "{:<45} {:>8.0} B",
            "tokio-cron-scheduler repeated(1h)",
            per_flow(before, after, N)
        );
        rt.block_on(async {
            let mut sched = sched;
            sched.shutdown().await.unwrap();
        });
    }
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
    let rt = multi_thread();
    let (running, cpu) = rt.block_on(async {
        let running = ours_on_tokio(ours(
            100_000,
            Duration::from_secs(3600),
            FirstRun::AfterInterval,
            &counter,
        ))
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let c0 = cpu_seconds();
        tokio::time::sleep(window).await;
        (running, cpu_seconds() - c0)
    });
    println!(
        "cano, 100 000 flows every(1h) on tokio mt(2): {:.3} % of a core over {window:?}",
        cpu / window.as_secs_f64() * 100.0
    );
    rt.block_on(async { running.stop().await.unwrap() });

    let cpu = rt.block_on(async {
        let mut s = cano012::Scheduler::new();
        for i in 0..10_000 {
            s.every(
                &format!("flow-{i}"),
                cano012_workflow(&counter, None),
                St::Run,
                Duration::from_secs(3600),
            )
            .unwrap();
        }
        let running = s.start().await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let c0 = cpu_seconds();
        tokio::time::sleep(window).await;
        let cpu = cpu_seconds() - c0;
        running.stop().await.unwrap();
        cpu
    });
    println!(
        "cano 0.12, 10 000 flows every(1h) on tokio mt(2): {:.3} % of a core",
        cpu / window.as_secs_f64() * 100.0
    );
    let cpu = rt.block_on(async {
        let mut sched = tokio_cron_scheduler::JobScheduler::new().await.unwrap();
        for _ in 0..10_000 {
            sched
                .add(tcs_job(Duration::from_secs(3600), &counter))
                .await
                .unwrap();
        }
        sched.start().await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let c0 = cpu_seconds();
        tokio::time::sleep(window).await;
        let cpu = cpu_seconds() - c0;
        sched.shutdown().await.unwrap();
        cpu
    });
    println!(
        "tokio-cron-scheduler, 10 000 jobs repeated(1h) on tokio mt(2): {:.3} % of a core",
        cpu / window.as_secs_f64() * 100.0
    );
}

fn report_dispatch_cpu() {
    println!("\n== process CPU per run, 1 000 flows, real time ==");
    let window = Duration::from_secs(2);
    let counter = Arc::new(AtomicU64::new(0));
    let ct = current_thread(false);
    let measure_ct = |counter: Arc<AtomicU64>, window: Duration| async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (r0, c0) = (counter.load(Ordering::SeqCst), cpu_seconds());
        tokio::time::sleep(window).await;
        let (r1, c1) = (counter.load(Ordering::SeqCst), cpu_seconds());
        let runs = r1 - r0;
        (runs, (c1 - c0) * 1e6 / runs.max(1) as f64)
    };
    let (runs, us) = ct.block_on(async {
        let running = ours_on_tokio(ours(
            1000,
            Duration::from_millis(10),
            FirstRun::AtStart,
            &counter,
        ))
        .await;
        let out = measure_ct(counter.clone(), window).await;
        running.stop().await.unwrap();
        out
    });
    println!(
        "tokio ct: cano every(10ms) fixed delay: {runs} runs in {window:?}, {us:.2} µs CPU per run"
    );
    counter.store(0, Ordering::SeqCst);
    let (runs, us) = ct.block_on(async {
        let mut s = cano012::Scheduler::new();
        for i in 0..1000 {
            s.every(
                &format!("flow-{i}"),
                cano012_workflow(&counter, None),
                St::Run,
                Duration::from_millis(10),
            )
            .unwrap();
        }
        let running = s.start().await.unwrap();
        let out = measure_ct(counter.clone(), window).await;
        running.stop().await.unwrap();
        out
    });
    println!("tokio ct: cano 0.12 every(10ms): {runs} runs in {window:?}, {us:.2} µs CPU per run");
    counter.store(0, Ordering::SeqCst);
    let rt = multi_thread();
    let measure = measure_ct;
    let (runs, us) = rt.block_on(async {
        let running = ours_on_tokio(ours(
            1000,
            Duration::from_millis(10),
            FirstRun::AtStart,
            &counter,
        ))
        .await;
        let out = measure(counter.clone(), window).await;
        running.stop().await.unwrap();
        out
    });
    println!(
        "tokio mt(2): cano every(10ms) fixed delay: {runs} runs in {window:?}, {us:.2} µs CPU per run"
    );
    counter.store(0, Ordering::SeqCst);
    let (runs, us) = rt.block_on(async {
        let mut s = ours(1000, Duration::from_millis(10), FirstRun::AtStart, &counter);
        for i in 0..1000 {
            s.set_interval_mode(&format!("flow-{i}"), IntervalMode::FixedRate)
                .unwrap();
        }
        let running = ours_on_tokio(s).await;
        let out = measure(counter.clone(), window).await;
        running.stop().await.unwrap();
        out
    });
    println!(
        "tokio mt(2): cano every(10ms) fixed rate: {runs} runs in {window:?}, {us:.2} µs CPU per run"
    );
    counter.store(0, Ordering::SeqCst);
    let (runs, us) = rt.block_on(async {
        let mut s = cano012::Scheduler::new();
        for i in 0..1000 {
            s.every(
                &format!("flow-{i}"),
                cano012_workflow(&counter, None),
                St::Run,
                Duration::from_millis(10),
            )
            .unwrap();
        }
        let running = s.start().await.unwrap();
        let out = measure(counter.clone(), window).await;
        running.stop().await.unwrap();
        out
    });
    println!(
        "tokio mt(2): cano 0.12 every(10ms): {runs} runs in {window:?}, {us:.2} µs CPU per run"
    );
    counter.store(0, Ordering::SeqCst);
    let window = Duration::from_secs(3);
    let (runs, us) = rt.block_on(async {
        let mut sched = tokio_cron_scheduler::JobScheduler::new().await.unwrap();
        for _ in 0..1000 {
            sched
                .add(tcs_job(Duration::from_secs(1), &counter))
                .await
                .unwrap();
        }
        sched.start().await.unwrap();
        tokio::time::sleep(Duration::from_millis(900)).await;
        let out = measure(counter.clone(), window).await;
        sched.shutdown().await.unwrap();
        out
    });
    println!(
        "tokio mt(2): tokio-cron-scheduler repeated(1s) (its floor): {runs} runs in {window:?}, {us:.2} µs CPU per run"
    );
}

// ---- criterion groups ----

fn start_10k(c: &mut Criterion) {
    const N: usize = 10_000;
    let mut group = c.benchmark_group("start_10k");
    group.sample_size(10);
    let counter = Arc::new(AtomicU64::new(0));
    let rt = current_thread(false);
    group.bench_function("cano/start", |b| {
        b.iter_batched(
            || ours(N, Duration::from_secs(3600), FirstRun::AtStart, &counter),
            |s| rt.block_on(ours_on_tokio(s)),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("cano/register+start", |b| {
        b.iter_with_large_drop(|| {
            rt.block_on(ours_on_tokio(ours(
                N,
                Duration::from_secs(3600),
                FirstRun::AtStart,
                &counter,
            )))
        })
    });
    let mt = multi_thread();
    let build012 = || {
        let mut s = cano012::Scheduler::new();
        for i in 0..N {
            s.every(
                &format!("flow-{i}"),
                cano012_workflow(&counter, None),
                St::Run,
                Duration::from_secs(3600),
            )
            .unwrap();
        }
        s
    };
    group.bench_function("cano012/start", |b| {
        b.iter_batched(
            build012,
            |s| mt.block_on(async { s.start().await.unwrap() }),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("cano012/register+start", |b| {
        b.iter_with_large_drop(|| {
            let s = build012();
            mt.block_on(async { s.start().await.unwrap() })
        })
    });
    group.bench_function("tokio-cron-scheduler/register+start", |b| {
        b.iter_with_large_drop(|| {
            mt.block_on(async {
                let sched = tokio_cron_scheduler::JobScheduler::new().await.unwrap();
                for _ in 0..N {
                    sched
                        .add(tcs_job(Duration::from_secs(3600), &counter))
                        .await
                        .unwrap();
                }
                sched.start().await.unwrap();
                sched
            })
        })
    });
    group.finish();
}

fn dispatch(c: &mut Criterion) {
    const FLOWS: usize = 1000;
    let mut group = c.benchmark_group("dispatch_1000_flows_10ms");
    group.bench_function("cano/core poll+finish per run", |b| {
        let mut core = SchedulerCore::new();
        for i in 0..FLOWS {
            let id = format!("flow-{i}");
            core.add_flow(&id, Schedule::Every(Duration::from_millis(10)))
                .unwrap();
            core.set_policy(
                &id,
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
                    batch.push(d.flow);
                }
                for flow in batch.drain(..) {
                    core.finish(flow, now, wall, Ok(())).unwrap();
                    done += 1;
                }
                now = core
                    .next_wake()
                    .expect("interval flows always have a next fire");
            }
            started.elapsed()
        })
    });
    for (name, ours_or_012) in [
        ("cano/driver on paused tokio", true),
        ("cano012 on paused tokio", false),
    ] {
        group.bench_function(name, |b| {
            let rt = current_thread(true);
            let counter = Arc::new(AtomicU64::new(0));
            let keep = rt.block_on(async {
                if ours_or_012 {
                    let mut s = ours(
                        FLOWS,
                        Duration::from_millis(10),
                        FirstRun::AtStart,
                        &counter,
                    );
                    for i in 0..FLOWS {
                        s.set_interval_mode(&format!("flow-{i}"), IntervalMode::FixedRate)
                            .unwrap();
                    }
                    (Some(ours_on_tokio(s).await), None)
                } else {
                    let mut s = cano012::Scheduler::new();
                    for i in 0..FLOWS {
                        s.every(
                            &format!("flow-{i}"),
                            cano012_workflow(&counter, None),
                            St::Run,
                            Duration::from_millis(10),
                        )
                        .unwrap();
                    }
                    (None, Some(s.start().await.unwrap()))
                }
            });
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let target = counter.load(Ordering::SeqCst) + iters;
                    let started = StdInstant::now();
                    while counter.load(Ordering::SeqCst) < target {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    started.elapsed()
                })
            });
            drop(keep);
        });
    }
    group.finish();
}

fn trigger_round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("trigger_round_trip");
    let rt = current_thread(false);
    group.bench_function("cano/current_thread", |b| {
        let (tx, mut rx) = mpsc::unbounded();
        let running = rt.block_on(async {
            let mut s = Scheduler::new();
            s.manual("m", our_notifier(tx), ()).unwrap();
            ours_on_tokio(s).await
        });
        b.iter_custom(|iters| {
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
        });
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
    if std::env::var("CANO_BENCH_REPORTS").as_deref() != Ok("0") {
        report_memory();
        report_idle();
        report_dispatch_cpu();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
