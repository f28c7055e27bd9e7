//! The compiled form of an expression: one bitset per field, plus the day-of-month and
//! day-of-week modifiers (`L`, `W`, `#`), and the per-month day mask built from them.

use super::calendar::{days_in_month, weekday};

/// The first year a year field may name.
pub(crate) const FIRST_YEAR: i32 = 1970;
/// The last year a year field may name.
pub(crate) const LAST_YEAR: i32 = 2099;

/// A 192-bit set: wide enough for the 130 years 1970–2099 (bit `y - 1970`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct WideBits(pub(crate) [u64; 3]);

impl WideBits {
    /// Bits `low, low + step, …` up to `high` (all below 192).
    pub(crate) fn range(low: u32, high: u32, step: u32) -> WideBits {
        let mut bits = WideBits::default();
        if step == 1 {
            for (index, word) in bits.0.iter_mut().enumerate() {
                let first = index as u32 * 64;
                if high < first || low >= first + 64 {
                    continue;
                }
                let from = low.saturating_sub(first);
                let to = (high - first).min(63);
                *word = (u64::MAX >> (63 - to)) & (u64::MAX << from);
            }
            return bits;
        }
        let mut value = low;
        while value <= high {
            bits.0[value as usize / 64] |= 1 << (value % 64);
            value += step;
        }
        bits
    }

    pub(crate) fn union(self, other: WideBits) -> WideBits {
        WideBits([
            self.0[0] | other.0[0],
            self.0[1] | other.0[1],
            self.0[2] | other.0[2],
        ])
    }

    pub(crate) fn contains(&self, bit: u32) -> bool {
        bit < 192 && self.0[bit as usize / 64] >> (bit % 64) & 1 == 1
    }

    /// The first set bit at or after `from`.
    pub(crate) fn next_set(&self, from: u32) -> Option<u32> {
        (from / 64..3).find_map(|index| {
            let start = if index == from / 64 { from % 64 } else { 0 };
            next_bit(self.0[index as usize], start).map(|bit| index * 64 + bit)
        })
    }

    /// The last set bit at or before `upto`.
    pub(crate) fn prev_set(&self, upto: u32) -> Option<u32> {
        let upto = upto.min(191);
        (0..=upto / 64).rev().find_map(|index| {
            let end = if index == upto / 64 { upto % 64 } else { 63 };
            prev_bit(self.0[index as usize], end).map(|bit| index * 64 + bit)
        })
    }
}

/// How a day is chosen, decided once at parse time from which day fields are restricted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum DayRule {
    /// Neither day-of-month nor day-of-week is restricted: every day.
    Every,
    /// Only day-of-month is restricted.
    MonthDays,
    /// Only day-of-week is restricted.
    Weekdays,
    /// Both are restricted; a day matching either fires (Vixie/POSIX).
    Either,
    /// Both are restricted; a day must match both (Quartz, `cron`).
    Both,
}

/// Bitsets for every field. Bit `n` stands for value `n` (years: bit `y - 1970`; weekdays:
/// bit 0 is Sunday whatever numbering the expression used).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Fields {
    pub(crate) seconds: u64,
    pub(crate) minutes: u64,
    pub(crate) hours: u32,
    /// Plain days of the month, bits 1–31.
    pub(crate) days: u32,
    /// `L-n`: bit `n` for "n days before the last day" (`L` is bit 0).
    pub(crate) days_before_last: u32,
    /// `nW`: bit `n` for "the weekday nearest to day n".
    pub(crate) nearest_weekdays: u32,
    /// `LW`: the last weekday (Monday–Friday) of the month.
    pub(crate) last_weekday_of_month: bool,
    /// Months, bits 1–12.
    pub(crate) months: u16,
    /// Plain weekdays, bits 0–6.
    pub(crate) weekdays: u8,
    /// `d#n`: bit `7 * (n - 1) + d`.
    pub(crate) nth_weekdays: u64,
    /// `dL`: bit `d` for "the last weekday d of the month".
    pub(crate) last_weekdays: u8,
    /// Years 1970–2099, bit `y - 1970`; `None` means every year.
    pub(crate) years: Option<WideBits>,
    pub(crate) day_rule: DayRule,
    /// When whether a day fires depends on its weekday alone (every month, every year, no
    /// day-of-month, no `#`/`L`): those weekdays, bit 0 = Sunday. The search then never
    /// needs the calendar. Zero otherwise.
    pub(crate) weekly: u8,
    /// The expression can fire only in leap years (a February 29 alone, or with weekdays
    /// ANDed): the search then jumps from leap year to leap year.
    pub(crate) leap_years_only: bool,
    /// Any of `L`, `L-n`, `nW`, `LW`, `dL` or `d#n`: days then need more than the plain
    /// bitsets.
    pub(crate) day_modifiers: bool,
}

