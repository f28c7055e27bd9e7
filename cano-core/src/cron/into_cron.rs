//! [`IntoCron`]: what [`Scheduler::cron`](crate::scheduler::Scheduler::cron) accepts.

use alloc::string::String;

use super::{Cron, CronError, CronOptions};

/// A cron schedule, or text that parses into one: what
/// [`Scheduler::cron`](crate::scheduler::Scheduler::cron) accepts.
///
/// * `&str` and `String` parse in cano's default dialect ([`CronOptions::new`]: POSIX
///   weekday numbers, day-of-month OR day-of-week);
/// * `(expression, options)` parses in the dialect `options` picks: with
///   [`CronOptions::quartz`] an expression written for cano 0.12 keeps its meaning;
/// * a [`Cron`] (or `&Cron`) parsed beforehand is used as it is.
///
/// ```
/// use cano_core::cron::{Cron, CronOptions, IntoCron};
///
/// let posix = "0 0 9 * * 1".into_cron()?; // Mondays
/// let quartz = ("0 0 9 * * 2", CronOptions::quartz()).into_cron()?; // Mondays too
/// assert_eq!(posix, Cron::parse("0 0 9 * * MON")?);
/// assert_eq!(quartz.to_string(), "0 0 9 * * MON");
/// # Ok::<(), cano_core::cron::CronError>(())
/// ```
pub trait IntoCron {
    /// The parsed schedule.
    ///
    /// # Errors
    ///
    /// The [`CronError`] of an expression that does not parse.
    fn into_cron(self) -> Result<Cron, CronError>;
}

impl IntoCron for Cron {
    fn into_cron(self) -> Result<Cron, CronError> {
        Ok(self)
    }
}

impl IntoCron for &Cron {
    fn into_cron(self) -> Result<Cron, CronError> {
        Ok(self.clone())
    }
}

impl IntoCron for &str {
    fn into_cron(self) -> Result<Cron, CronError> {
        Cron::parse(self)
    }
}

impl IntoCron for String {
    fn into_cron(self) -> Result<Cron, CronError> {
        Cron::parse(&self)
    }
}

impl IntoCron for &String {
    fn into_cron(self) -> Result<Cron, CronError> {
        Cron::parse(self)
    }
}

impl IntoCron for (&str, CronOptions) {
    fn into_cron(self) -> Result<Cron, CronError> {
        Cron::parse_with(self.0, self.1)
    }
}

impl IntoCron for (String, CronOptions) {
    fn into_cron(self) -> Result<Cron, CronError> {
        Cron::parse_with(&self.0, self.1)
    }
}
