//! [`CronError`]: what is wrong with an expression, where, and what would be allowed there.

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;
use core::ops::Range;

/// A field of a cron expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CronField {
    /// Seconds (0–59), the first of 6 or 7 fields.
    Second,
    /// Minutes (0–59).
    Minute,
    /// Hours (0–23).
    Hour,
    /// Day of the month (1–31, `L`, `W`).
    DayOfMonth,
    /// Month (1–12 or `JAN`–`DEC`).
    Month,
    /// Day of the week (`SUN`–`SAT`, numbered per [`WeekdayNumbering`](super::WeekdayNumbering)).
    DayOfWeek,
    /// Year (1970–2099), the last of 7 fields.
    Year,
}

impl CronField {
    /// The field's name as used in messages, e.g. `"day-of-month"`.
    pub fn name(self) -> &'static str {
        match self {
            CronField::Second => "second",
            CronField::Minute => "minute",
            CronField::Hour => "hour",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day-of-week",
            CronField::Year => "year",
        }
    }
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What kind of problem a [`CronError`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CronErrorKind {
    /// The expression is empty or only whitespace.
    Empty,
    /// Not 5, 6 or 7 fields.
    FieldCount {
        /// How many fields were found.
        found: usize,
    },
    /// An `@` name other than `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`,
    /// `@midnight` or `@hourly`.
    UnknownAlias,
    /// A character or shape the field's grammar does not allow (e.g. `1--2`, `5/`, `1,,2`).
    Syntax,
    /// A number outside the field's range.
    OutOfRange {
        /// The number as written (saturated at `u32::MAX`).
        value: u32,
        /// The smallest allowed value.
        min: u32,
        /// The largest allowed value.
        max: u32,
    },
    /// A range whose start is after its end (`FRI-MON`); ranges do not wrap around.
    ReversedRange,
    /// A step of 0, or one larger than the field allows: its largest value (59 for seconds
    /// and minutes, 23 for hours, 31 for day-of-month, 12 for months, 7 for weekdays), or
    /// 129 for years. `*/60` in minutes is rejected, as by Quartz, `cron` and cron-parser.
    InvalidStep {
        /// The largest step the field allows.
        max: u32,
    },
    /// A name that is not a month or weekday name (or a name in a numeric field).
    UnknownName,
    /// A special character (`?`, `L`, `W`, `#`) in a field that does not take it.
    NotAllowedHere,
    /// The expression is well-formed but can never fire (`0 0 30 2 *`).
    NeverFires,
    /// The `CRON_TZ=`/`TZ=` prefix names no zone cano can load.
    TimeZone {
        /// Why the zone was rejected.
        reason: String,
    },
}

/// A cron expression that could not be parsed.
///
/// It names the [field](CronError::field) (when the problem is inside one), the offending
/// [token](CronError::token) and its [byte span](CronError::span) in the input, and
/// [what is allowed](CronError::allowed) there.
///
/// ```
/// use cano_core::cron::{Cron, CronErrorKind, CronField};
///
/// let err = Cron::parse("0 9 32 * *").unwrap_err();
/// assert_eq!(err.field(), Some(CronField::DayOfMonth));
/// assert_eq!(err.token(), "32");
/// assert_eq!(err.span(), 4..6);
/// assert_eq!(err.kind(), &CronErrorKind::OutOfRange { value: 32, min: 1, max: 31 });
/// assert_eq!(
///     err.to_string(),
///     "invalid cron expression: day-of-month `32` (bytes 4..6): 32 is outside 1-31; \
///      allowed here: 1-31, *, ?, L, L-n, nW, LW, lists (,), ranges (-) and steps (/)"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronError {
    // Boxed so that `Result<_, CronError>` stays one pointer wide on the parser's hot path.
    inner: Box<Inner>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Inner {
    kind: CronErrorKind,
    field: Option<CronField>,
    token: Box<str>,
    span: Range<usize>,
    allowed: &'static str,
}

impl CronError {
    pub(crate) fn new(
        kind: CronErrorKind,
        field: Option<CronField>,
        input: &str,
        span: Range<usize>,
        allowed: &'static str,
    ) -> CronError {
        let token = input.get(span.clone()).unwrap_or_default().into();
        CronError {
            inner: Box::new(Inner {
                kind,
                field,
                token,
                span,
                allowed,
            }),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &CronErrorKind {
        &self.inner.kind
    }

    /// The field the problem is in; `None` for problems with the whole expression (field
    /// count, an unknown `@` alias, the time zone prefix).
    pub fn field(&self) -> Option<CronField> {
        self.inner.field
    }

    /// The offending text, exactly as written.
    pub fn token(&self) -> &str {
        &self.inner.token
    }

    /// The byte range of [`token`](CronError::token) in the input.
    pub fn span(&self) -> Range<usize> {
        self.inner.span.clone()
    }

    /// What the position accepts, e.g. `"0-59, *, lists (,), ranges (-) and steps (/)"`.
    pub fn allowed(&self) -> &'static str {
        self.inner.allowed
    }
}

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid cron expression: ")?;
        let inner = &*self.inner;
        if let Some(field) = inner.field {
            write!(f, "{field} ")?;
        }
        write!(
            f,
            "`{}` (bytes {}..{}): ",
            inner.token, inner.span.start, inner.span.end
        )?;
        match &inner.kind {
            CronErrorKind::Empty => f.write_str("the expression is empty")?,
            CronErrorKind::FieldCount { found } => {
                write!(f, "expected 5, 6 or 7 fields, found {found}")?
            }
            CronErrorKind::UnknownAlias => f.write_str("unknown @ alias")?,
            CronErrorKind::Syntax => f.write_str("cannot be read")?,
            // A number too large for `u32` is saturated in `value`: name it as written.
            CronErrorKind::OutOfRange {
                value: u32::MAX,
                min,
                max,
            } => write!(f, "{} is outside {min}-{max}", inner.token)?,
            CronErrorKind::OutOfRange { value, min, max } => {
                write!(f, "{value} is outside {min}-{max}")?
            }
            CronErrorKind::ReversedRange => {
                f.write_str("a range must go from low to high (ranges do not wrap around)")?
            }
            CronErrorKind::InvalidStep { max } => write!(f, "a step must be between 1 and {max}")?,
            CronErrorKind::UnknownName => f.write_str("unknown name")?,
            CronErrorKind::NotAllowedHere => f.write_str("not allowed in this field")?,
            CronErrorKind::NeverFires => {
                f.write_str("no such day exists in the selected months, so it never fires")?
            }
            CronErrorKind::TimeZone { reason } => write!(f, "{reason}")?,
        }
        write!(f, "; allowed here: {}", inner.allowed)
    }
}

impl core::error::Error for CronError {}
