//! One time origin per process: every `TokioClock` measures from the same origin, so a
//! `CircuitBreaker` shared by scheduled runs, `orchestrate` and user code behaves the same
//! from all three, however far apart the clocks were made.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cano_tokio::scheduler::{Fire, Scheduler, job_fn};
use cano_tokio::{
    CanoError, CircuitBreaker, CircuitPolicy, CircuitState, Clock, Task, TaskConfig, TaskResult,
    TokioClock, Workflow, WorkflowExt,
};
use futures::StreamExt;
use futures::channel::mpsc;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum St {
    Call,
    Done,
}

/// A call behind the shared breaker; counts how often it actually ran.
struct Call {
    breaker: Arc<CircuitBreaker>,
    calls: Arc<AtomicU32>,
}

impl Task<St> for Call {
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal().with_circuit_breaker(self.breaker.clone())
    }

    async fn run_bare(&self) -> Result<TaskResult<St>, CanoError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(TaskResult::Single(St::Done))
    }
}

const RESET: Duration = Duration::from_millis(500);

#[tokio::test(start_paused = true)]
async fn a_breaker_opened_by_a_scheduled_run_is_open_for_orchestrate_and_user_code() {
    let breaker = Arc::new(
        CircuitBreaker::new(CircuitPolicy {
            failure_threshold: 1,
            reset_timeout: RESET,
            half_open_max_calls: 1,
        })
        .unwrap(),
    );
    let calls = Arc::new(AtomicU32::new(0));
    let workflow = Workflow::bare()
        .register(
            St::Call,
            Call {
                breaker: breaker.clone(),
                calls: calls.clone(),
            },
        )
        .add_exit_state(St::Done);
    // `orchestrate`'s clock comes into use now, the scheduler's a minute later: with an origin
    // per clock their instants would disagree by that minute.
    assert_eq!(workflow.orchestrate(St::Call).await, Ok(St::Done));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_secs(60)).await;

    // Scheduled runs: "fail" opens the breaker on the scheduler's clock, "probe" reports
    // whether a scheduled run would be let through.
    let (opened_tx, mut opened) = mpsc::unbounded::<()>();
    let (probe_tx, mut probes) = mpsc::unbounded::<bool>();
    let mut scheduler = Scheduler::new();
    let b = breaker.clone();
    scheduler
        .manual(
            "fail",
            job_fn(move |(), fire: Fire| {
                let (b, opened_tx) = (b.clone(), opened_tx.clone());
                async move {
                    let now = fire.clock().now();
                    b.try_acquire(now)?.record_failure(now);
                    opened_tx.unbounded_send(()).unwrap();
                    Err(CanoError::task_execution("downstream is down"))
                }
            }),
            (),
        )
        .unwrap();
    let b = breaker.clone();
    scheduler
        .manual(
            "probe",
            job_fn(move |(), fire: Fire| {
                let (b, probe_tx) = (b.clone(), probe_tx.clone());
                async move {
                    let now = fire.clock().now();
                    // A permit dropped unresolved would count as a failure: resolve it.
                    let let_through = b.try_acquire(now).map(|p| p.record_success(now)).is_ok();
                    probe_tx.unbounded_send(let_through).unwrap();
                    Ok(())
                }
            }),
            (),
        )
        .unwrap();
    let running = cano_tokio::start_scheduler(scheduler).await.unwrap();
    running.trigger("fail").unwrap();
    opened.next().await.unwrap();

    // 50 ms later, well inside the 500 ms reset timeout, all three see it open.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        matches!(
            breaker.state(TokioClock::new().now()),
            CircuitState::Open { .. }
        ),
        "user code: {:?}",
        breaker.state(TokioClock::new().now())
    );
    let rejected = workflow.orchestrate(St::Call).await.unwrap_err();
    assert_eq!(
        rejected.category(),
        "circuit_open",
        "orchestrate: {rejected}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    running.trigger("probe").unwrap();
    assert!(
        !probes.next().await.unwrap(),
        "a scheduled run was let through"
    );

    // After the reset timeout all three see it half-open; orchestrate's trial closes it.
    tokio::time::sleep(RESET).await;
    assert_eq!(
        breaker.state(TokioClock::new().now()),
        CircuitState::HalfOpen
    );
    assert_eq!(workflow.orchestrate(St::Call).await, Ok(St::Done));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    running.trigger("probe").unwrap();
    assert!(
        probes.next().await.unwrap(),
        "closed again for scheduled runs"
    );
    running.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn instants_from_clocks_made_apart_agree() {
    let first = TokioClock::new();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let second = TokioClock::new();
    assert_eq!(first.now(), second.now());
    let deadline = second.now() + Duration::from_secs(10);
    first.sleep_until(deadline).await;
    assert_eq!(second.now(), deadline);
}

/// Every run's context and every sleep holds a clock: it carries only the optional wall
/// anchor, not its own copy of the process's origin. 32 B on a 64-bit target on 2026-12-03
/// (it was 48 B with the origin in it). Exact: one more byte fails.
const CLOCK_BYTES_MAX: usize = 32;

#[test]
fn a_clock_holds_no_copy_of_the_origin() {
    let size = std::mem::size_of::<TokioClock>();
    assert!(
        size <= CLOCK_BYTES_MAX,
        "a TokioClock is {size} B (at most {CLOCK_BYTES_MAX} B)"
    );
}
