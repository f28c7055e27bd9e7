//! Monotonic time: [`Instant`], a tick count with one fixed unit (the microsecond).
//!
//! Arithmetic with [`core::time::Duration`] saturates instead of panicking: a deadline "a
//! thousand years from now" becomes [`Instant::MAX`], which a clock treats as "never".

use core::fmt;
use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// A point on a monotonic clock, in microseconds since the clock's own origin.
///
/// Each [`Clock`](crate::Clock) chooses its origin (usually the moment it was created), so
/// instants from two different clocks are not comparable. The unit is fixed so that decision
/// code can do exact integer arithmetic on every runtime: `u64` microseconds cover about
/// 584 000 years.
///
/// ```
/// use cano_core::Instant;
/// use core::time::Duration;
///
/// let t = Instant::from_secs(10);
/// assert_eq!(t + Duration::from_millis(1500), Instant::from_micros(11_500_000));
/// // Saturating: never panics, never wraps.
/// assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
/// assert_eq!(t - Duration::from_secs(60), Instant::ZERO);
/// assert_eq!(Instant::from_secs(12).saturating_duration_since(t), Duration::from_secs(2));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The clock's origin.
    pub const ZERO: Instant = Instant(0);
    /// The far future: a deadline that never arrives.
    pub const MAX: Instant = Instant(u64::MAX);

    /// An instant `micros` microseconds after the origin.
    pub const fn from_micros(micros: u64) -> Self {
        Instant(micros)
    }

    /// An instant `millis` milliseconds after the origin (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis.saturating_mul(1_000))
    }

    /// An instant `secs` seconds after the origin (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Instant(secs.saturating_mul(1_000_000))
    }

    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Whole milliseconds since the origin.
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000
    }

    /// The time since the origin as a [`Duration`].
    pub const fn elapsed_since_origin(self) -> Duration {
        Duration::from_micros(self.0)
    }

    /// `self + d`, or `None` if that overflows.
    pub fn checked_add(self, d: Duration) -> Option<Instant> {
        let micros = u64::try_from(d.as_micros()).ok()?;
        self.0.checked_add(micros).map(Instant)
    }

    /// `self + d`, saturating at [`Instant::MAX`].
    pub fn saturating_add(self, d: Duration) -> Instant {
        self.checked_add(d).unwrap_or(Instant::MAX)
    }

    /// `self - d`, saturating at [`Instant::ZERO`].
    pub fn saturating_sub(self, d: Duration) -> Instant {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_sub(micros))
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }

    /// The time from `earlier` to `self`, or `None` if `earlier` is later.
    pub const fn checked_duration_since(self, earlier: Instant) -> Option<Duration> {
        match self.0.checked_sub(earlier.0) {
            Some(micros) => Some(Duration::from_micros(micros)),
            None => None,
        }
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        self.saturating_add(rhs)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = self.saturating_add(rhs);
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, rhs: Duration) -> Instant {
        self.saturating_sub(rhs)
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturating: an `earlier` that is actually later gives zero.
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Instant::MAX {
            return f.write_str("Instant(MAX)");
        }
        write!(
            f,
            "Instant({}.{:06}s)",
            self.0 / 1_000_000,
            self.0 % 1_000_000
        )
    }
}

// Monotonic <-> wall conversions. Decision code keeps both clocks apart (see the crate
// docs); these are the only places that relate them, always through one pair `now`/`wall`
// read at the same moment.

