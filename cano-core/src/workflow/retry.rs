//! Retries: [`RetryMode`] (how many attempts, how long between them), [`TaskConfig`] (retry
//! mode, per-attempt timeout, circuit breaker) and the retry loop that applies them.
//!
//! The delay math is pure ([`RetryMode::delay_for_attempt`]); the loop is a small
//! hand-written future that sleeps on the run's [`Clock`] and draws jitter from an injected
//! [`RandomSource`], so retries are deterministic under a fake clock and a seeded source.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use futures::future::BoxFuture;

use crate::circuit::{CircuitBreaker, Permit};
use crate::error::CanoError;
use crate::panic::isolate_panic;
use crate::random::RandomSource;
use crate::rate_limit::RateLimit;
use crate::runtime::Clock;
use crate::telemetry::{self, Span};
use crate::workflow::run::RunGuard;

/// How many attempts the retry loop starts within one poll before it yields to the
/// executor (waking itself first). Attempts that fail at once with no pause between them
/// would otherwise never return `Pending`: no timeout, cancellation or other task on the
/// same thread would ever get a turn.
const ATTEMPTS_PER_POLL: u32 = 32;

/// How a failed task is retried.
///
/// ```
/// use cano_core::RetryMode;
/// use cano_core::random::SplitMix64;
/// use core::time::Duration;
///
/// let rng = SplitMix64::new(1);
/// let mode = RetryMode::exponential_custom(4, Duration::from_millis(100), 2.0, Duration::from_millis(500), 0.0);
/// assert_eq!(mode.max_attempts(), 5);
/// let delays: Vec<_> = (0..5).map(|i| mode.delay_for_attempt(i, &rng)).collect();
/// assert_eq!(delays, [
///     Some(Duration::from_millis(100)),
///     Some(Duration::from_millis(200)),
///     Some(Duration::from_millis(400)),
///     Some(Duration::from_millis(500)), // capped
///     None,                             // no fifth retry
/// ]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum RetryMode {
    /// One attempt, no retry.
    None,
    /// `retries` more attempts, `delay` apart.
    Fixed {
        /// Retries after the first attempt.
        retries: usize,
        /// The pause before each retry.
        delay: Duration,
    },
    /// `max_retries` more attempts; the pause before retry `i` (0-based) is
    /// `min(base_delay · multiplier^i, max_delay) · (1 + jitter · U[-1, 1))`, in whole
    /// milliseconds, never negative.
    ExponentialBackoff {
        /// Retries after the first attempt.
        max_retries: usize,
        /// The pause before the first retry (before jitter).
        base_delay: Duration,
        /// Growth factor per retry.
        multiplier: f64,
        /// Upper bound before jitter.
        max_delay: Duration,
        /// Relative jitter, clamped to `[0, 1]` when used (also when the enum is built
        /// directly, unlike cano 0.12).
        jitter: f64,
    },
}

impl Default for RetryMode {
    /// Exponential backoff: 3 retries, 100 ms × 2, capped at 30 s, ±10 % jitter.
    fn default() -> Self {
        RetryMode::exponential(3)
    }
}

impl RetryMode {
    /// [`RetryMode::Fixed`].
    pub fn fixed(retries: usize, delay: Duration) -> Self {
        RetryMode::Fixed { retries, delay }
    }

    /// Exponential backoff with cano's defaults: base 100 ms, ×2, cap 30 s, jitter 0.1.
    pub fn exponential(max_retries: usize) -> Self {
        RetryMode::ExponentialBackoff {
            max_retries,
            base_delay: Duration::from_millis(100),
            multiplier: 2.0,
            max_delay: Duration::from_secs(30),
            jitter: 0.1,
        }
    }

