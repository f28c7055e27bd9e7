//! Cron expressions: parsed once into bitsets, evaluated in any time zone with explicit DST
//! rules, on a server or a microcontroller (`no_std` + `alloc`).
//!
//! ```
//! use cano_core::cron::Cron;
//! use cano_core::jiff::{Timestamp, tz::TimeZone};
//!
//! let cron = Cron::parse("*/15 9-17 * * MON-FRI")?;
//! let after = "2026-03-13T16:50:00Z".parse::<Timestamp>()?.to_zoned_datetime(TimeZone::UTC);
//! let fires: Vec<String> = cron.upcoming(&after).take(3).map(|z| z.to_string()).collect();
//! assert_eq!(fires, [
//!     "2026-03-13T17:00:00+00:00[UTC]",
//!     "2026-03-13T17:15:00+00:00[UTC]",
//!     "2026-03-13T17:30:00+00:00[UTC]",
//! ]);
//! assert_eq!(cron.to_string(), "*/15 9-17 * * MON-FRI");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Dialect
//!
//! | fields | layout |
//! |---|---|
//! | 5 | `minute hour day-of-month month day-of-week` (seconds are 0) |
//! | 6 | `second minute hour day-of-month month day-of-week` |
//! | 7 | `second minute hour day-of-month month day-of-week year` (1970–2099) |
//!
//! | field | values | special |
//! |---|---|---|
//! | second, minute | 0–59 | |
//! | hour | 0–23 | |
//! | day-of-month | 1–31 | `?`, `L` (last day), `L-n` (n days before it), `nW` (the weekday nearest day n, never leaving the month), `LW` (last weekday) |
//! | month | 1–12, `JAN`–`DEC` | |
//! | day-of-week | 0–7 or 1–7 (see below), `SUN`–`SAT` | `?`, `dL` (last weekday *d* of the month, e.g. `FRIL`, `5L`), `d#n` (the *n*th weekday *d*, e.g. `MON#2`) |
//! | year | 1970–2099 | |
//!
//! Every field takes `*`, lists (`1,15`), ranges (`MON-FRI`), and steps over `*`, a range or
//! a start (`*/5`, `10-50/7`, `5/15` = 5, 20, 35, 50; a weekday start runs to Saturday, so
//! `4/3` is Thursday alone). A step is at least 1 and at most the field's largest value —
//! 59 for seconds and minutes, 23 for hours, 31 for day-of-month, 12 for months, 7 for
//! weekdays, as in Quartz, `cron` and cron-parser — and at most 129 for years; so `*/60` and
//! `1/60` in minutes and `*/8` in weekdays are rejected ([`CronErrorKind::InvalidStep`])
//! rather than silently selecting one value. Names are case-insensitive, three letters or in
//! full (`mon`, `Monday`). `?` means `*` in the two day fields, also before a step: `?/5` is
//! `*/5` (as in the `cron` crate, so cano 0.12's expressions keep working, and croner; Quartz
//! rejects it). Ranges go from low to high: `FRI-MON` is
//! rejected (write `FRI-SAT,SUN-MON`); with POSIX numbering `SUN` ending a range is day 7, so
//! `FRI-SUN` works. The aliases `@yearly`
//! (= `@annually`), `@monthly`, `@weekly` (Sunday), `@daily` (= `@midnight`) and `@hourly`
//! stand for the obvious 5-field expressions. An expression may start with `CRON_TZ=<zone>`
//! or `TZ=<zone>` (see [Time zones](#time-zones)).
//!
//! # Day-of-month with day-of-week: OR or AND
//!
//! A field is *restricted* unless it is exactly `*` or `?`. When only one of the two day
//! fields is restricted, it alone decides the day. When both are, POSIX and Vixie cron fire
//! on a day matching **either** ([`DayMatching::Either`], the default); Quartz, the `cron`
//! crate and cano 0.12 fire only on a day matching **both** ([`DayMatching::Both`]).
//!
//! ```
//! use cano_core::cron::{Cron, CronOptions, DayMatching};
//! use cano_core::jiff::{Timestamp, tz::TimeZone};
//!
//! let after = "2026-01-01T00:00:00Z".parse::<Timestamp>()?.to_zoned_datetime(TimeZone::UTC);
//! // Days 1-7 of the month, or any Monday:
//! let either = Cron::parse("30 9 1-7 * MON")?;
//! assert_eq!(either.next_after(&after).unwrap().to_string(), "2026-01-01T09:30:00+00:00[UTC]");
//! // The first Monday of the month (a day 1-7 that is a Monday):
//! let both = Cron::parse_with(
//!     "30 9 1-7 * MON",
//!     CronOptions::new().with_day_matching(DayMatching::Both),
//! )?;
//! assert_eq!(both.next_after(&after).unwrap().to_string(), "2026-01-05T09:30:00+00:00[UTC]");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Unlike Vixie cron, `*/2` counts as restricted (Vixie treats any field *starting* with
//! `*` as unrestricted, the "cron bug" documented at crontab.guru/cron-bug.html); croner
//! does the same as cano.
//!
//! # Weekday numbers: POSIX or Quartz
//!
//! By default numeric weekdays are POSIX: `0`–`7`, where `0` and `7` are Sunday and `1` is
//! Monday ([`WeekdayNumbering::Posix`]). Quartz, the `cron` crate and therefore cano 0.12
//! number them `1`–`7` with Sunday `1` ([`WeekdayNumbering::Quartz`]). Names mean the same
//! under both, so `MON-FRI` is portable while `1-5` is not. [`CronOptions::quartz`] selects
//! Quartz numbering and AND, so every expression cano 0.12 accepted keeps its meaning. A
//! scheduler takes the options with the expression,
//! `scheduler.cron(id, job, input, ("0 0 9 * * 2", CronOptions::quartz()))`, or a `Cron`
//! parsed with them (see [`IntoCron`]); a plain string is read in the default dialect.
//!
//! ```
//! use cano_core::cron::{Cron, CronOptions};
//! use cano_core::jiff::{Timestamp, tz::TimeZone};
//!
//! let sunday = "2026-03-15T10:17:23Z".parse::<Timestamp>()?.to_zoned_datetime(TimeZone::UTC);
//! let posix = Cron::parse("0 0 12 * * 1-5")?; // Monday to Friday
//! let quartz = Cron::parse_with("0 0 12 * * 1-5", CronOptions::quartz())?; // Sunday to Thursday
//! assert_eq!(posix.next_after(&sunday).unwrap().to_string(), "2026-03-16T12:00:00+00:00[UTC]");
//! assert_eq!(quartz.next_after(&sunday).unwrap().to_string(), "2026-03-15T12:00:00+00:00[UTC]");
//! // Display prints names, which read the same under both numberings.
//! assert_eq!(quartz.to_string(), "0 0 12 * * SUN-THU");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Time zones
//!
//! An expression is evaluated in the zone of its `CRON_TZ=`/`TZ=` prefix when it has one,
//! and otherwise in the zone of the time it is asked about ([`Cron::next_after`] takes a
//! [`ZonedDateTime`]; [`Cron::next_after_timestamp`] takes a [`Timestamp`] and a zone).
//! Results are in that same zone. The prefix accepts
//!
//! * IANA names (`Europe/Paris`), from the system database, with cano-core's `std` feature;
//! * POSIX TZ strings (`CET-1CEST,M3.5.0,M10.5.0/3`) and fixed offsets (`UTC`, `+05:30`,
//!   `-0800`) everywhere, including `no_std`, so a microcontroller gets DST right without a
//!   time zone database. (`UTC+5` is rejected as ambiguous: POSIX reads it as UTC−5.)
//!
//! UTC and fixed offsets take a fast path with no time zone lookups at all.
//!
//! # Daylight saving time
//!
//! An expression is *fixed-time* when its second, minute and hour fields are written
//! without `*` or a step (`0 30 2 * * *`, `0 9,17 * * *`, `0 0-30 1 * *`); otherwise it is
//! an *interval* expression (`*/15 * * * *`, `0 * * * *`). [`Cron::is_fixed_time`] tells
//! which. The rules, as in Vixie cron and croner (and the Open Cron Pattern Specification):
//!
//! * **Spring forward (a gap)**: a fixed-time job whose time does not exist that day fires
//!   once, at the first instant after the gap. Interval jobs skip the times that do not
//!   exist.
//! * **Fall back (a fold)**: a fixed-time job whose time happens twice fires once, at the
//!   first occurrence. Interval jobs fire at every real instant that matches, so
//!   `*/15 * * * *` fires at 01:00, 01:15, … in daylight time and again in standard time.
//! * Fire times are strictly increasing in real time, always: [`Cron::next_after`] returns
//!   the least instant strictly after its argument.
//!
//! ```
//! use cano_core::cron::Cron;
//! use cano_core::jiff::Timestamp;
//!
//! // US Eastern rules as a POSIX TZ string: works without a time zone database.
//! let at_0230 = Cron::parse("CRON_TZ=EST5EDT,M3.2.0,M11.1.0 30 2 * * *")?;
//! let every_30 = Cron::parse("CRON_TZ=EST5EDT,M3.2.0,M11.1.0 */30 * * * *")?;
//! let zone = at_0230.time_zone().unwrap().clone();
//! let at = |s: &str| s.parse::<Timestamp>().unwrap().to_zoned_datetime(zone.clone());
//! let time = |z: jiff::ZonedDateTime| z.strftime("%H:%M%:z").to_string();
//!
//! // 2026-03-08: 02:00 EST jumps to 03:00 EDT.
//! let before_gap = at("2026-03-08T06:00:00Z"); // 01:00 EST
//! assert_eq!(time(at_0230.next_after(&before_gap).unwrap()), "03:00-04:00");
//! let fires: Vec<_> = every_30.upcoming(&before_gap).take(3).map(time).collect();
//! assert_eq!(fires, ["01:30-05:00", "03:00-04:00", "03:30-04:00"]);
//!
//! // 2026-11-01: 02:00 EDT falls back to 01:00 EST, so 01:00-01:59 happens twice.
//! let before_fold = at("2026-11-01T04:00:00Z"); // 00:00 EDT
//! let at_0130 = Cron::parse("CRON_TZ=EST5EDT,M3.2.0,M11.1.0 30 1 * * *")?;
//! let day_and_time = |z: jiff::ZonedDateTime| z.strftime("%m-%d %H:%M%:z").to_string();
//! let fires: Vec<_> = at_0130.upcoming(&before_fold).take(2).map(day_and_time).collect();
//! assert_eq!(fires, ["11-01 01:30-04:00", "11-02 01:30-05:00"]); // once on the fold day
//! let fires: Vec<_> = every_30.upcoming(&before_fold).take(5).map(time).collect();
//! assert_eq!(fires, ["00:30-04:00", "01:00-04:00", "01:30-04:00", "01:00-05:00", "01:30-05:00"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Vixie cron also treats clock changes of three hours or more as corrections rather than
//! DST; cano applies the rules above to every offset change of the zone.
//!
//! # Bounded search
//!
//! Evaluation jumps field by field with bit scans, so it never steps through time. An
//! expression whose day can never exist (`0 0 30 2 *`, `0 0 31 4,6,9,11 *`) is rejected by
//! the parser ([`CronErrorKind::NeverFires`]). One that cannot be proven impossible at
//! parse time but never fires (`0 0 1 * MON#5` with AND) makes the search give up after
//! 400 years — one full cycle of the Gregorian calendar, so nothing is missed — and return
//! `None` within microseconds.
//!
//! # Errors
//!
//! A [`CronError`] names the field, the offending token, its byte span and what the field
//! accepts. [`CanoError`](crate::CanoError) converts from it as a configuration error that
//! keeps it as its source.
//!
//! # Differences from the Rust peers
//!
//! * **`cron` 0.16/0.17** (used by cano 0.12): requires seconds (no 5-field form, its PR
//!   #136), always ANDs the day fields, numbers weekdays Quartz-style (1 = Sunday, so `1-5`
//!   is Sunday–Thursday and `0` is rejected), has no `L`/`W`/`#`, allows years up to 2100
//!   and stops iterating there. In a DST gap it silently skips a fixed-time job that day,
//!   and since its #145 a fixed-time job in a fold fires twice; PR #150
//!   (<https://github.com/zslayton/cron/pull/150>) proposes an opt-in fix. Its reverse
//!   search is wrong when a year field sends it to an earlier year: `0 0 0 * 1,10 * 2020`
//!   searched back from 2027-01-15 gives 2020-01-15 instead of 2020-10-31 (found by cano's
//!   differential tests; no upstream issue known). Use [`CronOptions::quartz`] for its
//!   meaning.
//! * **croner 4**: the same defaults as cano (OR, 0/7 = Sunday) and the same DST rules, but
//!   it counts a job as fixed-time only when each of second, minute and hour is a *single*
//!   value (cano, like Vixie, also counts lists and ranges such as `0 9,17 * * *`). It
//!   rejects a single-number step such as `5/15`, which cano (like Quartz and `cron`)
//!   accepts, and reads `SUN-SUN` (or `0-SUN`) as the whole week where cano reads Sunday.
//!   It accepts any step (`*/60`, `*/100`), where cano rejects one larger than the field's
//!   largest value.
//!   It has open DST bugs
//!   (<https://github.com/Hexagon/croner-rust/issues/16>,
//!   <https://github.com/Hexagon/croner-rust/issues/51>), searches up to year 5000, and
//!   needs `std`.
//! * **cron-parser 0.12**: 5 fields only, always ANDs the day fields, weekdays 0–6 (7 is
//!   rejected), no `?`, `L`, `W`, `#` or aliases, no reverse search, and no DST rule: a
//!   fixed-time job in a gap is skipped that day and a fold fires at the earlier instant only.
//!
//! [`ZonedDateTime`]: jiff::ZonedDateTime
//! [`Timestamp`]: jiff::Timestamp

