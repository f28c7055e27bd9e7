//! The civil search: the first (or last) civil second the fields match, at or after (or
//! before) a civil second. No time zone here; see `zone` for how civil times become
//! instants.
//!
//! The search jumps with bit scans rather than stepping, so one call visits at most a few
//! months in the common case. It is bounded to [`SEARCH_YEARS`] years: the Gregorian
//! calendar repeats every 400 years, so a pattern with no match in that window has none at
//! all, and an impossible pattern costs at most one pass over that window.

use super::calendar::{
    Civil, DAYS_SHIFT, MAX_YEAR, MIN_YEAR, SECONDS_PER_DAY, civil_from_days, days_from_civil,
    is_leap_year, month_length,
};
use super::fields::{Fields, first_bit, last_bit, next_bit, prev_bit};

/// How far a search looks: one full Gregorian cycle.
pub(crate) const SEARCH_YEARS: i32 = 400;

impl Fields {
    /// The first matching time of day at or after `h:m:s`, the same day.
    #[inline]
    fn next_time(&self, h: u32, m: u32, s: u32) -> Option<(u32, u32, u32)> {
        if self.hours >> h & 1 == 1 {
            if self.minutes >> m & 1 == 1
                && let Some(s) = next_bit(self.seconds, s)
            {
                return Some((h, m, s));
            }
            if let Some(m) = next_bit(self.minutes, m + 1) {
                return Some((h, m, first_bit(self.seconds)));
            }
        }
        let h = next_bit(u64::from(self.hours), h + 1)?;
        Some((h, first_bit(self.minutes), first_bit(self.seconds)))
    }

    /// The last matching time of day at or before `h:m:s`, the same day.
    #[inline]
    fn prev_time(&self, h: u32, m: u32, s: u32) -> Option<(u32, u32, u32)> {
        if self.hours >> h & 1 == 1 {
            if self.minutes >> m & 1 == 1
                && let Some(s) = prev_bit(self.seconds, s)
            {
                return Some((h, m, s));
            }
            if m > 0
                && let Some(m) = prev_bit(self.minutes, m - 1)
            {
                return Some((h, m, last_bit(self.seconds)));
            }
        }
        if h == 0 {
            return None;
        }
        let h = prev_bit(u64::from(self.hours), h - 1)?;
        Some((h, last_bit(self.minutes), last_bit(self.seconds)))
    }

    fn first_time(&self) -> (u32, u32, u32) {
        (
            first_bit(u64::from(self.hours)),
            first_bit(self.minutes),
            first_bit(self.seconds),
        )
    }

    fn last_time(&self) -> (u32, u32, u32) {
        (
            last_bit(u64::from(self.hours)),
            last_bit(self.minutes),
            last_bit(self.seconds),
        )
    }

    /// The first matching civil second at or after `from` (local seconds), looking at most
    /// [`SEARCH_YEARS`] years ahead.
    ///
    /// It works on day numbers: the day of the first of each month it visits is the day of
    /// the year's first plus a table, so the calendar is converted once on the way in and
    /// never on the way out, and a leap-day-only expression jumps from leap year to leap
    /// year.
    pub(crate) fn next_at_or_after(&self, from: i64) -> Option<i64> {
        if self.weekly != 0 {
            return Some(self.next_weekly(from));
        }
        let (today, seconds) = split_seconds(from);
        let (h, m, s) = split_day(seconds);
        let (year, month, day) = civil_from_days(today);
        if year > MAX_YEAR {
            return None;
        }
        let first_of_month = today - i64::from(day - 1);
        let leap = is_leap_year(year);
        let fires_this_year = self.year_allowed(year) && (leap || !self.leap_years_only);
        let this_month = if fires_this_year && self.months >> month & 1 == 1 {
            self.day_mask_with(month_length(leap, month), || weekday_of(first_of_month))
        } else {
            0
        };
        if this_month >> day & 1 == 1
            && let Some(time) = self.next_time(h, m, s)
        {
            return Some(today * SECONDS_PER_DAY + seconds_of_day(time));
        }
        let later_this_month = this_month & !((2u64 << day) - 1) as u32;
        let fire_day = if later_this_month != 0 {
            first_of_month + i64::from(later_this_month.trailing_zeros() - 1)
        } else {
            let from_month = if fires_this_year { month + 1 } else { 13 };
            self.first_day_from_month(
                year,
                from_month,
                leap,
                first_of_month - days_before_month(leap, month),
            )?
        };
        Some(fire_day * SECONDS_PER_DAY + seconds_of_day(self.first_time()))
    }