    /// Exponential backoff with every parameter given; `jitter` is clamped to `[0, 1]`
    /// (NaN becomes 0).
    pub fn exponential_custom(
        max_retries: usize,
        base_delay: Duration,
        multiplier: f64,
        max_delay: Duration,
        jitter: f64,
    ) -> Self {
        RetryMode::ExponentialBackoff {
            max_retries,
            base_delay,
            multiplier,
            max_delay,
            jitter: clamp_jitter(jitter),
        }
    }

    /// Total attempts: retries + 1 (saturating).
    pub fn max_attempts(&self) -> usize {
        match self {
            RetryMode::None => 1,
            RetryMode::Fixed { retries, .. } => retries.saturating_add(1),
            RetryMode::ExponentialBackoff { max_retries, .. } => max_retries.saturating_add(1),
        }
    }

    /// The pause before retry number `retry` (0-based: `0` is the pause after the first
    /// failed attempt), or `None` when no such retry exists. Draws one value from `random`
    /// only when jitter is non-zero.
    pub fn delay_for_attempt(&self, retry: u32, random: &dyn RandomSource) -> Option<Duration> {
        let index = usize::try_from(retry).unwrap_or(usize::MAX);
        match self {
            RetryMode::None => None,
            RetryMode::Fixed { retries, delay } => (index < *retries).then_some(*delay),
            RetryMode::ExponentialBackoff {
                max_retries,
                base_delay,
                multiplier,
                max_delay,
                jitter,
            } => {
                if index >= *max_retries {
                    return None;
                }
                let base_ms = base_delay.as_millis() as f64;
                let max_ms = max_delay.as_millis() as f64;
                let capped = if base_ms == 0.0 {
                    0.0
                } else {
                    let grown = base_ms * powi(*multiplier, retry);
                    if grown.is_nan() {
                        max_ms
                    } else {
                        grown.min(max_ms)
                    }
                };
                let factor = jitter_factor(*jitter, random);
                // `as u64` saturates (and maps NaN to 0): never a panic, never a wrap.
                let millis = (capped * factor).max(0.0) as u64;
                Some(Duration::from_millis(millis))
            }
        }
    }
}

/// The random factor a delay is scaled by: `1 + jitter · U[-1, 1]`, always in `[0, 2]`.
/// Draws one value only when the clamped jitter is positive. A source that returns a value
/// outside `[-1, 1]` (or NaN) is clamped (NaN counts as 0), so a custom [`RandomSource`]
/// cannot make a delay negative, NaN or more than twice its base.
pub(crate) fn jitter_factor(jitter: f64, random: &(impl RandomSource + ?Sized)) -> f64 {
    let jitter = clamp_jitter(jitter);
    if jitter > 0.0 {
        let draw = random.next_symmetric();
        let draw = if draw.is_nan() {
            0.0
        } else {
            draw.clamp(-1.0, 1.0)
        };
        1.0 + jitter * draw
    } else {
        1.0
    }
}

pub(crate) fn clamp_jitter(jitter: f64) -> f64 {
    if jitter.is_nan() {
        0.0
    } else {
        jitter.clamp(0.0, 1.0)
    }
}

/// `x^n` by squaring (`f64::powi` lives in `std`).
pub(crate) fn powi(x: f64, mut n: u32) -> f64 {
    let (mut base, mut acc) = (x, 1.0);
    while n > 0 {
        if n & 1 == 1 {
            acc *= base;
        }
        base *= base;
        n >>= 1;
    }
    acc
}

