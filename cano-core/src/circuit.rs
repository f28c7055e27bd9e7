//! [`CircuitBreaker`]: stops calling a dependency that keeps failing, then probes it again.
//!
//! The breaker is sans-io: every decision takes the current [`Instant`] as an argument, so it
//! runs on whatever [`Clock`](crate::Clock) the workflow runs on (including a fake one), and
//! a test can walk it through hours of state changes without sleeping.
//!
//! States: **Closed** (calls flow; consecutive failures are counted) → after
//! `failure_threshold` failures **Open** until `reset_timeout` has passed (calls are rejected)
//! → **HalfOpen** (up to `half_open_max_calls` trial calls) → Closed once that many trials
//! succeeded, or Open again on the first trial failure.
//!
//! Every transition starts a new *epoch*. A [`Permit`] remembers the epoch it was issued
//! in, and an outcome from an older epoch is ignored, so a slow call that straddles a
//! transition cannot corrupt the next session. A permit dropped without an outcome counts
//! as a failure.

use alloc::sync::Arc;
use core::fmt;
use core::time::Duration;

use crate::error::CanoError;
use crate::resource::Resource;
use crate::sync::Lock;
use crate::time::Instant;

/// When a [`CircuitBreaker`] opens and how it recovers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitPolicy {
    /// Consecutive failures (in Closed) that open the circuit. Must be at least 1.
    pub failure_threshold: u32,
    /// How long the circuit stays Open before trial calls are allowed.
    pub reset_timeout: Duration,
    /// Trial calls allowed in HalfOpen, and successes needed to close. Must be at least 1
    /// and at most `u32::MAX / 2`.
    pub half_open_max_calls: u32,
}

impl Default for CircuitPolicy {
    /// 5 failures, 30 s open, 1 trial call.
    fn default() -> Self {
        CircuitPolicy {
            failure_threshold: 5,
            reset_timeout: Duration::from_secs(30),
            half_open_max_calls: 1,
        }
    }
}

/// Where a [`CircuitBreaker`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls flow.
    Closed,
    /// Calls are rejected until `until`.
    Open {
        /// When trial calls become allowed.
        until: Instant,
    },
    /// A limited number of trial calls flow.
    HalfOpen,
}

impl CircuitState {
    /// `closed`, `open` or `half_open`: the state's name in events and metrics.
    #[cfg_attr(
        not(any(feature = "tracing", feature = "metrics", feature = "defmt")),
        allow(dead_code)
    )]
    fn name(&self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open { .. } => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

/// A circuit breaker. Clones share one state; wire it into tasks with
/// [`TaskConfig::with_circuit_breaker`](crate::TaskConfig::with_circuit_breaker), or use it by
/// hand (it is also a [`Resource`]).
///
/// ```
/// use cano_core::{CircuitBreaker, CircuitPolicy, CircuitState, Instant};
/// use core::time::Duration;
///
/// let policy = CircuitPolicy { failure_threshold: 2, reset_timeout: Duration::from_secs(10), half_open_max_calls: 1 };
/// let breaker = CircuitBreaker::new(policy).unwrap();
/// let t0 = Instant::from_secs(100);
/// breaker.try_acquire(t0).unwrap().record_failure(t0);
/// breaker.try_acquire(t0).unwrap().record_failure(t0);
/// assert_eq!(breaker.state(t0), CircuitState::Open { until: Instant::from_secs(110) });
/// assert!(breaker.try_acquire(Instant::from_secs(105)).is_err());
/// let trial = breaker.try_acquire(Instant::from_secs(110)).unwrap(); // half-open
/// trial.record_success(Instant::from_secs(111));
/// assert_eq!(breaker.state(Instant::from_secs(111)), CircuitState::Closed);
///
/// // A bad policy is an error, not a panic.
/// assert!(CircuitBreaker::new(CircuitPolicy { failure_threshold: 0, ..policy_default() }).is_err());
/// # fn policy_default() -> CircuitPolicy { CircuitPolicy::default() }
/// ```
#[derive(Clone)]
pub struct CircuitBreaker {
    policy: CircuitPolicy,
    inner: Arc<Lock<Machine>>,
}

/// The breaker's state machine; every method is a pure transition given `now`.
#[derive(Debug)]
struct Machine {
    state: CircuitState,
    epoch: u64,
    consecutive_failures: u32,
    trials_issued: u32,
    trial_successes: u32,
    /// The latest time any caller reported, used when a dropped permit carries no time.
    latest: Instant,
    /// Transitions made under the lock, reported once it is released (at most two per
    /// call: Open to HalfOpen on refresh, then a trial's verdict).
    #[cfg(any(feature = "tracing", feature = "metrics", feature = "defmt"))]
    transitions: [Option<(&'static str, &'static str)>; 2],
}

impl Machine {
    fn observe(&mut self, now: Instant) {
        self.latest = self.latest.max(now);
    }

    fn enter(&mut self, state: CircuitState) {
        #[cfg(any(feature = "tracing", feature = "metrics", feature = "defmt"))]
        if let Some(free) = self.transitions.iter_mut().find(|t| t.is_none()) {
            *free = Some((self.state.name(), state.name()));
        }
        self.state = state;
        self.epoch = self.epoch.wrapping_add(1);
        self.consecutive_failures = 0;
        self.trials_issued = 0;
        self.trial_successes = 0;
    }

    fn refresh(&mut self, now: Instant) {
        if let CircuitState::Open { until } = self.state
            && now >= until
        {
            self.enter(CircuitState::HalfOpen);
        }
    }

    fn acquire(&mut self, policy: &CircuitPolicy, now: Instant) -> Result<u64, CanoError> {
        self.observe(now);
        self.refresh(now);
        match self.state {
            CircuitState::Closed => Ok(self.epoch),
            CircuitState::Open { .. } => Err(CanoError::circuit_open(
                "circuit breaker open: rejecting call",
            )),
            CircuitState::HalfOpen if self.trials_issued >= policy.half_open_max_calls => Err(
                CanoError::circuit_open("circuit breaker half-open: trial slot exhausted"),
            ),
            CircuitState::HalfOpen => {
                self.trials_issued += 1;
                Ok(self.epoch)
            }
        }
    }

    fn success(&mut self, policy: &CircuitPolicy, epoch: u64, now: Instant) {
        self.observe(now);
        if epoch != self.epoch {
            return;
        }
        match self.state {
            CircuitState::Closed => self.consecutive_failures = 0,
            CircuitState::HalfOpen => {
                self.trial_successes += 1;
                if self.trial_successes >= policy.half_open_max_calls {
                    self.enter(CircuitState::Closed);
                }
            }
            CircuitState::Open { .. } => {}
        }
    }

    fn failure(&mut self, policy: &CircuitPolicy, epoch: u64, now: Instant) {
        self.observe(now);
        if epoch != self.epoch {
            return;
        }
        let open = CircuitState::Open {
            until: now + policy.reset_timeout,
        };
        match self.state {
            CircuitState::Closed => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                if self.consecutive_failures >= policy.failure_threshold {
                    self.enter(open);
                }
            }
            CircuitState::HalfOpen => self.enter(open),
            CircuitState::Open { .. } => {}
        }
    }
}

