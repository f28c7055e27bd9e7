//! [`SkewCheck`]: how far the store's clock is from this node's, from one round trip.

use core::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// Skew above which a node warns (Quartz's bound for clustered nodes).
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(1);

/// The store's clock relative to this node's wall clock, measured from one call: the local
/// wall time when it was sent, the store's now in the answer ([`Stamped`](super::Stamped)),
/// and the local wall time when the answer came back. The store read its clock somewhere in
/// between, so the offset is known to within half the round trip
/// ([`uncertainty`](SkewCheck::uncertainty)); the checks below only conclude what holds
/// for every offset in that range, so a slow round trip never causes a false warning or an
/// early start.
///
/// ```
/// use cano_core::persist::{SkewCheck, DEFAULT_MAX_SKEW};
/// use cano_core::jiff::Timestamp;
///
/// let t = |ms: i64| Timestamp::from_millisecond(ms).unwrap();
/// // Sent at 0 ms, answered at 20 ms; the store said 5 010 ms: about 5 s ahead.
/// let skew = SkewCheck::measure(t(0), t(5_010), t(20));
/// assert_eq!(skew.offset().as_millis(), 5_000);
/// assert!(skew.exceeds(DEFAULT_MAX_SKEW));
/// // By the store's clock it is 5 s later than here: a fire due at local 3 s is not early.
/// assert_eq!(skew.early_by(t(3_000), t(100)), None);
/// // A fire due at local 6 s would be early for another 900 ms (plus the uncertainty).
/// assert_eq!(skew.early_by(t(6_000), t(100)).unwrap().as_millis(), 910);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkewCheck {
    /// Store minus local, at the round trip's midpoint (µs).
    offset: i64,
    /// Half the round trip (µs).
    uncertainty: i64,
}

impl SkewCheck {
    /// The skew seen by one call sent at local wall time `sent`, answered with the store's
    /// `store_now`, and received at local wall time `received`. (If the local wall clock
    /// stepped back in between, the round trip counts as its absolute length.)
    pub fn measure(sent: Timestamp, store_now: Timestamp, received: Timestamp) -> SkewCheck {
        let (a, b) = (sent.as_microsecond(), received.as_microsecond());
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let half = (hi - lo) / 2 + (hi - lo) % 2;
        let midpoint = lo + (hi - lo) / 2;
        SkewCheck {
            offset: store_now.as_microsecond() - midpoint,
            uncertainty: half,
        }
    }

    /// The store's clock minus ours (positive: the store is ahead).
    pub fn offset(&self) -> SignedDuration {
        SignedDuration::from_micros(self.offset)
    }

    /// How far the true offset may be from [`offset`](Self::offset) (half the round trip).
    pub fn uncertainty(&self) -> Duration {
        Duration::from_micros(self.uncertainty.unsigned_abs())
    }

    /// Whether the clocks are certainly more than `max` apart (either way): time to warn.
    pub fn exceeds(&self, max: Duration) -> bool {
        let certain = self
            .offset
            .unsigned_abs()
            .saturating_sub(self.uncertainty.unsigned_abs());
        certain > u64::try_from(max.as_micros()).unwrap_or(u64::MAX)
    }

    /// How long to wait before starting the fire scheduled at `fire` when the local wall
    /// clock reads `local_now`, so that it never starts before `fire` by the store's clock;
    /// `None` when it may start now.
    pub fn early_by(&self, fire: Timestamp, local_now: Timestamp) -> Option<Duration> {
        // The earliest the store's clock can read now.
        let store_earliest = local_now
            .as_microsecond()
            .saturating_add(self.offset)
            .saturating_sub(self.uncertainty);
        let wait = fire.as_microsecond().saturating_sub(store_earliest);
        (wait > 0).then(|| Duration::from_micros(wait.unsigned_abs()))
    }
}

/// How long the fire scheduled at `fire` would start early by a store whose clock reads
/// `store_now` (from a [`Stamped`](super::Stamped) answer); `None` when it is due.
pub fn early_by_store(fire: Timestamp, store_now: Timestamp) -> Option<Duration> {
    let wait = fire
        .as_microsecond()
        .saturating_sub(store_now.as_microsecond());
    (wait > 0).then(|| Duration::from_micros(wait.unsigned_abs()))
}