/// How a task is retried, bounded and protected. Read once, when the task is registered.
///
/// ```
/// use cano_core::{CircuitBreaker, CircuitPolicy, RetryMode, TaskConfig};
/// use std::sync::Arc;
/// use core::time::Duration;
///
/// let breaker = Arc::new(CircuitBreaker::new(CircuitPolicy::default()).unwrap());
/// let config = TaskConfig::new()
///     .with_fixed_retry(2, Duration::from_millis(50))
///     .with_attempt_timeout(Duration::from_secs(1))
///     .with_circuit_breaker(breaker);
/// assert_eq!(config.retry_mode.max_attempts(), 3);
/// assert_eq!(TaskConfig::minimal().retry_mode, RetryMode::None);
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct TaskConfig {
    /// Retries. Default: [`RetryMode::default`] (3 retries, exponential).
    pub retry_mode: RetryMode,
    /// A deadline for each attempt, fresh per attempt. An attempt that exceeds it fails
    /// with [`CanoError::Timeout`] (which is retried like any failure).
    pub attempt_timeout: Option<Duration>,
    /// A breaker consulted before every attempt. When it rejects, the task fails at once
    /// with [`CanoError::CircuitOpen`], which is never retried nor wrapped.
    pub circuit_breaker: Option<Arc<CircuitBreaker>>,
    /// A rate limit every attempt takes a permit from first (see
    /// [`with_rate_limit`](Self::with_rate_limit)).
    pub rate_limit: Option<TaskRateLimit>,
}

/// [`TaskConfig::default`], as a static: what most tasks return from `config()`.
pub(crate) static DEFAULT_CONFIG: TaskConfig = TaskConfig {
    retry_mode: RetryMode::ExponentialBackoff {
        max_retries: 3,
        base_delay: Duration::from_millis(100),
        multiplier: 2.0,
        max_delay: Duration::from_secs(30),
        jitter: 0.1,
    },
    attempt_timeout: None,
    circuit_breaker: None,
    rate_limit: None,
};

/// [`TaskConfig::minimal`], as a static.
pub(crate) static MINIMAL_CONFIG: TaskConfig = TaskConfig {
    retry_mode: RetryMode::None,
    attempt_timeout: None,
    circuit_breaker: None,
    rate_limit: None,
};

/// A task's config as a workflow keeps it for every run: the two stock configs (what
/// nearly every task returns) point at statics, so only a customised one costs heap. A
/// registered task is kept per workflow, and a scheduler may hold thousands of workflows.
#[derive(Clone)]
pub(crate) enum StoredConfig {
    /// [`TaskConfig::default`].
    Default,
    /// [`TaskConfig::minimal`].
    Minimal,
    /// Anything else.
    Custom(Box<TaskConfig>),
}

impl StoredConfig {
    pub(crate) fn new(config: TaskConfig) -> Self {
        let stock = config.attempt_timeout.is_none()
            && config.circuit_breaker.is_none()
            && config.rate_limit.is_none();
        if stock && config.retry_mode == DEFAULT_CONFIG.retry_mode {
            StoredConfig::Default
        } else if stock && config.retry_mode == RetryMode::None {
            StoredConfig::Minimal
        } else {
            StoredConfig::Custom(Box::new(config))
        }
    }

    /// The config, owned (a stock one copied from its static).
    pub(crate) fn into_config(self) -> TaskConfig {
        match self {
            StoredConfig::Default => DEFAULT_CONFIG.clone(),
            StoredConfig::Minimal => MINIMAL_CONFIG.clone(),
            StoredConfig::Custom(config) => *config,
        }
    }
}

impl core::ops::Deref for StoredConfig {
    type Target = TaskConfig;

    fn deref(&self) -> &TaskConfig {
        match self {
            StoredConfig::Default => &DEFAULT_CONFIG,
            StoredConfig::Minimal => &MINIMAL_CONFIG,
            StoredConfig::Custom(config) => config,
        }
    }
}

/// A task's rate limit: the limiter, and whether an attempt waits for a permit or fails.
#[derive(Clone)]
pub struct TaskRateLimit {
    /// The limiter (shared with whatever else draws on the same quota).
    pub limiter: Arc<dyn RateLimit>,
    /// `true`: sleep on the run's clock until the limiter admits, then attempt. `false`: fail
    /// at once with [`CanoError::RateLimited`] (never retried nor wrapped, like an open
    /// circuit).
    pub wait: bool,
}