impl CircuitBreaker {
    /// A closed breaker with `policy`.
    ///
    /// Errors with [`CanoError::Configuration`] when `failure_threshold` is 0 or
    /// `half_open_max_calls` is 0 or above `u32::MAX / 2` (cano 0.12 panicked).
    pub fn new(policy: CircuitPolicy) -> Result<Self, CanoError> {
        if policy.failure_threshold == 0 {
            return Err(CanoError::configuration(
                "circuit breaker failure_threshold must be at least 1",
            ));
        }
        if policy.half_open_max_calls == 0 || policy.half_open_max_calls > u32::MAX / 2 {
            return Err(CanoError::configuration(
                "circuit breaker half_open_max_calls must be between 1 and u32::MAX / 2",
            ));
        }
        Ok(CircuitBreaker {
            policy,
            inner: Arc::new(Lock::new(Machine {
                state: CircuitState::Closed,
                epoch: 0,
                consecutive_failures: 0,
                trials_issued: 0,
                trial_successes: 0,
                latest: Instant::ZERO,
                #[cfg(any(feature = "tracing", feature = "metrics", feature = "defmt"))]
                transitions: [None; 2],
            })),
        })
    }

    /// Runs `f` on the state machine under its lock; transitions it made are reported
    /// after the lock is released (telemetry features only).
    #[inline(always)]
    fn locked<R>(&self, f: impl FnOnce(&mut Machine) -> R) -> R {
        #[cfg(not(any(feature = "tracing", feature = "metrics", feature = "defmt")))]
        return self.inner.with(f);
        #[cfg(any(feature = "tracing", feature = "metrics", feature = "defmt"))]
        {
            let (result, transitions) = self.inner.with(|m| {
                let result = f(m);
                (result, core::mem::take(&mut m.transitions))
            });
            for (from, to) in transitions.into_iter().flatten() {
                crate::telemetry::circuit_transition(from, to);
            }
            result
        }
    }

    /// The policy.
    pub fn policy(&self) -> &CircuitPolicy {
        &self.policy
    }

    /// The state at `now` (an Open circuit whose timeout has passed reports HalfOpen).
    pub fn state(&self, now: Instant) -> CircuitState {
        self.locked(|m| {
            m.observe(now);
            m.refresh(now);
            m.state
        })
    }

    /// Asks to make one call at `now`.
    ///
    /// Errors with [`CanoError::CircuitOpen`] while Open, or in HalfOpen once every trial
    /// slot is taken. The returned [`Permit`] must be resolved with
    /// [`record_success`](Permit::record_success) or [`record_failure`](Permit::record_failure);
    /// dropping it counts as a failure.
    pub fn try_acquire(&self, now: Instant) -> Result<Permit<'_>, CanoError> {
        let epoch = self.locked(|m| m.acquire(&self.policy, now))?;
        Ok(Permit {
            breaker: self,
            epoch,
            resolved: false,
        })
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (state, epoch, failures) = self
            .inner
            .with(|m| (m.state, m.epoch, m.consecutive_failures));
        f.debug_struct("CircuitBreaker")
            .field("policy", &self.policy)
            .field("state", &state)
            .field("epoch", &epoch)
            .field("consecutive_failures", &failures)
            .finish()
    }
}

impl Resource for CircuitBreaker {}

/// Permission to make one call through a [`CircuitBreaker`]. Dropping it unresolved counts
/// as a failure at the latest time the breaker has seen.
#[must_use = "a dropped permit counts as a failure"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    epoch: u64,
    resolved: bool,
}

impl Permit<'_> {
    /// The call succeeded at `now`.
    pub fn record_success(mut self, now: Instant) {
        self.resolved = true;
        let b = self.breaker;
        b.locked(|m| m.success(&b.policy, self.epoch, now));
    }

    /// The call failed at `now`.
    pub fn record_failure(mut self, now: Instant) {
        self.resolved = true;
        let b = self.breaker;
        b.locked(|m| m.failure(&b.policy, self.epoch, now));
    }

    /// The epoch this permit belongs to.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.resolved {
            let b = self.breaker;
            b.locked(|m| {
                let now = m.latest;
                m.failure(&b.policy, self.epoch, now);
            });
        }
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("epoch", &self.epoch)
            .finish()
    }
}
