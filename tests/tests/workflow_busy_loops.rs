//! Loops whose steps never wait (issue 10, item 2): a state that returns to itself at once,
//! a task retried forever without a pause, split branches doing either, and a scheduled
//! workflow doing it. The run's timeout and cancellation must still end them, and they must
//! not starve the executor they run on: on tokio's current-thread runtime, and on the
//! virtual-time `Simulation` (where a loop that never waits also never lets time move, so
//! only cancellation or the simulation's livelock report can end it).
//!
//! Every test runs on a watchdog thread: a regression (a loop that never yields) fails
//! after a generous bound instead of hanging CI.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use cano_core::testing::{FakeClock, Simulation};
use cano_core::{
    CancellationToken, CanoError, JoinConfig, JoinStrategy, Resources, RetryMode, RunContext,
    Scheduler, Spawner, Task, TaskConfig, TaskResult, Workflow,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum St {
    A,
    Fan,
    Join,
    Done,
}

/// Runs `test` on its own thread and fails if it has not finished within `bound`.
#[track_caller]
fn within<T: Send + 'static>(bound: Duration, test: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = tx.send(test());
    });
    match rx.recv_timeout(bound) {
        Ok(value) => value,
        // The thread panicked (its message is printed); re-raise it here.
        Err(mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the test thread sent nothing and did not panic"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("still running after {bound:?}: the loop never yields or never ends")
        }
    }
}

/// Runs `future` on a fresh tokio current-thread runtime under a generous
/// `tokio::time::timeout`, on a watchdog thread.
fn on_current_thread<T, F>(make: impl FnOnce() -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: Future<Output = T>,
{
    within(Duration::from_secs(60), move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async move {
            tokio::time::timeout(Duration::from_secs(30), make())
                .await
                .expect("the run outlived the outer timeout")
        })
    })
}

/// Returns `next` at once, or fails at once; counts its calls, and cancels `cancel` on call
/// number `cancel_at` (if set) and advances `clock` by `advance` per call (on a fake clock:
/// time passing without the task ever waiting).
struct Instant {
    next: Option<St>,
    calls: Arc<AtomicUsize>,
    config: TaskConfig,
    cancel: Option<(CancellationToken, usize)>,
    advance: Option<(FakeClock, Duration)>,
}

impl Instant {
    fn going_to(next: St) -> Self {
        Instant {
            next: Some(next),
            calls: Arc::new(AtomicUsize::new(0)),
            config: TaskConfig::minimal(),
            cancel: None,
            advance: None,
        }
    }

    /// Always fails, retried forever with no pause.
    fn failing_forever() -> Self {
        Instant {
            next: None,
            config: TaskConfig::minimal().with_retry(RetryMode::fixed(usize::MAX, Duration::ZERO)),
            ..Instant::going_to(St::Done)
        }
    }

    fn cancelling(mut self, token: &CancellationToken, at_call: usize) -> Self {
        self.cancel = Some((token.clone(), at_call));
        self
    }

    fn advancing(mut self, clock: &FakeClock, by: Duration) -> Self {
        self.advance = Some((clock.clone(), by));
        self
    }
}

impl Task<St> for Instant {
    async fn run(&self, _res: &Resources) -> Result<TaskResult<St>, CanoError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some((token, at)) = &self.cancel
            && call == *at
        {
            token.cancel();
        }
        if let Some((clock, by)) = &self.advance {
            clock.advance(*by);
        }
        match self.next {
            Some(next) => Ok(TaskResult::Single(next)),
            None => Err(CanoError::task_execution("fails at once")),
        }
    }

    fn config(&self) -> TaskConfig {
        self.config.clone()
    }

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("instant")
    }
}

/// `A → A` forever (`Done` is never reached).
fn state_loop(task: Instant) -> Workflow<St> {
    Workflow::bare()
        .register(St::A, task)
        .add_exit_state(St::Done)
}

/// `Fan` splits into `branches`, joined into `Join`; `Join` runs `join`.
fn split_loop(branches: Vec<Instant>, join: Instant) -> Workflow<St> {
    Workflow::bare()
        .register_split(
            St::Fan,
            branches,
            JoinConfig::new(JoinStrategy::All, St::Join),
        )
        .register(St::Join, join)
        .add_exit_state(St::Done)
}

fn assert_timeout(result: Result<St, CanoError>) {
    match result {
        Err(CanoError::Timeout(message)) => {
            assert!(message.contains("Workflow timeout"), "{message}")
        }
        other => panic!("expected the run's timeout, got {other:?}"),
    }
}

fn assert_cancelled(result: Result<St, CanoError>) {
    assert!(
        matches!(result, Err(CanoError::Cancelled(_))),
        "expected a cancelled run, got {result:?}"
    );
}

// ---- tokio, current-thread ----

