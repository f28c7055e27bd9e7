//! Rate limiting on the run's [`Clock`]: a token bucket ([`RateLimiter`]), a fixed-window
//! counter ([`WindowedRateLimiter`]) and a limiter over several named tiers
//! ([`MultiRateLimiter`]).
//!
//! Every decision is synchronous and takes the time as an argument (`try_acquire_at(now)`),
//! so it is exact under a fake clock; `acquire(&clock)` is the thin async driver that sleeps on
//! the given clock **exactly** until the refill that admits it (integer arithmetic in
//! microseconds, no float rounding) and then takes the permit. Limiters are shared services:
//! put one in [`Resources`](crate::Resources) (each is a [`Resource`]) or hand it to a task's
//! [`TaskConfig::with_rate_limit`](crate::TaskConfig::with_rate_limit), which waits for a
//! permit before every attempt.
//!
//! Differences from cano 0.15 (which introduced rate limiting):
//!
//! * a bad policy (zero capacity, zero refill) is a [`CanoError::Configuration`] from `new`,
//!   not a panic; a cost larger than the capacity, which can never be admitted, is a
//!   [`CanoError::Configuration`] from `acquire` instead of a wait that never ends;
//! * the clock is the run's clock, not tokio's, so a limiter works on every runtime and on the
//!   fake clock; a bucket starts full at its first use (each clock has its own origin);
//! * a rejection is [`CanoError::RateLimited`] naming the tier and when to retry.
//!
//! ```
//! use cano_core::rate_limit::{RateLimiter, RateLimiterPolicy};
//! use cano_core::{CanoError, Clock, Instant};
//! use cano_core::testing::Simulation;
//! use core::time::Duration;
//!
//! // 2 tokens per second, room for 1 more in a burst.
//! let limiter = RateLimiter::new(RateLimiterPolicy::per_second(2).with_burst(1)).unwrap();
//! let t0 = Instant::ZERO;
//! for _ in 0..3 { limiter.try_acquire_at(t0).unwrap(); }
//! match limiter.try_acquire_at(t0) {
//!     Err(CanoError::RateLimited { retry_after, .. }) => assert_eq!(retry_after, Duration::from_millis(500)),
//!     other => panic!("{other:?}"),
//! }
//! // `acquire` sleeps exactly until the refill.
//! let sim = Simulation::new();
//! let clock = sim.clock();
//! let limiter = RateLimiter::new(RateLimiterPolicy::per_second(2)).unwrap();
//! sim.block_on(async {
//!     for _ in 0..3 { limiter.acquire(&clock).await.unwrap(); }
//! });
//! assert_eq!(sim.clock().now(), Instant::from_millis(500));
//! ```

use alloc::borrow::Cow;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
#[cfg(target_has_atomic = "64")]
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use crate::error::CanoError;
use crate::resource::Resource;
use crate::runtime::Clock;
use crate::sync::Lock;
use crate::time::Instant;

/// Microseconds in a duration, saturating.
fn micros(d: Duration) -> u128 {
    d.as_micros()
}

fn duration_from_micros(us: u128) -> Duration {
    u64::try_from(us).map_or(Duration::MAX, Duration::from_micros)
}

/// A token bucket's parameters: `tokens_per_period` tokens are added every `refill_period`
/// (continuously, pro rata), up to `max_tokens + burst`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimiterPolicy {
    /// The steady-state ceiling of the bucket.
    pub max_tokens: u64,
    /// Tokens added per `refill_period`.
    pub tokens_per_period: u64,
    /// The time in which `tokens_per_period` tokens are added.
    pub refill_period: Duration,
    /// Extra room above `max_tokens` for short spikes; the capacity is `max_tokens + burst`.
    pub burst: u64,
}

impl RateLimiterPolicy {
    /// `tokens` every `period`; `max_tokens` is `tokens`, no burst.
    pub fn new(tokens: u64, period: Duration) -> Self {
        RateLimiterPolicy {
            max_tokens: tokens,
            tokens_per_period: tokens,
            refill_period: period,
            burst: 0,
        }
    }

    /// `tokens` per second.
    pub fn per_second(tokens: u64) -> Self {
        RateLimiterPolicy::new(tokens, Duration::from_secs(1))
    }

    /// Sets the steady-state ceiling without changing the refill rate.
    pub fn with_max_tokens(mut self, max_tokens: u64) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// Sets the extra burst room above `max_tokens`.
    pub fn with_burst(mut self, burst: u64) -> Self {
        self.burst = burst;
        self
    }