impl core::fmt::Debug for TaskRateLimit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TaskRateLimit")
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl TaskConfig {
    /// [`TaskConfig::default`].
    pub fn new() -> Self {
        TaskConfig::default()
    }

    /// One attempt, no timeout, no breaker.
    pub fn minimal() -> Self {
        TaskConfig {
            retry_mode: RetryMode::None,
            attempt_timeout: None,
            circuit_breaker: None,
            rate_limit: None,
        }
    }

    /// Sets the retry mode.
    pub fn with_retry(mut self, mode: RetryMode) -> Self {
        self.retry_mode = mode;
        self
    }

    /// [`RetryMode::Fixed`].
    pub fn with_fixed_retry(self, retries: usize, delay: Duration) -> Self {
        self.with_retry(RetryMode::fixed(retries, delay))
    }

    /// [`RetryMode::exponential`].
    pub fn with_exponential_retry(self, max_retries: usize) -> Self {
        self.with_retry(RetryMode::exponential(max_retries))
    }

    /// Sets the per-attempt timeout.
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// Whether the first attempt may run as the bare task future, before the retry loop
    /// exists: no breaker permit and no attempt deadline have to be armed first. The common
    /// case, and the cheap one: the loop is only built if that attempt fails.
    pub(crate) fn first_attempt_is_bare(&self) -> bool {
        self.circuit_breaker.is_none()
            && self.attempt_timeout.is_none()
            && self.rate_limit.is_none()
    }

    /// Takes a permit from `limiter` before every attempt, waiting on the run's clock exactly
    /// until it admits (the wait is not part of the attempt's timeout). A limiter that can
    /// never admit fails the task with [`CanoError::Configuration`].
    pub fn with_rate_limit(mut self, limiter: Arc<dyn RateLimit>) -> Self {
        self.rate_limit = Some(TaskRateLimit {
            limiter,
            wait: true,
        });
        self
    }

    /// Takes a permit from `limiter` before every attempt and fails the task at once with
    /// [`CanoError::RateLimited`] (tier and when to retry) when it refuses.
    pub fn with_rate_limit_or_fail(mut self, limiter: Arc<dyn RateLimit>) -> Self {
        self.rate_limit = Some(TaskRateLimit {
            limiter,
            wait: false,
        });
        self
    }

    /// Sets the circuit breaker (shared: clones of the `Arc` share one breaker).
    pub fn with_circuit_breaker(mut self, breaker: Arc<CircuitBreaker>) -> Self {
        self.circuit_breaker = Some(breaker);
        self
    }
}

/// Runs `attempt` under `config`: consults the breaker, bounds each attempt by the
/// per-attempt timeout, and retries failures with the configured pauses on `clock`.
///
/// Errors: [`CanoError::CircuitOpen`] at once when the breaker rejects (no attempt consumed);
/// a [`CanoError::Configuration`] from an attempt at once (retrying cannot fix it); the
/// attempt's own error when only one attempt is allowed; otherwise
/// [`CanoError::RetryExhausted`] with the last error as its source. With feature `std` a
/// panicking attempt becomes [`CanoError::TaskExecution`] and is not retried.
///
/// ```
/// use cano_core::{run_with_retries, CanoError, Clock, TaskConfig};
/// use cano_core::random::SplitMix64;
/// use cano_core::testing::Simulation;
/// use core::time::Duration;
///
/// let sim = Simulation::new();
/// let clock = sim.clock();
/// let config = TaskConfig::new().with_fixed_retry(2, Duration::from_secs(1));
/// let mut calls = 0;
/// let result = sim.block_on(run_with_retries(&config, &clock, &SplitMix64::new(0), || {
///     calls += 1;
///     let ok = calls == 3;
///     async move { if ok { Ok(calls) } else { Err(CanoError::task_execution("flaky")) } }
/// }));
/// assert_eq!(result, Ok(3));
/// assert_eq!(sim.clock().now().as_millis(), 2_000); // two pauses of 1 s
/// ```
pub async fn run_with_retries<'a, C, T, F, Fut>(
    config: &'a TaskConfig,
    clock: &'a C,
    random: &'a dyn RandomSource,
    attempt: F,
) -> Result<T, CanoError>
where
    C: Clock,
    T: 'a,
    F: FnMut() -> Fut + 'a,
    Fut: Future<Output = Result<T, CanoError>> + Send + 'a,
{
    let mut attempt = Box::new(attempt);
    let make = move || -> BoxFuture<'a, Result<T, CanoError>> { Box::pin(attempt()) };
    Attempts::new(config, clock, random, make, NoEvents, None).await
}