    /// The day number of the first day on which the expression fires, from the first of
    /// `from_month` (13: the next year) of `year` (a leap year if `leap`), whose January 1
    /// is day `first_of_year`.
    #[inline]
    fn first_day_from_month(
        &self,
        mut year: i32,
        from_month: u32,
        mut leap: bool,
        mut first_of_year: i64,
    ) -> Option<i64> {
        let last_year = year.saturating_add(SEARCH_YEARS).min(MAX_YEAR);
        let mut from_month = from_month;
        loop {
            let mut months = u32::from(self.months) >> from_month << from_month;
            while months != 0 {
                let month = months.trailing_zeros();
                months &= months - 1;
                let first = first_of_year + days_before_month(leap, month);
                let days = self.day_mask_with(month_length(leap, month), || weekday_of(first));
                if days != 0 {
                    return Some(first + i64::from(days.trailing_zeros() - 1));
                }
            }
            // The next year that may hold a fire.
            let mut next = year + 1;
            let next_leap = loop {
                next = self.next_year(next)?;
                if next > last_year {
                    return None;
                }
                let next_leap = is_leap_year(next);
                if next_leap || !self.leap_years_only {
                    break next_leap;
                }
                next = next_year_divisible_by_4(next);
            };
            first_of_year = if next == year + 1 {
                first_of_year + 365 + i64::from(leap)
            } else {
                days_from_civil(next, 1, 1)
            };
            year = next;
            leap = next_leap;
            from_month = 1;
        }
    }

    /// The last matching civil second at or before `from` (local seconds), looking at most
    /// [`SEARCH_YEARS`] years back.
    pub(crate) fn prev_at_or_before(&self, from: i64) -> Option<i64> {
        if self.weekly != 0 {
            return Some(self.prev_weekly(from));
        }
        let start = Civil::from_local_seconds(from);
        let first_year = start.year.saturating_sub(SEARCH_YEARS).max(MIN_YEAR);
        let (mut year, mut month, mut day) = (start.year, start.month, start.day);
        let (mut h, mut m, mut s) = (start.hour, start.minute, start.second);
        loop {
            if !self.year_allowed(year) {
                year = self.prev_year(year - 1)?;
                (month, day, h, m, s) = (12, 31, 23, 59, 59);
            }
            if year < first_year {
                return None;
            }
            match prev_bit(u64::from(self.months), month) {
                None => {
                    (year, month, day, h, m, s) = (year - 1, 12, 31, 23, 59, 59);
                    continue;
                }
                Some(found) if found != month => (month, day, h, m, s) = (found, 31, 23, 59, 59),
                Some(_) => {}
            }
            let days = u64::from(self.day_mask(year, month));
            if let Some(found) = prev_bit(days, day) {
                let time = if found == day {
                    match self.prev_time(h, m, s) {
                        Some(time) => Some((found, time)),
                        None => prev_bit(days, day - 1).map(|d| (d, self.last_time())),
                    }
                } else {
                    Some((found, self.last_time()))
                };
                if let Some((day, (h, m, s))) = time {
                    return Some(civil(year, month, day, h, m, s));
                }
            }
            if month == 1 {
                (year, month, day, h, m, s) = (year - 1, 12, 31, 23, 59, 59);
            } else {
                (month, day, h, m, s) = (month - 1, 31, 23, 59, 59);
            }
        }
    }
}

#[cfg(test)]
impl Fields {
    /// The search before day numbers: the oracle the tests compare with.
    #[cfg(test)]
    pub(crate) fn next_at_or_after_month_by_month(&self, from: i64) -> Option<i64> {
        if self.weekly != 0 {
            return Some(self.next_weekly(from));
        }
        let start = Civil::from_local_seconds(from);
        let last_year = start.year.saturating_add(SEARCH_YEARS).min(MAX_YEAR);
        let (mut year, mut month, mut day) = (start.year, start.month, start.day);
        let (mut h, mut m, mut s) = (start.hour, start.minute, start.second);
        loop {
            if !self.year_allowed(year) {
                year = self.next_year(year + 1)?;
                (month, day, h, m, s) = (1, 1, 0, 0, 0);
            }
            if year > last_year {
                return None;
            }
            match next_bit(u64::from(self.months), month) {
                None => {
                    (year, month, day, h, m, s) = (year + 1, 1, 1, 0, 0, 0);
                    continue;
                }
                Some(found) if found != month => (month, day, h, m, s) = (found, 1, 0, 0, 0),
                Some(_) => {}
            }
            let days = u64::from(self.day_mask(year, month));
            if let Some(found) = next_bit(days, day) {
                let time = if found == day {
                    match self.next_time(h, m, s) {
                        Some(time) => Some((found, time)),
                        None => next_bit(days, day + 1).map(|d| (d, self.first_time())),
                    }
                } else {
                    Some((found, self.first_time()))
                };
                if let Some((day, (h, m, s))) = time {
                    return Some(civil(year, month, day, h, m, s));
                }
            }
            (month, day, h, m, s) = (month + 1, 1, 0, 0, 0);
        }
    }
}

