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

/// Days since 1970-01-01 of a valid civil date.
pub(crate) fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date `days` after 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year as i32, month, day)
}

#[inline]
pub(crate) fn is_leap_year(year: i32) -> bool {
    // `year % 100 != 0` is `year % 25 != 0` once `year % 4 == 0`, and `% 400` is then `% 16`.
    year & 3 == 0 && (year % 25 != 0 || year & 15 == 0)
}

#[inline]
pub(crate) fn days_in_month(year: i32, month: u32) -> u32 {
    if month == 2 {
        28 + u32::from(is_leap_year(year))
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
