//! The workflow engine and the trigger round trip side by side with cano 0.15.4
//! (crates.io), in the same run, on the same tokio current-thread runtime, doing the same
//! work (the shared builders are in `src/lib.rs`):
//!
//! * `orchestrate_1_state`, `linear_10_states`: one run of a 1-state / 10-state workflow;
//! * `split_join_16`: one split of 16 trivial branches, `JoinStrategy::All`. cano 0.15
//!   spawns every branch (a `JoinSet`): `cano/spawned` is the like-for-like row,
//!   `cano/in-place` (cano's default) does less work than its peer;
//! * `trigger_round_trip`: trigger a manual flow, its run wakes the caller, repeat; cano's
//!   job is a 1-state workflow (like for like) or a `job_fn` closure;
//! * `start_10k`: `start()` of 10 000 flows every hour, current-thread on both sides.
//!
//! Before the criterion groups it prints the live heap bytes per registered flow (10 000
//! flows every hour, started, settled), from a counting global allocator, each row in a
//! fresh process (this binary again with `CANO_BENCH_ROW`).
//!
//! Each measurement loops inside one `block_on`. Run from `tests/peer015`:
//! `cargo bench --ignore-rust-version --bench engine -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use cano_peer015::{Count, S, ours, peer, runtime, timed};
use cano_tokio::WorkflowExt;
use criterion::{BatchSize, Criterion, criterion_group};
use futures::channel::mpsc;

#[path = "../../benches/support/counting_alloc.rs"]
pub mod counting_alloc;
use counting_alloc::live;

const FLOWS: usize = 10_000;

/// A counter whose wake-ups go nowhere (no caller waits in these rows).
fn quiet_count() -> Count {
    let (tx, _) = mpsc::unbounded();
    Count(Arc::new(AtomicU64::new(0)), tx)
}

/// One memory row: live heap bytes per flow after registering, starting and settling.
fn memory_row(row: &str) {
    let rt = runtime();
    let count = quiet_count();
    let before = live();
    let settle = Duration::from_millis(300);
    let (label, after) = match row {
        "cano-job_fn" | "cano-workflow" => {
            let workflow = row == "cano-workflow";
            let running = rt.block_on(async {
                let running = ours::start(ours::every_hour(FLOWS, &count, workflow)).await;
                tokio::time::sleep(settle).await;
                running
            });
            let after = live();
            rt.block_on(async { drop(running.stop().await) });
            (
                if workflow {
                    "cano, 1-state workflow job"
                } else {
                    "cano, job_fn"
                },
                after,
            )
        }
        _ => {
            let running = rt.block_on(async {
                let running = peer::every_hour(FLOWS, &count).start().await.unwrap();
                tokio::time::sleep(settle).await;
                running
            });
            let after = live();
            rt.block_on(async { drop(running.stop().await) });
            ("cano 0.15.4 (a workflow)", after)
        }
    };
    let per_flow = (after - before) as f64 / FLOWS as f64;
    println!("{label:<40} {per_flow:>8.0} B");
}

fn report_memory() {
    println!(
        "\n== heap bytes per flow, {FLOWS} flows every(1h), current thread, one process per row =="
    );
    let exe = std::env::current_exe().expect("the bench binary's path");
    for row in ["cano-job_fn", "cano-workflow", "cano-0.15.4"] {
        let output = std::process::Command::new(&exe)
            .env("CANO_BENCH_ROW", row)
            .output()
            .expect("the bench binary runs");
        print!("{}", String::from_utf8_lossy(&output.stdout));
        if !output.status.success() {
            println!("{row} failed: {}", String::from_utf8_lossy(&output.stderr));
        }
    }
}

fn workflows(c: &mut Criterion) {
    let rt = runtime();
    for (name, states) in [("orchestrate_1_state", 1), ("linear_10_states", 10)] {
        let (ours, peer) = (ours::linear(states), peer::linear(states));
        assert_eq!(rt.block_on(ours.orchestrate(S::S0)), Ok(S::Done));
        assert_eq!(
            rt.block_on(peer.orchestrate(S::S0, cano015::CancellationToken::disabled()))
                .ok(),
            Some(S::Done)
        );
        let mut group = c.benchmark_group(name);
        group.bench_function("cano", |b| {
            b.iter_custom(|iters| timed(&rt, iters, || ours.orchestrate(black_box(S::S0))))
        });
        group.bench_function("cano_0_15", |b| {
            b.iter_custom(|iters| {
                timed(&rt, iters, || {
                    peer.orchestrate(black_box(S::S0), cano015::CancellationToken::disabled())
                })
            })
        });
        group.finish();
    }
    let (in_place, spawned, peer) = (
        ours::split(16, false),
        ours::split(16, true),
        peer::split(16),
    );
    assert_eq!(rt.block_on(in_place.orchestrate(S::S0)), Ok(S::Done));
    assert_eq!(rt.block_on(spawned.orchestrate(S::S0)), Ok(S::Done));
    assert_eq!(
        rt.block_on(peer.orchestrate(S::S0, cano015::CancellationToken::disabled()))
            .ok(),
        Some(S::Done)
    );
    let mut group = c.benchmark_group("split_join_16");
    group.bench_function("cano/in-place", |b| {
        b.iter_custom(|iters| timed(&rt, iters, || in_place.orchestrate(black_box(S::S0))))
    });
    group.bench_function("cano/spawned", |b| {
        b.iter_custom(|iters| timed(&rt, iters, || spawned.orchestrate(black_box(S::S0))))
    });
    group.bench_function("cano_0_15/spawned", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, || {
                peer.orchestrate(black_box(S::S0), cano015::CancellationToken::disabled())
            })
        })
    });
    group.finish();
}

fn trigger_round_trip(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("trigger_round_trip");
    for (name, workflow) in [("cano/workflow", true), ("cano/job_fn", false)] {
        let (tx, mut rx) = mpsc::unbounded();
        let running = rt.block_on(ours::manual(
            Count(Arc::new(AtomicU64::new(0)), tx),
            workflow,
        ));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    ours::round_trips(&running, &mut rx, iters).await;
                    start.elapsed()
                })
            })
        });
        rt.block_on(async { drop(running.stop().await) });
    }
    let (tx, mut rx) = mpsc::unbounded();
    let running = rt.block_on(peer::manual(Count(Arc::new(AtomicU64::new(0)), tx)));
    group.bench_function("cano_0_15/workflow", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                peer::round_trips(&running, &mut rx, iters).await;
                start.elapsed()
            })
        })
    });
    rt.block_on(async { drop(running.stop().await) });
    group.finish();
}

/// `start()` of 10 000 hourly flows, current thread on both sides.
fn start_10k(c: &mut Criterion) {
    let rt = runtime();
    let count = quiet_count();
    let mut group = c.benchmark_group("start_10k");
    group.sample_size(10);
    for (name, workflow) in [("cano/job_fn", false), ("cano/workflow", true)] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || ours::every_hour(FLOWS, &count, workflow),
                |s| rt.block_on(ours::start(s)),
                BatchSize::PerIteration,
            )
        });
    }
    group.bench_function("cano_0_15/workflow", |b| {
        b.iter_batched(
            || peer::every_hour(FLOWS, &count),
            |s| rt.block_on(async { s.start().await.unwrap() }),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, workflows, trigger_round_trip, start_10k);

fn main() {
    if let Ok(row) = std::env::var("CANO_BENCH_ROW") {
        memory_row(&row);
        return;
    }
    report_memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