/// Makes the future of one attempt. Implemented for closures and for the engine's own
/// named makers (which, unlike closures, can be stored in a struct field).
pub(crate) trait MakeAttempt<'a, T> {
    fn make(&mut self) -> BoxFuture<'a, Result<T, CanoError>>;
}

impl<'a, T, F: FnMut() -> BoxFuture<'a, Result<T, CanoError>>> MakeAttempt<'a, T> for F {
    fn make(&mut self) -> BoxFuture<'a, Result<T, CanoError>> {
        self()
    }
}

/// What the retry loop reports while it runs (observers, in a workflow).
pub(crate) trait AttemptEvents {
    fn retry(&self, attempt: u32) {
        let _ = attempt;
    }
    fn circuit_open(&self) {}
    /// The task's name, for telemetry; `None` outside a workflow.
    fn task_name(&self) -> Option<&str> {
        None
    }
}

/// Reports nothing.
pub(crate) struct NoEvents;
impl AttemptEvents for NoEvents {}

/// The retry loop as a future: one boxed future per attempt and nothing else allocated on
/// the success path, so a workflow can poll many of them in place.
pub(crate) struct Attempts<'a, T, C: Clock, F, E> {
    config: &'a TaskConfig,
    clock: &'a C,
    random: &'a dyn RandomSource,
    make_attempt: F,
    events: E,
    /// The run's cancellation and deadline, checked before every retry (in a workflow).
    guard: Option<RunGuard<'a>>,
    failed: u32,
    phase: Phase<'a, T, C>,
}

enum Phase<'a, T, C: Clock> {
    Ready,
    Running {
        attempt: BoxFuture<'a, Result<T, CanoError>>,
        deadline: Option<Pin<Box<C::Sleep>>>,
        permit: Option<Permit<'a>>,
        span: Span,
    },
    Pausing(Pin<Box<C::Sleep>>),
    Finished,
}

impl<'a, T, C, F, E> Attempts<'a, T, C, F, E>
where
    C: Clock,
    F: MakeAttempt<'a, T>,
    E: AttemptEvents,
{
    pub(crate) fn new(
        config: &'a TaskConfig,
        clock: &'a C,
        random: &'a dyn RandomSource,
        make_attempt: F,
        events: E,
        guard: Option<RunGuard<'a>>,
    ) -> Self {
        Attempts {
            config,
            clock,
            random,
            make_attempt,
            events,
            guard,
            failed: 0,
            phase: Phase::Ready,
        }
    }

    /// Continues after a first attempt, run outside the loop, failed with `error`: `Err`
    /// is the final error (no retry left), `Ok` the loop that makes the next attempt.
    pub(crate) fn after_failed_first(mut self, error: CanoError) -> Result<Self, CanoError> {
        match self.settle(Err(error), None) {
            None => Ok(self),
            Some(Poll::Ready(Err(error))) => Err(error),
            Some(_) => Err(CanoError::workflow("a failed attempt settled as a success")),
        }
    }

    /// Continues with a first attempt, run outside the loop, that is still pending.
    pub(crate) fn with_pending_first(
        mut self,
        attempt: BoxFuture<'a, Result<T, CanoError>>,
        span: Span,
    ) -> Self {
        self.phase = Phase::Running {
            attempt,
            deadline: None,
            permit: None,
            span,
        };
        self
    }

    fn finish(&mut self, outcome: Result<T, CanoError>) -> Poll<Result<T, CanoError>> {
        self.phase = Phase::Finished;
        Poll::Ready(outcome)
    }
}