mod calendar;
mod describe;
mod display;
mod dst;
mod error;
mod fields;
mod into_cron;
mod options;
mod parse;
mod search;
mod zone;

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;
use core::iter::FusedIterator;
use core::str::FromStr;

use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};

pub use error::{CronError, CronErrorKind, CronField};
pub use into_cron::IntoCron;
pub use options::{CronOptions, DayMatching, WeekdayNumbering};

use dst::{Job, Zone};
use fields::Fields;
use parse::Wild;

/// A parsed cron expression.
///
/// Parse once with [`Cron::parse`] (or [`Cron::parse_with`] for another dialect), then ask
/// for fire times as often as needed; evaluation never allocates. A `Cron` is small and
/// cheap to clone (its optional time zone is reference-counted).
///
/// Equality compares schedules: two values are equal when they fire at the same civil times
/// with the same DST class and zone, whatever options or spelling produced them.
///
/// ```
/// use cano_core::cron::Cron;
///
/// let cron: Cron = "0 0 12 ? * mon-fri".parse()?;
/// assert_eq!(cron, Cron::parse("0 0 12 * * 1-5")?);
/// assert_eq!(cron.to_string(), "0 0 12 * * MON-FRI");
/// # Ok::<(), cano_core::cron::CronError>(())
/// ```
#[derive(Clone)]
pub struct Cron {
    fields: Fields,
    wild: Wild,
    arity: u8,
    options: CronOptions,
    time_zone: Option<PrefixZone>,
}