/// Bits 1..=`days` set.
fn month_days(days: u32) -> u32 {
    (((1u64 << (days + 1)) - 1) as u32) & !1
}

/// Every month, bits 1–12.
pub(crate) const ALL_MONTHS: u16 = 0x1ffe;

impl Fields {
    /// The weekdays for [`Fields::weekly`], or zero when the calendar matters.
    pub(crate) fn weekly_days(&self) -> u8 {
        if self.months != ALL_MONTHS || self.years.is_some() || self.has_weekday_modifiers() {
            return 0;
        }
        match self.day_rule {
            DayRule::Every => 0x7f,
            DayRule::Weekdays => self.weekdays,
            _ => 0,
        }
    }

    /// The value for [`Fields::leap_years_only`]: the day-of-month field takes part in
    /// every match (alone or ANDed) and names no day that a selected month has in a common
    /// year.
    pub(crate) fn only_in_leap_years(&self) -> bool {
        matches!(self.day_rule, DayRule::MonthDays | DayRule::Both)
            && !self.has_day_of_month_modifiers()
            && (1..=12u32)
                .filter(|month| self.months >> month & 1 == 1)
                .all(|month| self.days & month_days(days_in_month(1, month)) == 0)
    }

    pub(crate) fn has_day_of_month_modifiers(&self) -> bool {
        self.days_before_last != 0 || self.nearest_weekdays != 0 || self.last_weekday_of_month
    }

    pub(crate) fn has_weekday_modifiers(&self) -> bool {
        self.nth_weekdays != 0 || self.last_weekdays != 0
    }

    pub(crate) fn year_allowed(&self, year: i32) -> bool {
        match self.years {
            None => true,
            Some(bits) => {
                (FIRST_YEAR..=LAST_YEAR).contains(&year)
                    && bits.contains((year - FIRST_YEAR) as u32)
            }
        }
    }

    /// The first allowed year at or after `year`, if any.
    pub(crate) fn next_year(&self, year: i32) -> Option<i32> {
        match self.years {
            None => Some(year),
            Some(bits) => {
                let from = (year.max(FIRST_YEAR) - FIRST_YEAR) as u32;
                bits.next_set(from).map(|bit| FIRST_YEAR + bit as i32)
            }
        }
    }

    /// The last allowed year at or before `year`, if any.
    pub(crate) fn prev_year(&self, year: i32) -> Option<i32> {
        match self.years {
            None => Some(year),
            Some(bits) => {
                if year < FIRST_YEAR {
                    return None;
                }
                let upto = (year.min(LAST_YEAR) - FIRST_YEAR) as u32;
                bits.prev_set(upto).map(|bit| FIRST_YEAR + bit as i32)
            }
        }
    }

    /// The days of `month` in `year` on which the expression fires, bits 1–31.
    #[inline(always)]
    pub(crate) fn day_mask(&self, year: i32, month: u32) -> u32 {
        self.day_mask_with(days_in_month(year, month), || weekday(year, month, 1))
    }

    /// [`Fields::day_mask`] of a month of `length` days, given how to find the weekday of
    /// its first day (0 = Sunday), which is asked for only when the rule needs it.
    #[inline(always)]
    pub(crate) fn day_mask_with(&self, length: u32, first_weekday: impl Fn() -> u32) -> u32 {
        let valid = month_days(length);
        if !self.day_modifiers {
            let weekdays = || plain_weekday_mask(self.weekdays, first_weekday());
            return match self.day_rule {
                DayRule::Every => valid,
                DayRule::MonthDays => self.days & valid,
                DayRule::Weekdays => weekdays() & valid,
                DayRule::Either => (self.days | weekdays()) & valid,
                DayRule::Both => self.days & weekdays() & valid,
            };
        }
        self.day_mask_with_modifiers(length, valid, &first_weekday)
    }