    /// `max_tokens + burst`, saturating.
    pub fn capacity(&self) -> u64 {
        self.max_tokens.saturating_add(self.burst)
    }
}

/// One debit taken from a [`Meter`], to hand back with [`Meter::refund`] if a later tier of a
/// [`MultiRateLimiter`] refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// The units taken.
    pub cost: u64,
    /// The meter's accounting period the units came from (a window's start), so a refund
    /// after the window moved on is dropped instead of inflating the new window.
    pub epoch: u64,
}

/// What a meter reports about itself, for observability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterStatus {
    /// Units available now.
    pub available: u64,
    /// The meter's capacity.
    pub capacity: u64,
    /// When a fixed window resets (`None` for a token bucket).
    pub resets_at: Option<Instant>,
}

/// A synchronous, object-safe rate meter: the building block of [`MultiRateLimiter`].
/// Implemented by [`RateLimiter`] and [`WindowedRateLimiter`]. Every method takes `now`.
pub trait Meter: Send + Sync {
    /// Takes `cost` units at `now`, or returns how long until they are available
    /// ([`Duration::MAX`] if `cost` exceeds the capacity: never).
    fn try_take(&self, now: Instant, cost: u64) -> Result<Taken, Duration>;
    /// Hands back units taken with [`try_take`](Meter::try_take) (capped at the capacity; a
    /// window's units are dropped if the window has moved on).
    fn refund(&self, taken: Taken);
    /// How long from `now` until `cost` units are available, taking nothing
    /// ([`Duration::ZERO`] if they are, [`Duration::MAX`] if never).
    fn time_until(&self, now: Instant, cost: u64) -> Duration;
    /// The most units the meter can ever admit at once.
    fn capacity(&self) -> u64;
    /// The meter's state at `now`.
    fn status(&self, now: Instant) -> MeterStatus;
}

/// Something a task's [`TaskConfig`](crate::TaskConfig) can take a permit from before each
/// attempt: every limiter in this module.
pub trait RateLimit: Send + Sync {
    /// Takes one permit at `now`. Errors: [`CanoError::RateLimited`] with the refusing tier
    /// and when to retry; [`CanoError::Configuration`] if the permit can never be granted.
    fn try_acquire_at(&self, now: Instant) -> Result<(), CanoError>;
}

/// Waits on `clock` until `try_at` admits: one decision per wake, sleeping exactly the
/// reported time in between (never a spin: a zero retry time is retried at once only if the
/// clock has moved).
async fn acquire_with<C: Clock>(
    clock: &C,
    mut try_at: impl FnMut(Instant) -> Result<(), CanoError>,
) -> Result<(), CanoError> {
    loop {
        let now = clock.now();
        match try_at(now) {
            Ok(()) => return Ok(()),
            Err(CanoError::RateLimited { retry_after, .. }) => {
                // At least one microsecond: the tick cano's time is counted in.
                let wait = retry_after.max(Duration::from_micros(1));
                clock.sleep_until(now + wait).await;
            }
            Err(other) => return Err(other),
        }
    }
}

fn never_admitted(name: &str, cost: u64, capacity: u64) -> CanoError {
    CanoError::configuration(alloc::format!(
        "rate limiter {name}: a cost of {cost} exceeds its capacity of {capacity} and can never be admitted"
    ))
}

/// The exact bucket behind a lock: any policy, on any target.
#[derive(Debug)]
struct Bucket {
    /// Tokens scaled by the refill period in microseconds: one token is `period_us` units,
    /// and each elapsed microsecond adds `tokens_per_period` units, so refills are exact.
    scaled: u128,
    last: Option<Instant>,
}

/// The same bucket without a lock, as a generic cell rate algorithm: one atomic holds the
/// "theoretical arrival time" (when the bucket would be full again) in units of `1/q` µs,
/// where one token is `p` units (`p / q` = the refill period per token, in lowest terms).
/// Used when that time fits in 64 bits for centuries (`q` ≤ [`GCRA_MAX_Q`]); the numbers it
/// gives are the locked bucket's, exactly (tested against it).
#[cfg(target_has_atomic = "64")]
struct Gcra {
    /// The first use's instant in µs (`u64::MAX` until then): the bucket starts full there.
    origin: AtomicU64,
    /// Units after `origin` at which the bucket is full again.
    full_at: AtomicU64,
    p: u64,
    q: u64,
    /// `capacity · p`: how far `full_at` may run ahead of now.
    tolerance: u64,
}

