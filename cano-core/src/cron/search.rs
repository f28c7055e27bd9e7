//! The civil search: the first (or last) civil second the fields match, at or after (or
//! before) a civil second. No time zone here; see `zone` for how civil times become
//! instants.
//!
//! The search jumps with bit scans rather than stepping, so one call visits at most a few
//! months in the common case. It is bounded to [`SEARCH_YEARS`] years: the Gregorian
//! calendar repeats every 400 years, so a pattern with no match in that window has none at
//! all, and an impossible pattern costs at most one pass over that window.

use super::calendar::{Civil, MAX_YEAR, MIN_YEAR, SECONDS_PER_DAY};
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
    pub(crate) fn next_at_or_after(&self, from: i64) -> Option<i64> {
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