/// Nothing in the loop is pinned in place: attempt futures and sleeps are boxed.
impl<T, C: Clock, F: Unpin, E: Unpin> Unpin for Attempts<'_, T, C, F, E> {}

impl<'a, T, C, F, E> Future for Attempts<'a, T, C, F, E>
where
    C: Clock,
    F: MakeAttempt<'a, T> + Unpin,
    E: AttemptEvents + Unpin,
{
    type Output = Result<T, CanoError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let config: &'a TaskConfig = this.config;
        let mut started = 0;
        loop {
            let (outcome, permit) = match &mut this.phase {
                Phase::Ready => {
                    started += 1;
                    if started > ATTEMPTS_PER_POLL {
                        // Attempts that keep failing at once: let the executor run others
                        // (and the run's timeout and cancellation) before the next one.
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    if let Some(limit) = &config.rate_limit {
                        let now = this.clock.now();
                        match limit.limiter.try_acquire_at(now) {
                            Ok(()) => {}
                            Err(CanoError::RateLimited { retry_after, .. }) if limit.wait => {
                                let wait = retry_after.max(Duration::from_micros(1));
                                this.phase =
                                    Phase::Pausing(Box::pin(this.clock.sleep_until(now + wait)));
                                continue;
                            }
                            Err(refused) => return this.finish(Err(refused)),
                        }
                    }
                    let permit = match config.circuit_breaker.as_deref() {
                        None => None,
                        Some(breaker) => match breaker.try_acquire(this.clock.now()) {
                            Ok(permit) => Some(permit),
                            Err(rejected) => {
                                telemetry::circuit_rejected(this.events.task_name());
                                this.events.circuit_open();
                                return this.finish(Err(rejected));
                            }
                        },
                    };
                    let span =
                        telemetry::attempt(this.events.task_name(), this.failed.saturating_add(1));
                    let make = &mut this.make_attempt;
                    let mut attempt = match isolate_panic(|| span.in_child(|| make.make())) {
                        Ok(attempt) => attempt,
                        Err(panicked) => return this.finish(Err(panicked)),
                    };
                    // Most attempts finish on their first poll; only a waiting one is stored.
                    match isolate_panic(|| span.in_child(|| attempt.as_mut().poll(cx))) {
                        Err(panicked) => return this.finish(Err(panicked)),
                        Ok(Poll::Ready(outcome)) => (outcome, permit),
                        Ok(Poll::Pending) => {
                            let mut deadline = config.attempt_timeout.map(|limit| {
                                Box::pin(this.clock.sleep_until(this.clock.now() + limit))
                            });
                            let expired = deadline
                                .as_mut()
                                .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
                            if expired {
                                (Err(attempt_timed_out()), permit)
                            } else {
                                this.phase = Phase::Running {
                                    attempt,
                                    deadline,
                                    permit,
                                    span,
                                };
                                return Poll::Pending;
                            }
                        }
                    }
                }
                Phase::Running {
                    attempt,
                    deadline,
                    permit,
                    span,
                } => {
                    let outcome =
                        match isolate_panic(|| span.in_child(|| attempt.as_mut().poll(cx))) {
                            // The permit is dropped with the phase: a failure for the breaker.
                            Err(panicked) => return this.finish(Err(panicked)),
                            Ok(Poll::Ready(outcome)) => outcome,
                            Ok(Poll::Pending) => {
                                let expired = match deadline {
                                    Some(sleep) => sleep.as_mut().poll(cx).is_ready(),
                                    None => false,
                                };
                                if !expired {
                                    return Poll::Pending;
                                }
                                Err(attempt_timed_out())
                            }
                        };
                    (outcome, permit.take())
                }
                Phase::Pausing(sleep) => {
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    // A run cancelled or timed out during the pause starts no new attempt
                    // (a run that lets its task finish keeps polling this loop).
                    if let Some(Err(stop)) = this.guard.map(|guard| guard.check(this.clock)) {
                        return this.finish(Err(stop));
                    }
                    this.phase = Phase::Ready;
                    continue;
                }
                Phase::Finished => {
                    return Poll::Ready(Err(CanoError::workflow(
                        "retry loop polled after it completed",
                    )));
                }
            };
            if let Some(done) = this.settle(outcome, permit) {
                return done;
            }
        }
    }
}

