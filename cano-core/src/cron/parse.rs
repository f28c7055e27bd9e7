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
use super::fields::{DayRule, FIRST_YEAR, Fields, LAST_YEAR, WideBits};
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
    /// The largest step allowed: the field's largest value, as in Quartz, `cron` and
    /// cron-parser (a larger step from `*` selects one value at most); for years, one less
    /// than their span.
    max_step: u32,
    allowed: &'static str,
}

const SECOND: Spec = Spec {
    field: CronField::Second,
    min: 0,
    max: 59,
    names: Names::None,
    max_step: 59,
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
    max_step: 23,
    allowed: "0-23, *, lists (,), ranges (-) and steps (/)",
};
const DAY_OF_MONTH: Spec = Spec {
    field: CronField::DayOfMonth,
    min: 1,
    max: 31,
    names: Names::None,
    max_step: 31,
    allowed: "1-31, *, ?, L, L-n, nW, LW, lists (,), ranges (-) and steps (/)",
};
const MONTH: Spec = Spec {
    field: CronField::Month,
    min: 1,
    max: 12,
    names: Names::Months,
    max_step: 12,
    allowed: "1-12 or JAN-DEC, *, lists (,), ranges (-) and steps (/)",
};
const DAY_OF_WEEK_POSIX: Spec = Spec {
    field: CronField::DayOfWeek,
    min: 0,
    max: 7,
    names: Names::Weekdays,
    max_step: 7,
    allowed: "0-7 or SUN-SAT (0 and 7 are Sunday), *, ?, dL, d#n, lists (,), ranges (-) and \
              steps (/)",
};
const DAY_OF_WEEK_QUARTZ: Spec = Spec {
    field: CronField::DayOfWeek,
    min: 1,
    max: 7,
    names: Names::Weekdays,
    max_step: 7,
    allowed: "1-7 or SUN-SAT (1 is Sunday, Quartz numbering), *, ?, dL, d#n, lists (,), \
              ranges (-) and steps (/)",
};
const YEAR: Spec = Spec {
    field: CronField::Year,
    min: FIRST_YEAR as u32,
    max: LAST_YEAR as u32,
    names: Names::None,
    max_step: LAST_YEAR as u32 - FIRST_YEAR as u32,
    allowed: "1970-2099, *, lists (,), ranges (-) and steps (/)",
};

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
/// The first three letters of a name, upper-cased, as one word.
const fn name_key(name: &[u8]) -> u32 {
    u32::from_le_bytes([name[0], name[1], name[2], 0]) & 0x00df_dfdf
}

const fn name_keys<const N: usize>(names: [&str; N]) -> [u32; N] {
    let mut keys = [0; N];
    let mut index = 0;
    while index < N {
        keys[index] = name_key(names[index].as_bytes());
        index += 1;
    }
    keys
}

