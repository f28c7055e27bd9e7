//! Poll tasks, batch tasks and rate limiters written once and run on every runtime (fake
//! clock, tokio paused, tokio multi-thread, smol, embassy). Virtual-time runtimes must match
//! exactly; real-time ones must reach the same decisions, late but never early.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cano_core::rate_limit::{
    MultiRateLimiter, RateLimiter, RateLimiterPolicy, WindowPolicy, WindowedRateLimiter,
};
use cano_core::shapes::batch::{BatchRunner, BatchTask};
use cano_core::shapes::poll::{PollErrorPolicy, PollOutcome, PollRunner, PollTask};
use cano_core::{CanoError, Clock, Resources, RetryMode, Task, TaskConfig, TaskResult, Workflow};
use cano_tests::conformance;
use cano_tests::harness::Harness;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Step {
    Work,
    Done,
}

/// Real timers fire late under load; real-time units are wide enough that decisions a unit
/// apart cannot swap.
fn unit<H: Harness>() -> Duration {
    if H::VIRTUAL_TIME {
        H::UNIT
    } else {
        H::UNIT * 3
    }
}

#[track_caller]
fn check_elapsed<H: Harness>(elapsed: f64, ideal: f64) {
    if H::VIRTUAL_TIME {
        assert_eq!(elapsed, ideal, "{}", H::NAME);
    } else {
        assert!(
            elapsed >= ideal - 0.01 && elapsed < ideal + 1.5,
            "{}: {elapsed} units, ideal {ideal}",
            H::NAME
        );
    }
}

/// Pending (1 unit), pending (1 unit), two errors (re-polled 1 unit apart), ready.
struct Job<C> {
    clock: C,
    unit: Duration,
    polls: Arc<Mutex<Vec<f64>>>,
    start: cano_core::Instant,
    forever: bool,
}

impl<C: Clock> PollTask<Step> for Job<C> {
    async fn poll(&self, _res: &Resources) -> Result<PollOutcome<Step>, CanoError> {
        let n = {
            let mut polls = self.polls.lock().unwrap();
            polls.push((self.clock.now() - self.start).as_secs_f64() / self.unit.as_secs_f64());
            polls.len()
        };
        if self.forever {
            return Ok(PollOutcome::Pending { after: self.unit });
        }
        match n {
            1 | 2 => Ok(PollOutcome::Pending { after: self.unit }),
            3 | 4 => Err(CanoError::task_execution("not reachable")),
            _ => Ok(PollOutcome::Ready(TaskResult::Single(Step::Done))),
        }
    }
    fn on_poll_error(&self) -> PollErrorPolicy {
        PollErrorPolicy::RetryOnError {
            max_errors: 2,
            delay: self.unit,
        }
    }
    fn config(&self) -> TaskConfig {
        if self.forever {
            TaskConfig::minimal().with_attempt_timeout(self.unit.mul_f64(3.5))
        } else {
            TaskConfig::minimal()
        }
    }
}

fn poll_scenario<H: Harness>(forever: bool) -> (Result<Step, CanoError>, Vec<f64>, f64) {
    let unit = unit::<H>();
    H::run(move |clock, _spawner| async move {
        let polls = Arc::new(Mutex::new(vec![]));
        let start = clock.now();
        let job = Job {
            clock: clock.clone(),
            unit,
            polls: polls.clone(),
            start,
            forever,
        };
        let wf = Workflow::bare()
            .register(Step::Work, PollRunner::new(job, clock.clone()))
            .add_exit_state(Step::Done);
        let result = wf.orchestrate_on(&clock, Step::Work).await;
        let elapsed = (clock.now() - start).as_secs_f64() / unit.as_secs_f64();
        let polls = polls.lock().unwrap().clone();
        (result, polls, elapsed)
    })
}

fn poll_pauses_and_waits_between_error_repolls<H: Harness>() {
    let (result, polls, elapsed) = poll_scenario::<H>(false);
    assert_eq!(result, Ok(Step::Done), "{}", H::NAME);
    assert_eq!(polls.len(), 5, "{}", H::NAME);
    if H::VIRTUAL_TIME {
        assert_eq!(polls, vec![0.0, 1.0, 2.0, 3.0, 4.0], "{}", H::NAME);
    } else {
        // Each poll at least a unit after the previous one: error re-polls wait too.
        assert!(
            polls.windows(2).all(|w| w[1] - w[0] >= 0.99),
            "{}: {polls:?}",
            H::NAME
        );
    }
    check_elapsed::<H>(elapsed, 4.0);
}

fn poll_is_bounded_by_the_attempt_timeout<H: Harness>() {
    let (result, polls, elapsed) = poll_scenario::<H>(true);
    assert_eq!(result.unwrap_err().category(), "timeout", "{}", H::NAME);
    if H::VIRTUAL_TIME {
        assert_eq!(polls, vec![0.0, 1.0, 2.0, 3.0], "{}", H::NAME);
    } else {
        assert!((2..=4).contains(&polls.len()), "{}: {polls:?}", H::NAME);
    }
    check_elapsed::<H>(elapsed, 3.5);
}

conformance!(poll_pauses_and_waits_between_error_repolls);
conformance!(poll_is_bounded_by_the_attempt_timeout);

/// Six items, three at a time, one unit each; item 1 fails its first attempt (retried after
/// one unit), item 4 hangs and is cut off by the two-unit item timeout.
struct Images<C> {
    clock: C,
    unit: Duration,
    attempts: Arc<AtomicU32>,
    seen: Arc<Mutex<Vec<Result<u32, String>>>>,
}

