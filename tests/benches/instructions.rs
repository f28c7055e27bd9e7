//! Instruction counts per operation, cano side by side with its peer, for
//! `tests/benches/callgrind.sh` (which runs this binary under `valgrind --tool=callgrind`).
//!
//! `instructions <operation> <n>` sets the operation up, then performs it `n` times. The
//! script runs each operation twice, with two values of `n`, and divides the difference in
//! instructions by the difference in `n`: set-up, runtime start and exit cancel out, and
//! what is left is the cost of one operation, insensitive to the machine's load.
//! `instructions list` prints the operations' names, one a line.
//!
//! Run with no arguments (as `cargo bench` does) it performs every operation a few times
//! natively, as a smoke test that each one still completes.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cano_core::CanoError;
use cano_core::cron::{Cron, CronOptions};
use cano_core::jiff::tz::TimeZone;
use cano_core::jiff::{Timestamp, ZonedDateTime};
use cano_core::scheduler::{Fire, Job, RunningScheduler, Scheduler, job_fn};
use cano_tokio::{TokioClock, TokioSpawner, WorkflowExt};
use futures::StreamExt;
use futures::channel::mpsc;

#[macro_use]
pub mod support;
use support::S;

/// 2026-01-01T00:00:00Z.
const START: i64 = 1_767_225_600;

/// 64 start instants spread over 2026 at odd times of day (as in `benches/cron.rs`).
fn starts() -> Vec<i64> {
    (0..64i64)
        .map(|i| START + i * 5 * 86_400 + (i * 7_919 % 86_400))
        .collect()
}

fn zoned_utc(seconds: i64) -> ZonedDateTime {
    Timestamp::from_second(seconds)
        .expect("in range")
        .to_zoned_datetime(TimeZone::UTC)
}

fn chrono_utc(seconds: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(seconds, 0).expect("in range")
}

/// `n` cano `next_after` calls cycling over [`starts`].
fn cron_cano(six: &str, options: CronOptions, n: u64) {
    let cron = Cron::parse_with(six, options).expect("valid");
    let starts: Vec<ZonedDateTime> = starts().into_iter().map(zoned_utc).collect();
    for i in 0..n {
        let at = &starts[i as usize % starts.len()];
        assert!(black_box(cron.next_after(black_box(at))).is_some());
    }
}

/// `n` cron-parser `next_after` calls cycling over [`starts`].
fn cron_parser(five: &str, n: u64) {
    let cron = cron_parser::Schedule::parse(five).expect("valid");
    let starts: Vec<_> = starts().into_iter().map(chrono_utc).collect();
    for i in 0..n {
        let at = &starts[i as usize % starts.len()];
        assert!(black_box(cron.next_after(black_box(at))).is_some());
    }
}

// ---- workflows: the same shapes in cano and cano 0.12 ----

mod ours {
    use super::S;
    use cano_core::{CanoError, JoinConfig, JoinStrategy, Task, TaskResult, Workflow};

    step_task!(pub(crate));

    linear_workflow!(pub(crate));

    split_workflow!(pub(crate));
}

mod reference {
    use super::S;
    use cano012::prelude::*;

    step_task!(#[task] pub(crate));

    linear_workflow!(pub(crate));

    /// cano 0.12 spawns every branch.
    pub(crate) fn split(branches: usize) -> Workflow<S> {
        let tasks = (0..branches).map(|_| Step(S::Done)).collect::<Vec<_>>();
        Workflow::bare()
            .register_split(S::S0, tasks, JoinConfig::new(JoinStrategy::All, S::Done))
            .add_exit_state(S::Done)
    }
}

fn current_thread(paused: bool) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(paused)
        .build()
        .expect("a tokio runtime")
}

fn orchestrate_ours(workflow: cano_core::Workflow<S>, n: u64) {
    current_thread(false).block_on(async {
        for _ in 0..n {
            assert_eq!(workflow.orchestrate(black_box(S::S0)).await, Ok(S::Done));
        }
    });
}

fn orchestrate_reference(workflow: cano012::Workflow<S>, n: u64) {
    current_thread(false).block_on(async {
        for _ in 0..n {
            assert_eq!(
                workflow.orchestrate(black_box(S::S0)).await.ok(),
                Some(S::Done)
            );
        }
    });
}

// ---- schedulers: cano (a `job_fn` or a 1-state workflow) and cano 0.12 ----

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Flow {
    Run,
    Done,
}

/// The job every scheduler runs: count, and tell a waiting caller if there is one.
#[derive(Clone)]
struct Count(Arc<AtomicU64>, Option<mpsc::UnboundedSender<()>>);