/// The `CRON_TZ=` zone, its text, and its offset when it is fixed.
#[derive(Clone)]
struct PrefixZone {
    zone: TimeZone,
    name: Box<str>,
    fixed_offset: Option<i64>,
}

impl Cron {
    /// Parses a POSIX/Vixie-style expression (weekdays 0–7 with Sunday 0 or 7; day-of-month
    /// OR day-of-week). See the [module docs](self) for the dialect.
    ///
    /// # Errors
    ///
    /// A [`CronError`] naming the field, token, byte span and what is allowed there when
    /// the text is not a valid expression, when its day can never occur (`0 0 30 2 *`), or
    /// when its `CRON_TZ=` zone cannot be loaded.
    ///
    /// ```
    /// use cano_core::cron::{Cron, CronErrorKind};
    ///
    /// assert!(Cron::parse("*/5 * * * *").is_ok());
    /// let err = Cron::parse("0 0 30 2 *").unwrap_err();
    /// assert_eq!(err.kind(), &CronErrorKind::NeverFires);
    /// ```
    pub fn parse(expression: &str) -> Result<Cron, CronError> {
        Cron::parse_with(expression, CronOptions::new())
    }

    /// Parses with explicit dialect options, e.g. [`CronOptions::quartz`] for the meaning
    /// cano 0.12 gave an expression.
    ///
    /// # Errors
    ///
    /// As [`Cron::parse`].
    pub fn parse_with(expression: &str, options: CronOptions) -> Result<Cron, CronError> {
        let parsed = parse::parse(expression, options)?;
        let time_zone = parsed.time_zone.map(|(zone, name)| {
            let fixed_offset = Zone::of(&zone).fixed_offset();
            PrefixZone {
                zone,
                name,
                fixed_offset,
            }
        });
        Ok(Cron {
            fields: parsed.fields,
            wild: parsed.wild,
            arity: parsed.arity,
            options,
            time_zone,
        })
    }

