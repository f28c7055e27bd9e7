//! cano's processing models side by side with cano 0.15.4 (crates.io), in the same run, on the
//! same tokio current-thread runtime, doing the same work:
//!
//! * `batch_c1` / `batch_c16`: one batch of 1 000 trivial items (load, process each, finish
//!   summing the outputs) at concurrency 1 and 16; compare the time per batch (÷ 1 000 for
//!   per item);
//! * `poll_loop`: a poll task answering `Pending` with no pause 1 000 times, then `Ready`
//!   (both crates yield to the executor on a zero pause); per iteration ÷ 1 000;
//! * `rate_limiter_try_acquire` / `rate_limiter_acquire`: one permit from a bucket that always
//!   has one (no waiting), synchronously and through the async `acquire`, same policy on both
//!   sides (cano's lock-free bucket applies to it).
//!
//! Each measurement loops inside one `block_on`. Run from `tests/peer015`:
//! `cargo bench --ignore-rust-version --bench shapes -- --warm-up-time 1 --measurement-time 3`

// cano 0.15's macros name their crate `cano`.
extern crate cano015 as cano;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cano_peer015::{runtime, timed};
use criterion::{Criterion, criterion_group, criterion_main};

const ITEMS: u64 = 1_000;
const POLLS: u32 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum S {
    Done,
}

mod ours {
    use super::*;
    use cano_core::random::SplitMix64;
    use cano_core::shapes::batch::{BatchTask, run_batch};
    use cano_core::shapes::poll::{PollOutcome, PollTask, run_poll_loop};
    use cano_core::{CanoError, Resources, TaskResult};
    use cano_tokio::TokioClock;

    pub(crate) struct Sum(pub(crate) usize);

    impl BatchTask<S> for Sum {
        type Item = u64;
        type Output = u64;
        fn concurrency(&self) -> usize {
            self.0
        }
        async fn load(&self, _res: &Resources) -> Result<Vec<u64>, CanoError> {
            Ok((0..ITEMS).collect())
        }
        async fn process_item(&self, _res: &Resources, item: &u64) -> Result<u64, CanoError> {
            Ok(black_box(*item) * 2)
        }
        async fn finish(
            &self,
            _res: &Resources,
            outputs: Vec<Result<u64, CanoError>>,
        ) -> Result<TaskResult<S>, CanoError> {
            let sum: u64 = outputs.into_iter().map(|o| o.unwrap_or(0)).sum();
            assert_eq!(sum, ITEMS * (ITEMS - 1));
            Ok(TaskResult::Single(S::Done))
        }
    }

    pub(crate) struct Spin(pub(crate) AtomicU32);

    impl PollTask<S> for Spin {
        async fn poll(&self, _res: &Resources) -> Result<PollOutcome<S>, CanoError> {
            if self.0.fetch_add(1, Ordering::Relaxed) % (POLLS + 1) == POLLS {
                Ok(PollOutcome::Ready(TaskResult::Single(S::Done)))
            } else {
                Ok(PollOutcome::Pending {
                    after: Duration::ZERO,
                })
            }
        }
    }

    pub(crate) struct Env {
        pub(crate) res: Resources,
        pub(crate) clock: TokioClock,
        pub(crate) random: SplitMix64,
    }

    pub(crate) async fn batch(env: &Env, task: &Sum) -> S {
        run_batch(task, &env.res, &env.clock, &env.random)
            .await
            .unwrap()
            .into_state()
    }

    pub(crate) async fn poll(env: &Env, task: &Spin) -> S {
        run_poll_loop(task, &env.res, &env.clock)
            .await
            .unwrap()
            .into_state()
    }
}

mod peer {
    use super::*;
    use cano015::{CanoError, PollOutcome, Resources, TaskResult, task};

    pub(crate) struct Sum(pub(crate) usize);

    #[task::batch(state = S)]
    impl Sum {
        fn concurrency(&self) -> usize {
            self.0
        }
        async fn load(&self, _res: &Resources) -> Result<Vec<u64>, CanoError> {
            Ok((0..ITEMS).collect())
        }
        async fn process_item(&self, item: &u64) -> Result<u64, CanoError> {
            Ok(black_box(*item) * 2)
        }
        async fn finish(
            &self,
            _res: &Resources,
            outputs: Vec<Result<u64, CanoError>>,
        ) -> Result<TaskResult<S>, CanoError> {
            let sum: u64 = outputs.into_iter().map(|o| o.unwrap_or(0)).sum();
            assert_eq!(sum, ITEMS * (ITEMS - 1));
            Ok(TaskResult::Single(S::Done))
        }
    }