impl Count {
    fn hit(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
        if let Some(tx) = &self.1 {
            let _ = tx.unbounded_send(());
        }
    }
}

impl cano_core::Task<Flow> for Count {
    async fn run_bare(&self) -> Result<cano_core::TaskResult<Flow>, CanoError> {
        self.hit();
        Ok(cano_core::TaskResult::Single(Flow::Done))
    }
}

#[cano012::task]
impl cano012::Task<Flow> for Count {
    async fn run_bare(&self) -> Result<cano012::TaskResult<Flow>, cano012::CanoError> {
        self.hit();
        Ok(cano012::TaskResult::Single(Flow::Done))
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    /// cano with a `job_fn` closure as the job.
    CanoJobFn,
    /// cano with a 1-state `Workflow` as the job, the same work as cano 0.12's.
    CanoWorkflow,
    Cano012,
}

/// Registers flow `id` with cano's job for `side`.
fn add_cano_flow(side: Side, s: &mut Scheduler<Flow>, id: &str, schedule: Schedule, count: &Count) {
    let count = count.clone();
    if side == Side::CanoWorkflow {
        let workflow = cano_core::Workflow::bare()
            .register(Flow::Run, count)
            .add_exit_state(Flow::Done);
        schedule.add(s, id, workflow);
    } else {
        let job = job_fn(move |_: Flow, _fire: Fire| {
            count.hit();
            std::future::ready(Ok::<(), CanoError>(()))
        });
        schedule.add(s, id, job);
    }
}

#[derive(Clone, Copy)]
enum Schedule {
    Every(Duration),
    Manual,
}

impl Schedule {
    fn add(self, s: &mut Scheduler<Flow>, id: &str, job: impl Job<Flow>) {
        match self {
            Schedule::Every(every) => s.every(id, job, Flow::Run, every).unwrap(),
            Schedule::Manual => s.manual(id, job, Flow::Run).unwrap(),
        }
    }
}

async fn start_cano(
    side: Side,
    flows: usize,
    schedule: Schedule,
    count: &Count,
) -> RunningScheduler {
    let mut s = Scheduler::new();
    for i in 0..flows {
        add_cano_flow(side, &mut s, &format!("flow-{i}"), schedule, count);
    }
    s.start(TokioClock::new(), TokioSpawner::current())
        .await
        .unwrap()
}

fn cano012_scheduler(flows: usize, schedule: Schedule, count: &Count) -> cano012::Scheduler<Flow> {
    let mut s = cano012::Scheduler::new();
    for i in 0..flows {
        let workflow = cano012::Workflow::new(cano012::Resources::new())
            .register(Flow::Run, count.clone())
            .add_exit_state(Flow::Done);
        let id = format!("flow-{i}");
        match schedule {
            Schedule::Every(every) => s.every(&id, workflow, Flow::Run, every).unwrap(),
            Schedule::Manual => s.manual(&id, workflow, Flow::Run).unwrap(),
        }
    }
    s
}

/// Runs of every flow before the counted ones: each flow's run history is full by then
/// (16 runs by default), so the count is a steady stream's, not the history's first growth
/// (which every flow pays once, over its first 16 runs).
const WARM_UP_RUNS: u64 = 17 * 1000;

/// `n` scheduled runs of 1 000 flows every 10 ms, after [`WARM_UP_RUNS`], on a paused
/// current-thread runtime (time jumps to the next timer, so only the work counts).
fn scheduled_runs(side: Side, n: u64) {
    let counter = Arc::new(AtomicU64::new(0));
    let count = Count(counter.clone(), None);
    let every = Schedule::Every(Duration::from_millis(10));
    current_thread(true).block_on(async {
        let target = n + WARM_UP_RUNS;
        let wait = async {
            while counter.load(Ordering::Relaxed) < target {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        if side == Side::Cano012 {
            let running = cano012_scheduler(1000, every, &count)
                .start()
                .await
                .unwrap();
            wait.await;
            running.stop().await.unwrap();
        } else {
            let running = start_cano(side, 1000, every, &count).await;
            wait.await;
            drop(running.stop().await.unwrap());
        }
    });
}

/// The floor under [`scheduled_runs`]: a bare loop that spawns every run of 1 000 "flows"
/// every 10 ms onto the same paused runtime (the job's work, a spawned task, a sleep per
/// tick), after the same warm-up. What a scheduler spends above it is its own.
fn bare_spawning_loop(n: u64) {
    let counter = Arc::new(AtomicU64::new(0));
    let count = Count(counter.clone(), None);
    current_thread(true).block_on(async {
        let target = n + WARM_UP_RUNS;
        while counter.load(Ordering::Relaxed) < target {
            for _ in 0..1000 {
                let count = count.clone();
                tokio::spawn(async move { count.hit() });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
}

/// `n` trigger → run → caller woken round trips of one manual flow, current thread.
fn triggers(side: Side, n: u64) {
    let (tx, mut rx) = mpsc::unbounded();
    let count = Count(Arc::new(AtomicU64::new(0)), Some(tx));
    current_thread(false).block_on(async {
        if side == Side::Cano012 {
            let running = cano012_scheduler(1, Schedule::Manual, &count)
                .start()
                .await
                .unwrap();
            for _ in 0..n {
                while running.trigger("flow-0").await.is_err() {
                    tokio::task::yield_now().await;
                }
                black_box(rx.next().await);
            }
            running.stop().await.unwrap();
        } else {
            let running = start_cano(side, 1, Schedule::Manual, &count).await;
            for _ in 0..n {
                while running.trigger("flow-0").is_err() {
                    tokio::task::yield_now().await;
                }
                black_box(rx.next().await);
            }
            drop(running.stop().await.unwrap());
        }
    });
}

/// An operation: its name and its body.
struct Operation {
    name: &'static str,
    run: fn(u64),
}

const OPERATIONS: &[Operation] = &[
    Operation {
        name: "cron-next/feb-29/cano",
        run: |n| cron_cano("0 0 0 29 2 *", CronOptions::new(), n),
    },
    Operation {
        name: "cron-next/feb-29/cron-parser-0.12",
        run: |n| cron_parser("0 0 29 2 *", n),
    },
    Operation {
        name: "cron-next/dom-and-dow/cano-and",
        run: |n| cron_cano("0 30 9 1-7 * MON", CronOptions::quartz(), n),
    },
    Operation {
        name: "cron-next/dom-and-dow/cron-parser-0.12",
        run: |n| cron_parser("30 9 1-7 * 1", n),
    },
    Operation {
        name: "workflow/1-state/cano",
        run: |n| orchestrate_ours(ours::linear(1), n),
    },
    Operation {
        name: "workflow/1-state/cano-0.12",
        run: |n| orchestrate_reference(reference::linear(1), n),
    },
    Operation {
        name: "workflow/10-states/cano",
        run: |n| orchestrate_ours(ours::linear(10), n),
    },
    Operation {
        name: "workflow/10-states/cano-0.12",
        run: |n| orchestrate_reference(reference::linear(10), n),
    },
    Operation {
        name: "split-16/spawned/cano",
        run: |n| orchestrate_ours(ours::split(16, true), n),
    },
    Operation {
        name: "split-16/in-place/cano",
        run: |n| orchestrate_ours(ours::split(16, false), n),
    },
    Operation {
        name: "split-16/spawned/cano-0.12",
        run: |n| orchestrate_reference(reference::split(16), n),
    },
    Operation {
        name: "scheduled-run/floor/bare-spawning-loop",
        run: bare_spawning_loop,
    },
    Operation {
        name: "scheduled-run/job_fn/cano",
        run: |n| scheduled_runs(Side::CanoJobFn, n),
    },
    Operation {
        name: "scheduled-run/workflow/cano",
        run: |n| scheduled_runs(Side::CanoWorkflow, n),
    },
    Operation {
        name: "scheduled-run/workflow/cano-0.12",
        run: |n| scheduled_runs(Side::Cano012, n),
    },
    Operation {
        name: "trigger/job_fn/cano",
        run: |n| triggers(Side::CanoJobFn, n),
    },
    Operation {
        name: "trigger/workflow/cano",
        run: |n| triggers(Side::CanoWorkflow, n),
    },
    Operation {
        name: "trigger/workflow/cano-0.12",
        run: |n| triggers(Side::Cano012, n),
    },
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [list] if list == "list" => {
            for op in OPERATIONS {
                println!("{}", op.name);
            }
        }
        [name, n] if !name.starts_with('-') => {
            let n: u64 = n.parse().expect("a count");
            let op = OPERATIONS
                .iter()
                .find(|op| op.name == name)
                .unwrap_or_else(|| panic!("no operation {name}; try `list`"));
            (op.run)(n);
        }
        // `cargo bench` passes `--bench` (and maybe `--test` or a filter): a smoke run of
        // everything.
        _ => {
            for op in OPERATIONS {
                (op.run)(3);
            }
            println!("instructions: {} operations ran", OPERATIONS.len());
        }
    }
}
