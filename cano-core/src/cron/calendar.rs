//! Proleptic Gregorian calendar arithmetic on "local seconds": the civil date and time of a
//! zone written as seconds since 1970-01-01T00:00:00 *as if it were UTC*.
//!
//! The search works on civil fields and touches a time zone only at its edges, so these
//! conversions are the hot path; they are integer-only (Howard Hinnant's `days_from_civil`
//! and `civil_from_days`) and never allocate.

/// The smallest year a search visits (jiff's `Timestamp` starts in year -9999).
pub(crate) const MIN_YEAR: i32 = -9998;
/// The largest year a search visits (jiff's `Timestamp` ends in year 9999).
pub(crate) const MAX_YEAR: i32 = 9998;

pub(crate) const SECONDS_PER_DAY: i64 = 86_400;

/// A civil date and time, to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Civil {
    pub(crate) year: i32,
    pub(crate) month: u32,
    pub(crate) day: u32,
    pub(crate) hour: u32,
    pub(crate) minute: u32,
    pub(crate) second: u32,
}

impl Civil {
    /// The civil fields of `local` seconds.
    pub(crate) fn from_local_seconds(local: i64) -> Civil {
        let days = local.div_euclid(SECONDS_PER_DAY);
        let secs = local.rem_euclid(SECONDS_PER_DAY) as u32;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
        }
    }

    /// These fields as local seconds.
    pub(crate) fn to_local_seconds(self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * SECONDS_PER_DAY
            + i64::from(self.hour * 3600 + self.minute * 60 + self.second)
    }
}

/// How many 400-year eras the day arithmetic shifts by, so that every year a search visits
/// (and a margin either side) is positive and the divisions are unsigned: the years -32800
/// to 32799 work, the search needs -9999 to 9999.
const ERAS_SHIFT: u32 = 82;
/// Day 0 of the shifted count is 1970-01-01 plus this (719 468 days from 0000-03-01 to
/// 1970-01-01, plus the shift).
pub(crate) const DAYS_SHIFT: u32 = 719_468 + 146_097 * ERAS_SHIFT;
const YEARS_SHIFT: u32 = 400 * ERAS_SHIFT;

/// Days since 1970-01-01 of a valid civil date (year -32800 to 32799).
///
/// Neri and Schneider's algorithm ("Euclidean affine functions and their application to
/// calendar algorithms", 2022): unsigned arithmetic on a year that starts in March, so
/// that the leap day is the last day of the year, and no division by a non-power of two
/// except by constants.
#[inline]
pub(crate) fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let before_march = month <= 2;
    let year = (year as u32)
        .wrapping_add(YEARS_SHIFT)
        .wrapping_sub(u32::from(before_march));
    let month = if before_march { month + 12 } else { month };
    let century = year / 100;
    let days_before_year = 1461 * year / 4 - century + century / 4;
    let days_before_month = (979 * month - 2919) / 32;
    i64::from(days_before_year + days_before_month + day - 1) - i64::from(DAYS_SHIFT)
}

/// The civil date `days` after 1970-01-01 (for days within years -32800 to 32799).
///
/// Neri and Schneider's algorithm, as [`days_from_civil`].
#[inline]
pub(crate) fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let shifted = (days as u32).wrapping_add(DAYS_SHIFT);
    // Centuries, then years within the century, then the day within the year.
    let n1 = 4 * shifted + 3;
    let century = n1 / 146_097;
    let day_of_century = n1 % 146_097 / 4;
    let n2 = u64::from(4 * day_of_century + 3) * 2_939_745;
    let year_of_century = (n2 >> 32) as u32;
    let day_of_year = (n2 as u32) / 2_939_745 / 4;
    // Months from March: month and day with one multiplication.
    let n3 = 2141 * day_of_year + 197_913;
    let month = n3 / 65_536;
    let day = n3 % 65_536 / 2141 + 1;
    let january_or_february = day_of_year >= 306;
    let year = (100 * century + year_of_century) as i32 - YEARS_SHIFT as i32
        + i32::from(january_or_february);
    let month = if january_or_february {
        month - 12
    } else {
        month
    };
    (year, month, day)
}