impl Fields {
    /// [`Fields::next_at_or_after`] when only the weekday matters: no calendar at all.
    #[inline]
    fn next_weekly(&self, from: i64) -> i64 {
        let day = from.div_euclid(SECONDS_PER_DAY);
        let (h, m, s) = split_day(from.rem_euclid(SECONDS_PER_DAY));
        let weekday = (day + 4).rem_euclid(7) as u32;
        if self.weekly >> weekday & 1 == 1
            && let Some(time) = self.next_time(h, m, s)
        {
            return day * SECONDS_PER_DAY + seconds_of_day(time);
        }
        // The next matching weekday, 1 to 7 days on.
        let fortnight = u32::from(self.weekly) | u32::from(self.weekly) << 7;
        let ahead = (fortnight >> (weekday + 1)).trailing_zeros() + 1;
        (day + i64::from(ahead)) * SECONDS_PER_DAY + seconds_of_day(self.first_time())
    }

    /// [`Fields::prev_at_or_before`] when only the weekday matters.
    #[inline]
    fn prev_weekly(&self, from: i64) -> i64 {
        let day = from.div_euclid(SECONDS_PER_DAY);
        let (h, m, s) = split_day(from.rem_euclid(SECONDS_PER_DAY));
        let weekday = (day + 4).rem_euclid(7) as u32;
        if self.weekly >> weekday & 1 == 1
            && let Some(time) = self.prev_time(h, m, s)
        {
            return day * SECONDS_PER_DAY + seconds_of_day(time);
        }
        // The previous matching weekday, 1 to 7 days back.
        let fortnight = u32::from(self.weekly) | u32::from(self.weekly) << 7;
        let before_today = fortnight & ((1 << (weekday + 7)) - 1);
        let back = weekday + 7 - (31 - before_today.leading_zeros());
        (day - i64::from(back)) * SECONDS_PER_DAY + seconds_of_day(self.last_time())
    }
}

/// Days from January 1 to the first of `month` (1–12).
#[inline]
fn days_before_month(leap: bool, month: u32) -> i64 {
    let days = if month > 2 {
        // Neri and Schneider's month-from-March formula, plus January and February.
        59 + u32::from(leap) + (979 * month - 2919) / 32
    } else {
        31 * (month - 1)
    };
    i64::from(days)
}

/// The weekday of a day number, 0 = Sunday (1970-01-01 was a Thursday).
#[inline]
fn weekday_of(day: i64) -> u32 {
    (day + 4).rem_euclid(7) as u32
}

/// The first year after `year` divisible by 4 (the first leap year after it, unless that
/// is a century year the Gregorian rule skips; the caller checks).
fn next_year_divisible_by_4(year: i32) -> i32 {
    (year + 4) & !3
}

/// `local` seconds as a day number and the seconds into that day: `div_euclid` and
/// `rem_euclid` by a day, unsigned (cheaper) for every instant jiff can represent.
#[inline]
fn split_seconds(local: i64) -> (i64, i64) {
    const SHIFT: i64 = DAYS_SHIFT as i64 * SECONDS_PER_DAY;
    match local.checked_add(SHIFT) {
        Some(shifted) if shifted >= 0 => {
            let shifted = shifted as u64;
            let day = (shifted / SECONDS_PER_DAY as u64) as i64 - DAYS_SHIFT as i64;
            (day, (shifted % SECONDS_PER_DAY as u64) as i64)
        }
        _ => (
            local.div_euclid(SECONDS_PER_DAY),
            local.rem_euclid(SECONDS_PER_DAY),
        ),
    }
}

fn split_day(seconds: i64) -> (u32, u32, u32) {
    let seconds = seconds as u32;
    (seconds / 3600, seconds / 60 % 60, seconds % 60)
}

fn seconds_of_day((h, m, s): (u32, u32, u32)) -> i64 {
    i64::from(h * 3600 + m * 60 + s)
}

fn civil(year: i32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> i64 {
    Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
    }
    .to_local_seconds()
}

#[cfg(test)]
mod tests {
    use alloc::format;
    use alloc::string::String;

    use super::super::calendar::days_from_civil;
    use super::super::{Cron, CronOptions, DayMatching, WeekdayNumbering};
    use super::SECONDS_PER_DAY;
    use crate::random::{RandomSource, SplitMix64};

    fn below(rng: &mut SplitMix64, n: u64) -> u64 {
        rng.next_u64() % n
    }

