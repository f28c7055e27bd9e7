//! Lock scaling, side by side with cano 0.12 (crates.io) in the same run.
//!
//! Objects that share nothing must not contend. Two groups, each measured for both crates:
//!
//! * `store_independent_threads`: each thread owns its own `MemoryStore` and does a `put` and
//!   a `get` per element; 1 thread against 2 threads. With a lock per store, 2 threads give
//!   about twice the throughput of one on a 2-core machine.
//! * `workflows_with_store`: 8 tokio tasks, each orchestrating its own two-state workflow
//!   whose tasks read and write the workflow's own `MemoryStore` resource; a multi-threaded
//!   runtime with 1 worker against 2 workers.
//!
//! Criterion reports each line's throughput (elements per second); the scaling figure is the
//! 2-thread (2-worker) throughput divided by the 1-thread (1-worker) one, for each crate (see
//! the README table). Both crates do exactly the same work in every line.
//!
//! Run: `cargo bench -p cano-tests --bench locks -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Workflows run at once in `workflows_with_store`.
const WORKFLOWS: u64 = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum S {
    Write,
    Bump,
    Done,
}

/// The same store loop and workflow, built with whichever crate's API is in scope.
macro_rules! lock_workloads {
    () => {
        /// One element: a `put` then a `get` on this thread's own store.
        pub(crate) fn store_ops(store: &MemoryStore, n: u64) {
            for i in 0..n {
                store.put("counter", black_box(i)).unwrap();
                black_box(store.get::<u64>("counter").unwrap());
            }
        }

        pub(crate) struct Write;
        pub(crate) struct Bump;

        pub(crate) fn workflow() -> Workflow<S> {
            Workflow::new(resources_with_store())
                .register(S::Write, Write)
                .register(S::Bump, Bump)
                .add_exit_state(S::Done)
        }
    };
}

/// cano (this workspace).
mod ours {
    use super::S;
    use cano_core::{CanoError, MemoryStore, Resources, Task, TaskResult, Workflow};
    use std::hint::black_box;

    impl Task<S> for Write {
        async fn run(&self, res: &Resources) -> Result<TaskResult<S>, CanoError> {
            res.get::<MemoryStore, _>("store")?.put("n", 1u64)?;
            Ok(TaskResult::Single(S::Bump))
        }
    }

    impl Task<S> for Bump {
        async fn run(&self, res: &Resources) -> Result<TaskResult<S>, CanoError> {
            let store = res.get::<MemoryStore, _>("store")?;
            let n: u64 = store.get("n")?;
            store.put("n", n + 1)?;
            Ok(TaskResult::Single(S::Done))
        }
    }

    fn resources_with_store() -> Resources {
        Resources::new()
            .insert("store", MemoryStore::new())
            .expect("one resource under one key")
    }

    lock_workloads!();
}

/// cano 0.12.0 from crates.io.
mod reference {
    use super::S;
    use cano012::prelude::*;
    use std::hint::black_box;

    #[task]
    impl Task<S> for Write {
        async fn run(&self, res: &Resources) -> Result<TaskResult<S>, CanoError> {
            res.get::<MemoryStore, _>("store")?.put("n", 1u64)?;
            Ok(TaskResult::Single(S::Bump))
        }
    }

    #[task]
    impl Task<S> for Bump {
        async fn run(&self, res: &Resources) -> Result<TaskResult<S>, CanoError> {
            let store = res.get::<MemoryStore, _>("store")?;
            let n: u64 = store.get("n")?;
            store.put("n", n + 1)?;
            Ok(TaskResult::Single(S::Done))
        }
    }

    fn resources_with_store() -> Resources {
        Resources::new().insert("store", MemoryStore::new())
    }

    lock_workloads!();
}

/// Runs `work(iters)` on `threads` threads at once, each started by one barrier, and returns
/// the slowest thread's time. Each thread makes its own state (`setup`) before the barrier.
fn on_threads<T>(
    threads: usize,
    iters: u64,
    setup: impl Fn() -> T + Sync,
    work: impl Fn(&T, u64) + Sync,
) -> Duration {
    let barrier = Barrier::new(threads);
    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let state = setup();
                    barrier.wait();
                    let start = Instant::now();
                    work(&state, iters);
                    start.elapsed()
                })
            })
            .collect();
        runs.into_iter()
            .map(|run| run.join().expect("a benchmark thread"))
            .max()
            .unwrap_or_default()
    })
}

fn store_independent_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_independent_threads");
    for threads in [1usize, 2] {
        // One element = one put and one get on one thread.
        group.throughput(Throughput::Elements(threads as u64));
        group.bench_function(format!("cano/{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                on_threads(threads, iters, cano_core::MemoryStore::new, ours::store_ops)
            })
        });
        group.bench_function(format!("cano_0_12/{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                on_threads(
                    threads,
                    iters,
                    cano012::MemoryStore::new,
                    reference::store_ops,
                )
            })
        });
    }
    group.finish();
}

fn multi_thread_runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_time()
        .build()
        .expect("a tokio runtime")
}

/// Times `WORKFLOWS` tokio tasks, each orchestrating its own workflow `iters` times.
fn concurrent_workflows<W, F, Fut>(
    rt: &tokio::runtime::Runtime,
    workflows: &[Arc<W>],
    iters: u64,
    orchestrate: F,
) -> Duration
where
    W: Send + Sync + 'static,
    F: Fn(Arc<W>) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = S> + Send,
{
    rt.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = workflows
            .iter()
            .map(|workflow| {
                let workflow = workflow.clone();
                tokio::spawn(async move {
                    for _ in 0..iters {
                        black_box(orchestrate(workflow.clone()).await);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("a workflow task");
        }
        start.elapsed()
    })
}

fn workflows_with_store(c: &mut Criterion) {
    use cano_tokio::WorkflowExt;

    let ours: Vec<_> = (0..WORKFLOWS).map(|_| Arc::new(ours::workflow())).collect();
    let reference: Vec<_> = (0..WORKFLOWS)
        .map(|_| Arc::new(reference::workflow()))
        .collect();
    let mut group = c.benchmark_group("workflows_with_store");
    // One element = one orchestration of each of the 8 workflows.
    group.throughput(Throughput::Elements(WORKFLOWS));
    for workers in [1usize, 2] {
        let rt = multi_thread_runtime(workers);
        // Both must actually complete before being timed.
        for workflow in &ours {
            assert_eq!(rt.block_on(workflow.orchestrate(S::Write)), Ok(S::Done));
        }
        for workflow in &reference {
            assert_eq!(
                rt.block_on(workflow.orchestrate(S::Write)).ok(),
                Some(S::Done)
            );
        }
        group.bench_function(format!("cano/{workers}_workers"), |b| {
            b.iter_custom(|iters| {
                concurrent_workflows(&rt, &ours, iters, |workflow| async move {
                    workflow.orchestrate(S::Write).await.unwrap()
                })
            })
        });
        group.bench_function(format!("cano_0_12/{workers}_workers"), |b| {
            b.iter_custom(|iters| {
                concurrent_workflows(&rt, &reference, iters, |workflow| async move {
                    workflow.orchestrate(S::Write).await.unwrap()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, store_independent_threads, workflows_with_store);
criterion_main!(benches);