const MONTH_KEYS: [u32; 12] = name_keys(MONTH_NAMES);
const WEEKDAY_KEYS: [u32; 7] = name_keys(WEEKDAY_NAMES);

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
    values: WideBits,
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
                values: WideBits([1, 0, 0]),
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
            Some(span) => {
                // Every year is no year restriction, however it was written.
                let years = self.field(span.clone(), &YEAR)?.values;
                let every_year = range_bits(YEAR.min, YEAR.max, 1, YEAR.min);
                (years != every_year).then_some(years)
            }
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
        years: Option<WideBits>,
    ) -> Fields {
        // Weekday bits as written (bit `v` for value `v`) to bit 0 = Sunday.
        let canonical = |written: u32| -> u8 {
            match self.options.weekday_numbering() {
                WeekdayNumbering::Posix => ((written & 0x7f) | (written >> 7 & 1)) as u8,
                WeekdayNumbering::Quartz => (written >> 1) as u8,
            }
        };
        let plain_weekdays = canonical(weekdays.values.0[0] as u32);
        let last_weekdays = canonical(u32::from(weekdays.last_weekdays));
        let mut nth_weekdays = 0u64;
        for n in 0..5 {
            let written = (weekdays.nth_weekdays >> (8 * n) & 0xff) as u32;
            nth_weekdays |= u64::from(canonical(written)) << (7 * n);
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
        let mut fields = Fields {
            seconds: seconds.values.0[0],
            minutes: minutes.values.0[0],
            hours: hours.values.0[0] as u32,
            days: days.values.0[0] as u32,
            days_before_last: days.days_before_last,
            nearest_weekdays: days.nearest_weekdays,
            last_weekday_of_month: days.last_weekday_of_month,
            months: months.values.0[0] as u16,
            weekdays: plain_weekdays,
            nth_weekdays,
            last_weekdays,
            years,
            day_rule,
            weekly: 0,
            leap_years_only: false,
            day_modifiers: false,
        };
        fields.day_modifiers =
            fields.has_day_of_month_modifiers() || fields.has_weekday_modifiers();
        fields.weekly = fields.weekly_days();
        fields.leap_years_only = fields.only_in_leap_years();
        fields
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
        let text = &self.input.as_bytes()[span.clone()];
        let mut bits = FieldBits::default();
        if text == b"*" || text == b"?" {
            if text == b"?" && !matches!(spec.field, CronField::DayOfMonth | CronField::DayOfWeek) {
                return Err(self.error(CronErrorKind::NotAllowedHere, Some(spec), span));
            }
            bits.unrestricted = true;
            bits.wild = true;
            bits.values = range_bits(spec.min, spec.max, 1, base(spec));
            return Ok(bits);
        }
        let mut start = span.start;
        loop {
            let end = text[start - span.start..]
                .iter()
                .position(|&b| b == b',')
                .map_or(span.end, |at| start + at);
            self.item(start..end, spec, &mut bits)?;
            if end == span.end {
                return Ok(bits);
            }
            start = end + 1;
        }
    }

    fn item(&self, span: Range<usize>, spec: &Spec, bits: &mut FieldBits) -> Result<(), CronError> {
        let bytes = self.input.as_bytes();
        let error = |kind| self.error(kind, Some(spec), span.clone());
        let Some(&first) = bytes.get(span.start).filter(|_| !span.is_empty()) else {
            return Err(error(CronErrorKind::Syntax));
        };
        let mut at = span.start;
        let peek = |at: usize| if at < span.end { bytes[at] } else { 0 };
        if spec.field == CronField::DayOfMonth && first.eq_ignore_ascii_case(&b'L') {
            return self.last_day_of_month(span, bits);
        }
        // `?/n` is `*/n` in the day fields, as in the `cron` crate (cano 0.12's parser) and
        // croner, so cano 0.12's expressions keep working.
        let question_step = first == b'?'
            && peek(at + 1) == b'/'
            && matches!(spec.field, CronField::DayOfMonth | CronField::DayOfWeek);
        let (low, high) = if first == b'*' || question_step {
            at += 1;
            bits.wild = true;
            (spec.min, spec.max)
        } else {
            let low_start = at;
            let low = match self.atom(&mut at, span.end, spec)? {
                Atom::Value(value) => value,
                Atom::LastWeekday(weekday) => {
                    return self.finish(at, &span, spec, || {
                        bits.last_weekdays |= 1 << weekday;
                    });
                }
            };
            match (spec.field, peek(at).to_ascii_uppercase()) {
                (CronField::DayOfMonth, b'W') => {
                    return self.finish(at + 1, &span, spec, || bits.nearest_weekdays |= 1 << low);
                }
                (CronField::DayOfWeek, b'L') => {
                    return self.finish(at + 1, &span, spec, || bits.last_weekdays |= 1 << low);
                }
                (CronField::DayOfWeek, b'#') => {
                    let n_start = at + 1;
                    at = n_start;
                    let n = self.digits(&mut at, span.end, spec)?;
                    if !(1..=5).contains(&n) {
                        return Err(self.out_of_range(n, 1, 5, spec, n_start..at));
                    }
                    let bit = 8 * (n - 1) + low;
                    return self.finish(at, &span, spec, || bits.nth_weekdays |= 1 << bit);
                }
                _ => {}
            }
            if peek(at) == b'-' {
                at += 1;
                let high_start = at;
                let mut high = match self.atom(&mut at, span.end, spec)? {
                    Atom::Value(value) => value,
                    Atom::LastWeekday(_) => return Err(error(CronErrorKind::Syntax)),
                };
                // POSIX numbering: `SUN` ending a range is day 7, so `FRI-SUN` is Friday to
                // Sunday (as in croner); `SUN-SUN` stays Sunday alone.
                let named = bytes[high_start].is_ascii_alphabetic();
                if spec.field == CronField::DayOfWeek
                    && self.options.weekday_numbering() == WeekdayNumbering::Posix
                    && named
                    && high == 0
                    && low > 0
                {
                    high = 7;
                }
                if low > high {
                    return Err(self.error(
                        CronErrorKind::ReversedRange,
                        Some(spec),
                        low_start..at,
                    ));
                }
                (low, high)
            } else if peek(at) == b'/' {
                // `a/s` runs to the end of the week, Saturday: 7 is only another name for
                // Sunday (cron-parser does the same; Quartz's 7 is Saturday anyway).
                let last = if spec.field == CronField::DayOfWeek {
                    (6 + spec.min).max(low)
                } else {
                    spec.max
                };
                (low, last)
            } else {
                (low, low)
            }
        };
        let mut step = 1;
        if peek(at) == b'/' {
            bits.wild = true;
            at += 1;
            let step_start = at;
            let max = spec.max_step;
            step = self.digits(&mut at, span.end, spec)?;
            if step == 0 || step > max {
                return Err(self.error(
                    CronErrorKind::InvalidStep { max },
                    Some(spec),
                    step_start..at,
                ));
            }
        }
        self.finish(at, &span, spec, || {
            bits.values = bits.values.union(range_bits(low, high, step, base(spec)));
        })
    }

    /// Applies `set` if the item ends at `at`; anything left over is a syntax error.
    fn finish(
        &self,
        at: usize,
        span: &Range<usize>,
        spec: &Spec,
        set: impl FnOnce(),
    ) -> Result<(), CronError> {
        if at != span.end {
            return Err(self.error(CronErrorKind::Syntax, Some(spec), span.clone()));
        }
        set();
        Ok(())
    }

    /// `L`, `L-n` and `LW` in day-of-month.
    fn last_day_of_month(&self, span: Range<usize>, bits: &mut FieldBits) -> Result<(), CronError> {
        let spec = &DAY_OF_MONTH;
        let rest = &self.input.as_bytes()[span.start + 1..span.end];
        match rest {
            [] => bits.days_before_last |= 1,
            [w] if w.eq_ignore_ascii_case(&b'W') => bits.last_weekday_of_month = true,
            [b'-', ..] => {
                let mut at = span.start + 2;
                let n = self.digits(&mut at, span.end, spec)?;
                if n > 30 {
                    return Err(self.out_of_range(n, 0, 30, spec, span.start + 2..at));
                }
                return self.finish(at, &span, spec, || bits.days_before_last |= 1 << n);
            }
            _ => return Err(self.error(CronErrorKind::Syntax, Some(spec), span)),
        }
        Ok(())
    }

    /// A number or a name at `at`, checked against the field's range.
    fn atom(&self, at: &mut usize, end: usize, spec: &Spec) -> Result<Atom, CronError> {
        let bytes = self.input.as_bytes();
        let start = *at;
        if bytes.get(start).is_some_and(u8::is_ascii_digit) && start < end {
            let value = self.digits(at, end, spec)?;
            if value < spec.min || value > spec.max {
                return Err(self.out_of_range(value, spec.min, spec.max, spec, start..*at));
            }
            return Ok(Atom::Value(value));
        }
        while *at < end && bytes[*at].is_ascii_alphabetic() {
            *at += 1;
        }
        let word = start..*at;
        // The whole word for an error: also when a look-alike letter from outside ASCII (a
        // Cyrillic `О` in `MОN`) ended the ASCII part early. Stopping at an ASCII byte or at
        // `end` keeps the span on character boundaries.
        let mut word_end = word.end;
        while word_end < end
            && (bytes[word_end].is_ascii_alphanumeric() || !bytes[word_end].is_ascii())
        {
            word_end += 1;
        }
        if word.is_empty() && word_end > start {
            let kind = match spec.names {
                Names::None => CronErrorKind::Syntax,
                _ => CronErrorKind::UnknownName,
            };
            return Err(self.error(kind, Some(spec), start..word_end));
        }
        if word.is_empty() {
            return Err(self.error(
                CronErrorKind::Syntax,
                Some(spec),
                rest_or_previous(start, end),
            ));
        }
        if let Some(value) = self.name(&self.input[word.clone()], spec) {
            return Ok(Atom::Value(value));
        }
        // `FRIL`: the last Friday of the month.
        let text = &self.input[word.clone()];
        if spec.names == Names::Weekdays
            && text.len() > 3
            && text.as_bytes()[text.len() - 1].eq_ignore_ascii_case(&b'L')
            && let Some(value) = self.name(&text[..text.len() - 1], spec)
        {
            return Ok(Atom::LastWeekday(value));
        }
        let special = word_end == word.end
            && ["L", "W", "LW"]
                .iter()
                .any(|s| s.eq_ignore_ascii_case(text));
        let kind = if special {
            CronErrorKind::NotAllowedHere
        } else {
            CronErrorKind::UnknownName
        };
        Err(self.error(kind, Some(spec), word.start..word_end))
    }

    /// The value of a month or weekday name in this field, if it is one.
    fn name(&self, text: &str, spec: &Spec) -> Option<u32> {
        let position = |short: &[u32], long: &[&str]| {
            // Compare the first three letters as one word, then the rest only if needed.
            let bytes = text.as_bytes();
            if bytes.len() < 3 {
                return None;
            }
            let wanted = name_key(bytes);
            let index = short.iter().position(|&key| key == wanted)?;
            let matches = bytes.len() == 3 || long[index].eq_ignore_ascii_case(text);
            matches.then_some(index as u32)
        };
        match spec.names {
            Names::Months => position(&MONTH_KEYS, &MONTH_FULL_NAMES).map(|index| index + 1),
            Names::Weekdays => position(&WEEKDAY_KEYS, &WEEKDAY_FULL_NAMES).map(|index| match self
                .options
                .weekday_numbering()
            {
                WeekdayNumbering::Posix => index,
                WeekdayNumbering::Quartz => index + 1,
            }),
            Names::None => None,
        }
    }

    /// A plain decimal number at `at` (saturating at `u32::MAX`).
    fn digits(&self, at: &mut usize, end: usize, spec: &Spec) -> Result<u32, CronError> {
        let bytes = self.input.as_bytes();
        let start = *at;
        let mut value = 0u32;
        while *at < end && bytes[*at].is_ascii_digit() {
            value = value
                .saturating_mul(10)
                .saturating_add(u32::from(bytes[*at] - b'0'));
            *at += 1;
        }
        if *at == start {
            return Err(self.error(
                CronErrorKind::Syntax,
                Some(spec),
                rest_or_previous(start, end),
            ));
        }
        Ok(value)
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

/// The span from `start` to the item's `end`, or the byte before `start` when nothing is
/// left (so `1-` points at the dangling `-`).
fn rest_or_previous(start: usize, end: usize) -> Range<usize> {
    if start < end {
        start..end
    } else {
        start.saturating_sub(1)..start
    }
}

/// A value read from an item.
enum Atom {
    /// A number or a name.
    Value(u32),
    /// `FRIL`: a weekday name with the `L` suffix.
    LastWeekday(u32),
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
fn range_bits(low: u32, high: u32, step: u32, base: u32) -> WideBits {
    WideBits::range(low - base, high - base, step)
}
