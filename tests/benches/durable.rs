//! Checkpoint overhead per transition: the same 10-state workflow, plain and checkpointed
//! into the in-memory store, side by side in one run on one tokio current-thread runtime.
//! The overhead per transition is `(memory_store - plain) / 10` (goal: ≤ 150 ns); a third
//! line adds a compensatable task per state (a completion row and a kept output per state).
//!
//! Run: `cargo bench -p cano-tests --bench durable -- --warm-up-time 1 --measurement-time 3`
//! (`tests/examples/callgrind_workflow.rs` counts the same work's instructions, which the
//! machine's load does not change).

use std::borrow::Cow;
use std::hint::black_box;
use std::time::{Duration, Instant};

use cano_core::checkpoint::{MemoryCheckpointStore, StateKey};
use cano_core::{CanoError, CompensatableTask, Task, TaskContext, TaskResult, Workflow};
use cano_tokio::WorkflowExt;
use criterion::{Criterion, criterion_group, criterion_main};

#[macro_use]
pub mod support;
use support::{CHAIN, S, runtime};

impl StateKey for S {
    fn state_key(&self) -> Cow<'static, str> {
        const KEYS: [&str; 11] = [
            "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "done",
        ];
        Cow::Borrowed(KEYS[CHAIN.iter().position(|s| s == self).unwrap_or(10)])
    }
}

step_task!(pub(crate));

struct Undoable(S);

impl CompensatableTask<S> for Undoable {
    type Output = u32;
    async fn run(&self, _ctx: TaskContext<'_>) -> Result<(TaskResult<S>, u32), CanoError> {
        Ok((TaskResult::Single(self.0), 7))
    }
    async fn compensate(&self, _ctx: TaskContext<'_>, _output: u32) -> Result<(), CanoError> {
        Ok(())
    }
    fn config(&self) -> cano_core::TaskConfig {
        cano_core::TaskConfig::minimal()
    }
    fn name(&self) -> Cow<'static, str> {
        self.0.state_key()
    }
}

fn linear() -> Workflow<S> {
    (0..10)
        .fold(Workflow::bare(), |wf, i| {
            wf.register(CHAIN[i], Step(CHAIN[i + 1]))
        })
        .add_exit_state(S::Done)
}

fn sagas() -> Workflow<S> {
    (0..10)
        .fold(Workflow::bare(), |wf, i| {
            wf.register_compensatable(CHAIN[i], Undoable(CHAIN[i + 1]))
        })
        .add_exit_state(S::Done)
}

fn timed(rt: &tokio::runtime::Runtime, iters: u64, wf: &Workflow<S>) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(wf.orchestrate(black_box(S::S0)).await.unwrap());
        }
        start.elapsed()
    })
}

fn checkpoint_overhead(c: &mut Criterion) {
    let rt = runtime();
    let plain = linear();
    let checkpointed = linear()
        .with_checkpoint_store(MemoryCheckpointStore::new())
        .with_workflow_id("bench");
    let saga = sagas()
        .with_checkpoint_store(MemoryCheckpointStore::new())
        .with_workflow_id("bench");
    for wf in [&plain, &checkpointed, &saga] {
        assert_eq!(rt.block_on(wf.orchestrate(S::S0)), Ok(S::Done));
    }
    let mut group = c.benchmark_group("linear_10_states");
    group.bench_function("plain", |b| {
        b.iter_custom(|iters| timed(&rt, iters, &plain))
    });
    group.bench_function("memory_store", |b| {
        b.iter_custom(|iters| timed(&rt, iters, &checkpointed))
    });
    group.bench_function("memory_store_compensatable", |b| {
        b.iter_custom(|iters| timed(&rt, iters, &saga))
    });
    group.finish();
}

criterion_group!(benches, checkpoint_overhead);
criterion_main!(benches);
