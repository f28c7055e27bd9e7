//! Poll tasks on the fake clock: pauses, the error policy (with its delay between error
//! re-polls, which cano 0.12 lacked), zero pauses that yield instead of busy-looping (0.12
//! busy-looped), and the bounds: the attempt timeout and cancellation.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cano_core::shapes::poll::{DynPollTask, PollErrorPolicy, PollOutcome, PollRunner, PollTask};
use cano_core::testing::{FakeClock, Simulation};
use cano_core::{
    CancellationToken, CanoError, Clock, Instant, Resources, RunContext, TaskConfig, TaskResult,
    Workflow,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum St {
    Wait,
    Other,
    Done,
}

/// One scripted answer of a poll.
#[derive(Clone)]
enum Say {
    Pending(u64),
    Fail,
    Ready,
}

/// Answers from a script (the last answer repeats) and records when each poll happened.
struct Scripted {
    clock: FakeClock,
    script: Vec<Say>,
    policy: PollErrorPolicy,
    config: TaskConfig,
    polls: Arc<Mutex<Vec<Instant>>>,
}

impl Scripted {
    fn new(clock: &FakeClock, script: Vec<Say>) -> Self {
        Scripted {
            clock: clock.clone(),
            script,
            policy: PollErrorPolicy::FailFast,
            config: TaskConfig::minimal(),
            polls: Arc::default(),
        }
    }
    fn policy(mut self, policy: PollErrorPolicy) -> Self {
        self.policy = policy;
        self
    }
    fn config(mut self, config: TaskConfig) -> Self {
        self.config = config;
        self
    }
}

impl PollTask<St> for Scripted {
    async fn poll(&self, _res: &Resources) -> Result<PollOutcome<St>, CanoError> {
        let n = {
            let mut polls = self.polls.lock().unwrap();
            polls.push(self.clock.now());
            polls.len() - 1
        };
        match self.script.get(n).or(self.script.last()).unwrap() {
            Say::Pending(secs) => Ok(PollOutcome::Pending {
                after: Duration::from_secs(*secs),
            }),
            Say::Fail => Err(CanoError::task_execution(format!("poll {n} failed"))),
            Say::Ready => Ok(PollOutcome::Ready(TaskResult::Single(St::Done))),
        }
    }
    fn on_poll_error(&self) -> PollErrorPolicy {
        self.policy
    }
    fn config(&self) -> TaskConfig {
        self.config.clone()
    }
}

fn secs(v: &[u64]) -> Vec<Instant> {
    v.iter().map(|s| Instant::from_secs(*s)).collect()
}

fn run(sim: &Simulation, task: Scripted) -> (Result<St, CanoError>, Vec<Instant>) {
    let polls = task.polls.clone();
    let clock = sim.clock();
    let wf = Workflow::bare()
        .register(St::Wait, PollRunner::new(task, clock.clone()))
        .add_exit_state(St::Done);
    let result = sim.block_on(wf.orchestrate_on(&clock, St::Wait));
    let polls = polls.lock().unwrap().clone();
    (result, polls)
}

#[test]
fn pending_pauses_for_exactly_the_time_asked() {
    let sim = Simulation::new();
    let task = Scripted::new(
        &sim.clock(),
        vec![
            Say::Pending(10),
            Say::Pending(3),
            Say::Pending(7),
            Say::Ready,
        ],
    );
    let (result, polls) = run(&sim, task);
    assert_eq!(result, Ok(St::Done));
    assert_eq!(polls, secs(&[0, 10, 13, 20]));
}

#[test]
fn tolerated_errors_are_repolled_after_the_policy_delay_not_at_once() {
    // cano 0.12 re-polled immediately: polls at 0, 0, 0.
    let sim = Simulation::new();
    let task = Scripted::new(&sim.clock(), vec![Say::Fail, Say::Fail, Say::Ready]).policy(
        PollErrorPolicy::RetryOnError {
            max_errors: 2,
            delay: Duration::from_secs(5),
        },
    );
    let (result, polls) = run(&sim, task);
    assert_eq!(result, Ok(St::Done));
    assert_eq!(polls, secs(&[0, 5, 10]));
}

#[test]
fn max_errors_tolerates_exactly_that_many_consecutive_errors() {
    for max_errors in 0..6u32 {
        for delay in [0u64, 1, 4] {
            let sim = Simulation::new();
            let task = Scripted::new(&sim.clock(), vec![Say::Fail]).policy(
                PollErrorPolicy::RetryOnError {
                    max_errors,
                    delay: Duration::from_secs(delay),
                },
            );
            let (result, polls) = run(&sim, task);
            let n = max_errors as usize;
            assert_eq!(polls.len(), n + 1, "max_errors {max_errors}, delay {delay}");
            // The error that fails the state is the last poll's own.
            assert_eq!(
                result,
                Err(CanoError::task_execution(format!("poll {n} failed")))
            );
            let expected: Vec<Instant> = (0..=n as u64)
                .map(|i| Instant::from_secs(i * delay))
                .collect();
            assert_eq!(polls, expected, "max_errors {max_errors}, delay {delay}");
        }
    }
}

#[test]
fn a_pending_answer_resets_the_consecutive_error_count() {
    let sim = Simulation::new();
    let script = vec![
        Say::Fail,
        Say::Pending(1),
        Say::Fail,
        Say::Pending(1),
        Say::Fail,
        Say::Ready,
    ];
    let task = Scripted::new(&sim.clock(), script).policy(PollErrorPolicy::RetryOnError {
        max_errors: 1,
        delay: Duration::from_secs(2),
    });
    let (result, polls) = run(&sim, task);
    assert_eq!(result, Ok(St::Done));
    assert_eq!(polls, secs(&[0, 2, 3, 5, 6, 8]));
}

#[test]
fn fail_fast_fails_on_the_first_error() {
    let sim = Simulation::new();
    let task = Scripted::new(&sim.clock(), vec![Say::Pending(1), Say::Fail, Say::Ready]);
    let (result, polls) = run(&sim, task);
    assert_eq!(result, Err(CanoError::task_execution("poll 1 failed")));
    assert_eq!(polls.len(), 2);
}

#[test]
fn the_attempt_timeout_bounds_a_loop_that_is_never_ready() {
    let sim = Simulation::new();
    let task = Scripted::new(&sim.clock(), vec![Say::Pending(10)])
        .config(TaskConfig::minimal().with_attempt_timeout(Duration::from_secs(35)));
    let (result, polls) = run(&sim, task);
    assert_eq!(result.unwrap_err().category(), "timeout");
    assert_eq!(polls, secs(&[0, 10, 20, 30]));
    assert_eq!(sim.clock().now(), Instant::from_secs(35));
}

#[test]
fn a_retried_loop_restarts_after_the_retry_delay() {
    let sim = Simulation::new();
    let script = vec![Say::Pending(10), Say::Pending(10), Say::Fail, Say::Ready];
    let task = Scripted::new(&sim.clock(), script)
        .config(TaskConfig::minimal().with_fixed_retry(1, Duration::from_secs(1)));
    let (result, polls) = run(&sim, task);
    assert_eq!(result, Ok(St::Done));
    assert_eq!(polls, secs(&[0, 10, 20, 21]));
}

#[test]
fn cancellation_stops_the_loop_during_a_pause() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let task = Scripted::new(&clock, vec![Say::Pending(10)]);
    let polls = task.polls.clone();
    let wf = Workflow::bare()
        .register(St::Wait, PollRunner::new(task, clock.clone()))
        .add_exit_state(St::Done);
    let token = CancellationToken::new();
    let canceller = token.clone();
    let c = clock.clone();
    let result = sim.block_on(async move {
        let run = wf.orchestrate_with(
            RunContext::new(c.clone()).with_cancellation(token),
            St::Wait,
        );
        let cancel = async {
            c.sleep_until(Instant::from_secs(25)).await;
            canceller.cancel();
            std::future::pending::<()>().await
        };
        futures::pin_mut!(run, cancel);
        match futures::future::select(run, cancel).await {
            futures::future::Either::Left((r, _)) => r,
            futures::future::Either::Right(_) => unreachable!(),
        }
    });
    assert_eq!(result.unwrap_err().category(), "cancelled");
    assert_eq!(sim.clock().now(), Instant::from_secs(25));
    assert_eq!(*polls.lock().unwrap(), secs(&[0, 10, 20]));
}

