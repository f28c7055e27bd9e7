//! The workflow engine and the trigger round trip side by side with cano 0.15.4
//! (crates.io), in the same run, on the same tokio current-thread runtime, doing the same
//! work (the shared builders are in `src/lib.rs`):
//!
//! * `orchestrate_1_state`, `linear_10_states`: one run of a 1-state / 10-state workflow;
//! * `split_join_16`: one split of 16 trivial branches, `JoinStrategy::All`. cano 0.15
//!   spawns every branch (a `JoinSet`): `cano/spawned` is the like-for-like row,
//!   `cano/in-place` (cano's default) does less work than its peer;
//! * `trigger_round_trip`: trigger a manual flow, its run wakes the caller, repeat; cano's
//!   job is a 1-state workflow (like for like) or a `job_fn` closure.
//!
//! Each measurement loops inside one `block_on`. Run from `tests/peer015`:
//! `cargo bench --ignore-rust-version --bench engine -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use cano_peer015::{Count, S, ours, peer, runtime};
use cano_tokio::WorkflowExt;
use criterion::{Criterion, criterion_group, criterion_main};
use futures::channel::mpsc;

/// Times `iters` sequential runs inside one `block_on`.
fn timed<F, Fut, T>(rt: &tokio::runtime::Runtime, iters: u64, mut run: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(run().await);
        }
        start.elapsed()
    })
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

criterion_group!(benches, workflows, trigger_round_trip);
criterion_main!(benches);
