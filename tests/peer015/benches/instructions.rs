//! Instruction counts per operation against cano 0.15.4, for `../benches/callgrind.sh`
//! (`PEER015=1`); the same protocol as the main workspace's `benches/instructions.rs`:
//! `instructions <operation> <n>` performs the operation `n` times after its set-up,
//! `instructions list` names the operations, and no arguments (as `cargo bench` runs it)
//! performs each a few times.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use cano_peer015::{Count, S, ours, peer, runtime};
use cano_tokio::WorkflowExt;
use futures::channel::mpsc;

fn orchestrate_ours(workflow: cano_core::Workflow<S>, n: u64) {
    runtime().block_on(async {
        for _ in 0..n {
            assert_eq!(workflow.orchestrate(black_box(S::S0)).await, Ok(S::Done));
        }
    });
}

fn orchestrate_peer(workflow: cano015::Workflow<S>, n: u64) {
    runtime().block_on(async {
        for _ in 0..n {
            assert_eq!(
                workflow
                    .orchestrate(black_box(S::S0), cano015::CancellationToken::disabled())
                    .await
                    .ok(),
                Some(S::Done)
            );
        }
    });
}

fn triggers_ours(workflow: bool, n: u64) {
    let (tx, mut rx) = mpsc::unbounded();
    runtime().block_on(async {
        let running = ours::manual(Count(Arc::new(AtomicU64::new(0)), tx), workflow).await;
        ours::round_trips(&running, &mut rx, n).await;
        drop(running.stop().await);
    });
}

fn triggers_peer(n: u64) {
    let (tx, mut rx) = mpsc::unbounded();
    runtime().block_on(async {
        let running = peer::manual(Count(Arc::new(AtomicU64::new(0)), tx)).await;
        peer::round_trips(&running, &mut rx, n).await;
        drop(running.stop().await);
    });
}

/// An operation's name and body.
type Operation = (&'static str, fn(u64));

/// Each cano row is followed by its cano 0.15.4 row.
const OPERATIONS: &[Operation] = &[
    ("workflow/1-state/cano", |n| {
        orchestrate_ours(ours::linear(1), n)
    }),
    ("workflow/1-state/cano-0.15.4", |n| {
        orchestrate_peer(peer::linear(1), n)
    }),
    ("workflow/10-states/cano", |n| {
        orchestrate_ours(ours::linear(10), n)
    }),
    ("workflow/10-states/cano-0.15.4", |n| {
        orchestrate_peer(peer::linear(10), n)
    }),
    ("split-16/spawned/cano", |n| {
        orchestrate_ours(ours::split(16, true), n)
    }),
    ("split-16/spawned/cano-0.15.4", |n| {
        orchestrate_peer(peer::split(16), n)
    }),
    ("trigger/workflow/cano", |n| triggers_ours(true, n)),
    ("trigger/workflow/cano-0.15.4", triggers_peer),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [list] if list == "list" => {
            for (name, _) in OPERATIONS {
                println!("{name}");
            }
        }
        [name, n] => {
            let n: u64 = n.parse().expect("a count");
            let (_, run) = OPERATIONS
                .iter()
                .find(|(op, _)| op == name)
                .unwrap_or_else(|| panic!("no operation {name}; try `list`"));
            run(n);
        }
        _ => {
            for (_, run) in OPERATIONS {
                run(3);
            }
            println!("instructions: {} operations ran", OPERATIONS.len());
        }
    }
}
