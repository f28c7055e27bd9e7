//! [`ScheduleHash`]: a stable fingerprint of what decides a flow's fire times.

use core::fmt::{self, Write};

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::cron::DayMatching;
use crate::scheduler::schedule::{IntervalMode, Schedule, SchedulePolicy};

/// A 64-bit fingerprint of a flow's schedule, stored in its
/// [`FlowRecord`](super::FlowRecord): when a restarted scheduler finds a different hash, the
/// schedule was changed while it was down, and the fires the old schedule missed are not
/// caught up ([`plan_catch_up`](super::plan_catch_up)).
///
/// It covers what decides *which fires exist*: the schedule (an interval's length; a cron
/// expression's normalized text, which is a function of its meaning alone, and its
/// day-matching rule), the time zone a cron expression without a `CRON_TZ=` prefix is
/// evaluated in, and the interval mode. It leaves out the overlap, missed-fire, first-run
/// and jitter policies, which change how fires are run but not which fires exist, so
/// changing them keeps catch-up.
///
/// The hash is FNV-1a (64-bit) over a tagged byte encoding that this crate pins with
/// golden values in its tests: the same schedule hashes the same in every process, on
/// every target and in every cano version that keeps that encoding (`std::hash` promises
/// none of this). A time zone without an IANA name that is not a fixed offset hashes as
/// "unnamed", so a change between two such zones is not detected.
///
/// ```
/// use cano_core::persist::ScheduleHash;
/// use cano_core::schedule::{Schedule, SchedulePolicy};
/// use cano_core::jiff::tz::TimeZone;
/// use cano_core::Cron;
///
/// let policy = SchedulePolicy::default();
/// let utc = TimeZone::UTC;
/// let a = ScheduleHash::of(&Schedule::Cron(Cron::parse("0 9 * * 1-5")?), &policy, &utc);
/// let b = ScheduleHash::of(&Schedule::Cron(Cron::parse("0 9 * * MON-FRI")?), &policy, &utc);
/// let c = ScheduleHash::of(&Schedule::Cron(Cron::parse("0 10 * * 1-5")?), &policy, &utc);
/// assert_eq!(a, b); // same meaning, same hash
/// assert_ne!(a, c);
/// # Ok::<(), cano_core::CronError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ScheduleHash(pub u64);

/// FNV-1a, 64 bits.
struct Fnv(u64);

impl Fnv {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(Fnv::PRIME);
        }
    }

    /// A field: a tag, its length, its bytes (so no two encodings run together).
    fn field(&mut self, tag: u8, bytes: &[u8]) {
        self.bytes(&[tag]);
        self.bytes(&(bytes.len() as u64).to_le_bytes());
        self.bytes(bytes);
    }
}

impl Write for Fnv {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

// Field tags. Never renumber: stored hashes depend on them.
const TAG_VERSION: u8 = 0;
const TAG_EVERY_MICROS: u8 = 1;
const TAG_CRON_TEXT: u8 = 2;
const TAG_CRON_DAY_MATCHING: u8 = 3;
const TAG_ZONE: u8 = 4;
const TAG_INTERVAL_MODE: u8 = 5;
const TAG_MANUAL: u8 = 6;

impl ScheduleHash {
    /// The hash of `schedule` under `policy`, with `zone` the scheduler's time zone (used by
    /// cron expressions that name none).
    pub fn of(schedule: &Schedule, policy: &SchedulePolicy, zone: &TimeZone) -> ScheduleHash {
        let mut h = Fnv(Fnv::OFFSET);
        h.field(TAG_VERSION, &[1]);
        match schedule {
            Schedule::Every(interval) => {
                let micros = u64::try_from(interval.as_micros()).unwrap_or(u64::MAX);
                h.field(TAG_EVERY_MICROS, &micros.to_le_bytes());
                let mode: u8 = match policy.interval_mode {
                    IntervalMode::FixedDelay => 0,
                    IntervalMode::FixedRate => 1,
                };
                h.field(TAG_INTERVAL_MODE, &[mode]);
            }
            Schedule::Cron(cron) => {
                // The normalized text, streamed: equal meaning, equal text. Weekdays print as
                // names, so the weekday numbering does not matter; day matching does.
                let mut text = Fnv(Fnv::OFFSET);
                let _ = write!(text, "{cron}");
                h.field(TAG_CRON_TEXT, &text.0.to_le_bytes());
                let matching: u8 = match cron.options().day_matching() {
                    DayMatching::Either => 0,
                    DayMatching::Both => 1,
                };
                h.field(TAG_CRON_DAY_MATCHING, &[matching]);
                if cron.time_zone().is_none() {
                    zone_field(&mut h, zone);
                }
            }
            Schedule::Manual => h.field(TAG_MANUAL, &[]),
        }
        ScheduleHash(h.0)
    }
}

fn zone_field(h: &mut Fnv, zone: &TimeZone) {
    if let Some(name) = zone.iana_name() {
        let mut z = Fnv(Fnv::OFFSET);
        z.bytes(b"n");
        z.bytes(name.as_bytes());
        h.field(TAG_ZONE, &z.0.to_le_bytes());
    } else if let Ok(offset) = zone.to_fixed_offset() {
        let mut z = Fnv(Fnv::OFFSET);
        z.bytes(b"o");
        z.bytes(&offset.seconds().to_le_bytes());
        h.field(TAG_ZONE, &z.0.to_le_bytes());
    } else {
        h.field(TAG_ZONE, b"unnamed");
    }
}

impl fmt::Display for ScheduleHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cron::{Cron, CronOptions};
    use alloc::string::ToString;
    use core::time::Duration;

