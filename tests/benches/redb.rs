//! Checkpointed workflows on redb, side by side with cano 0.12's `RedbCheckpointStore`, in
//! the same run, on the same tokio multi-thread runtime, with `Durability::Immediate` on
//! both sides (cano 0.12 always commits with redb's default, `Immediate`).
//!
//! Both sides do the same work per workflow: one checkpoint row before each of its states
//! (10 states, so 10 rows in total per run) and one call that clears the run's log when
//! it ends. Each side gets a fresh file in the same directory.
//!
//! * `redb_one_workflow_10_states`: one workflow at a time; the time per transition is the
//!   reported time / 10.
//! * `redb_1000_workflows_10_states`: 1 000 workflows started together (distinct ids) and
//!   awaited; cano's group commit batches their rows into shared transactions, cano 0.12
//!   commits each row in its own transaction. Set `CANO_BENCH_WORKFLOWS` to run fewer
//!   (cano 0.12 needs roughly 11 000 fsyncs per iteration at 1 000).
//!
//! Run: `cargo bench -p cano-tests --bench redb -- --warm-up-time 1 --measurement-time 5`
//! (the 1 000-workflow group uses flat sampling with 10 samples of one iteration each).

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};

#[macro_use]
pub mod support;
use support::{CHAIN, S};

/// cano 0.12's chain: nine working states and the exit state; 0.12 writes a row on entering
/// every state, the exit state included: ten rows.
const CHAIN_0_12: [S; 10] = [
    S::S0,
    S::S1,
    S::S2,
    S::S3,
    S::S4,
    S::S5,
    S::S6,
    S::S7,
    S::S8,
    S::Done,
];

// cano's chain is `support::CHAIN`: ten working states and the exit state; cano writes a
// row before each working state (none for the exit state, the run's `finish` records the
// end): ten rows.

/// A directory for this run's store files, removed at the end.
struct BenchDir(PathBuf);

impl BenchDir {
    fn new() -> BenchDir {
        let dir = std::env::temp_dir().join(format!("cano-redb-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the bench directory");
        BenchDir(dir)
    }
}

impl Drop for BenchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// cano (this workspace) on cano-redb.
mod ours {
    use super::{CHAIN, S};
    use cano_core::checkpoint::{CheckpointStore, StateKey};
    use cano_core::{CanoError, Task, TaskResult, Workflow};
    use std::borrow::Cow;

    impl StateKey for S {
        fn state_key(&self) -> Cow<'static, str> {
            Cow::Owned(format!("{self:?}"))
        }
    }

    step_task!(pub(crate));

    pub(crate) fn workflow(store: impl CheckpointStore + 'static, id: String) -> Workflow<S> {
        (0..CHAIN.len() - 1)
            .fold(Workflow::bare(), |wf, i| {
                wf.register(CHAIN[i], Step(CHAIN[i + 1]))
            })
            .add_exit_state(S::Done)
            .with_checkpoint_store(store)
            .with_workflow_id(id)
    }
}

/// cano 0.12.0 from crates.io with its `recovery` feature.
mod reference {
    use super::{CHAIN_0_12 as CHAIN, S};
    use cano012::prelude::*;
    use std::sync::Arc;

    step_task!(#[task] pub(crate));

    pub(crate) fn workflow(store: Arc<dyn CheckpointStore>, id: String) -> Workflow<S> {
        (0..CHAIN.len() - 1)
            .fold(Workflow::bare(), |wf, i| {
                wf.register(CHAIN[i], Step(CHAIN[i + 1]))
            })
            .add_exit_state(S::Done)
            .with_checkpoint_store(store)
            .with_workflow_id(id)
    }

    pub(crate) fn store(path: &std::path::Path) -> Arc<dyn CheckpointStore> {
        Arc::new(RedbCheckpointStore::new(path).expect("open cano 0.12's redb store"))
    }

    /// Counts the rows and clears a workflow writes, to check both sides do the same work.
    #[derive(Default)]
    pub(crate) struct Counting {
        pub(crate) appends: std::sync::atomic::AtomicUsize,
        pub(crate) clears: std::sync::atomic::AtomicUsize,
    }

    #[checkpoint_store]
    impl CheckpointStore for Counting {
        async fn append(&self, _id: &str, _row: CheckpointRow) -> Result<(), CanoError> {
            self.appends
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        }
        async fn load_run(&self, _id: &str) -> Result<Vec<CheckpointRow>, CanoError> {
            Ok(Vec::new())
        }
        async fn clear(&self, _id: &str) -> Result<(), CanoError> {
            self.clears
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        }
    }

    /// The rows left in a run's log.
    pub(crate) fn rows_of(store: &Arc<dyn CheckpointStore>, id: &str) -> usize {
        futures::executor::block_on(store.load_run(id))
            .expect("load")
            .len()
    }
}

/// Rows each run writes on both sides.
const ROWS_PER_RUN: usize = 10;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a tokio runtime")
}