    /// The options this expression was parsed with.
    pub fn options(&self) -> CronOptions {
        self.options
    }

    /// The zone of the `CRON_TZ=`/`TZ=` prefix, if the expression has one.
    pub fn time_zone(&self) -> Option<&TimeZone> {
        self.time_zone.as_ref().map(|prefix| &prefix.zone)
    }

    /// Whether DST gaps and folds treat this as a fixed-time job (second, minute and hour
    /// written without `*` or a step) rather than an interval job. See
    /// [Daylight saving time](self#daylight-saving-time).
    ///
    /// ```
    /// use cano_core::cron::Cron;
    ///
    /// assert!(Cron::parse("30 2 * * *")?.is_fixed_time());
    /// assert!(Cron::parse("0 9,17 * * MON-FRI")?.is_fixed_time());
    /// assert!(!Cron::parse("*/30 * * * *")?.is_fixed_time());
    /// assert!(!Cron::parse("0 * * * *")?.is_fixed_time());
    /// # Ok::<(), cano_core::cron::CronError>(())
    /// ```
    pub fn is_fixed_time(&self) -> bool {
        !(self.wild.second || self.wild.minute || self.wild.hour)
    }

    fn job(&self) -> Job<'_> {
        Job {
            fields: &self.fields,
            fixed_time: self.is_fixed_time(),
        }
    }

    /// The zone to evaluate in: the prefix zone, else `given`.
    fn zone<'a>(&'a self, given: &'a TimeZone) -> (&'a TimeZone, Zone<'a>) {
        match &self.time_zone {
            Some(prefix) => (
                &prefix.zone,
                Zone::with_offset(&prefix.zone, prefix.fixed_offset),
            ),
            None => (given, Zone::of(given)),
        }
    }

    /// The first fire time strictly after `after`, in the expression's `CRON_TZ=` zone if
    /// it has one and otherwise in `after`'s zone. `None` when the expression never fires
    /// again (a year field in the past, or no match within 400 years) or the next fire
    /// would be past year 9999.
    ///
    /// ```
    /// use cano_core::cron::Cron;
    /// use cano_core::jiff::{Timestamp, tz::TimeZone};
    ///
    /// let cron = Cron::parse("0 0 29 2 *")?;
    /// let after = "2026-01-01T00:00:00Z".parse::<Timestamp>()?.to_zoned_datetime(TimeZone::UTC);
    /// assert_eq!(cron.next_after(&after).unwrap().to_string(), "2028-02-29T00:00:00+00:00[UTC]");
    /// // Strictly after: asking at a fire time gives the next one.
    /// let fire = cron.next_after(&after).unwrap();
    /// assert_eq!(cron.next_after(&fire).unwrap().to_string(), "2032-02-29T00:00:00+00:00[UTC]");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_after(&self, after: &ZonedDateTime) -> Option<ZonedDateTime> {
        let (tz, zone) = self.zone(after.time_zone());
        let next = self.job().next_after(zone, after.timestamp())?;
        Some(ZonedDateTime::new(next, tz.clone()))
    }

    /// The last fire time strictly before `before`, with the same zone rule as
    /// [`Cron::next_after`]. `None` when there is none within 400 years.
    ///
    /// ```
    /// use cano_core::cron::Cron;
    /// use cano_core::jiff::{Timestamp, tz::TimeZone};
    ///
    /// let cron = Cron::parse("0 9 * * MON-FRI")?;
    /// let monday = "2026-03-16T08:00:00Z".parse::<Timestamp>()?.to_zoned_datetime(TimeZone::UTC);
    /// assert_eq!(cron.prev_before(&monday).unwrap().to_string(), "2026-03-13T09:00:00+00:00[UTC]");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prev_before(&self, before: &ZonedDateTime) -> Option<ZonedDateTime> {
        let (tz, zone) = self.zone(before.time_zone());
        let prev = self.job().prev_before(zone, before.timestamp())?;
        Some(ZonedDateTime::new(prev, tz.clone()))
    }

    /// [`Cron::next_after`] on timestamps: the first fire strictly after `after`, evaluated
    /// in the `CRON_TZ=` zone if there is one and otherwise in `tz`. This is the fast path
    /// for a scheduler that keeps timestamps; it builds no [`ZonedDateTime`].
    ///
    /// ```
    /// use cano_core::cron::Cron;
    /// use cano_core::jiff::{Timestamp, tz::TimeZone};
    ///
    /// let cron = Cron::parse("0 */5 * * * *")?;
    /// let after: Timestamp = "2026-03-15T10:17:23Z".parse()?;
    /// let next = cron.next_after_timestamp(after, &TimeZone::UTC).unwrap();
    /// assert_eq!(next.to_string(), "2026-03-15T10:20:00Z");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_after_timestamp(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let (_, zone) = self.zone(tz);
        self.job().next_after(zone, after)
    }

    /// [`Cron::prev_before`] on timestamps, with the zone rule of
    /// [`Cron::next_after_timestamp`].
    pub fn prev_before_timestamp(&self, before: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let (_, zone) = self.zone(tz);
        self.job().prev_before(zone, before)
    }

    /// The fire times strictly after `after`, in increasing order (see
    /// [`Cron::next_after`] for the zone). The iterator ends when the expression stops
    /// firing.
    ///
    /// ```
    /// use cano_core::cron::Cron;
    /// use cano_core::jiff::{Timestamp, tz::TimeZone};
    ///
    /// let cron = Cron::parse("0 0 0 1 1 * 2027-2029")?;
    /// let after = "2026-06-01T00:00:00Z".parse::<Timestamp>()?.to_zoned_datetime(TimeZone::UTC);
    /// let years: Vec<i16> = cron.upcoming(&after).map(|z| z.year()).collect();
    /// assert_eq!(years, [2027, 2028, 2029]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn upcoming(&self, after: &ZonedDateTime) -> Upcoming<'_> {
        let (tz, zone) = self.zone(after.time_zone());
        Upcoming {
            cron: self,
            time_zone: tz.clone(),
            fixed_offset: zone.fixed_offset(),
            cursor: Some(after.timestamp()),
        }
    }

    /// The fire times strictly before `before`, in decreasing order (see
    /// [`Cron::prev_before`]).
    pub fn preceding(&self, before: &ZonedDateTime) -> Preceding<'_> {
        let (tz, zone) = self.zone(before.time_zone());
        Preceding {
            cron: self,
            time_zone: tz.clone(),
            fixed_offset: zone.fixed_offset(),
            cursor: Some(before.timestamp()),
        }
    }

    /// A short English description, e.g. `"at 09:30 on Monday through Friday"`.
    ///
    /// ```
    /// use cano_core::cron::Cron;
    ///
    /// assert_eq!(Cron::parse("30 9 * * MON-FRI")?.describe(), "at 09:30, Monday through Friday");
    /// assert_eq!(Cron::parse("*/15 * * * *")?.describe(), "every 15 minutes");
    /// assert_eq!(Cron::parse("0 0 L * *")?.describe(), "at 00:00, on the last day of the month");
    /// # Ok::<(), cano_core::cron::CronError>(())
    /// ```
    pub fn describe(&self) -> String {
        describe::describe(
            &self.fields,
            self.arity,
            self.time_zone.as_ref().map(|p| &*p.name),
        )
    }
}

