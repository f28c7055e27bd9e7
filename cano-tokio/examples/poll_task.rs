//! Poll tasks on tokio: wait until a background job is done (cano 0.12's `poll_task`
//! example, ported).
//!
//! A background tokio task advances a progress counter every 10 ms; the `AwaitJob` poll task
//! reads it from [`Resources`] and answers [`PollOutcome::Pending`] (polling more often as the
//! job nears its end) until the job is complete, then [`PollOutcome::Ready`]. A
//! [`PollRunner`] drives the loop on tokio's clock and is registered like any task. The status
//! endpoint fails twice on the way: `RetryOnError` tolerates that and waits 5 ms before each
//! re-poll (cano 0.12 re-polled at once). The whole loop is bounded by a 2 s attempt timeout.
//!
//! ```text
//!   AwaitJob ──(poll loop)──► Process ──► Done
//! ```
//!
//! Run with `cargo run -p cano-tokio --example poll_task`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cano_tokio::shapes::poll::{PollErrorPolicy, PollOutcome, PollRunner, PollTask};
use cano_tokio::{
    CanoError, CanoResult, Resource, Resources, Task, TaskConfig, TaskResult, TokioClock, Workflow,
    WorkflowExt,
};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Step {
    AwaitJob,
    Process,
    Done,
}

/// An external job whose progress a background task advances.
struct Job {
    ticks_done: Arc<AtomicU32>,
    ticks_total: u32,
    status_checks: AtomicU32,
}

impl Resource for Job {}

struct AwaitJob;

impl PollTask<Step> for AwaitJob {
    async fn poll(&self, res: &Resources) -> Result<PollOutcome<Step>, CanoError> {
        let job = res.get::<Job, _>("job")?;
        // The status endpoint is flaky: its 2nd and 3rd answers are errors.
        let check = job.status_checks.fetch_add(1, Ordering::SeqCst) + 1;
        if check == 2 || check == 3 {
            println!("await job  : status check {check} failed");
            return Err(CanoError::task_execution("status endpoint unavailable"));
        }
        let (done, total) = (job.ticks_done.load(Ordering::Acquire), job.ticks_total);
        if done >= total {
            println!("await job  : complete ({done}/{total} ticks)");
            return Ok(PollOutcome::Ready(TaskResult::Single(Step::Process)));
        }
        // Poll more often near the end.
        let after = Duration::from_millis(if total - done <= 2 { 2 } else { 5 });
        println!("await job  : progress {done}/{total}, next poll in {after:?}");
        Ok(PollOutcome::Pending { after })
    }

    fn on_poll_error(&self) -> PollErrorPolicy {
        PollErrorPolicy::RetryOnError {
            max_errors: 3,
            delay: Duration::from_millis(5),
        }
    }

    fn config(&self) -> TaskConfig {
        TaskConfig::minimal().with_attempt_timeout(Duration::from_secs(2))
    }
}

struct Process;

impl Task<Step> for Process {
    async fn run_bare(&self) -> Result<TaskResult<Step>, CanoError> {
        println!("process    : handling the job's results");
        Ok(TaskResult::Single(Step::Done))
    }
}

#[tokio::main]
async fn main() -> CanoResult<()> {
    const TICKS: u32 = 6;
    let counter = Arc::new(AtomicU32::new(0));
    let job = Job {
        ticks_done: counter.clone(),
        ticks_total: TICKS,
        status_checks: AtomicU32::new(0),
    };
    tokio::spawn(async move {
        for _ in 0..TICKS {
            tokio::time::sleep(Duration::from_millis(10)).await;
            counter.fetch_add(1, Ordering::Release);
        }
    });

    println!("=== poll_task example ===");
    println!("background job: {TICKS} ticks at ~10 ms each\n");

    let resources = Resources::new().insert("job", job)?;
    let workflow = Workflow::new(resources)
        .register(Step::AwaitJob, PollRunner::new(AwaitJob, TokioClock::new()))
        .register(Step::Process, Process)
        .add_exit_state(Step::Done);

    let result = workflow.orchestrate(Step::AwaitJob).await?;
    assert_eq!(result, Step::Done);
    println!("\ncompleted at {result:?}");
    Ok(())
}