/// Time in units of `1/q` µs overflows 64 bits after `u64::MAX / q` µs: 584 years at 1 000.
#[cfg(target_has_atomic = "64")]
const GCRA_MAX_Q: u64 = 1_000;

#[cfg(target_has_atomic = "64")]
impl Gcra {
    fn for_policy(policy: &RateLimiterPolicy, period_us: u128) -> Option<Gcra> {
        let tpp = u128::from(policy.tokens_per_period);
        let g = gcd(period_us, tpp);
        let p = u64::try_from(period_us / g).ok()?;
        let q = u64::try_from(tpp / g).ok()?;
        let tolerance = policy.capacity().checked_mul(p)?;
        (q <= GCRA_MAX_Q).then_some(Gcra {
            origin: AtomicU64::new(u64::MAX),
            full_at: AtomicU64::new(0),
            p,
            q,
            tolerance,
        })
    }

    /// `now` in units after the origin (set at the first call).
    fn units(&self, now: Instant) -> u64 {
        let us = now.as_micros();
        let mut origin = self.origin.load(Ordering::Acquire);
        if origin == u64::MAX {
            // The first use: whoever sets the origin first, every caller uses theirs.
            origin = match self.origin.compare_exchange(
                u64::MAX,
                us,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => us,
                Err(set) => set,
            };
        }
        us.saturating_sub(origin).saturating_mul(self.q)
    }

    /// Units of debt (tokens taken and not refilled, times `p`) at `t`, given `full_at`.
    fn debt(full_at: u64, t: u64) -> u64 {
        full_at.saturating_sub(t)
    }

    fn wait(&self, debt: u64, need: u64) -> Duration {
        let over = debt.saturating_add(need).saturating_sub(self.tolerance);
        Duration::from_micros(over.div_ceil(self.q))
    }

    fn take(&self, now: Instant, cost: u64) -> Result<(), Duration> {
        let t = self.units(now);
        let need = cost.saturating_mul(self.p);
        let mut full_at = self.full_at.load(Ordering::Acquire);
        loop {
            let debt = Gcra::debt(full_at, t);
            if debt.saturating_add(need) > self.tolerance {
                return Err(self.wait(debt, need));
            }
            let next = t.saturating_add(debt).saturating_add(need);
            match self.full_at.compare_exchange_weak(
                full_at,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => full_at = actual,
            }
        }
    }

    fn available(&self, now: Instant) -> u64 {
        let debt = Gcra::debt(self.full_at.load(Ordering::Acquire), self.units(now));
        (self.tolerance - debt.min(self.tolerance)) / self.p
    }

    fn time_until(&self, now: Instant, cost: u64) -> Duration {
        let debt = Gcra::debt(self.full_at.load(Ordering::Acquire), self.units(now));
        self.wait(debt, cost.saturating_mul(self.p))
    }

    /// Gives `cost` tokens back: the full time moves earlier (a time in the past is a full
    /// bucket, so the capacity caps the refund by itself).
    fn refund(&self, cost: u64) {
        let back = cost.saturating_mul(self.p);
        let _ = self
            .full_at
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |f| {
                Some(f.saturating_sub(back))
            });
    }
}

#[cfg(target_has_atomic = "64")]
fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// How a [`RateLimiter`] keeps its count.
enum Engine {
    Locked(Lock<Bucket>),
    #[cfg(target_has_atomic = "64")]
    Atomic(Gcra),
}

/// A token bucket: starts full (at its first use), refills lazily and continuously at
/// `tokens_per_period / refill_period`, holds at most `max_tokens + burst`.
///
/// ```
/// use cano_core::rate_limit::{RateLimiter, RateLimiterPolicy};
/// use cano_core::Instant;
/// use core::time::Duration;
///
/// let limiter = RateLimiter::new(RateLimiterPolicy::new(3, Duration::from_secs(3))).unwrap();
/// assert_eq!(limiter.tokens_available(Instant::ZERO), 3);
/// limiter.try_acquire_n_at(Instant::ZERO, 3).unwrap();
/// assert_eq!(limiter.time_until(Instant::ZERO, 2), Duration::from_secs(2));
/// assert_eq!(limiter.tokens_available(Instant::from_secs(1)), 1);
/// // A bad policy is an error, not a panic.
/// assert!(RateLimiter::new(RateLimiterPolicy::per_second(0)).is_err());
/// ```
pub struct RateLimiter {
    policy: RateLimiterPolicy,
    name: Cow<'static, str>,
    period_us: u128,
    capacity_scaled: u128,
    engine: Engine,
}

