//! [`CronOptions`]: the dialect switches (weekday numbering, day-of-month with day-of-week).

/// How numeric weekdays are read. Names (`SUN`–`SAT`) mean the same under both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WeekdayNumbering {
    /// POSIX/Vixie cron: `0`–`7`, where `0` and `7` are Sunday and `1` is Monday.
    #[default]
    Posix,
    /// Quartz, the `cron` crate and cano 0.12: `1`–`7`, where `1` is Sunday and `7` is
    /// Saturday; `0` is rejected.
    Quartz,
}

/// How a day is chosen when *both* day-of-month and day-of-week are restricted (neither is
/// `*` nor `?`). When only one is restricted, it alone decides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DayMatching {
    /// Vixie/POSIX cron: a day fires if it matches *either* field.
    #[default]
    Either,
    /// Quartz, the `cron` crate and cano 0.12: a day fires only if it matches *both*.
    Both,
}

/// Dialect options for [`Cron::parse_with`](super::Cron::parse_with).
///
/// The default is POSIX/Vixie cron: weekdays `0`–`7` with Sunday `0` or `7`, and
/// day-of-month OR day-of-week. [`CronOptions::quartz`] gives the meaning cano 0.12 (which
/// used the `cron` crate) gave the same text.
///
/// ```
/// use cano_core::cron::{CronOptions, DayMatching, WeekdayNumbering};
///
/// let options = CronOptions::new().with_weekday_numbering(WeekdayNumbering::Quartz);
/// assert_eq!(options.weekday_numbering(), WeekdayNumbering::Quartz);
/// assert_eq!(options.day_matching(), DayMatching::Either);
/// assert_eq!(
///     CronOptions::quartz(),
///     options.with_day_matching(DayMatching::Both)
/// );
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CronOptions {
    weekday_numbering: WeekdayNumbering,
    day_matching: DayMatching,
}

impl CronOptions {
    /// POSIX/Vixie cron: [`WeekdayNumbering::Posix`] and [`DayMatching::Either`].
    pub const fn new() -> CronOptions {
        CronOptions {
            weekday_numbering: WeekdayNumbering::Posix,
            day_matching: DayMatching::Either,
        }
    }

    /// Quartz, the `cron` crate and cano 0.12: [`WeekdayNumbering::Quartz`] and
    /// [`DayMatching::Both`]. Every expression cano 0.12 accepted keeps its meaning.
    pub const fn quartz() -> CronOptions {
        CronOptions {
            weekday_numbering: WeekdayNumbering::Quartz,
            day_matching: DayMatching::Both,
        }
    }

    /// These options with `numbering` for numeric weekdays.
    pub const fn with_weekday_numbering(self, numbering: WeekdayNumbering) -> CronOptions {
        CronOptions {
            weekday_numbering: numbering,
            ..self
        }
    }

    /// These options with `matching` for day-of-month with day-of-week.
    pub const fn with_day_matching(self, matching: DayMatching) -> CronOptions {
        CronOptions {
            day_matching: matching,
            ..self
        }
    }

    /// How numeric weekdays are read.
    pub const fn weekday_numbering(&self) -> WeekdayNumbering {
        self.weekday_numbering
    }

    /// How day-of-month and day-of-week combine when both are restricted.
    pub const fn day_matching(&self) -> DayMatching {
        self.day_matching
    }
}