    fn cron(text: &str) -> Schedule {
        Schedule::Cron(Cron::parse(text).unwrap())
    }

    fn of(s: &Schedule) -> ScheduleHash {
        ScheduleHash::of(s, &SchedulePolicy::default(), &TimeZone::UTC)
    }

    /// Stored hashes must not change between versions: these values are the contract. If
    /// this test fails, the encoding changed and every stored flow would lose its catch-up.
    #[test]
    fn golden_values_pin_the_encoding() {
        assert_eq!(
            of(&Schedule::Every(Duration::from_secs(60))).to_string(),
            "ab76e4837661e555"
        );
        assert_eq!(of(&cron("*/5 * * * *")).to_string(), "1c438cfeb4c9b0c6");
        assert_eq!(of(&Schedule::Manual).to_string(), "9874ae3dc20cf631");
    }

    #[test]
    fn what_decides_fire_times_changes_the_hash() {
        let every = Schedule::Every(Duration::from_secs(60));
        let rate = SchedulePolicy {
            interval_mode: IntervalMode::FixedRate,
            ..SchedulePolicy::default()
        };
        assert_ne!(of(&every), ScheduleHash::of(&every, &rate, &TimeZone::UTC));
        assert_ne!(of(&every), of(&Schedule::Every(Duration::from_secs(61))));
        assert_ne!(of(&cron("0 9 * * *")), of(&cron("0 9 * * 1")));
        let quartz =
            Schedule::Cron(Cron::parse_with("0 0 9 1 * MON", CronOptions::quartz()).unwrap());
        let posix = Schedule::Cron(Cron::parse_with("0 0 9 1 * MON", CronOptions::new()).unwrap());
        assert_ne!(
            of(&quartz),
            of(&posix),
            "day matching changes which days fire"
        );
        let berlin = TimeZone::fixed(jiff::tz::offset(1));
        let policy = SchedulePolicy::default();
        assert_ne!(
            ScheduleHash::of(&cron("0 9 * * *"), &policy, &berlin),
            of(&cron("0 9 * * *"))
        );
    }

    #[test]
    fn what_only_changes_how_fires_run_keeps_the_hash() {
        use crate::scheduler::schedule::{MissedFirePolicy, OverlapPolicy};
        let s = cron("0 9 * * *");
        let other = SchedulePolicy {
            overlap: OverlapPolicy::BufferOne,
            missed: MissedFirePolicy::RunAll { max: 3 },
            jitter: Duration::from_secs(5),
            interval_mode: IntervalMode::FixedRate,
            ..SchedulePolicy::default()
        };
        assert_eq!(of(&s), ScheduleHash::of(&s, &other, &TimeZone::UTC));
        // A zone named in the expression wins over the scheduler's.
        let prefixed = cron("CRON_TZ=UTC 0 9 * * *");
        let berlin = TimeZone::fixed(jiff::tz::offset(1));
        assert_eq!(
            ScheduleHash::of(&prefixed, &SchedulePolicy::default(), &berlin),
            of(&prefixed)
        );
    }
}