/// Always pending with no pause; gives up after `cap` polls so a busy loop shows as an
/// error instead of hanging the test.
struct Spinner {
    polls: AtomicU32,
    cap: u32,
}

impl PollTask<St> for Spinner {
    async fn poll(&self, _res: &Resources) -> Result<PollOutcome<St>, CanoError> {
        if self.polls.fetch_add(1, Ordering::SeqCst) >= self.cap {
            return Err(CanoError::task_execution(
                "busy loop: the poll never yielded",
            ));
        }
        Ok(PollOutcome::Pending {
            after: Duration::ZERO,
        })
    }
}

#[test]
fn a_zero_pause_yields_so_other_futures_and_cancellation_run() {
    // cano 0.12 re-polled at once without yielding: nothing else on the executor thread ran,
    // and the cancellation below would never be seen.
    let sim = Simulation::new();
    let clock = sim.clock();
    let spinner = Arc::new(Spinner {
        polls: AtomicU32::new(0),
        cap: 10_000,
    });
    let wf = Workflow::bare()
        .register(St::Wait, PollRunner::new(spinner.clone(), clock.clone()))
        .add_exit_state(St::Done);
    let token = CancellationToken::new();
    let canceller = token.clone();
    let other_ran = Arc::new(AtomicU32::new(0));
    let seen = other_ran.clone();
    let result = sim.block_on(async move {
        let run = wf.orchestrate_with(RunContext::new(clock).with_cancellation(token), St::Wait);
        // Another future on the same thread: runs only if the loop yields.
        let other = async {
            for _ in 0..3 {
                seen.fetch_add(1, Ordering::SeqCst);
                futures::future::ready(()).await;
                YieldOnce(false).await;
            }
            canceller.cancel();
            std::future::pending::<()>().await
        };
        futures::pin_mut!(run, other);
        match futures::future::select(run, other).await {
            futures::future::Either::Left((r, _)) => r,
            futures::future::Either::Right(_) => unreachable!(),
        }
    });
    assert_eq!(result.unwrap_err().category(), "cancelled");
    assert_eq!(other_ran.load(Ordering::SeqCst), 3);
    assert!(spinner.polls.load(Ordering::SeqCst) < 10);
}

