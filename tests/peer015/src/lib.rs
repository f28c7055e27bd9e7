//! What the benches share: the same workflows and the same manual flow, built once with
//! cano and once with cano 0.15.4. The benchmarks are in `benches/`: `shapes.rs` (the
//! processing models), `engine.rs` (workflows, splits and the trigger round trip, timed)
//! and `instructions.rs` (the same work, counted by callgrind through
//! `../benches/callgrind.sh`).

// cano 0.15's macros name their crate `cano`.
extern crate cano015 as cano;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use futures::channel::mpsc;

// The states, the linear builder, the runtime and the timing loop, shared with the
// benches of the main workspace.
#[path = "../../benches/support/mod.rs"]
#[macro_use]
mod support;
pub use support::{S, runtime, timed};

/// Counts runs and wakes the caller waiting for one.
#[derive(Clone)]
pub struct Count(pub Arc<AtomicU64>, pub mpsc::UnboundedSender<()>);

impl Count {
    fn hit(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
        let _ = self.1.unbounded_send(());
    }
}

/// cano (this workspace).
pub mod ours {
    use super::*;
    use cano_core::scheduler::{Fire, RunningScheduler, Scheduler, job_fn};
    use cano_core::{CanoError, JoinConfig, JoinStrategy, Task, TaskResult, Workflow};
    use cano_tokio::{TokioClock, TokioSpawner};

    step_task!(pub);

    impl Task<S> for Count {
        async fn run_bare(&self) -> Result<TaskResult<S>, CanoError> {
            self.hit();
            Ok(TaskResult::Single(S::Done))
        }
    }

    linear_workflow!(pub);

    split_workflow!(pub);

    /// One manual flow whose job is a 1-state workflow (`workflow`) or a `job_fn`.
    pub async fn manual(count: Count, workflow: bool) -> RunningScheduler {
        let mut s = Scheduler::new();
        if workflow {
            let job = Workflow::bare()
                .register(S::S0, count)
                .add_exit_state(S::Done);
            s.manual("m", job, S::S0).unwrap();
        } else {
            let job = job_fn(move |_: S, _fire: Fire| {
                count.hit();
                std::future::ready(Ok::<(), CanoError>(()))
            });
            s.manual("m", job, S::S0).unwrap();
        }
        s.start(TokioClock::new(), TokioSpawner::current())
            .await
            .unwrap()
    }

    /// `n` flows every hour, each a 1-state workflow (`workflow`) or a `job_fn`.
    pub fn every_hour(n: usize, count: &Count, workflow: bool) -> Scheduler<S> {
        let mut s = Scheduler::new();
        for i in 0..n {
            let id = format!("flow-{i}");
            let hour = std::time::Duration::from_secs(3600);
            let count = count.clone();
            if workflow {
                let job = Workflow::bare()
                    .register(S::S0, count)
                    .add_exit_state(S::Done);
                s.every(&id, job, S::S0, hour).unwrap();
            } else {
                let job = job_fn(move |_: S, _fire: Fire| {
                    count.hit();
                    std::future::ready(Ok::<(), CanoError>(()))
                });
                s.every(&id, job, S::S0, hour).unwrap();
            }
        }
        s
    }

    /// Starts `s` on the current tokio runtime.
    pub async fn start(s: Scheduler<S>) -> RunningScheduler {
        s.start(TokioClock::new(), TokioSpawner::current())
            .await
            .unwrap()
    }

    /// `n` trigger → run → caller woken round trips.
    pub async fn round_trips(
        running: &RunningScheduler,
        rx: &mut mpsc::UnboundedReceiver<()>,
        n: u64,
    ) {
        for _ in 0..n {
            while running.trigger("m").is_err() {
                tokio::task::yield_now().await;
            }
            black_box(rx.next().await);
        }
    }
}

/// cano 0.15.4 from crates.io.
pub mod peer {
    use super::*;
    use cano::prelude::*;

    step_task!(#[task] pub);

    #[task]
    impl Task<S> for Count {
        async fn run_bare(&self) -> Result<TaskResult<S>, CanoError> {
            self.hit();
            Ok(TaskResult::Single(S::Done))
        }
    }

    linear_workflow!(pub);

    /// cano 0.15 spawns every branch (a `JoinSet`).
    pub fn split(branches: usize) -> Workflow<S> {
        let tasks = (0..branches).map(|_| Step(S::Done)).collect::<Vec<_>>();
        Workflow::bare()
            .register_split(S::S0, tasks, JoinConfig::new(JoinStrategy::All, S::Done))
            .add_exit_state(S::Done)
    }

    /// One manual flow whose job is a 1-state workflow.
    pub async fn manual(count: Count) -> cano::scheduler::RunningScheduler<S> {
        let mut s = cano::scheduler::Scheduler::new();
        let workflow = Workflow::bare()
            .register(S::S0, count)
            .add_exit_state(S::Done);
        s.manual("m", workflow, S::S0).unwrap();
        s.start().await.unwrap()
    }

    /// `n` flows every hour, each a 1-state workflow.
    pub fn every_hour(n: usize, count: &Count) -> cano::scheduler::Scheduler<S> {
        let mut s = cano::scheduler::Scheduler::new();
        for i in 0..n {
            let workflow = Workflow::bare()
                .register(S::S0, count.clone())
                .add_exit_state(S::Done);
            s.every(
                &format!("flow-{i}"),
                workflow,
                S::S0,
                std::time::Duration::from_secs(3600),
            )
            .unwrap();
        }
        s
    }

    /// `n` trigger → run → caller woken round trips.
    pub async fn round_trips(
        running: &cano::scheduler::RunningScheduler<S>,
        rx: &mut mpsc::UnboundedReceiver<()>,
        n: u64,
    ) {
        for _ in 0..n {
            while running.trigger("m").await.is_err() {
                tokio::task::yield_now().await;
            }
            black_box(rx.next().await);
        }
    }
}