impl PartialEq for Cron {
    fn eq(&self, other: &Cron) -> bool {
        self.fields == other.fields
            && self.is_fixed_time() == other.is_fixed_time()
            && self.time_zone() == other.time_zone()
    }
}

impl Eq for Cron {}

impl FromStr for Cron {
    type Err = CronError;

    /// [`Cron::parse`].
    fn from_str(expression: &str) -> Result<Cron, CronError> {
        Cron::parse(expression)
    }
}

/// The normalized expression: `CRON_TZ=` for any zone prefix, the field count as written
/// (aliases as 5 fields), weekdays as names, and each field in a canonical list form that
/// keeps its DST class. It parses back, with the same options, to an equal `Cron`.
impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        display::write(
            f,
            &self.fields,
            self.wild,
            self.arity,
            self.time_zone.as_ref().map(|prefix| &*prefix.name),
        )
    }
}

impl fmt::Debug for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Cron")
            .field(&format_args!("{self}"))
            .finish()
    }
}

/// The iterator of [`Cron::upcoming`].
#[derive(Clone, Debug)]
pub struct Upcoming<'a> {
    cron: &'a Cron,
    time_zone: TimeZone,
    fixed_offset: Option<i64>,
    cursor: Option<Timestamp>,
}

impl Iterator for Upcoming<'_> {
    type Item = ZonedDateTime;

    fn next(&mut self) -> Option<ZonedDateTime> {
        let zone = Zone::with_offset(&self.time_zone, self.fixed_offset);
        let next = self
            .cursor
            .and_then(|cursor| self.cron.job().next_after(zone, cursor));
        self.cursor = next;
        Some(ZonedDateTime::new(next?, self.time_zone.clone()))
    }
}

impl FusedIterator for Upcoming<'_> {}

/// The iterator of [`Cron::preceding`].
#[derive(Clone, Debug)]
pub struct Preceding<'a> {
    cron: &'a Cron,
    time_zone: TimeZone,
    fixed_offset: Option<i64>,
    cursor: Option<Timestamp>,
}

impl Iterator for Preceding<'_> {
    type Item = ZonedDateTime;

    fn next(&mut self) -> Option<ZonedDateTime> {
        let zone = Zone::with_offset(&self.time_zone, self.fixed_offset);
        let prev = self
            .cursor
            .and_then(|cursor| self.cron.job().prev_before(zone, cursor));
        self.cursor = prev;
        Some(ZonedDateTime::new(prev?, self.time_zone.clone()))
    }
}

impl FusedIterator for Preceding<'_> {}