struct YieldOnce(bool);
impl std::future::Future for YieldOnce {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            std::task::Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }
}

impl PollTask<St> for Arc<Spinner> {
    async fn poll(&self, res: &Resources) -> Result<PollOutcome<St>, CanoError> {
        Spinner::poll(self, res).await
    }
}

/// Ready at once with a fixed next state.
struct ReadyWith(St, Arc<AtomicBool>);
impl PollTask<St> for ReadyWith {
    async fn poll(&self, _res: &Resources) -> Result<PollOutcome<St>, CanoError> {
        self.1.store(true, Ordering::SeqCst);
        Ok(PollOutcome::Ready(TaskResult::Single(self.0)))
    }
}

#[test]
fn poll_tasks_of_different_types_register_through_their_dyn_form() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let ran = Arc::new(AtomicBool::new(false));
    let tasks: Vec<Box<dyn DynPollTask<St>>> = vec![
        Box::new(ReadyWith(St::Other, ran.clone())),
        Box::new(Scripted::new(&clock, vec![Say::Pending(2), Say::Ready])),
    ];
    let mut tasks = tasks.into_iter();
    let wf = Workflow::bare()
        .register(
            St::Wait,
            PollRunner::new(tasks.next().unwrap(), clock.clone()),
        )
        .register(
            St::Other,
            PollRunner::new(tasks.next().unwrap(), clock.clone()),
        )
        .add_exit_state(St::Done);
    assert_eq!(
        sim.block_on(wf.orchestrate_on(&clock, St::Wait)),
        Ok(St::Done)
    );
    assert!(ran.load(Ordering::SeqCst));
    assert_eq!(sim.clock().now(), Instant::from_secs(2));
}
