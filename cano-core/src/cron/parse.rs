//! Text to [`Fields`]: tokenising, the per-field grammar, and the checks that make a bad
//! expression a clear [`CronError`] instead of a schedule that silently never fires.
//!
//! Parsing is one left-to-right pass over the bytes with no allocation except for an error
//! and a `CRON_TZ=` zone.

use alloc::boxed::Box;
use core::ops::Range;

use jiff::tz::TimeZone;

use super::calendar::max_days_in_month;
use super::error::{CronError, CronErrorKind, CronField};
use super::fields::{DayRule, FIRST_YEAR, Fields, LAST_YEAR};
use super::options::{CronOptions, DayMatching, WeekdayNumbering};
use super::zone;

/// What the whole expression accepts, for errors about its shape.
pub(crate) const EXPRESSION_ALLOWED: &str = "5 fields (minute hour day-of-month month \
    day-of-week), 6 (second first) or 7 (second first, year last), or one of @yearly, \
    @annually, @monthly, @weekly, @daily, @midnight, @hourly; optionally after CRON_TZ=<zone>";

/// How the seconds, minutes and hours fields were written: with `*` or a step ("wild") or
/// as plain values, lists and ranges. It decides the DST class and is kept for `Display`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Wild {
    pub(crate) second: bool,
    pub(crate) minute: bool,
    pub(crate) hour: bool,
}

/// A parsed expression.
pub(crate) struct Parsed {
    pub(crate) fields: Fields,
    pub(crate) wild: Wild,
    /// 5, 6 or 7: how many fields `Display` prints (aliases print as 5).
    pub(crate) arity: u8,
    /// The `CRON_TZ=` zone and its text as written.
    pub(crate) time_zone: Option<(TimeZone, Box<str>)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Names {
    None,
    Months,
    Weekdays,
}

struct Spec {
    field: CronField,
    min: u32,
    max: u32,
    names: Names,
    allowed: &'static str,
}

const SECOND: Spec = Spec {
    field: CronField::Second,
    min: 0,
    max: 59,
    names: Names::None,
    allowed: "0-59, *, lists (,), ranges (-) and steps (/)",
};
const MINUTE: Spec = Spec {
    field: CronField::Minute,
    ..SECOND
};
const HOUR: Spec = Spec {
    field: CronField::Hour,
    min: 0,
    max: 23,
    names: Names::None,
    allowed: "0-23, *, lists (,), ranges (-) and steps (/)",
};
const DAY_OF_MONTH: Spec = Spec {
    field: CronField::DayOfMonth,
    min: 1,
    max: 31,
    names: Names::None,
    allowed: "1-31, *, ?, L, L-n, nW, LW, lists (,), ranges (-) and steps (/)",
};
const MONTH: Spec = Spec {
    field: CronField::Month,
    min: 1,
    max: 12,
    names: Names::Months,
    allowed: "1-12 or JAN-DEC, *, lists (,), ranges (-) and steps (/)",
};
const DAY_OF_WEEK_POSIX: Spec = Spec {
    field: CronField::DayOfWeek,
    min: 0,
    max: 7,
    names: Names::Weekdays,
    allowed: "0-7 or SUN-SAT (0 and 7 are Sunday), *, ?, dL, d#n, lists (,), ranges (-) and \
              steps (/)",
};
const DAY_OF_WEEK_QUARTZ: Spec = Spec {
    field: CronField::DayOfWeek,
    min: 1,
    max: 7,
    names: Names::Weekdays,
    allowed: "1-7 or SUN-SAT (1 is Sunday, Quartz numbering), *, ?, dL, d#n, lists (,), \
              ranges (-) and steps (/)",
};
const YEAR: Spec = Spec {
    field: CronField::Year,
    min: FIRST_YEAR as u32,
    max: LAST_YEAR as u32,
    names: Names::None,
    allowed: "1970-2099, *, lists (,), ranges (-) and steps (/)",
};

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const MONTH_FULL_NAMES: [&str; 12] = [
    "JANUARY",
    "FEBRUARY",
    "MARCH",
    "APRIL",
    "MAY",
    "JUNE",
    "JULY",
    "AUGUST",
    "SEPTEMBER",
    "OCTOBER",
    "NOVEMBER",
    "DECEMBER",
];
/// Weekday names, Sunday first.
pub(crate) const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const WEEKDAY_FULL_NAMES: [&str; 7] = [
    "SUNDAY",
    "MONDAY",
    "TUESDAY",
    "WEDNESDAY",
    "THURSDAY",
    "FRIDAY",
    "SATURDAY",
];

/// What one field parsed to. Bit `v - base` stands for value `v` as written (weekdays still
/// in the expression's numbering).
#[derive(Default)]
struct FieldBits {
    values: u128,
    /// The field is exactly `*` or `?`.
    unrestricted: bool,
    /// Some item used `*` or a step.
    wild: bool,
    days_before_last: u32,
    nearest_weekdays: u32,
    last_weekday_of_month: bool,
    /// `d#n`, weekday as written: `(n, d)` pairs as bit `8 * (n - 1) + d`.
    nth_weekdays: u64,
    /// `dL`, weekday as written.
    last_weekdays: u8,
}

struct Parser<'a> {
    input: &'a str,
    options: CronOptions,
}