    fn pick<'a>(rng: &mut SplitMix64, items: &[&'a str]) -> &'a str {
        items[below(rng, items.len() as u64) as usize]
    }

    /// Random expressions weighted towards sparse days: leap days, month ends, days with
    /// weekdays (OR and AND), `L`/`W`/`#`, and year fields.
    fn sparse_expression(rng: &mut SplitMix64) -> String {
        let second = pick(rng, &["0", "0", "30", "*/20", "5,59"]);
        let minute = pick(rng, &["0", "30", "*/15", "59", "0-5"]);
        let hour = pick(rng, &["0", "9", "23", "*/6", "1-3"]);
        let day = pick(
            rng,
            &[
                "29", "29", "30", "31", "1-7", "8-14", "28-31", "1", "15", "*", "L", "15W", "LW",
                "L-2", "29,31", "?", "1W", "31W",
            ],
        );
        let month = pick(
            rng,
            &[
                "2", "2", "FEB", "*", "2,4", "4,6,9,11", "1,7", "12", "*/5", "3-5", "1,2",
            ],
        );
        let weekday = pick(
            rng,
            &[
                "*", "*", "MON", "FRI", "SUN", "SAT,SUN", "MON-FRI", "?", "MON#1", "FRI#5", "5L",
                "SUN#2", "TUE,THU",
            ],
        );
        let year = pick(
            rng,
            &[
                "",
                "",
                "",
                " 2028",
                " 2031-2099",
                " 1970-2099/4",
                " 2100-2099",
            ],
        );
        format!("{second} {minute} {hour} {day} {month} {weekday}{year}")
    }

    /// A start in years 1600–2600 (and now and then near year 9999), at any second.
    fn start(rng: &mut SplitMix64) -> i64 {
        let year = if below(rng, 20) == 0 {
            9990 + below(rng, 10) as i32
        } else {
            1600 + below(rng, 1000) as i32
        };
        let day = days_from_civil(year, 1, 1) + below(rng, 366) as i64;
        day * SECONDS_PER_DAY + below(rng, SECONDS_PER_DAY as u64) as i64
    }

    /// The day-number search agrees with the month-by-month search it replaced on every
    /// expression shape, in both day-matching modes and both weekday numberings.
    #[test]
    fn next_agrees_with_the_month_by_month_search() {
        let mut rng = SplitMix64::new(0x5ea2_c429);
        let mut compared = 0;
        let mut fired = 0;
        for _ in 0..4000 {
            let expression = sparse_expression(&mut rng);
            let options = CronOptions::new()
                .with_day_matching(if below(&mut rng, 2) == 0 {
                    DayMatching::Either
                } else {
                    DayMatching::Both
                })
                .with_weekday_numbering(if below(&mut rng, 2) == 0 {
                    WeekdayNumbering::Posix
                } else {
                    WeekdayNumbering::Quartz
                });
            let Ok(cron) = Cron::parse_with(&expression, options) else {
                continue;
            };
            for _ in 0..8 {
                let mut at = start(&mut rng);
                // Follow a few consecutive fires, so starts on and just after fires count.
                for _ in 0..3 {
                    let expected = cron.fields.next_at_or_after_month_by_month(at);
                    assert_eq!(
                        cron.fields.next_at_or_after(at),
                        expected,
                        "{expression} ({options:?}) from {at}"
                    );
                    compared += 1;
                    match expected {
                        Some(next) => {
                            fired += 1;
                            at = next + below(&mut rng, 2) as i64;
                        }
                        None => break,
                    }
                }
            }
        }
        assert!(compared > 50_000, "only {compared} comparisons");
        assert!(fired > compared / 2, "only {fired} of {compared} fired");
    }

    #[test]
    fn days_before_each_month_match_the_calendar() {
        for year in [2023, 2024, 1900, 2000, -1, -4] {
            let leap = super::is_leap_year(year);
            for month in 1..=12 {
                assert_eq!(
                    super::days_before_month(leap, month),
                    days_from_civil(year, month, 1) - days_from_civil(year, 1, 1),
                    "{year}-{month}"
                );
            }
        }
    }

    #[test]
    fn leap_day_expressions_are_known_to_need_leap_years() {
        let leap_only =
            |e: &str, options| Cron::parse_with(e, options).unwrap().fields.leap_years_only;
        assert!(leap_only("0 0 29 2 *", CronOptions::new()));
        assert!(leap_only("0 0 29 FEB MON", CronOptions::quartz()));
        assert!(!leap_only("0 0 29 FEB MON", CronOptions::new()));
        assert!(!leap_only("0 0 28,29 2 *", CronOptions::new()));
        assert!(!leap_only("0 0 29 2,3 *", CronOptions::new()));
        assert!(!leap_only("0 0 L 2 *", CronOptions::new()));
        assert!(!leap_only("0 0 * 2 *", CronOptions::new()));
    }
}
