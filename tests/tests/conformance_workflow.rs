//! Workflow scenarios written once and run on every runtime (fake clock, tokio paused,
//! tokio multi-thread, smol, embassy): split/join under each strategy, and retries with a
//! per-attempt timeout. Virtual-time runtimes must match to the microsecond; real-time ones
//! must reach the same decisions.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cano_core::{
    CanoError, Clock, JoinConfig, JoinStrategy, JoinTask, Resources, RunContext, SplitResult, Task,
    TaskConfig, TaskResult, Workflow,
};
use cano_tests::conformance;
use cano_tests::harness::Harness;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Step {
    Fan,
    Join,
    Work,
    Done,
}

/// Real timers fire late under load; keep real-time gaps wide enough that the order of
/// branch completions cannot flip.
fn unit<H: Harness>() -> Duration {
    if H::VIRTUAL_TIME {
        H::UNIT
    } else {
        H::UNIT * 3
    }
}

/// A split branch: sleeps, then succeeds or fails. No retries.
struct Branch<C> {
    clock: C,
    after: Duration,
    fails: bool,
}

impl<C: Clock> Task<Step> for Branch<C> {
    async fn run_bare(&self) -> Result<TaskResult<Step>, CanoError> {
        self.clock.sleep_until(self.clock.now() + self.after).await;
        if self.fails {
            Err(CanoError::task_execution("branch failed"))
        } else {
            Ok(TaskResult::Single(Step::Join))
        }
    }
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }
}

/// What the join state saw.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Joined {
    successes: Vec<usize>,
    errors: Vec<usize>,
    cancelled: Vec<usize>,
}

struct RecordJoin(Arc<Mutex<Option<Joined>>>);

impl JoinTask<Step> for RecordJoin {
    async fn join(
        &self,
        _res: &Resources,
        results: &SplitResult<Step>,
    ) -> Result<TaskResult<Step>, CanoError> {
        let mut successes: Vec<usize> = results.successes.iter().map(|s| s.0).collect();
        let mut errors: Vec<usize> = results.errors.iter().map(|e| e.0).collect();
        let mut cancelled = results.cancelled.clone();
        successes.sort_unstable();
        errors.sort_unstable();
        cancelled.sort_unstable();
        *self.0.lock().unwrap() = Some(Joined {
            successes,
            errors,
            cancelled,
        });
        Ok(TaskResult::Single(Step::Done))
    }
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }
}

/// Outcome of one split: the run's result, what the join saw, and when the join happened
/// (in units after the start).
type SplitOutcome = (Result<Step, String>, Option<Joined>, f64);

/// Four branches finishing after 1, 2, 3 and 4 units; the one finishing at 2 fails.
fn run_split<H: Harness>(strategy: JoinStrategy, timeout_units: Option<f64>) -> SplitOutcome {
    let unit = unit::<H>();
    H::run(move |clock, spawner| async move {
        let seen = Arc::new(Mutex::new(None));
        let branches: Vec<Branch<H::Clock>> = (1..=4u32)
            .map(|n| Branch {
                clock: clock.clone(),
                after: unit * n,
                fails: n == 2,
            })
            .collect();
        let mut join = JoinConfig::new(strategy, Step::Join);
        if let Some(t) = timeout_units {
            join = join.with_timeout(unit.mul_f64(t));
        }
        let workflow = Workflow::bare()
            .register_split(Step::Fan, branches, join)
            .register_join(Step::Join, RecordJoin(seen.clone()))
            .add_exit_state(Step::Done);
        let start = clock.now();
        let ctx = RunContext::new(clock.clone()).with_spawner(spawner);
        let result = workflow
            .orchestrate_with(ctx, Step::Fan)
            .await
            .map_err(|e| e.to_string());
        let elapsed = (clock.now() - start).as_secs_f64() / unit.as_secs_f64();
        let joined = seen.lock().unwrap().clone();
        (result, joined, elapsed)
    })
}

fn joined(successes: &[usize], errors: &[usize], cancelled: &[usize]) -> Option<Joined> {
    Some(Joined {
        successes: successes.to_vec(),
        errors: errors.to_vec(),
        cancelled: cancelled.to_vec(),
    })
}

#[track_caller]
fn check_split<H: Harness>(outcome: SplitOutcome, expected: Option<Joined>, at_units: f64) {
    let (result, seen, elapsed) = outcome;
    match &expected {
        Some(_) => assert_eq!(result, Ok(Step::Done), "{}", H::NAME),
        None => assert!(
            result.is_err(),
            "{}: expected an error, got {result:?}",
            H::NAME
        ),
    }
    assert_eq!(seen, expected, "{}", H::NAME);
    if H::VIRTUAL_TIME {
        assert_eq!(elapsed, at_units, "{}: decided at {elapsed} units", H::NAME);
    } else {
        // Late, never early; a loaded machine may add up to a unit.
        assert!(
            elapsed >= at_units - 0.01 && elapsed < at_units + 1.0,
            "{}: {elapsed}",
            H::NAME
        );
    }
}

fn split_all_fails_at_the_first_failure<H: Harness>() {
    let (result, seen, elapsed) = run_split::<H>(JoinStrategy::All, None);
    let message = result.unwrap_err();
    assert!(
        message.contains("Join condition not met") || message.contains("branch failed"),
        "{}: {message}",
        H::NAME
    );
    assert_eq!(seen, None, "{}: the join state must not run", H::NAME);
    if H::VIRTUAL_TIME {
        assert_eq!(elapsed, 2.0, "{}", H::NAME);
    }
}

