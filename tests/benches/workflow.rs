//! The workflow engine side by side with cano 0.12 (crates.io), in the same run, on the
//! same tokio current-thread runtime, with the same trivial tasks.
//!
//! Each measurement loops inside one `block_on`, so neither crate pays a runtime entry per
//! iteration. Compare the two lines of each group as a ratio (see the README table).
//!
//! In the split groups cano 0.12 spawns every branch; cano polls them in place by default
//! (`cano/in-place`, less work than cano 0.12 does) and spawns them with
//! `JoinConfig::with_spawned_branches` (`cano/spawned`, the like-for-like row).
//!
//! A last group compares ten plain states with ten router states (cano only): a router must
//! cost no more than a plain state.
//!
//! Run: `cargo bench -p cano-tests --bench workflow -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use cano_tokio::WorkflowExt;
use criterion::{Criterion, criterion_group, criterion_main};

#[macro_use]
pub mod support;
use support::{S, runtime, timed};

/// The same two workflow shapes, built with whichever crate's API is in scope.
macro_rules! workflow_builders {
    () => {
        linear_workflow!(pub(crate));

        pub(crate) fn split(branches: usize) -> Workflow<S> {
            Workflow::bare()
                .register_split(
                    S::Fan,
                    (0..branches).map(|_| Step(S::Done)).collect::<Vec<_>>(),
                    JoinConfig::new(JoinStrategy::All, S::Done),
                )
                .add_exit_state(S::Done)
        }
    };
}

/// cano (this workspace).
mod ours {
    use super::S;
    use cano_core::{CanoError, JoinConfig, JoinStrategy, Task, TaskResult, Workflow};

    step_task!(pub(crate));

    workflow_builders!();

    /// [`split`] with every branch spawned on the runtime, as cano 0.12 does.
    pub(crate) fn split_spawned(branches: usize) -> Workflow<S> {
        Workflow::bare()
            .register_split(
                S::Fan,
                (0..branches).map(|_| Step(S::Done)).collect::<Vec<_>>(),
                JoinConfig::new(JoinStrategy::All, S::Done).with_spawned_branches(),
            )
            .add_exit_state(S::Done)
    }

    pub(crate) struct Route(pub(crate) S);

    impl cano_core::shapes::router::RouterTask<S> for Route {
        async fn route(&self, _res: &cano_core::Resources) -> Result<TaskResult<S>, CanoError> {
            Ok(TaskResult::Single(self.0))
        }
    }

    /// [`linear`] with every state a router: the same work, another registration.
    pub(crate) fn linear_routers(states: usize) -> Workflow<S> {
        (0..states)
            .fold(Workflow::bare(), |wf, i| {
                let next = if i + 1 == states {
                    S::Done
                } else {
                    crate::support::CHAIN[i + 1]
                };
                wf.register_router(crate::support::CHAIN[i], Route(next))
            })
            .add_exit_state(S::Done)
    }
}

/// cano 0.12.0 from crates.io.
mod reference {
    use super::S;
    use cano012::prelude::*;

    step_task!(#[task] pub(crate));

    workflow_builders!();
}

fn workflows(c: &mut Criterion) {
    let rt = runtime();
    let cases: [(&str, usize, S, bool); 4] = [
        ("orchestrate_1_state", 1, S::S0, false),
        ("linear_10_states", 10, S::S0, false),
        ("split_join_16", 16, S::Fan, true),
        ("split_join_256", 256, S::Fan, true),
    ];
    for (name, size, initial, is_split) in cases {
        let (ours, reference) = if is_split {
            (ours::split(size), reference::split(size))
        } else {
            (ours::linear(size), reference::linear(size))
        };
        // Both must actually complete before being timed.
        assert_eq!(rt.block_on(ours.orchestrate(initial)), Ok(S::Done));
        assert_eq!(
            rt.block_on(reference.orchestrate(initial)).ok(),
            Some(S::Done)
        );
        let mut group = c.benchmark_group(name);
        let (ours_label, reference_label) = if is_split {
            ("cano/in-place", "cano_0_12/spawned")
        } else {
            ("cano", "cano_0_12")
        };
        group.bench_function(ours_label, |b| {
            b.iter_custom(|iters| {
                timed(&rt, iters, || async {
                    ours.orchestrate(black_box(initial)).await.unwrap()
                })
            })
        });
        if is_split {
            let spawned = ours::split_spawned(size);
            assert_eq!(rt.block_on(spawned.orchestrate(initial)), Ok(S::Done));
            group.bench_function("cano/spawned", |b| {
                b.iter_custom(|iters| {
                    timed(&rt, iters, || async {
                        spawned.orchestrate(black_box(initial)).await.unwrap()
                    })
                })
            });
        }
        group.bench_function(reference_label, |b| {
            b.iter_custom(|iters| {
                timed(&rt, iters, || async {
                    reference.orchestrate(black_box(initial)).await.unwrap()
                })
            })
        });
        group.finish();
    }
}

/// A router costs what a plain state costs: 10 states as tasks, then as routers.
fn routers(c: &mut Criterion) {
    let rt = runtime();
    let (tasks, routers) = (ours::linear(10), ours::linear_routers(10));
    assert_eq!(rt.block_on(tasks.orchestrate(S::S0)), Ok(S::Done));
    assert_eq!(rt.block_on(routers.orchestrate(S::S0)), Ok(S::Done));
    let mut group = c.benchmark_group("linear_10_states_task_vs_router");
    group.bench_function("router", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, || async {
                routers.orchestrate(black_box(S::S0)).await.unwrap()
            })
        })
    });
    group.bench_function("task", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, || async {
                tasks.orchestrate(black_box(S::S0)).await.unwrap()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, workflows, routers);
criterion_main!(benches);
