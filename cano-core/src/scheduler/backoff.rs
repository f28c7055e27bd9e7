//! [`BackoffPolicy`]: how long a failing scheduled flow waits before its next run, and when
//! it trips. The math is cano 0.12's to the letter; only the source of
//! randomness changed: jitter comes from an injected [`RandomSource`] (the scheduler's is a
//! [`SplitMix64`](crate::random::SplitMix64) seeded by
//! [`Scheduler::set_seed`](crate::scheduler::Scheduler::set_seed)), so a test gets the same
//! delays on every run.

use core::time::Duration;

use crate::error::{CanoError, CanoResult};
use crate::random::RandomSource;
use crate::workflow::retry::{jitter_factor, powi};

/// Exponential backoff for a scheduled flow after failed runs, with an optional trip.
///
/// After the `streak`-th consecutive failure the flow waits
/// `min(initial · multiplier^(streak−1), max_delay)`, scaled by a random factor in
/// `[1 − jitter, 1 + jitter]` and capped at `max_delay` again (so jitter can only lower a
/// capped delay). With `streak_limit = Some(n)`, the `n`-th consecutive failure trips the flow
/// instead: it stops running until `reset_flow`.
///
/// The defaults are cano 0.12's: 1 s, ×2, 5 min cap, 0.1 jitter, never trips.
///
/// ```
/// use cano_core::backoff::BackoffPolicy;
/// use cano_core::random::SplitMix64;
/// use core::time::Duration;
///
/// let policy = BackoffPolicy {
///     initial: Duration::from_millis(100),
///     jitter: 0.0,
///     ..BackoffPolicy::default()
/// };
/// let rng = SplitMix64::new(0);
/// let delays: Vec<_> = (1..=4).map(|s| policy.compute_delay(s, &rng)).collect();
/// assert_eq!(delays, [100, 200, 400, 800].map(Duration::from_millis));
/// assert!(!policy.is_tripped(1_000));
/// assert!(BackoffPolicy::with_trip(3).is_tripped(3));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffPolicy {
    /// The delay after the first failure.
    pub initial: Duration,
    /// The growth factor per further consecutive failure.
    pub multiplier: f64,
    /// The longest delay, jitter included.
    pub max_delay: Duration,
    /// The relative spread of the random factor, clamped to `[0, 1]`: 0.1 means ±10 %.
    pub jitter: f64,
    /// Trip after this many consecutive failures; `None` never trips.
    pub streak_limit: Option<u32>,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_secs(1),
            multiplier: 2.0,
            max_delay: Duration::from_secs(300),
            jitter: 0.1,
            streak_limit: None,
        }
    }
}

impl BackoffPolicy {
    /// The default policy, tripping after `streak_limit` consecutive failures. `with_trip(0)`
    /// trips on the first failure.
    pub fn with_trip(streak_limit: u32) -> Self {
        BackoffPolicy {
            streak_limit: Some(streak_limit),
            ..BackoffPolicy::default()
        }
    }

    /// Whether a flow with `streak` consecutive failures is tripped under this policy.
    pub fn is_tripped(&self, streak: u32) -> bool {
        self.streak_limit.is_some_and(|limit| streak >= limit)
    }

    /// The delay after the `streak`-th consecutive failure, before jitter (a `streak` of 0 is
    /// treated as 1). Total over every `streak` and every policy, and never more than
    /// `max_delay`: a zero `initial` stays zero however long the streak (unlike cano 0.12,
    /// where `0 × 2^1024` became NaN and then `max_delay`); a growth that overflows, or a
    /// NaN `multiplier`, gives `max_delay`; a `multiplier` below 1 (which
    /// [`validate`](BackoffPolicy::validate) rejects) shrinks the delay, at worst to zero.
    pub fn delay_without_jitter(&self, streak: u32) -> Duration {
        self.delay_with_factor(streak, 1.0)
    }

    /// The delay after the `streak`-th consecutive failure, jitter drawn from `rng` (a
    /// `streak` of 0 is treated as 1): [`delay_without_jitter`](Self::delay_without_jitter)
    /// scaled by a factor in `[1 − jitter, 1 + jitter]` and capped at `max_delay` again.
    /// Never panics; a draw outside `[-1, 1]` from a custom `rng` is clamped.
    pub fn compute_delay(&self, streak: u32, rng: &(impl RandomSource + ?Sized)) -> Duration {
        self.delay_with_factor(streak, jitter_factor(self.jitter, rng))
    }