    /// [`Fields::day_mask_with`] when some day modifier is present.
    #[inline(never)]
    fn day_mask_with_modifiers(
        &self,
        length: u32,
        valid: u32,
        first_weekday: &impl Fn() -> u32,
    ) -> u32 {
        match self.day_rule {
            DayRule::Every => valid,
            DayRule::MonthDays => self.month_day_mask(length, &first_weekday) & valid,
            DayRule::Weekdays => self.weekday_mask(first_weekday(), length) & valid,
            DayRule::Either => {
                (self.month_day_mask(length, &first_weekday)
                    | self.weekday_mask(first_weekday(), length))
                    & valid
            }
            DayRule::Both => {
                self.month_day_mask(length, &first_weekday)
                    & self.weekday_mask(first_weekday(), length)
                    & valid
            }
        }
    }

    #[inline]
    fn month_day_mask(&self, length: u32, first_weekday: &impl Fn() -> u32) -> u32 {
        let mask = self.days;
        if !self.has_day_of_month_modifiers() {
            return mask;
        }
        self.add_day_of_month_modifiers(length, first_weekday, mask)
    }

    #[cold]
    fn add_day_of_month_modifiers(
        &self,
        length: u32,
        first_weekday: &impl Fn() -> u32,
        mut mask: u32,
    ) -> u32 {
        let mut before_last = self.days_before_last;
        while before_last != 0 {
            let n = before_last.trailing_zeros();
            before_last &= before_last - 1;
            if n < length {
                mask |= 1 << (length - n);
            }
        }
        let mut nearest = self.nearest_weekdays;
        if nearest != 0 || self.last_weekday_of_month {
            let first = first_weekday();
            let weekday_of = |day: u32| (first + day - 1) % 7;
            while nearest != 0 {
                let day = nearest.trailing_zeros();
                nearest &= nearest - 1;
                if day > length {
                    continue;
                }
                // The nearest Monday–Friday, never leaving the month (Quartz).
                let target = match weekday_of(day) {
                    6 if day > 1 => day - 1,
                    6 => day + 2,
                    0 if day < length => day + 1,
                    0 => day - 2,
                    _ => day,
                };
                mask |= 1 << target;
            }
            if self.last_weekday_of_month {
                let last = match weekday_of(length) {
                    6 => length - 1,
                    0 => length - 2,
                    _ => length,
                };
                mask |= 1 << last;
            }
        }
        mask
    }

    #[inline]
    fn weekday_mask(&self, first: u32, length: u32) -> u32 {
        let mask = plain_weekday_mask(self.weekdays, first);
        if !self.has_weekday_modifiers() {
            return mask;
        }
        self.add_weekday_modifiers(first, length, mask)
    }

    #[cold]
    fn add_weekday_modifiers(&self, first: u32, length: u32, mut mask: u32) -> u32 {
        let mut nth = self.nth_weekdays;
        while nth != 0 {
            let bit = nth.trailing_zeros();
            nth &= nth - 1;
            let (n, wanted) = (bit / 7 + 1, bit % 7);
            let day = 1 + (wanted + 7 - first) % 7 + 7 * (n - 1);
            if day <= length {
                mask |= 1 << day;
            }
        }
        let mut last = self.last_weekdays;
        if last != 0 {
            let last_weekday = (first + length - 1) % 7;
            while last != 0 {
                let wanted = last.trailing_zeros();
                last &= last - 1;
                mask |= 1 << (length - (last_weekday + 7 - wanted) % 7);
            }
        }
        mask
    }
}

/// The days (bits 1–31) of a month whose first day is weekday `first` (0 = Sunday) that
/// fall on one of `weekdays` (bit 0 = Sunday).
#[inline]
fn plain_weekday_mask(weekdays: u8, first: u32) -> u32 {
    // Rotate so that bit k says whether day k + 1 matches, then repeat the week.
    let week = u32::from(weekdays);
    let rotated = ((week >> first) | (week << (7 - first))) & 0x7f;
    let repeated = u64::from(rotated) * 0b1_0000001_0000001_0000001_0000001;
    (repeated << 1) as u32
}

/// The first set bit at or after `from`.
#[inline]
pub(crate) fn next_bit(mask: u64, from: u32) -> Option<u32> {
    let rest = mask.checked_shr(from).unwrap_or(0);
    (rest != 0).then(|| from + rest.trailing_zeros())
}

/// The last set bit at or before `upto` (`upto` < 64).
#[inline]
pub(crate) fn prev_bit(mask: u64, upto: u32) -> Option<u32> {
    let rest = mask << (63 - upto);
    (rest != 0).then(|| upto - rest.leading_zeros())
}

#[inline]
pub(crate) fn first_bit(mask: u64) -> u32 {
    mask.trailing_zeros()
}

#[inline]
pub(crate) fn last_bit(mask: u64) -> u32 {
    63 - mask.leading_zeros()
}