#[test]
fn tokio_a_total_timeout_ends_a_state_that_returns_to_itself_at_once() {
    let (result, calls) = on_current_thread(|| async {
        let task = Instant::going_to(St::A);
        let calls = task.calls.clone();
        let workflow = state_loop(task).with_timeout(Duration::from_millis(200));
        let result = workflow
            .orchestrate_on(&cano_tokio::TokioClock::new(), St::A)
            .await;
        (result, calls.load(Ordering::SeqCst))
    });
    assert_timeout(result);
    assert!(calls > 1, "{calls}");
}

#[test]
fn tokio_a_total_timeout_ends_retries_forever_without_a_pause() {
    let (result, calls) = on_current_thread(|| async {
        let task = Instant::failing_forever();
        let calls = task.calls.clone();
        let workflow = state_loop(task).with_timeout(Duration::from_millis(200));
        let result = workflow
            .orchestrate_on(&cano_tokio::TokioClock::new(), St::A)
            .await;
        (result, calls.load(Ordering::SeqCst))
    });
    assert_timeout(result);
    assert!(calls > 1, "{calls}");
}

/// The token is cancelled by another task on the same thread, after a real sleep: only a
/// run that yields lets it run at all.
#[test]
fn tokio_another_task_gets_turns_and_its_cancellation_ends_the_loop() {
    let (result, ticks) = on_current_thread(|| async {
        let token = CancellationToken::new();
        let ticks = Arc::new(AtomicUsize::new(0));
        let (canceller, ticker) = (token.clone(), ticks.clone());
        tokio::spawn(async move {
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_millis(10)).await;
                ticker.fetch_add(1, Ordering::SeqCst);
            }
            canceller.cancel();
        });
        let workflow = state_loop(Instant::going_to(St::A));
        let ctx = RunContext::new(cano_tokio::TokioClock::new()).with_cancellation(token);
        let result = workflow.orchestrate_with(ctx, St::A).await;
        (result, ticks.load(Ordering::SeqCst))
    });
    assert_cancelled(result);
    assert_eq!(ticks, 5);
}

#[test]
fn tokio_a_total_timeout_ends_split_branches_retrying_forever_without_a_pause() {
    let result = on_current_thread(|| async {
        let workflow = split_loop(
            vec![Instant::failing_forever(), Instant::failing_forever()],
            Instant::going_to(St::Done),
        )
        .with_timeout(Duration::from_millis(200));
        workflow
            .orchestrate_on(&cano_tokio::TokioClock::new(), St::Fan)
            .await
    });
    assert_timeout(result);
}

#[test]
fn tokio_a_total_timeout_ends_a_split_and_join_that_loop_at_once() {
    let result = on_current_thread(|| async {
        let workflow = split_loop(
            vec![Instant::going_to(St::Done), Instant::going_to(St::Done)],
            Instant::going_to(St::Fan),
        )
        .with_timeout(Duration::from_millis(200));
        workflow
            .orchestrate_on(&cano_tokio::TokioClock::new(), St::Fan)
            .await
    });
    assert_timeout(result);
}

/// A scheduled workflow `A → A`: a stop still ends the run when its grace period is over.
#[test]
fn tokio_a_stop_ends_a_scheduled_workflow_that_loops_at_once() {
    let (report, status) = on_current_thread(|| async {
        let mut scheduler: Scheduler<St> = Scheduler::new();
        scheduler
            .manual("loop", state_loop(Instant::going_to(St::A)), St::A)
            .unwrap();
        let running = cano_tokio::start_scheduler(scheduler).await.unwrap();
        running.trigger("loop").unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(running.has_running_flows());
        let report = running
            .stop_within(Duration::from_millis(50))
            .await
            .unwrap();
        (report, running.status("loop").unwrap().status)
    });
    assert!(
        report.cancelled.iter().any(|fire| fire.flow() == "loop"),
        "{report:?}"
    );
    assert!(!matches!(status, cano_core::Status::Running), "{status:?}");
}

// ---- the Simulation ----

/// A spawned task cancels the token the first time it is polled; it only gets polled if the
/// looping run yields.
#[test]
fn simulation_cancellation_from_another_task_ends_a_state_loop() {
    let result = within(Duration::from_secs(60), || {
        let sim = Simulation::new();
        let token = CancellationToken::new();
        let canceller = token.clone();
        sim.spawner()
            .spawn(Box::pin(async move { canceller.cancel() }))
            .unwrap();
        let workflow = state_loop(Instant::going_to(St::A));
        let ctx = RunContext::new(sim.clock()).with_cancellation(token);
        sim.block_on(workflow.orchestrate_with(ctx, St::A))
    });
    assert_cancelled(result);
}