impl<'a, T, C, F, E> Attempts<'a, T, C, F, E>
where
    C: Clock,
    F: MakeAttempt<'a, T>,
    E: AttemptEvents,
{
    /// Records an attempt's outcome; returns the final result, or `None` after arranging
    /// the next attempt.
    fn settle(
        &mut self,
        outcome: Result<T, CanoError>,
        permit: Option<Permit<'a>>,
    ) -> Option<Poll<Result<T, CanoError>>> {
        let error = match outcome {
            Ok(value) => {
                if let Some(permit) = permit {
                    permit.record_success(self.clock.now());
                }
                return Some(self.finish(Ok(value)));
            }
            Err(error) => error,
        };
        if let Some(permit) = permit {
            permit.record_failure(self.clock.now());
        }
        self.failed = self.failed.saturating_add(1);
        // A configuration error (a task with neither `run` nor `run_bare`, a bad setting)
        // fails every attempt the same way: report it at once, unwrapped.
        if matches!(error, CanoError::Configuration(_)) {
            return Some(self.finish(Err(error)));
        }
        let mode = &self.config.retry_mode;
        let max = mode.max_attempts();
        if usize::try_from(self.failed).unwrap_or(usize::MAX) >= max {
            let error = if max <= 1 {
                error
            } else {
                CanoError::retry_exhausted(self.failed, error)
            };
            return Some(self.finish(Err(error)));
        }
        if let Some(Err(stop)) = self.guard.map(|guard| guard.check(self.clock)) {
            // The run timed out or was cancelled: no further attempt.
            return Some(self.finish(Err(stop)));
        }
        telemetry::retry(self.events.task_name(), self.failed, &error);
        self.events.retry(self.failed);
        self.phase = match mode.delay_for_attempt(self.failed - 1, self.random) {
            Some(pause) if !pause.is_zero() => {
                Phase::Pausing(Box::pin(self.clock.sleep_until(self.clock.now() + pause)))
            }
            _ => Phase::Ready,
        };
        None
    }
}

fn attempt_timed_out() -> CanoError {
    CanoError::timeout("task attempt exceeded attempt_timeout")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &TaskConfig, b: &TaskConfig) -> bool {
        alloc::format!("{a:?}") == alloc::format!("{b:?}")
    }

    #[test]
    fn the_stock_configs_are_kept_without_heap_and_read_back_unchanged() {
        let default = StoredConfig::new(TaskConfig::default());
        assert!(matches!(default, StoredConfig::Default));
        assert!(same(&default, &TaskConfig::default()));
        let minimal = StoredConfig::new(TaskConfig::minimal());
        assert!(matches!(minimal, StoredConfig::Minimal));
        assert!(same(&minimal, &TaskConfig::minimal()));
        let custom = TaskConfig::minimal().with_attempt_timeout(Duration::from_secs(1));
        let stored = StoredConfig::new(custom.clone());
        assert!(matches!(stored, StoredConfig::Custom(_)));
        assert!(same(&stored, &custom));
        let retries = TaskConfig::default().with_exponential_retry(4);
        assert!(same(&StoredConfig::new(retries.clone()), &retries));
        for config in [
            TaskConfig::default(),
            TaskConfig::minimal(),
            custom,
            retries,
        ] {
            let bare = config.first_attempt_is_bare();
            assert_eq!(StoredConfig::new(config).first_attempt_is_bare(), bare);
        }
    }
}
