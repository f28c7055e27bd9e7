//! Split/join on smol: replicate a write to four replicas and commit once three acknowledge.
//!
//! `Replicate` is a split of four uploads joined with `PartialResults(3)`: the write commits
//! as soon as three replicas acknowledge, and the remaining upload is cancelled. A bulkhead
//! lets only two uploads run at once. Each upload may retry once after 50 ms, and each
//! attempt is cut off after 300 ms. `Commit` is a [`JoinTask`] that receives the split's
//! [`SplitResult`]. The same workflow then runs with `JoinStrategy::All`, which one slow
//! replica is enough to fail.
//!
//! Run with `cargo run -p cano-smol --example smol_split_join`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use async_io::Timer;
use cano_smol::{
    CanoError, JoinConfig, JoinStrategy, JoinTask, Resources, SplitResult, Task, TaskConfig,
    TaskResult, Workflow, WorkflowExt,
};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Write {
    Replicate,
    Commit,
    Committed,
}

/// How a replica behaves, attempt by attempt.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Acknowledges after this long.
    Fast(Duration),
    /// Refuses the first attempt, then acknowledges after this long.
    BusyOnce(Duration),
    /// Never answers: every attempt hits the attempt timeout.
    Hangs,
}

struct Upload {
    replica: &'static str,
    behaviour: Behaviour,
    attempts: AtomicU32,
    started: Instant,
}

impl Task<Write> for Upload {
    async fn run(&self, _res: &Resources) -> Result<TaskResult<Write>, CanoError> {
        let attempt = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        let log = |what: &str| {
            let ms = self.started.elapsed().as_millis();
            println!("  {ms:>4} ms  {} attempt {attempt}: {what}", self.replica);
        };
        log("uploading");
        let answer_after = match self.behaviour {
            Behaviour::Fast(latency) => latency,
            Behaviour::BusyOnce(_) if attempt == 1 => {
                log("refused (busy)");
                return Err(CanoError::task_execution("replica busy"));
            }
            Behaviour::BusyOnce(latency) => latency,
            // Longer than the attempt timeout, which drops the attempt while it waits.
            Behaviour::Hangs => Duration::from_secs(3600),
        };
        Timer::after(answer_after).await;
        log("acknowledged");
        Ok(TaskResult::Single(Write::Commit))
    }

    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
            .with_fixed_retry(1, Duration::from_millis(50))
            .with_attempt_timeout(Duration::from_millis(300))
    }
}

/// The join state: commits with the replicas that acknowledged.
struct Commit {
    replicas: [&'static str; 4],
    started: Instant,
}

impl JoinTask<Write> for Commit {
    async fn join(
        &self,
        _res: &Resources,
        results: &SplitResult<Write>,
    ) -> Result<TaskResult<Write>, CanoError> {
        let name = |i: &usize| self.replicas[*i];
        let acked: Vec<_> = results.successes.iter().map(|(i, _)| name(i)).collect();
        let cancelled: Vec<_> = results.cancelled.iter().map(name).collect();
        println!(
            "  {:>4} ms  commit: acknowledged by {acked:?}; cancelled {cancelled:?}",
            self.started.elapsed().as_millis()
        );
        for (i, error) in &results.errors {
            println!("            {} failed: {error}", name(i));
        }
        Ok(TaskResult::Single(Write::Committed))
    }
}

fn replication(strategy: JoinStrategy, started: Instant) -> Workflow<Write> {
    let replicas = [
        ("replica-1", Behaviour::Fast(Duration::from_millis(120))),
        ("replica-2", Behaviour::BusyOnce(Duration::from_millis(120))),
        ("replica-3", Behaviour::Hangs),
        ("replica-4", Behaviour::Fast(Duration::from_millis(100))),
    ];
    let uploads = replicas.map(|(replica, behaviour)| Upload {
        replica,
        behaviour,
        attempts: AtomicU32::new(0),
        started,
    });
    let join = JoinConfig::new(strategy, Write::Commit).with_bulkhead(2);
    Workflow::bare()
        .register_split(Write::Replicate, uploads, join)
        .register_join(
            Write::Commit,
            Commit {
                replicas: replicas.map(|(replica, _)| replica),
                started,
            },
        )
        .add_exit_state(Write::Committed)
}

fn main() {
    for strategy in [JoinStrategy::PartialResults(3), JoinStrategy::All] {
        println!("{strategy:?}, at most 2 uploads at once:");
        let started = Instant::now();
        let workflow = replication(strategy, started);
        let outcome = async_io::block_on(workflow.orchestrate(Write::Replicate));
        let ms = started.elapsed().as_millis();
        match outcome {
            Ok(end) => println!("  => {end:?} after {ms} ms\n"),
            Err(e) => println!("  => failed after {ms} ms: {e}\n"),
        }
    }
}