#[test]
fn simulation_cancellation_ends_split_branches_retrying_forever() {
    let result = within(Duration::from_secs(60), || {
        let sim = Simulation::new();
        let token = CancellationToken::new();
        let canceller = token.clone();
        sim.spawner()
            .spawn(Box::pin(async move { canceller.cancel() }))
            .unwrap();
        let workflow = split_loop(
            vec![Instant::failing_forever(), Instant::going_to(St::Done)],
            Instant::going_to(St::Done),
        );
        let ctx = RunContext::new(sim.clock()).with_cancellation(token);
        sim.block_on(workflow.orchestrate_with(ctx, St::Fan))
    });
    assert_cancelled(result);
}

/// Cancelled from inside the loop, the run stops at the very next state, or the very next
/// retry: the token is checked at each, not only when the run happens to wait.
#[test]
fn simulation_the_token_is_checked_at_every_state_and_every_retry() {
    let (states, retries) = within(Duration::from_secs(60), || {
        let sim = Simulation::new();
        let token = CancellationToken::new();
        let task = Instant::going_to(St::A).cancelling(&token, 1_000);
        let calls = task.calls.clone();
        let ctx = RunContext::new(sim.clock()).with_cancellation(token);
        assert_cancelled(sim.block_on(state_loop(task).orchestrate_with(ctx, St::A)));
        let states = calls.load(Ordering::SeqCst);

        let token = CancellationToken::new();
        let task = Instant::failing_forever().cancelling(&token, 1_000);
        let calls = task.calls.clone();
        let ctx = RunContext::new(sim.clock()).with_cancellation(token);
        assert_cancelled(sim.block_on(state_loop(task).orchestrate_with(ctx, St::A)));
        (states, calls.load(Ordering::SeqCst))
    });
    assert_eq!(states, 1_000);
    assert_eq!(retries, 1_000);
}

/// Time that passes while no task waits (here the task moves the fake clock itself) ends
/// the run at the first state or retry past the deadline.
#[test]
fn simulation_the_deadline_is_checked_at_every_state_and_every_retry() {
    let (states, retries) = within(Duration::from_secs(60), || {
        let sim = Simulation::new();
        let step = Duration::from_millis(1);
        let task = Instant::going_to(St::A).advancing(&sim.clock(), step);
        let calls = task.calls.clone();
        let workflow = state_loop(task).with_timeout(Duration::from_millis(200));
        assert_timeout(sim.block_on(workflow.orchestrate_on(&sim.clock(), St::A)));
        let states = calls.load(Ordering::SeqCst);

        let task = Instant::failing_forever().advancing(&sim.clock(), step);
        let calls = task.calls.clone();
        let workflow = state_loop(task).with_timeout(Duration::from_millis(200));
        assert_timeout(sim.block_on(workflow.orchestrate_on(&sim.clock(), St::A)));
        (states, calls.load(Ordering::SeqCst))
    });
    assert_eq!(states, 200);
    assert_eq!(retries, 200);
}

/// On virtual time a loop that never waits never lets the deadline come: the simulation
/// reports a livelock (quickly) instead of hanging.
#[test]
fn simulation_a_state_loop_with_a_timeout_ends_in_the_livelock_report() {
    for (workflow, initial) in [
        (state_loop(Instant::going_to(St::A)), St::A),
        (state_loop(Instant::failing_forever()), St::A),
        (
            split_loop(
                vec![Instant::going_to(St::Done), Instant::failing_forever()],
                Instant::going_to(St::Done),
            ),
            St::Fan,
        ),
    ] {
        let message = within(Duration::from_secs(60), move || {
            let workflow = workflow.with_timeout(Duration::from_millis(200));
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let sim = Simulation::new();
                sim.block_on(workflow.orchestrate_on(&sim.clock(), initial))
            }));
            match outcome {
                Err(panic) => panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default(),
                Ok(result) => format!("no livelock report: {result:?}"),
            }
        });
        assert!(message.contains("simulation livelock"), "{message}");
    }
}

/// A scheduled workflow `A → A` on the simulation: a stop ends the run (at once with no
/// grace period: with one, virtual time could not reach its end while the run spins).
#[test]
fn simulation_a_stop_ends_a_scheduled_workflow_that_loops_at_once() {
    let report = within(Duration::from_secs(60), || {
        let sim = Simulation::new();
        let mut scheduler: Scheduler<St> = Scheduler::new();
        scheduler
            .manual("loop", state_loop(Instant::going_to(St::A)), St::A)
            .unwrap();
        let running = sim
            .block_on(scheduler.start(sim.clock(), sim.spawner()))
            .unwrap();
        running.trigger("loop").unwrap();
        let report = sim.block_on(async {
            // Let the run start and spin a while before stopping.
            for _ in 0..10 {
                yield_once().await;
            }
            assert!(running.has_running_flows());
            running.stop_within(Duration::ZERO).await.unwrap()
        });
        assert_eq!(sim.live_tasks(), 0);
        report
    });
    assert!(
        report.cancelled.iter().any(|fire| fire.flow() == "loop"),
        "{report:?}"
    );
}

async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}