/// The wall time of monotonic instant `t`, given that `now` and `wall` are the same moment
/// (saturating at the ends of [`Timestamp`]'s range).
pub(crate) fn to_wall(t: Instant, now: Instant, wall: Timestamp) -> Timestamp {
    let ahead = signed(t.saturating_duration_since(now));
    let behind = signed(now.saturating_duration_since(t));
    wall.checked_add(ahead - behind).unwrap_or(if t > now {
        Timestamp::MAX
    } else {
        Timestamp::MIN
    })
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

/// The wall time of monotonic instant `t` in µs since the Unix epoch, given that `now` and
/// `wall` are the same moment: [`to_wall`] in integer arithmetic (saturating), for paths
/// taken on every run.
pub(crate) fn wall_micros_at(t: Instant, now: Instant, wall: Timestamp) -> i64 {
    wall.as_microsecond()
        .saturating_add(mono_micros(t) - mono_micros(now))
}

/// `t` in signed microseconds since its clock's origin (saturating), the base of
/// monotonic fire times.
pub(crate) fn mono_micros(t: Instant) -> i64 {
    i64::try_from(t.as_micros()).unwrap_or(i64::MAX)
}

/// The instant `micros` after the origin (negative: the origin).
pub(crate) fn instant_at(micros: i64) -> Instant {
    Instant::from_micros(u64::try_from(micros).unwrap_or(0))
}

/// The timestamp `micros` after the Unix epoch, saturating at the ends of jiff's range.
pub(crate) fn timestamp_at(micros: i64) -> Timestamp {
    Timestamp::from_microsecond(micros).unwrap_or(if micros > 0 {
        Timestamp::MAX
    } else {
        Timestamp::MIN
    })
}

/// `d` in signed microseconds (saturating).
pub(crate) fn duration_micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// A [`Duration`] in an error message, written exactly as its `Debug` writes it (`1.5s`,
/// `250ms`, `3µs`, `0ns`) with integer code of its own: `Duration`'s `Debug` also handles
/// precision, width and rounding, 1.3 KB of every firmware (issue 15).
pub(crate) struct DurationText(pub(crate) Duration);

impl fmt::Display for DurationText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (seconds, nanos) = (self.0.as_secs(), self.0.subsec_nanos());
        // The whole units, what is left below one, the value of its first digit, the unit.
        let (whole, mut rest, mut digit, unit) = if seconds > 0 {
            (seconds, nanos, 100_000_000, "s")
        } else if nanos >= 1_000_000 {
            (
                u64::from(nanos / 1_000_000),
                nanos % 1_000_000,
                100_000,
                "ms",
            )
        } else if nanos >= 1_000 {
            (u64::from(nanos / 1_000), nanos % 1_000, 100, "µs")
        } else {
            (u64::from(nanos), 0, 1, "ns")
        };
        write!(f, "{whole}")?;
        if rest > 0 {
            f.write_str(".")?;
            while rest > 0 {
                fmt::Write::write_char(f, char::from(b'0' + (rest / digit) as u8))?;
                rest %= digit;
                digit /= 10;
            }
        }
        f.write_str(unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written as `Duration`'s `Debug` writes it, for every unit and fraction length.
    #[test]
    fn duration_text_is_what_debug_writes() {
        use crate::random::{RandomSource, SplitMix64};
        let random = SplitMix64::new(15);
        let mut cases = alloc::vec![
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_nanos(999),
            Duration::from_nanos(1_000),
            Duration::from_nanos(1_001),
            Duration::from_micros(999_999),
            Duration::from_millis(1),
            Duration::from_millis(1_500),
            Duration::from_secs(1),
            Duration::new(1, 1),
            Duration::new(59, 999_999_999),
            Duration::MAX,
        ];
        for _ in 0..20_000 {
            let nanos = (random.next_u64() % 1_000_000_000) as u32;
            // Each magnitude: below a µs, a ms, a second, and whole seconds of any size.
            let nanos = nanos / 10u32.pow((random.next_u64() % 10) as u32);
            let seconds = match random.next_u64() % 3 {
                0 => 0,
                1 => random.next_u64() % 100,
                _ => random.next_u64(),
            };
            cases.push(Duration::new(seconds, nanos));
        }
        for d in cases {
            assert_eq!(
                alloc::format!("{}", DurationText(d)),
                alloc::format!("{d:?}")
            );
        }
    }

    #[test]
    fn monotonic_to_wall() {
        let w = Timestamp::from_second(1_767_225_600).unwrap();
        let now = Instant::from_secs(100);
        assert_eq!(
            to_wall(Instant::from_secs(160), now, w),
            w + SignedDuration::from_secs(60)
        );
        assert_eq!(
            to_wall(Instant::from_secs(40), now, w),
            w - SignedDuration::from_secs(60)
        );
        assert_eq!(to_wall(Instant::MAX, now, w), Timestamp::MAX);
        assert_eq!(timestamp_at(i64::MAX), Timestamp::MAX);
        assert_eq!(timestamp_at(i64::MIN), Timestamp::MIN);
        assert_eq!(instant_at(-5), Instant::ZERO);
        assert_eq!(mono_micros(Instant::MAX), i64::MAX);
        for t in [0, 1, 40, 100, 160, 1 << 40] {
            let t = Instant::from_secs(t);
            // Equal on jiff's range; beyond it both saturate.
            assert_eq!(timestamp_at(wall_micros_at(t, now, w)), to_wall(t, now, w));
        }
    }

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        assert_eq!(Instant::MAX + Duration::MAX, Instant::MAX);
        assert_eq!(Instant::from_secs(1) + Duration::MAX, Instant::MAX);
        assert_eq!(Instant::ZERO - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(Instant::ZERO - Duration::MAX, Instant::ZERO);
        assert_eq!(Instant::ZERO - Instant::from_secs(5), Duration::ZERO);
        assert_eq!(Instant::from_secs(1).checked_add(Duration::MAX), None);
        assert_eq!(Instant::from_secs(u64::MAX), Instant::MAX);
    }

    #[test]
    fn units_convert_exactly() {
        let t = Instant::from_millis(1_234);
        assert_eq!(t.as_micros(), 1_234_000);
        assert_eq!(t.as_millis(), 1_234);
        assert_eq!(t.elapsed_since_origin(), Duration::from_millis(1_234));
        assert_eq!(
            Instant::from_secs(3).checked_duration_since(Instant::from_secs(1)),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            Instant::from_secs(1).checked_duration_since(Instant::from_secs(3)),
            None
        );
        // Sub-microsecond parts of a duration are dropped, never rounded up.
        assert_eq!(
            Instant::ZERO + Duration::from_nanos(1_999),
            Instant::from_micros(1)
        );
    }

    #[test]
    fn debug_is_readable() {
        extern crate alloc;
        use alloc::format;
        assert_eq!(
            format!("{:?}", Instant::from_micros(1_500_000)),
            "Instant(1.500000s)"
        );
        assert_eq!(format!("{:?}", Instant::MAX), "Instant(MAX)");
    }
}
