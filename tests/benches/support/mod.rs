//! What the benchmarks share: the states of their workflows, the linear workflow built with
//! whichever crate's API is in scope, the runtime and the timing loop. Included as a module
//! by the benches in `tests/benches/` and, with `#[path]`, by `tests/peer015`'s library, so
//! that every side of every comparison runs the same workflow shapes.

// Each bench uses a part of what is here.
#![allow(dead_code, unused_macros)]

use std::hint::black_box;
use std::time::{Duration, Instant};

/// The states of every workflow in the benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum S {
    /// The first state of every workflow.
    S0,
    /// A working state of a chain.
    S1,
    /// A working state of a chain.
    S2,
    /// A working state of a chain.
    S3,
    /// A working state of a chain.
    S4,
    /// A working state of a chain.
    S5,
    /// A working state of a chain.
    S6,
    /// A working state of a chain.
    S7,
    /// A working state of a chain.
    S8,
    /// A working state of a chain.
    S9,
    /// The state of a split, in the benches that fan out from a state of its own.
    Fan,
    /// The exit state.
    Done,
}

/// Ten working states and the exit state, in the order a linear workflow visits them.
pub const CHAIN: [S; 11] = [
    S::S0,
    S::S1,
    S::S2,
    S::S3,
    S::S4,
    S::S5,
    S::S6,
    S::S7,
    S::S8,
    S::S9,
    S::Done,
];

/// The state after the `i`-th of a linear workflow of `states` states: the next one of
/// [`CHAIN`], or [`S::Done`] after the last.
pub fn next_state(i: usize, states: usize) -> S {
    if i + 1 == states {
        S::Done
    } else {
        CHAIN[i + 1]
    }
}

/// A current-thread tokio runtime with time.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime")
}

/// Times `iters` sequential runs inside one `block_on`, so that no run pays a runtime entry.
pub fn timed<F, Fut, T>(rt: &tokio::runtime::Runtime, iters: u64, mut run: F) -> Duration
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

/// Defines `linear(states)`: a workflow of `states` states of [`CHAIN`], each a `Step` to
/// the next, with whichever crate's `Workflow` and `Step` are in scope at the call.
macro_rules! linear_workflow {
    ($vis:vis) => {
        /// A linear workflow of `states` trivial states, then the exit state.
        $vis fn linear(states: usize) -> Workflow<S> {
            (0..states)
                .fold(Workflow::bare(), |wf, i| {
                    wf.register(
                        crate::support::CHAIN[i],
                        Step(crate::support::next_state(i, states)),
                    )
                })
                .add_exit_state(S::Done)
        }
    };
}

/// Defines `Step(S)`: a trivial task that moves to the state it holds, for whichever crate's
/// `Task` is in scope at the call; attributes before the visibility go on the `impl` (cano
/// 0.12's and 0.15's `#[task]`).
macro_rules! step_task {
    ($(#[$impl_attr:meta])* $vis:vis) => {
        /// A trivial task: moves to the state it holds.
        #[derive(Clone)]
        $vis struct Step($vis S);

        $(#[$impl_attr])*
        impl Task<S> for Step {
            async fn run_bare(&self) -> Result<TaskResult<S>, CanoError> {
                Ok(TaskResult::Single(self.0))
            }
        }
    };
}

/// Defines `split(branches, spawned)` for cano (this workspace): a split from [`S::S0`] of
/// `branches` `Step(S::Done)` tasks joined with `JoinStrategy::All`, its branches spawned on
/// the runtime (as cano 0.12 and 0.15 do) or, by default, polled in place.
macro_rules! split_workflow {
    ($vis:vis) => {
        /// A split of `branches` trivial tasks, spawned on the runtime or polled in place.
        $vis fn split(branches: usize, spawned: bool) -> Workflow<S> {
            let join = JoinConfig::new(JoinStrategy::All, S::Done);
            let join = if spawned {
                join.with_spawned_branches()
            } else {
                join
            };
            let tasks = (0..branches).map(|_| Step(S::Done)).collect::<Vec<_>>();
            Workflow::bare()
                .register_split(S::S0, tasks, join)
                .add_exit_state(S::Done)
        }
    };
}