impl<C: Clock> BatchTask<Step> for Images<C> {
    type Item = u32;
    type Output = u32;
    fn concurrency(&self) -> usize {
        3
    }
    fn item_retry(&self) -> RetryMode {
        RetryMode::fixed(1, self.unit)
    }
    fn item_timeout(&self) -> Option<Duration> {
        Some(self.unit * 2)
    }
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }
    async fn load(&self, _res: &Resources) -> Result<Vec<u32>, CanoError> {
        Ok((0..6).collect())
    }
    async fn process_item(&self, _res: &Resources, item: &u32) -> Result<u32, CanoError> {
        let work = if *item == 4 {
            self.unit * 100
        } else {
            self.unit
        };
        self.clock.sleep_until(self.clock.now() + work).await;
        if *item == 1 && self.attempts.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(CanoError::task_execution("transient"));
        }
        Ok(item * 10)
    }
    async fn finish(
        &self,
        _res: &Resources,
        outputs: Vec<Result<u32, CanoError>>,
    ) -> Result<TaskResult<Step>, CanoError> {
        *self.seen.lock().unwrap() = outputs
            .into_iter()
            .map(|o| o.map_err(|e| e.category().to_string()))
            .collect();
        Ok(TaskResult::Single(Step::Done))
    }
}

fn batch_limits_retries_times_out_and_keeps_input_order<H: Harness>() {
    let unit = unit::<H>();
    let (result, seen, elapsed) = H::run(move |clock, _spawner| async move {
        let seen = Arc::new(Mutex::new(vec![]));
        let images = Images {
            clock: clock.clone(),
            unit,
            attempts: Arc::default(),
            seen: seen.clone(),
        };
        let wf = Workflow::bare()
            .register(Step::Work, BatchRunner::new(images, clock.clone()))
            .add_exit_state(Step::Done);
        let start = clock.now();
        let result = wf.orchestrate_on(&clock, Step::Work).await;
        let elapsed = (clock.now() - start).as_secs_f64() / unit.as_secs_f64();
        let seen = seen.lock().unwrap().clone();
        (result, seen, elapsed)
    });
    assert_eq!(result, Ok(Step::Done), "{}", H::NAME);
    assert_eq!(
        seen,
        vec![
            Ok(0),
            Ok(10),
            Ok(20),
            Ok(30),
            Err("retry_exhausted".to_string()),
            Ok(50)
        ],
        "{}",
        H::NAME
    );
    // Item 4: starts at 1, times out at 3, retried after a unit, times out again at 6.
    check_elapsed::<H>(elapsed, 6.0);
}

conformance!(batch_limits_retries_times_out_and_keeps_input_order);

/// Acquire times in units from a limiter, through `acquire(&clock)`.
fn rate_limiter_acquire_sleeps_until_the_refill<H: Harness>() {
    let unit = unit::<H>();
    let times = H::run(move |clock, _spawner| async move {
        // One token per unit, two in the bucket; a window of 4 per 10 units on top.
        let bucket = Arc::new(RateLimiter::new(RateLimiterPolicy::new(2, unit * 2)).unwrap());
        let window = Arc::new(WindowedRateLimiter::new(WindowPolicy::new(4, unit * 10)).unwrap());
        let limiter = MultiRateLimiter::new()
            .with_tier("bucket", bucket, 1)
            .unwrap()
            .with_tier("window", window, 1)
            .unwrap();
        let start = clock.now();
        let mut times = vec![];
        for _ in 0..6 {
            limiter.acquire(&clock).await.unwrap();
            times.push((clock.now() - start).as_secs_f64() / unit.as_secs_f64());
        }
        times
    });
    let ideal = [0.0, 0.0, 1.0, 2.0, 10.0, 10.0];
    if H::VIRTUAL_TIME {
        assert_eq!(times, ideal, "{}", H::NAME);
    } else {
        for (t, i) in times.iter().zip(ideal) {
            assert!(*t >= i - 0.01 && *t < i + 1.5, "{}: {times:?}", H::NAME);
        }
    }
}

/// A task whose every attempt takes a permit from a limiter in its config.
struct Limited<C> {
    clock: C,
    limiter: Arc<RateLimiter>,
    calls: Arc<AtomicU32>,
}

impl<C: Clock> Task<Step> for Limited<C> {
    async fn run_bare(&self) -> Result<TaskResult<Step>, CanoError> {
        let _ = &self.clock;
        if self.calls.fetch_add(1, Ordering::SeqCst) < 2 {
            return Err(CanoError::task_execution("try again"));
        }
        Ok(TaskResult::Single(Step::Done))
    }
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
            .with_fixed_retry(2, Duration::ZERO)
            .with_rate_limit(self.limiter.clone())
    }
}

fn task_config_rate_limit_paces_attempts<H: Harness>() {
    let unit = unit::<H>();
    let (result, elapsed) = H::run(move |clock, _spawner| async move {
        let limiter = Arc::new(RateLimiter::new(RateLimiterPolicy::new(1, unit)).unwrap());
        let task = Limited {
            clock: clock.clone(),
            limiter,
            calls: Arc::default(),
        };
        let wf = Workflow::bare()
            .register(Step::Work, task)
            .add_exit_state(Step::Done);
        let start = clock.now();
        let result = wf.orchestrate_on(&clock, Step::Work).await;
        (
            result,
            (clock.now() - start).as_secs_f64() / unit.as_secs_f64(),
        )
    });
    assert_eq!(result, Ok(Step::Done), "{}", H::NAME);
    // Three attempts, one permit per unit.
    check_elapsed::<H>(elapsed, 2.0);
}

conformance!(rate_limiter_acquire_sleeps_until_the_refill);
conformance!(task_config_rate_limit_paces_attempts);