impl RateLimiter {
    /// A limiter for `policy`, full at its first use.
    ///
    /// Errors with [`CanoError::Configuration`] when the capacity is zero, no tokens are added
    /// per period, or the period is shorter than a microsecond.
    pub fn new(policy: RateLimiterPolicy) -> Result<Self, CanoError> {
        let period_us = micros(policy.refill_period);
        if policy.capacity() == 0 {
            return Err(CanoError::configuration(
                "rate limiter: max_tokens + burst must be at least 1",
            ));
        }
        if policy.tokens_per_period == 0 || period_us == 0 {
            return Err(CanoError::configuration(
                "rate limiter: the refill rate must be positive (tokens_per_period >= 1 and a refill_period of at least 1 µs)",
            ));
        }
        let capacity_scaled = u128::from(policy.capacity()) * period_us;
        let locked = || {
            Engine::Locked(Lock::new(Bucket {
                scaled: capacity_scaled,
                last: None,
            }))
        };
        #[cfg(target_has_atomic = "64")]
        let engine = Gcra::for_policy(&policy, period_us).map_or_else(locked, Engine::Atomic);
        #[cfg(not(target_has_atomic = "64"))]
        let engine = locked();
        Ok(RateLimiter {
            name: Cow::Borrowed("rate_limiter"),
            period_us,
            capacity_scaled,
            engine,
            policy,
        })
    }

    /// The same limiter on the locked bucket whatever the policy (to test one engine
    /// against the other).
    #[doc(hidden)]
    pub fn with_locked_engine(mut self) -> Self {
        self.engine = Engine::Locked(Lock::new(Bucket {
            scaled: self.capacity_scaled,
            last: None,
        }));
        self
    }