    fn delay_with_factor(&self, streak: u32, factor: f64) -> Duration {
        if self.initial.is_zero() || self.max_delay.is_zero() {
            // Zero stays zero: without this, `0 × multiplier^k` is `0 × ∞ = NaN` once the
            // growth overflows (k ≥ 1024 for ×2), and NaN would be read as `max_delay`.
            return Duration::ZERO;
        }
        let streak = streak.max(1);
        let base = self.initial.as_secs_f64() * powi(self.multiplier, streak - 1);
        // `f64::min` takes the cap when `base` is NaN (a NaN multiplier) or infinite.
        let capped = base.min(self.max_delay.as_secs_f64());
        let jittered = (capped * factor).max(0.0);
        Duration::try_from_secs_f64(jittered)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// Checks the fields: `multiplier` must be finite and at least 1, `jitter` finite.
    ///
    /// # Errors
    ///
    /// [`CanoError::Configuration`] naming the bad field.
    pub fn validate(&self) -> CanoResult<()> {
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return Err(CanoError::configuration(alloc::format!(
                "BackoffPolicy.multiplier must be a finite number >= 1, got {}",
                crate::error::Decimal(self.multiplier)
            )));
        }
        if !self.jitter.is_finite() {
            return Err(CanoError::configuration(alloc::format!(
                "BackoffPolicy.jitter must be finite, got {}",
                crate::error::Decimal(self.jitter)
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SplitMix64;
    use alloc::vec::Vec;

    fn no_jitter(initial_ms: u64, max_ms: u64) -> BackoffPolicy {
        BackoffPolicy {
            initial: Duration::from_millis(initial_ms),
            multiplier: 2.0,
            max_delay: Duration::from_millis(max_ms),
            jitter: 0.0,
            streak_limit: None,
        }
    }

    #[test]
    fn exponential_sequence_without_jitter() {
        let p = no_jitter(100, 300_000);
        let rng = SplitMix64::new(1);
        let got: Vec<u128> = (1..=4)
            .map(|s| p.compute_delay(s, &rng).as_millis())
            .collect();
        assert_eq!(got, [100, 200, 400, 800]);
    }

    #[test]
    fn capped_at_max_delay() {
        let p = no_jitter(100, 500);
        let rng = SplitMix64::new(1);
        assert_eq!(p.compute_delay(10, &rng), Duration::from_millis(500));
        assert_eq!(p.compute_delay(u32::MAX, &rng), Duration::from_millis(500));
    }

    #[test]
    fn jitter_stays_within_half_to_one_and_a_half() {
        let p = BackoffPolicy {
            jitter: 0.5,
            ..no_jitter(1_000, 300_000)
        };
        let rng = SplitMix64::new(42);
        let mut low = false;
        let mut high = false;
        for _ in 0..1_000 {
            let d = p.compute_delay(1, &rng).as_secs_f64();
            assert!((0.5..=1.5).contains(&d), "{d}");
            low |= d < 0.9;
            high |= d > 1.1;
        }
        assert!(low && high, "jitter must actually spread both ways");
    }

    #[test]
    fn jitter_only_lowers_a_capped_delay() {
        let p = BackoffPolicy {
            jitter: 1.0,
            ..no_jitter(1_000, 2_000)
        };
        let rng = SplitMix64::new(3);
        for _ in 0..200 {
            assert!(p.compute_delay(20, &rng) <= Duration::from_secs(2));
        }
    }

    #[test]
    fn zero_initial_stays_zero_past_the_overflow_of_the_growth() {
        let p = no_jitter(0, 300_000);
        for streak in [1, 1_024, 1_025, u32::MAX] {
            assert_eq!(p.delay_without_jitter(streak), Duration::ZERO, "{streak}");
        }
        let p = no_jitter(1, 0);
        assert_eq!(p.delay_without_jitter(u32::MAX), Duration::ZERO);
    }

    #[test]
    fn streak_zero_is_treated_as_one() {
        let p = no_jitter(100, 500);
        assert_eq!(p.delay_without_jitter(0), p.delay_without_jitter(1));
    }

    #[test]
    fn trip_respects_the_limit() {
        let p = BackoffPolicy::with_trip(3);
        assert!(!p.is_tripped(2));
        assert!(p.is_tripped(3));
        assert!(p.is_tripped(4));
        assert!(BackoffPolicy::with_trip(0).is_tripped(0));
        assert!(!BackoffPolicy::default().is_tripped(u32::MAX));
    }

    #[test]
    fn defaults_match_the_reference() {
        let p = BackoffPolicy::default();
        assert_eq!(p.initial, Duration::from_secs(1));
        assert_eq!(p.multiplier, 2.0);
        assert_eq!(p.max_delay, Duration::from_secs(300));
        assert_eq!(p.jitter, 0.1);
        assert_eq!(p.streak_limit, None);
        let t = BackoffPolicy::with_trip(5);
        assert_eq!(
            t,
            BackoffPolicy {
                streak_limit: Some(5),
                ..BackoffPolicy::default()
            }
        );
    }

    #[test]
    fn nonsense_values_never_panic_and_are_rejected_by_validate() {
        let p = BackoffPolicy {
            multiplier: f64::NAN,
            jitter: f64::INFINITY,
            ..BackoffPolicy::default()
        };
        let rng = SplitMix64::new(0);
        assert!(p.compute_delay(5, &rng) <= p.max_delay);
        assert!(p.validate().is_err());
        let p = BackoffPolicy {
            multiplier: 0.5,
            ..BackoffPolicy::default()
        };
        assert_eq!(p.validate().unwrap_err().category(), "configuration");
        assert!(BackoffPolicy::default().validate().is_ok());
    }

    #[test]
    fn same_seed_same_delays() {
        let p = BackoffPolicy::default();
        let (a, b) = (SplitMix64::new(9), SplitMix64::new(9));
        for s in 1..20 {
            assert_eq!(p.compute_delay(s, &a), p.compute_delay(s, &b));
        }
    }
}