#[inline]
pub(crate) fn is_leap_year(year: i32) -> bool {
    // `year % 100 != 0` is `year % 25 != 0` once `year % 4 == 0`, and `% 400` is then `% 16`.
    // Shifted by whole eras, which keeps leap years leap, the remainder is unsigned (cheaper).
    let year = (year as u32).wrapping_add(YEARS_SHIFT);
    year & 3 == 0 && (!year.is_multiple_of(25) || year & 15 == 0)
}

#[inline]
pub(crate) fn days_in_month(year: i32, month: u32) -> u32 {
    month_length(is_leap_year(year), month)
}

/// The length of `month` in a leap year or a common one.
#[inline]
pub(crate) fn month_length(leap: bool, month: u32) -> u32 {
    if month == 2 {
        28 + u32::from(leap)
    } else {
        // 30 for April, June, September and November; 31 otherwise.
        30 | (month ^ (month >> 3))
    }
}

/// The most days `month` ever has (29 for February).
pub(crate) fn max_days_in_month(month: u32) -> u32 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The weekday of a civil date, 0 = Sunday … 6 = Saturday.
pub(crate) fn weekday(year: i32, month: u32, day: u32) -> u32 {
    // 1970-01-01 was a Thursday.
    (days_from_civil(year, month, day) + 4).rem_euclid(7) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_across_eras_and_leap_days() {
        for days in (-4_000_000..4_000_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m));
            assert!(d >= 1 && d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    /// Every day of every year a search can visit, one after the other: the conversion
    /// round-trips, and consecutive day numbers are consecutive dates.
    #[test]
    fn every_day_of_years_minus_9999_to_9999_converts_both_ways() {
        let first = days_from_civil(-9999, 1, 1);
        let last = days_from_civil(9999, 12, 31);
        let mut previous = civil_from_days(first - 1);
        assert_eq!(previous, (-10000, 12, 31));
        for days in first..=last {
            let (y, m, d) = civil_from_days(days);
            let (py, pm, pd) = previous;
            let expected = if pd < days_in_month(py, pm) {
                (py, pm, pd + 1)
            } else if pm < 12 {
                (py, pm + 1, 1)
            } else {
                (py + 1, 1, 1)
            };
            assert_eq!((y, m, d), expected, "day {days}");
            assert_eq!(days_from_civil(y, m, d), days);
            previous = (y, m, d);
        }
        assert_eq!(previous, (9999, 12, 31));
        for days in (first..=last).step_by(9_973) {
            let (y, m, d) = civil_from_days(days);
            let jiff = jiff::civil::date(y as i16, m as i8, d as i8);
            let since_epoch = jiff.since(jiff::civil::date(1970, 1, 1)).unwrap();
            assert_eq!(i64::from(since_epoch.get_days()), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn month_lengths_and_leap_years_agree_with_jiff() {
        for year in [1900, 1970, 2000, 2023, 2024, 2100, 2400, -4, -100, -400] {
            assert_eq!(
                is_leap_year(year),
                jiff::civil::date(year as i16, 1, 1).in_leap_year()
            );
            for month in 1..=12 {
                let jiff_length = jiff::civil::date(year as i16, month as i8, 1).days_in_month();
                assert_eq!(
                    days_in_month(year, month),
                    jiff_length as u32,
                    "{year}-{month}"
                );
                assert!(days_in_month(year, month) <= max_days_in_month(month));
            }
        }
    }

    #[test]
    fn agrees_with_jiff() {
        use jiff::civil::date;
        for (y, m, d) in [
            (2024, 2, 29),
            (1900, 3, 1),
            (-44, 3, 15),
            (9999, 12, 31),
            (1, 1, 1),
        ] {
            let ours = Civil::from_local_seconds(days_from_civil(y, m, d) * SECONDS_PER_DAY + 3723);
            let jd = date(y as i16, m as i8, d as i8);
            assert_eq!((ours.year, ours.month, ours.day), (y, m, d));
            assert_eq!((ours.hour, ours.minute, ours.second), (1, 2, 3));
            assert_eq!(
                weekday(y, m, d),
                jd.weekday().to_sunday_zero_offset() as u32
            );
            assert_eq!(days_in_month(y, m), jd.days_in_month() as u32);
        }
    }
}