    pub(crate) struct Spin(pub(crate) AtomicU32);

    #[task::poll(state = S)]
    impl Spin {
        async fn poll(&self, _res: &Resources) -> Result<PollOutcome<S>, CanoError> {
            if self.0.fetch_add(1, Ordering::Relaxed) % (POLLS + 1) == POLLS {
                Ok(PollOutcome::Ready(TaskResult::Single(S::Done)))
            } else {
                Ok(PollOutcome::Pending { delay_ms: 0 })
            }
        }
    }

    pub(crate) async fn batch(res: &Resources, task: &Sum) -> S {
        match cano015::run_batch(task, res).await.unwrap() {
            TaskResult::Single(s) => s,
            TaskResult::Split(_) => unreachable!(),
        }
    }

    pub(crate) async fn poll(res: &Resources, task: &Spin) -> S {
        match cano015::run_poll_loop(task, res).await.unwrap() {
            TaskResult::Single(s) => s,
            TaskResult::Split(_) => unreachable!(),
        }
    }
}

fn shapes(c: &mut Criterion) {
    let rt = runtime();
    let _entered = rt.enter();
    let env = ours::Env {
        res: cano_core::Resources::new(),
        clock: cano_tokio::TokioClock::new(),
        random: cano_core::random::SplitMix64::new(7),
    };
    let peer_res = cano015::Resources::new();

    for concurrency in [1usize, 16] {
        let (ours_task, peer_task) = (ours::Sum(concurrency), peer::Sum(concurrency));
        assert_eq!(rt.block_on(ours::batch(&env, &ours_task)), S::Done);
        assert_eq!(rt.block_on(peer::batch(&peer_res, &peer_task)), S::Done);
        let mut group = c.benchmark_group(format!("batch_c{concurrency}_1000_items"));
        group.bench_function("cano", |b| {
            b.iter_custom(|iters| timed(&rt, iters, || ours::batch(&env, &ours_task)))
        });
        group.bench_function("cano_0_15", |b| {
            b.iter_custom(|iters| timed(&rt, iters, || peer::batch(&peer_res, &peer_task)))
        });
        group.finish();
    }

    let (ours_spin, peer_spin) = (ours::Spin(AtomicU32::new(0)), peer::Spin(AtomicU32::new(0)));
    assert_eq!(rt.block_on(ours::poll(&env, &ours_spin)), S::Done);
    assert_eq!(rt.block_on(peer::poll(&peer_res, &peer_spin)), S::Done);
    assert_eq!(ours_spin.0.load(Ordering::Relaxed), POLLS + 1);
    assert_eq!(peer_spin.0.load(Ordering::Relaxed), POLLS + 1);
    let mut group = c.benchmark_group("poll_loop_1000_iterations");
    group.bench_function("cano", |b| {
        b.iter_custom(|iters| timed(&rt, iters, || ours::poll(&env, &ours_spin)))
    });
    group.bench_function("cano_0_15", |b| {
        b.iter_custom(|iters| timed(&rt, iters, || peer::poll(&peer_res, &peer_spin)))
    });
    group.finish();

    // The same policy on both sides: a million tokens a second and room for 2^32 - 1, so
    // neither bucket runs dry within a measurement.
    let ours_limiter = cano_core::rate_limit::RateLimiter::new(
        cano_core::rate_limit::RateLimiterPolicy::per_second(1_000_000)
            .with_max_tokens(u64::from(u32::MAX)),
    )
    .unwrap();
    let peer_limiter = Arc::new(cano015::RateLimiter::new(
        cano015::RateLimiterPolicy::per_second(1_000_000).with_max_tokens(u32::MAX),
    ));
    let clock = env.clock;
    let mut group = c.benchmark_group("rate_limiter_try_acquire");
    group.bench_function("cano", |b| {
        b.iter(|| black_box(ours_limiter.try_acquire(&clock)).is_ok())
    });
    group.bench_function("cano_0_15", |b| {
        b.iter(|| black_box(peer_limiter.try_acquire()).is_some())
    });
    group.finish();
    let mut group = c.benchmark_group("rate_limiter_acquire");
    group.bench_function("cano", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, || async {
                ours_limiter.acquire(&clock).await.is_ok()
            })
        })
    });
    group.bench_function("cano_0_15", |b| {
        b.iter_custom(|iters| timed(&rt, iters, || async { drop(peer_limiter.acquire().await) }))
    });
    group.finish();
}

criterion_group!(benches, shapes);
criterion_main!(benches);