    /// Names the limiter in its [`CanoError::RateLimited`] errors (default `"rate_limiter"`).
    pub fn named(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The policy.
    pub fn policy(&self) -> &RateLimiterPolicy {
        &self.policy
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        match bucket.last {
            None => bucket.last = Some(now),
            Some(last) if now > last => {
                let elapsed = u128::from(now.as_micros() - last.as_micros());
                let added = elapsed.saturating_mul(u128::from(self.policy.tokens_per_period));
                bucket.scaled = bucket
                    .scaled
                    .saturating_add(added)
                    .min(self.capacity_scaled);
                bucket.last = Some(now);
            }
            // Time never goes backwards on one clock; an earlier `now` adds nothing.
            Some(_) => {}
        }
    }

    fn wait_for(&self, bucket: &Bucket, cost_scaled: u128) -> Duration {
        let deficit = cost_scaled.saturating_sub(bucket.scaled);
        let rate = u128::from(self.policy.tokens_per_period);
        duration_from_micros(deficit.div_ceil(rate))
    }

    /// Takes `cost` tokens at `now`, or says how long until they are there.
    fn take(&self, now: Instant, cost: u64) -> Result<(), Duration> {
        if cost > self.policy.capacity() {
            return Err(Duration::MAX);
        }
        match &self.engine {
            #[cfg(target_has_atomic = "64")]
            Engine::Atomic(gcra) => gcra.take(now, cost),
            Engine::Locked(state) => {
                let cost_scaled = u128::from(cost) * self.period_us;
                state.with(|bucket| {
                    self.refill(bucket, now);
                    if bucket.scaled >= cost_scaled {
                        bucket.scaled -= cost_scaled;
                        Ok(())
                    } else {
                        Err(self.wait_for(bucket, cost_scaled))
                    }
                })
            }
        }
    }

    fn refused(&self, cost: u64, retry_after: Duration) -> CanoError {
        if retry_after == Duration::MAX {
            never_admitted(&self.name, cost, self.policy.capacity())
        } else {
            CanoError::rate_limited(self.name.clone(), retry_after)
        }
    }

    /// Takes one token at `now`. Errors: [`CanoError::RateLimited`] with the time until the
    /// next token.
    pub fn try_acquire_at(&self, now: Instant) -> Result<(), CanoError> {
        self.try_acquire_n_at(now, 1)
    }

    /// Takes `cost` tokens at `now` (`0` always succeeds). Errors: [`CanoError::RateLimited`]
    /// with the time until `cost` tokens are there; [`CanoError::Configuration`] if `cost`
    /// exceeds the capacity.
    pub fn try_acquire_n_at(&self, now: Instant, cost: u64) -> Result<(), CanoError> {
        self.take(now, cost)
            .map_err(|wait| self.refused(cost, wait))
    }

    /// [`try_acquire_at`](Self::try_acquire_at) at `clock.now()`.
    pub fn try_acquire<C: Clock>(&self, clock: &C) -> Result<(), CanoError> {
        self.try_acquire_at(clock.now())
    }

    /// Takes one token, sleeping on `clock` exactly until it refills if the bucket is empty.
    pub async fn acquire<C: Clock>(&self, clock: &C) -> Result<(), CanoError> {
        self.acquire_n(clock, 1).await
    }

    /// Takes `cost` tokens, sleeping on `clock` until they are there. Errors at once with
    /// [`CanoError::Configuration`] if `cost` exceeds the capacity (it would wait forever).
    /// Waiters are not queued: when several wait on one bucket, each wakes at its own refill
    /// time and the first to poll wins; the rate is never exceeded.
    pub async fn acquire_n<C: Clock>(&self, clock: &C, cost: u64) -> Result<(), CanoError> {
        acquire_with(clock, |now| self.try_acquire_n_at(now, cost)).await
    }

    /// Whole tokens available at `now`.
    pub fn tokens_available(&self, now: Instant) -> u64 {
        match &self.engine {
            #[cfg(target_has_atomic = "64")]
            Engine::Atomic(gcra) => gcra.available(now),
            Engine::Locked(state) => state.with(|bucket| {
                self.refill(bucket, now);
                u64::try_from(bucket.scaled / self.period_us).unwrap_or(u64::MAX)
            }),
        }
    }

    /// How long from `now` until `cost` tokens are there ([`Duration::ZERO`] if they are,
    /// [`Duration::MAX`] if `cost` exceeds the capacity).
    pub fn time_until(&self, now: Instant, cost: u64) -> Duration {
        if cost > self.policy.capacity() {
            return Duration::MAX;
        }
        match &self.engine {
            #[cfg(target_has_atomic = "64")]
            Engine::Atomic(gcra) => gcra.time_until(now, cost),
            Engine::Locked(state) => {
                let cost_scaled = u128::from(cost) * self.period_us;
                state.with(|bucket| {
                    self.refill(bucket, now);
                    self.wait_for(bucket, cost_scaled)
                })
            }
        }
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        #[cfg(target_has_atomic = "64")]
        let lock_free = matches!(self.engine, Engine::Atomic(_));
        #[cfg(not(target_has_atomic = "64"))]
        let lock_free = false;
        f.debug_struct("RateLimiter")
            .field("name", &self.name)
            .field("policy", &self.policy)
            .field("lock_free", &lock_free)
            .finish()
    }
}

impl Meter for RateLimiter {
    fn try_take(&self, now: Instant, cost: u64) -> Result<Taken, Duration> {
        self.take(now, cost).map(|()| Taken { cost, epoch: 0 })
    }
    fn refund(&self, taken: Taken) {
        match &self.engine {
            #[cfg(target_has_atomic = "64")]
            Engine::Atomic(gcra) => gcra.refund(taken.cost),
            Engine::Locked(state) => {
                let scaled = u128::from(taken.cost) * self.period_us;
                state.with(|bucket| {
                    bucket.scaled = bucket
                        .scaled
                        .saturating_add(scaled)
                        .min(self.capacity_scaled);
                });
            }
        }
    }
    fn time_until(&self, now: Instant, cost: u64) -> Duration {
        RateLimiter::time_until(self, now, cost)
    }
    fn capacity(&self) -> u64 {
        self.policy.capacity()
    }
    fn status(&self, now: Instant) -> MeterStatus {
        MeterStatus {
            available: self.tokens_available(now),
            capacity: self.policy.capacity(),
            resets_at: None,
        }
    }
}

impl RateLimit for RateLimiter {
    fn try_acquire_at(&self, now: Instant) -> Result<(), CanoError> {
        RateLimiter::try_acquire_at(self, now)
    }
}

impl Resource for RateLimiter {}

/// A fixed window's parameters: at most `limit` units per `window`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowPolicy {
    /// Units admitted per window.
    pub limit: u64,
    /// The window's length.
    pub window: Duration,
}