fn split_any_joins_at_the_first_success<H: Harness>() {
    check_split::<H>(
        run_split::<H>(JoinStrategy::Any, None),
        joined(&[0], &[], &[1, 2, 3]),
        1.0,
    );
}

fn split_quorum_joins_once_met<H: Harness>() {
    check_split::<H>(
        run_split::<H>(JoinStrategy::Quorum(2), None),
        joined(&[0, 2], &[1], &[3]),
        3.0,
    );
}

fn split_percentage_joins_once_met<H: Harness>() {
    check_split::<H>(
        run_split::<H>(JoinStrategy::Percentage(0.5), None),
        joined(&[0, 2], &[1], &[3]),
        3.0,
    );
}

fn split_partial_results_joins_at_m_successes<H: Harness>() {
    check_split::<H>(
        run_split::<H>(JoinStrategy::PartialResults(3), None),
        joined(&[0, 2, 3], &[1], &[]),
        4.0,
    );
}

fn split_partial_timeout_joins_what_finished<H: Harness>() {
    check_split::<H>(
        run_split::<H>(JoinStrategy::PartialTimeout, Some(2.5)),
        joined(&[0], &[1], &[2, 3]),
        2.5,
    );
}

conformance!(split_all_fails_at_the_first_failure);
conformance!(split_any_joins_at_the_first_success);
conformance!(split_quorum_joins_once_met);
conformance!(split_percentage_joins_once_met);
conformance!(split_partial_results_joins_at_m_successes);
conformance!(split_partial_timeout_joins_what_finished);

/// Attempts 1 and 2 hang for 3 units against a 2-unit attempt timeout; attempt 3 takes one
/// unit and succeeds. Fixed retry delay: one unit.
struct SlowThenFast<C> {
    clock: C,
    unit: Duration,
    attempts: Arc<AtomicU32>,
}

impl<C: Clock> Task<Step> for SlowThenFast<C> {
    async fn run_bare(&self) -> Result<TaskResult<Step>, CanoError> {
        let attempt = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        let work = if attempt < 3 {
            self.unit * 3
        } else {
            self.unit
        };
        self.clock.sleep_until(self.clock.now() + work).await;
        Ok(TaskResult::Single(Step::Done))
    }
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
            .with_fixed_retry(3, self.unit)
            .with_attempt_timeout(self.unit * 2)
    }
}

fn retry_with_per_attempt_timeout<H: Harness>() {
    let unit = unit::<H>();
    let (result, attempts, elapsed) = H::run(move |clock, _spawner| async move {
        let attempts = Arc::new(AtomicU32::new(0));
        let task = SlowThenFast {
            clock: clock.clone(),
            unit,
            attempts: attempts.clone(),
        };
        let workflow = Workflow::bare()
            .register(Step::Work, task)
            .add_exit_state(Step::Done);
        let start = clock.now();
        let result = workflow.orchestrate_on(&clock, Step::Work).await;
        let elapsed = (clock.now() - start).as_secs_f64() / unit.as_secs_f64();
        (result, attempts.load(Ordering::SeqCst), elapsed)
    });
    assert_eq!(result, Ok(Step::Done), "{}", H::NAME);
    assert_eq!(attempts, 3, "{}", H::NAME);
    // timeout 2 + delay 1 + timeout 2 + delay 1 + work 1
    if H::VIRTUAL_TIME {
        assert_eq!(elapsed, 7.0, "{}", H::NAME);
    } else {
        assert!(
            (7.0 - 0.01..9.0).contains(&elapsed),
            "{}: {elapsed}",
            H::NAME
        );
    }
}

fn retry_exhausted_keeps_the_timeout_as_its_cause<H: Harness>() {
    let unit = unit::<H>();
    let result = H::run(move |clock, _spawner| async move {
        let attempts = Arc::new(AtomicU32::new(0));
        // Only one retry: both attempts time out.
        struct Hangs<C>(C, Duration, Arc<AtomicU32>);
        impl<C: Clock> Task<Step> for Hangs<C> {
            async fn run_bare(&self) -> Result<TaskResult<Step>, CanoError> {
                self.2.fetch_add(1, Ordering::SeqCst);
                self.0.sleep_until(self.0.now() + self.1 * 10).await;
                Ok(TaskResult::Single(Step::Done))
            }
            fn config(&self) -> TaskConfig {
                TaskConfig::minimal()
                    .with_fixed_retry(1, self.1)
                    .with_attempt_timeout(self.1)
            }
        }
        let workflow = Workflow::bare()
            .register(Step::Work, Hangs(clock.clone(), unit, attempts.clone()))
            .add_exit_state(Step::Done);
        let result = workflow.orchestrate_on(&clock, Step::Work).await;
        (result, attempts.load(Ordering::SeqCst))
    });
    match result {
        (
            Err(CanoError::RetryExhausted {
                attempts: 2,
                source,
            }),
            2,
        ) => {
            assert_eq!(source.category(), "timeout", "{}", H::NAME)
        }
        other => panic!("{}: {other:?}", H::NAME),
    }
}

conformance!(retry_with_per_attempt_timeout);
conformance!(retry_exhausted_keeps_the_timeout_as_its_cause);