fn workflow_count() -> usize {
    std::env::var("CANO_BENCH_WORKFLOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

fn open_ours(rt: &tokio::runtime::Runtime, path: PathBuf) -> cano_redb::RedbStore {
    rt.block_on(cano_redb::RedbStore::open(path))
        .expect("open cano-redb")
}

fn redb(c: &mut Criterion) {
    use cano_core::checkpoint::{
        CheckpointStore, MemoryCheckpointStore, RunId, RunLog, RunOutcome,
    };
    use cano_tokio::WorkflowExt;

    let rt = runtime();
    let dir = BenchDir::new();

    // The work per run on cano's side: row 0 with the start, nine appends, one finish.
    let memory = MemoryCheckpointStore::new().with_tombstones(1);
    let counted = ours::workflow(memory.clone(), "counted".into());
    assert_eq!(rt.block_on(counted.orchestrate(S::S0)), Ok(S::Done));
    assert_eq!(memory.appends() as usize + 1, ROWS_PER_RUN);
    assert_eq!(
        memory.log(&RunId::new("counted")),
        RunLog::Finished(RunOutcome::Completed)
    );

    // The work per run on the cano 0.12 side: ten rows, one clear.
    let counting = Arc::new(reference::Counting::default());
    let counted = reference::workflow(counting.clone(), "counted".into());
    assert_eq!(rt.block_on(counted.orchestrate(S::S0)).ok(), Some(S::Done));
    assert_eq!(
        counting.appends.load(std::sync::atomic::Ordering::Relaxed),
        ROWS_PER_RUN
    );
    assert_eq!(
        counting.clears.load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    // cano 0.12: one workflow at a time.
    let reference_store = reference::store(&dir.0.join("cano012-one.redb"));
    let reference_one = reference::workflow(Arc::clone(&reference_store), "one".into());
    assert_eq!(
        rt.block_on(reference_one.orchestrate(S::S0)).ok(),
        Some(S::Done)
    );
    assert_eq!(
        reference::rows_of(&reference_store, "one"),
        0,
        "cleared at the end"
    );

    let ours_store = open_ours(&rt, dir.0.join("cano-one.redb"));
    let ours_one = ours::workflow(ours_store.clone(), "one".into());
    assert_eq!(rt.block_on(ours_one.orchestrate(S::S0)), Ok(S::Done));
    assert_eq!(
        rt.block_on(ours_store.load(&RunId::new("one"))),
        Ok(RunLog::Unknown),
        "finished and cleared"
    );

    let mut group = c.benchmark_group("redb_one_workflow_10_states");
    group.bench_function("cano", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(ours_one.orchestrate(S::S0).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("cano_0_12", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(reference_one.orchestrate(S::S0).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    group.finish();

    // cano 0.12: many workflows at once, each its own id and `Workflow` (0.12 names the
    // run on the builder), all on one store.
    let n = workflow_count();
    let reference_store = reference::store(&dir.0.join("cano012-many.redb"));
    let reference_many: Arc<Vec<_>> = Arc::new(
        (0..n)
            .map(|i| reference::workflow(Arc::clone(&reference_store), format!("run-{i}")))
            .collect(),
    );
    let ours_store = open_ours(&rt, dir.0.join("cano-many.redb"));
    let ours_many: Arc<Vec<_>> = Arc::new(
        (0..n)
            .map(|i| ours::workflow(ours_store.clone(), format!("run-{i}")))
            .collect(),
    );
    let mut group = c.benchmark_group(format!("redb_{n}_workflows_10_states"));
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group.bench_function("cano", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let runs: Vec<_> = (0..n)
                        .map(|i| {
                            let all = Arc::clone(&ours_many);
                            tokio::spawn(async move { all[i].orchestrate(S::S0).await })
                        })
                        .collect();
                    for run in runs {
                        assert_eq!(run.await.unwrap(), Ok(S::Done));
                    }
                    total += start.elapsed();
                }
                total
            })
        })
    });
    group.bench_function("cano_0_12", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let runs: Vec<_> = (0..n)
                        .map(|i| {
                            let all = Arc::clone(&reference_many);
                            tokio::spawn(async move { all[i].orchestrate(S::S0).await })
                        })
                        .collect();
                    for run in runs {
                        assert_eq!(run.await.unwrap().ok(), Some(S::Done));
                    }
                    total += start.elapsed();
                }
                total
            })
        })
    });
    group.finish();
    assert_eq!(reference::rows_of(&reference_store, "run-0"), 0);
    assert_eq!(
        rt.block_on(ours_store.list_unfinished()),
        Ok(Vec::new()),
        "every run of cano's side finished"
    );
    let stats = ours_store.commit_stats();
    eprintln!(
        "cano-redb group commit over the run: {} writes in {} transactions (largest {})",
        stats.writes, stats.transactions, stats.largest_batch
    );
}

criterion_group!(benches, redb);
criterion_main!(benches);