impl WindowPolicy {
    /// `limit` units per `window`.
    pub fn new(limit: u64, window: Duration) -> Self {
        WindowPolicy { limit, window }
    }

    /// `limit` units per `hours` hours.
    pub fn per_hours(limit: u64, hours: u64) -> Self {
        WindowPolicy::new(limit, Duration::from_secs(hours.saturating_mul(3_600)))
    }

    /// `limit` units per `days` days.
    pub fn per_days(limit: u64, days: u64) -> Self {
        WindowPolicy::new(limit, Duration::from_secs(days.saturating_mul(86_400)))
    }
}

#[derive(Debug)]
struct Window {
    start: Option<Instant>,
    used: u64,
}

/// A fixed-window counter: at most `limit` units per window. The first window starts at the
/// first use; later windows follow back to back (`start + k · window`), so idle time does not
/// shift them.
///
/// ```
/// use cano_core::rate_limit::{WindowedRateLimiter, WindowPolicy};
/// use cano_core::{CanoError, Instant};
/// use core::time::Duration;
///
/// let limiter = WindowedRateLimiter::new(WindowPolicy::new(2, Duration::from_secs(10))).unwrap();
/// limiter.try_acquire_at(Instant::from_secs(1)).unwrap();
/// limiter.try_acquire_at(Instant::from_secs(4)).unwrap();
/// let err = limiter.try_acquire_at(Instant::from_secs(5)).unwrap_err();
/// assert!(matches!(err, CanoError::RateLimited { retry_after, .. } if retry_after == Duration::from_secs(6)));
/// assert_eq!(limiter.resets_at(Instant::from_secs(5)), Some(Instant::from_secs(11)));
/// limiter.try_acquire_at(Instant::from_secs(11)).unwrap();
/// ```
pub struct WindowedRateLimiter {
    policy: WindowPolicy,
    name: Cow<'static, str>,
    state: Lock<Window>,
}

impl WindowedRateLimiter {
    /// A limiter for `policy`. Errors with [`CanoError::Configuration`] when `limit` is 0 or
    /// the window is shorter than a microsecond.
    pub fn new(policy: WindowPolicy) -> Result<Self, CanoError> {
        if policy.limit == 0 {
            return Err(CanoError::configuration(
                "windowed rate limiter: limit must be at least 1",
            ));
        }
        if micros(policy.window) == 0 {
            return Err(CanoError::configuration(
                "windowed rate limiter: the window must be at least 1 µs",
            ));
        }
        Ok(WindowedRateLimiter {
            policy,
            name: Cow::Borrowed("windowed_rate_limiter"),
            state: Lock::new(Window {
                start: None,
                used: 0,
            }),
        })
    }

