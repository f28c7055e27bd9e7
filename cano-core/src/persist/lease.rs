//! [`LeaseTrust`]: when a node stops trusting a lease, on its own monotonic clock.

use core::time::Duration;

use crate::time::Instant;

/// The default lease of a claimed fire: a node that dies is replaced after at most this long.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// How many times a fire is taken over, by default, before the ledger gives it up: a fire
/// whose runs keep dying with their node (a poison fire) stops being retried.
pub const DEFAULT_MAX_TAKEOVERS: u32 = 3;

/// The default safety margin: a node stops trusting its lease this long before it would
/// end by its own clock.
pub const DEFAULT_LEASE_SAFETY_MARGIN: Duration = Duration::from_secs(2);

/// How long a node may trust a lease the store granted, measured on the node's monotonic
/// clock from the moment it *sent* the claim or renewal (River's rule): the store started
/// the lease no earlier than that, so trust ends at `sent + lease − margin`, before the
/// store's lease ends whatever the network delay.
///
/// The margin also absorbs clock-rate differences: trust ends before the store's lease as
/// long as the margin exceeds `lease × 2ρ/(1 + ρ)`, where ρ bounds how far either clock's
/// rate is off real time (2 s on a 30 s lease tolerates ρ up to 3.4 %). A margin at least as
/// long as the lease means the lease is never trusted.
///
/// ```
/// use cano_core::persist::LeaseTrust;
/// use cano_core::Instant;
/// use core::time::Duration;
///
/// let sent = Instant::from_secs(100);
/// let trust = LeaseTrust::new(sent, Duration::from_secs(30), Duration::from_secs(2));
/// assert_eq!(trust.trusted_until(), Instant::from_secs(128));
/// assert!(trust.is_trusted(Instant::from_secs(127)));
/// assert!(!trust.is_trusted(Instant::from_secs(128)));
/// assert_eq!(trust.renew_at(), Instant::from_secs(110)); // a third of the lease
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTrust {
    sent_at: Instant,
    lease: Duration,
    margin: Duration,
}

impl LeaseTrust {
    /// Trust in a lease of `lease` granted for a request sent at `sent_at` (local monotonic
    /// time), with `margin` of safety.
    pub const fn new(sent_at: Instant, lease: Duration, margin: Duration) -> Self {
        LeaseTrust {
            sent_at,
            lease,
            margin,
        }
    }

    /// The first instant the lease is no longer trusted.
    pub fn trusted_until(&self) -> Instant {
        self.sent_at
            .saturating_add(self.lease.saturating_sub(self.margin))
    }

    /// Whether the lease may still be relied on at local monotonic time `now`.
    pub fn is_trusted(&self, now: Instant) -> bool {
        now < self.trusted_until()
    }

    /// When to send the renewal: a third of the lease after the request, so two more
    /// attempts fit before trust ends (never later than [`trusted_until`](Self::trusted_until)).
    pub fn renew_at(&self) -> Instant {
        self.sent_at
            .saturating_add(self.lease / 3)
            .min(self.trusted_until())
    }

    /// When the request was sent.
    pub fn sent_at(&self) -> Instant {
        self.sent_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_ends_before_the_store_whatever_the_delay() {
        let lease = Duration::from_secs(30);
        let margin = Duration::from_secs(2);
        for sent in [0u64, 1, 1_000_000, u64::MAX / 4] {
            let trust = LeaseTrust::new(Instant::from_micros(sent), lease, margin);
            for delay_ms in [0u64, 1, 500, 10_000, 60_000] {
                // The store starts the lease when the request arrives.
                let store_expiry =
                    Instant::from_micros(sent) + Duration::from_millis(delay_ms) + lease;
                assert!(trust.trusted_until() < store_expiry);
            }
        }
    }

    #[test]
    fn a_margin_as_long_as_the_lease_is_never_trusted() {
        let t = LeaseTrust::new(
            Instant::from_secs(5),
            Duration::from_secs(2),
            Duration::from_secs(3),
        );
        assert!(!t.is_trusted(Instant::from_secs(5)));
        assert_eq!(t.renew_at(), Instant::from_secs(5));
        let max = LeaseTrust::new(Instant::MAX, Duration::MAX, Duration::ZERO);
        assert_eq!(max.trusted_until(), Instant::MAX);
    }
}
