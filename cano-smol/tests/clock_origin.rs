//! One time origin per process: every `SmolClock` measures from the same origin, so a
//! `CircuitBreaker` shared by scheduled runs, `orchestrate` and user code behaves the same
//! from all three, however far apart the clocks were made.
//!
//! async-io has no virtual time, so this is a real-time smoke test: the clocks are made
//! 600 ms apart and every check comes well inside or well after a 500 ms reset timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_executor::Executor;
use cano_smol::scheduler::{Fire, Scheduler, job_fn};
use cano_smol::{
    CanoError, CircuitBreaker, CircuitPolicy, CircuitState, Clock, Instant, SmolClock, Task,
    TaskConfig, TaskResult, Workflow, WorkflowExt,
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

async fn breaker_scenario(executor: Arc<Executor<'static>>) {
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
    // `orchestrate`'s clock comes into use now, the scheduler's 600 ms later: with an origin
    // per clock their instants would disagree by more than the reset timeout.
    assert_eq!(workflow.orchestrate(St::Call).await, Ok(St::Done));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    sleep(Duration::from_millis(600)).await;

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
    let running = cano_smol::start_scheduler(scheduler, executor)
        .await
        .unwrap();
    running.trigger("fail").unwrap();
    opened.next().await.unwrap();

    // 50 ms later, well inside the 500 ms reset timeout, all three see it open.
    sleep(Duration::from_millis(50)).await;
    assert!(
        matches!(
            breaker.state(SmolClock::new().now()),
            CircuitState::Open { .. }
        ),
        "user code: {:?}",
        breaker.state(SmolClock::new().now())
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
    sleep(RESET + Duration::from_millis(100)).await;
    assert_eq!(
        breaker.state(SmolClock::new().now()),
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

async fn sleep(d: Duration) {
    async_io::Timer::after(d).await;
}

#[test]
fn a_breaker_opened_by_a_scheduled_run_is_open_for_orchestrate_and_user_code() {
    let executor = Arc::new(Executor::new());
    async_io::block_on(executor.run(breaker_scenario(executor.clone())));
}

#[test]
fn instants_from_clocks_made_apart_agree() {
    let first = SmolClock::new();
    async_io::block_on(sleep(Duration::from_millis(20)));
    let second = SmolClock::new();
    let (a, b, c) = (first.now(), second.now(), first.now());
    assert!(a <= b && b <= c, "{a:?} {b:?} {c:?}");
    assert!(b >= Instant::from_millis(20), "{b:?}");
}