    /// Names the limiter in its [`CanoError::RateLimited`] errors.
    pub fn named(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The policy.
    pub fn policy(&self) -> &WindowPolicy {
        &self.policy
    }

    /// Moves the window forward to the one containing `now`; returns its start.
    fn roll(&self, window: &mut Window, now: Instant) -> Instant {
        let start = *window.start.get_or_insert(now);
        let length = micros(self.policy.window);
        let since = u128::from(now.as_micros().saturating_sub(start.as_micros()));
        if since >= length {
            let skipped = since / length * length;
            let skipped = u64::try_from(skipped).unwrap_or(u64::MAX);
            let new_start = Instant::from_micros(start.as_micros().saturating_add(skipped));
            window.start = Some(new_start);
            window.used = 0;
            new_start
        } else {
            start
        }
    }

    fn take(&self, now: Instant, cost: u64) -> Result<Taken, Duration> {
        if cost > self.policy.limit {
            return Err(Duration::MAX);
        }
        self.state.with(|window| {
            let start = self.roll(window, now);
            if self.policy.limit - window.used >= cost {
                window.used += cost;
                Ok(Taken {
                    cost,
                    epoch: start.as_micros(),
                })
            } else {
                Err((start + self.policy.window) - now)
            }
        })
    }

    /// Takes one unit at `now`. Errors: [`CanoError::RateLimited`] with the time until the
    /// window resets.
    pub fn try_acquire_at(&self, now: Instant) -> Result<(), CanoError> {
        self.try_acquire_n_at(now, 1)
    }

    /// Takes `cost` units at `now`. Errors: [`CanoError::RateLimited`] until the window resets;
    /// [`CanoError::Configuration`] if `cost` exceeds the limit.
    pub fn try_acquire_n_at(&self, now: Instant, cost: u64) -> Result<(), CanoError> {
        match self.take(now, cost) {
            Ok(_) => Ok(()),
            Err(Duration::MAX) => Err(never_admitted(&self.name, cost, self.policy.limit)),
            Err(wait) => Err(CanoError::rate_limited(self.name.clone(), wait)),
        }
    }

    /// Takes one unit, sleeping on `clock` until the window resets if it is used up.
    pub async fn acquire<C: Clock>(&self, clock: &C) -> Result<(), CanoError> {
        self.acquire_n(clock, 1).await
    }

    /// Takes `cost` units, sleeping on `clock` until the window that has room. Errors at once
    /// with [`CanoError::Configuration`] if `cost` exceeds the limit.
    pub async fn acquire_n<C: Clock>(&self, clock: &C, cost: u64) -> Result<(), CanoError> {
        acquire_with(clock, |now| self.try_acquire_n_at(now, cost)).await
    }

    /// How long from `now` until `cost` units fit ([`Duration::ZERO`] if they do,
    /// [`Duration::MAX`] if `cost` exceeds the limit).
    pub fn time_until(&self, now: Instant, cost: u64) -> Duration {
        if cost > self.policy.limit {
            return Duration::MAX;
        }
        self.state.with(|window| {
            let start = self.roll(window, now);
            if self.policy.limit - window.used >= cost {
                Duration::ZERO
            } else {
                (start + self.policy.window) - now
            }
        })
    }

    /// Units used in the window containing `now`.
    pub fn used(&self, now: Instant) -> u64 {
        self.state.with(|window| {
            self.roll(window, now);
            window.used
        })
    }

    /// Units left in the window containing `now`.
    pub fn remaining(&self, now: Instant) -> u64 {
        self.policy.limit - self.used(now)
    }

    /// When the window containing `now` ends (`None` before the first use).
    pub fn resets_at(&self, now: Instant) -> Option<Instant> {
        self.state.with(|window| {
            window.start?;
            Some(self.roll(window, now) + self.policy.window)
        })
    }
}

impl fmt::Debug for WindowedRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowedRateLimiter")
            .field("name", &self.name)
            .field("policy", &self.policy)
            .finish()
    }
}

impl Meter for WindowedRateLimiter {
    fn try_take(&self, now: Instant, cost: u64) -> Result<Taken, Duration> {
        self.take(now, cost)
    }
    fn refund(&self, taken: Taken) {
        self.state.with(|window| {
            if window.start.map(Instant::as_micros) == Some(taken.epoch) {
                window.used = window.used.saturating_sub(taken.cost);
            }
        });
    }
    fn time_until(&self, now: Instant, cost: u64) -> Duration {
        WindowedRateLimiter::time_until(self, now, cost)
    }
    fn capacity(&self) -> u64 {
        self.policy.limit
    }
    fn status(&self, now: Instant) -> MeterStatus {
        MeterStatus {
            available: self.remaining(now),
            capacity: self.policy.limit,
            resets_at: self.resets_at(now),
        }
    }
}

impl RateLimit for WindowedRateLimiter {
    fn try_acquire_at(&self, now: Instant) -> Result<(), CanoError> {
        WindowedRateLimiter::try_acquire_at(self, now)
    }
}

impl Resource for WindowedRateLimiter {}

/// One named tier of a [`MultiRateLimiter`]: a meter and what one acquisition costs on it.
#[derive(Clone)]
pub struct Tier {
    /// The name reported in [`CanoError::RateLimited`].
    pub name: Cow<'static, str>,
    /// The meter (shared: the same meter may serve several limiters).
    pub meter: Arc<dyn Meter>,
    /// Units one acquisition takes from this tier (`0`: the tier is inert).
    pub cost: u64,
}

impl fmt::Debug for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tier")
            .field("name", &self.name)
            .field("cost", &self.cost)
            .finish()
    }
}