/// The whitespace-separated tokens of `input` with their byte ranges.
fn tokens(input: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let bytes = input.as_bytes();
    let mut at = 0;
    core::iter::from_fn(move || {
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        if at == bytes.len() {
            return None;
        }
        let start = at;
        while at < bytes.len() && !bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        Some(start..at)
    })
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

pub(crate) fn parse(input: &str, options: CronOptions) -> Result<Parsed, CronError> {
    Parser { input, options }.parse()
}

impl<'a> Parser<'a> {
    fn error(&self, kind: CronErrorKind, spec: Option<&Spec>, span: Range<usize>) -> CronError {
        let allowed = spec.map_or(EXPRESSION_ALLOWED, |spec| spec.allowed);
        CronError::new(kind, spec.map(|s| s.field), self.input, span, allowed)
    }

    fn text(&self, span: &Range<usize>) -> &'a str {
        &self.input[span.clone()]
    }

    fn parse(&self) -> Result<Parsed, CronError> {
        let mut spans: [Range<usize>; 7] = Default::default();
        let mut count = 0;
        let mut last_end = 0;
        let mut time_zone = None;
        for (index, span) in tokens(self.input).enumerate() {
            let text = self.text(&span);
            if index == 0 {
                let prefix = ["CRON_TZ=", "TZ="]
                    .into_iter()
                    .find(|prefix| starts_with_ignore_case(text, prefix));
                if let Some(prefix) = prefix {
                    let name = &text[prefix.len()..];
                    let zone_span = span.start + prefix.len()..span.end;
                    let zone = zone::parse(name).map_err(|reason| {
                        CronError::new(
                            CronErrorKind::TimeZone { reason },
                            None,
                            self.input,
                            if name.is_empty() {
                                span.clone()
                            } else {
                                zone_span
                            },
                            zone::ALLOWED,
                        )
                    })?;
                    time_zone = Some((zone, Box::from(name)));
                    continue;
                }
            }
            last_end = span.end;
            if count < spans.len() {
                spans[count] = span;
            }
            count += 1;
        }
        if count == 0 {
            let span = if time_zone.is_some() {
                0..self.input.len()
            } else {
                0..0
            };
            return Err(self.error(CronErrorKind::Empty, None, span));
        }
        let fields_span = spans[0].start..last_end;
        if self.text(&spans[0]).starts_with('@') {
            if count > 1 {
                let span = spans[1].start..fields_span.end;
                return Err(self.error(CronErrorKind::Syntax, None, span));
            }
            return self.alias(spans[0].clone(), time_zone);
        }
        let (second, rest): (Option<Range<usize>>, &[Range<usize>]) = match count {
            5 => (None, &spans[..5]),
            6 | 7 => (Some(spans[0].clone()), &spans[1..count]),
            found => {
                return Err(self.error(CronErrorKind::FieldCount { found }, None, fields_span));
            }
        };
        let seconds = match &second {
            Some(span) => self.field(span.clone(), &SECOND)?,
            None => FieldBits {
                values: 1,
                ..FieldBits::default()
            },
        };
        let minutes = self.field(rest[0].clone(), &MINUTE)?;
        let hours = self.field(rest[1].clone(), &HOUR)?;
        let days = self.field(rest[2].clone(), &DAY_OF_MONTH)?;
        let months = self.field(rest[3].clone(), &MONTH)?;
        let weekday_spec = match self.options.weekday_numbering() {
            WeekdayNumbering::Posix => &DAY_OF_WEEK_POSIX,
            WeekdayNumbering::Quartz => &DAY_OF_WEEK_QUARTZ,
        };
        let weekdays = self.field(rest[4].clone(), weekday_spec)?;
        let years = match rest.get(5) {
            Some(span) => Some(self.field(span.clone(), &YEAR)?.values),
            None => None,
        };
        let fields = self.assemble(&seconds, &minutes, &hours, &days, &months, &weekdays, years);
        self.check_days_exist(&fields, rest[2].clone())?;
        Ok(Parsed {
            fields,
            wild: Wild {
                second: seconds.wild,
                minute: minutes.wild,
                hour: hours.wild,
            },
            arity: count as u8,
            time_zone,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        &self,
        seconds: &FieldBits,
        minutes: &FieldBits,
        hours: &FieldBits,
        days: &FieldBits,
        months: &FieldBits,
        weekdays: &FieldBits,
        years: Option<u128>,
    ) -> Fields {
        let canonical = |weekday: u32| match self.options.weekday_numbering() {
            WeekdayNumbering::Posix => weekday % 7,
            WeekdayNumbering::Quartz => weekday - 1,
        };
        let mut plain_weekdays = 0u8;
        let mut last_weekdays = 0u8;
        let mut nth_weekdays = 0u64;
        for weekday in 0..8 {
            if weekdays.values >> weekday & 1 == 1 {
                plain_weekdays |= 1 << canonical(weekday);
            }
            if weekdays.last_weekdays >> weekday & 1 == 1 {
                last_weekdays |= 1 << canonical(weekday);
            }
            for n in 0..5 {
                if weekdays.nth_weekdays >> (8 * n + weekday) & 1 == 1 {
                    nth_weekdays |= 1 << (7 * n + canonical(weekday));
                }
            }
        }
        let day_rule = match (days.unrestricted, weekdays.unrestricted) {
            (true, true) => DayRule::Every,
            (false, true) => DayRule::MonthDays,
            (true, false) => DayRule::Weekdays,
            (false, false) => match self.options.day_matching() {
                DayMatching::Either => DayRule::Either,
                DayMatching::Both => DayRule::Both,
            },
        };
        Fields {
            seconds: seconds.values as u64,
            minutes: minutes.values as u64,
            hours: hours.values as u32,
            days: days.values as u32,
            days_before_last: days.days_before_last,
            nearest_weekdays: days.nearest_weekdays,
            last_weekday_of_month: days.last_weekday_of_month,
            months: months.values as u16,
            weekdays: plain_weekdays,
            nth_weekdays,
            last_weekdays,
            years,
            day_rule,
        }
    }

    /// Rejects a day-of-month that no selected month has (`0 0 30 2 *`), when day-of-month
    /// alone decides the day.
    fn check_days_exist(&self, fields: &Fields, span: Range<usize>) -> Result<(), CronError> {
        let decides_alone = matches!(fields.day_rule, DayRule::MonthDays | DayRule::Both);
        if !decides_alone || fields.last_weekday_of_month {
            return Ok(());
        }
        let possible = (1..=12u32)
            .filter(|month| fields.months >> month & 1 == 1)
            .any(|month| {
                let length = max_days_in_month(month);
                let short_enough = (2u64 << length) - 1;
                u64::from(fields.days) & short_enough != 0
                    || u64::from(fields.nearest_weekdays) & short_enough != 0
                    || u64::from(fields.days_before_last) & (short_enough >> 1) != 0
            });
        if possible {
            Ok(())
        } else {
            Err(self.error(CronErrorKind::NeverFires, Some(&DAY_OF_MONTH), span))
        }
    }

    fn alias(
        &self,
        span: Range<usize>,
        time_zone: Option<(TimeZone, Box<str>)>,
    ) -> Result<Parsed, CronError> {
        let name = self.text(&span);
        let known: [(&str, &str); 7] = [
            ("@yearly", "0 0 1 1 *"),
            ("@annually", "0 0 1 1 *"),
            ("@monthly", "0 0 1 * *"),
            ("@weekly", "0 0 * * SUN"),
            ("@daily", "0 0 * * *"),
            ("@midnight", "0 0 * * *"),
            ("@hourly", "0 * * * *"),
        ];
        let Some((_, expansion)) = known
            .iter()
            .find(|(alias, _)| alias.eq_ignore_ascii_case(name))
        else {
            return Err(self.error(CronErrorKind::UnknownAlias, None, span));
        };
        let mut parsed = parse(expansion, self.options)?;
        parsed.time_zone = time_zone;
        Ok(parsed)
    }

    fn field(&self, span: Range<usize>, spec: &Spec) -> Result<FieldBits, CronError> {
        let text = self.text(&span);
        let mut bits = FieldBits::default();
        if text == "*" || text == "?" {
            if text == "?" && !matches!(spec.field, CronField::DayOfMonth | CronField::DayOfWeek) {
                return Err(self.error(CronErrorKind::NotAllowedHere, Some(spec), span));
            }
            bits.unrestricted = true;
            bits.wild = true;
            bits.values = range_bits(spec.min, spec.max, 1, base(spec));
            return Ok(bits);
        }
        let mut start = span.start;
        for item in text.split(',') {
            let item_span = start..start + item.len();
            start = item_span.end + 1;
            self.item(item_span, spec, &mut bits)?;
        }
        Ok(bits)
    }

    fn item(&self, span: Range<usize>, spec: &Spec, bits: &mut FieldBits) -> Result<(), CronError> {
        let item = self.text(&span);
        let error = |kind| self.error(kind, Some(spec), span.clone());
        if item.is_empty() {
            return Err(error(CronErrorKind::Syntax));
        }
        if item == "?" {
            // `?` must be the whole field.
            return Err(error(CronErrorKind::NotAllowedHere));
        }
        if spec.field == CronField::DayOfMonth && self.day_of_month_modifier(&span, bits)? {
            return Ok(());
        }
        if spec.field == CronField::DayOfWeek && self.weekday_modifier(&span, spec, bits)? {
            return Ok(());
        }
        let (base_text, step_text) = match item.split_once('/') {
            Some((base_text, step_text)) => (base_text, Some(step_text)),
            None => (item, None),
        };
        let base_span = span.start..span.start + base_text.len();
        let (low, high) = if base_text == "*" {
            bits.wild = true;
            (spec.min, spec.max)
        } else if let Some((first, _)) = base_text.split_once('-') {
            let first_span = base_span.start..base_span.start + first.len();
            let last_span = first_span.end + 1..base_span.end;
            let low = self.value(first_span, spec)?;
            let high = self.value(last_span, spec)?;
            if low > high {
                return Err(self.error(CronErrorKind::ReversedRange, Some(spec), base_span));
            }
            (low, high)
        } else {
            let value = self.value(base_span.clone(), spec)?;
            (value, if step_text.is_some() { spec.max } else { value })
        };
        let step = match step_text {
            None => 1,
            Some(step_text) => {
                bits.wild = true;
                let step_span = base_span.end + 1..span.end;
                let max = spec.max - spec.min + 1;
                match self.number(step_span.clone(), step_text, spec)? {
                    step @ 1.. if step <= max => step,
                    _ => {
                        return Err(self.error(
                            CronErrorKind::InvalidStep { max },
                            Some(spec),
                            step_span,
                        ));
                    }
                }
            }
        };
        bits.values |= range_bits(low, high, step, base(spec));
        Ok(())
    }

    /// `L`, `L-n`, `LW` and `nW`. Returns whether `span` was one of them.
    fn day_of_month_modifier(
        &self,
        span: &Range<usize>,
        bits: &mut FieldBits,
    ) -> Result<bool, CronError> {
        let item = self.text(span);
        let spec = &DAY_OF_MONTH;
        if item.eq_ignore_ascii_case("L") {
            bits.days_before_last |= 1;
        } else if item.eq_ignore_ascii_case("LW") {
            bits.last_weekday_of_month = true;
        } else if starts_with_ignore_case(item, "L-") {
            let number_span = span.start + 2..span.end;
            let n = self.number(number_span.clone(), &item[2..], spec)?;
            if n > 30 {
                return Err(self.out_of_range(n, 0, 30, spec, number_span));
            }
            bits.days_before_last |= 1 << n;
        } else if item.len() > 1 && item.as_bytes()[item.len() - 1].eq_ignore_ascii_case(&b'W') {
            let number_span = span.start..span.end - 1;
            let day = self.number(number_span.clone(), &item[..item.len() - 1], spec)?;
            if !(1..=31).contains(&day) {
                return Err(self.out_of_range(day, 1, 31, spec, number_span));
            }
            bits.nearest_weekdays |= 1 << day;
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    /// `dL` and `d#n`. Returns whether `span` was one of them.
    fn weekday_modifier(
        &self,
        span: &Range<usize>,
        spec: &Spec,
        bits: &mut FieldBits,
    ) -> Result<bool, CronError> {
        let item = self.text(span);
        if item.eq_ignore_ascii_case("L") {
            // Quartz reads a lone `L` as Saturday; that is too easy to misread.
            return Err(self.error(CronErrorKind::NotAllowedHere, Some(spec), span.clone()));
        }
        if let Some((day, n)) = item.split_once('#') {
            let day_span = span.start..span.start + day.len();
            let n_span = day_span.end + 1..span.end;
            let weekday = self.value(day_span, spec)?;
            let n_value = self.number(n_span.clone(), n, spec)?;
            if !(1..=5).contains(&n_value) {
                return Err(self.out_of_range(n_value, 1, 5, spec, n_span));
            }
            bits.nth_weekdays |= 1 << (8 * (n_value - 1) + weekday);
            return Ok(true);
        }
        let last = item
            .as_bytes()
            .last()
            .is_some_and(|b| b.eq_ignore_ascii_case(&b'L'));
        if last && !item.contains(['-', '/', '*']) {
            let weekday = self.value(span.start..span.end - 1, spec)?;
            bits.last_weekdays |= 1 << weekday;
            return Ok(true);
        }
        Ok(false)
    }

    /// A number or a name, checked against the field's range.
    fn value(&self, span: Range<usize>, spec: &Spec) -> Result<u32, CronError> {
        let text = self.text(&span);
        let starts_alphabetic = text.as_bytes().first().is_some_and(u8::is_ascii_alphabetic);
        if !starts_alphabetic {
            let value = self.number(span.clone(), text, spec)?;
            if value < spec.min || value > spec.max {
                return Err(self.out_of_range(value, spec.min, spec.max, spec, span));
            }
            return Ok(value);
        }
        let position = |short: &[&str], long: &[&str]| {
            short
                .iter()
                .position(|name| name.eq_ignore_ascii_case(text))
                .or_else(|| long.iter().position(|name| name.eq_ignore_ascii_case(text)))
                .map(|index| index as u32)
        };
        let found =
            match spec.names {
                Names::Months => position(&MONTH_NAMES, &MONTH_FULL_NAMES).map(|index| index + 1),
                Names::Weekdays => position(&WEEKDAY_NAMES, &WEEKDAY_FULL_NAMES).map(|index| {
                    match self.options.weekday_numbering() {
                        WeekdayNumbering::Posix => index,
                        WeekdayNumbering::Quartz => index + 1,
                    }
                }),
                Names::None => None,
            };
        found.ok_or_else(|| {
            let special = ["L", "W", "LW"]
                .iter()
                .any(|s| s.eq_ignore_ascii_case(text))
                || text.contains('#');
            let kind = if special && spec.names != Names::Weekdays {
                CronErrorKind::NotAllowedHere
            } else {
                CronErrorKind::UnknownName
            };
            self.error(kind, Some(spec), span)
        })
    }

    /// A plain decimal number (saturating at `u32::MAX`).
    fn number(&self, span: Range<usize>, text: &str, spec: &Spec) -> Result<u32, CronError> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            let kind = if text.bytes().any(|b| b.is_ascii_alphabetic())
                && text.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                CronErrorKind::UnknownName
            } else {
                CronErrorKind::Syntax
            };
            return Err(self.error(kind, Some(spec), span));
        }
        Ok(text.bytes().fold(0u32, |n, b| {
            n.saturating_mul(10).saturating_add(u32::from(b - b'0'))
        }))
    }

    fn out_of_range(
        &self,
        value: u32,
        min: u32,
        max: u32,
        spec: &Spec,
        span: Range<usize>,
    ) -> CronError {
        self.error(
            CronErrorKind::OutOfRange { value, min, max },
            Some(spec),
            span,
        )
    }
}

/// The bit offset of a field's values: years start at 1970, everything else at 0.
fn base(spec: &Spec) -> u32 {
    if spec.field == CronField::Year {
        spec.min
    } else {
        0
    }
}

/// Bits `low, low + step, …` up to `high`, bit `v - base` standing for value `v`.
fn range_bits(low: u32, high: u32, step: u32, base: u32) -> u128 {
    let mut bits = 0u128;
    let mut value = low;
    while value <= high {
        bits |= 1 << (value - base);
        value += step;
    }
    bits
}