/// Several limits at once: an acquisition succeeds only if every tier admits it, and then
/// takes from all of them; if one refuses, the units already taken from earlier tiers are
/// handed back, so a refused call costs no tier anything.
///
/// A refusal is [`CanoError::RateLimited`] naming the tier that needs the longest wait, so
/// retrying after `retry_after` is not refused by the same tier again.
///
/// ```
/// use cano_core::rate_limit::{MultiRateLimiter, RateLimiter, RateLimiterPolicy, WindowedRateLimiter, WindowPolicy};
/// use cano_core::{CanoError, Instant};
/// use std::sync::Arc;
/// use core::time::Duration;
///
/// let limiter = MultiRateLimiter::new()
///     .with_tier("per_second", Arc::new(RateLimiter::new(RateLimiterPolicy::per_second(10)).unwrap()), 1).unwrap()
///     .with_tier("per_hour", Arc::new(WindowedRateLimiter::new(WindowPolicy::per_hours(2, 1)).unwrap()), 1).unwrap();
/// limiter.try_acquire_at(Instant::ZERO).unwrap();
/// limiter.try_acquire_at(Instant::ZERO).unwrap();
/// match limiter.try_acquire_at(Instant::ZERO) {
///     Err(CanoError::RateLimited { tier, retry_after }) => {
///         assert_eq!(tier, "per_hour");
///         assert_eq!(retry_after, Duration::from_secs(3600));
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Clone, Default)]
pub struct MultiRateLimiter {
    tiers: Vec<Tier>,
}

impl MultiRateLimiter {
    /// A limiter with no tier (admits everything).
    pub fn new() -> Self {
        MultiRateLimiter::default()
    }

    /// Adds a tier named `name` taking `cost` units of `meter` per acquisition. Errors with
    /// [`CanoError::Configuration`] when `cost` exceeds the meter's capacity (the limiter could
    /// never admit anything) or the name is already taken.
    pub fn with_tier(
        mut self,
        name: impl Into<Cow<'static, str>>,
        meter: Arc<dyn Meter>,
        cost: u64,
    ) -> Result<Self, CanoError> {
        let name = name.into();
        if self.tiers.iter().any(|t| t.name == name) {
            return Err(CanoError::configuration(alloc::format!(
                "multi rate limiter: tier {name} is defined twice"
            )));
        }
        if cost > meter.capacity() {
            return Err(never_admitted(&name, cost, meter.capacity()));
        }
        self.tiers.push(Tier { name, meter, cost });
        Ok(self)
    }

    /// The tiers, in the order they were added.
    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    /// Takes from every tier at `now`, or from none. Errors: [`CanoError::RateLimited`] naming
    /// the tier with the longest wait.
    pub fn try_acquire_at(&self, now: Instant) -> Result<(), CanoError> {
        self.try_acquire_for_at(now, &[])
    }

    /// [`try_acquire_at`](Self::try_acquire_at) over only the tiers named in `only` (all of
    /// them when `only` is empty).
    pub fn try_acquire_for_at(&self, now: Instant, only: &[&str]) -> Result<(), CanoError> {
        let applies =
            |tier: &Tier| tier.cost > 0 && (only.is_empty() || only.contains(&&*tier.name));
        let mut taken: Vec<(usize, Taken)> = Vec::new();
        let mut refused: Option<(usize, Duration)> = None;
        for (at, tier) in self.tiers.iter().enumerate() {
            if !applies(tier) {
                continue;
            }
            if let Some((_, longest)) = refused {
                // Only asked how long, to name the binding tier; nothing is taken.
                let wait = tier.meter.time_until(now, tier.cost);
                if wait > longest {
                    refused = Some((at, wait));
                }
                continue;
            }
            match tier.meter.try_take(now, tier.cost) {
                Ok(t) => taken.push((at, t)),
                Err(wait) => refused = Some((at, wait)),
            }
        }
        match refused {
            None => Ok(()),
            Some((at, wait)) => {
                for (i, t) in taken {
                    self.tiers[i].meter.refund(t);
                }
                let tier = &self.tiers[at];
                Err(CanoError::rate_limited(tier.name.clone(), wait))
            }
        }
    }

    /// Takes from every tier, sleeping on `clock` until all admit at once.
    pub async fn acquire<C: Clock>(&self, clock: &C) -> Result<(), CanoError> {
        acquire_with(clock, |now| self.try_acquire_at(now)).await
    }

    /// [`acquire`](Self::acquire) over only the tiers named in `only`.
    pub async fn acquire_for<C: Clock>(&self, clock: &C, only: &[&str]) -> Result<(), CanoError> {
        acquire_with(clock, |now| self.try_acquire_for_at(now, only)).await
    }
}

impl fmt::Debug for MultiRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.tiers).finish()
    }
}

impl RateLimit for MultiRateLimiter {
    fn try_acquire_at(&self, now: Instant) -> Result<(), CanoError> {
        MultiRateLimiter::try_acquire_at(self, now)
    }
}

impl Resource for MultiRateLimiter {}
