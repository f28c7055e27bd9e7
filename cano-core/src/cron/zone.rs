//! The `CRON_TZ=`/`TZ=` prefix: IANA names (with cano-core's `std` feature), POSIX TZ
//! strings and fixed offsets (everywhere, including `no_std`).

use alloc::format;
use alloc::string::String;

use jiff::tz::{Offset, TimeZone};

/// What a zone prefix accepts, for errors.
pub(crate) const ALLOWED: &str = "an IANA name such as Europe/Paris (with cano-core's `std` \
    feature), a POSIX TZ string such as CET-1CEST,M3.5.0,M10.5.0/3, or a fixed offset such as \
    UTC, +05:30 or -08:00";

/// Reads a zone as written after `CRON_TZ=`; the error says why it was rejected.
pub(crate) fn parse(text: &str) -> Result<TimeZone, String> {
    if text.is_empty() {
        return Err(String::from("the time zone is missing"));
    }
    if ["UTC", "GMT", "Z"]
        .iter()
        .any(|utc| utc.eq_ignore_ascii_case(text))
    {
        return Ok(TimeZone::UTC);
    }
    if let Some(sign) = text.chars().next().filter(|c| *c == '+' || *c == '-') {
        return fixed_offset(sign, &text[1..]).ok_or_else(|| {
            String::from(
                "a fixed offset is written +HH, +HH:MM, +HHMM or +HH:MM:SS (at most 25:59:59)",
            )
        });
    }
    let upper_prefix = text.get(..3).map(|p| p.to_ascii_uppercase());
    if matches!(upper_prefix.as_deref(), Some("UTC" | "GMT")) && text[3..].starts_with(['+', '-']) {
        // POSIX reads `UTC+5` as five hours *behind* UTC; people rarely mean that.
        return Err(format!(
            "`{text}` is ambiguous (POSIX reads `UTC+5` as five hours behind UTC); write the \
             offset alone, such as {}",
            if text[3..].starts_with('+') {
                "+05:00"
            } else {
                "-05:00"
            }
        ));
    }
    #[cfg(feature = "std")]
    if let Ok(zone) = TimeZone::get(text) {
        return Ok(zone);
    }
    if let Ok(zone) = TimeZone::posix(text) {
        return Ok(zone);
    }
    if cfg!(feature = "std") {
        Err(String::from(
            "not a known IANA time zone, a valid POSIX TZ string, or a fixed offset",
        ))
    } else {
        Err(String::from(
            "not a valid POSIX TZ string or fixed offset (IANA names need cano-core's `std` \
             feature)",
        ))
    }
}

/// `HH`, `HH:MM`, `HHMM`, `HH:MM:SS` or `HHMMSS` after a sign.
fn fixed_offset(sign: char, text: &str) -> Option<TimeZone> {
    let bytes = text.as_bytes();
    let pair = |at: usize| -> Option<i32> {
        match bytes.get(at..at + 2)? {
            [a @ b'0'..=b'9', b @ b'0'..=b'9'] => {
                Some(i32::from(a - b'0') * 10 + i32::from(b - b'0'))
            }
            _ => None,
        }
    };
    let colon = |at: usize| bytes.get(at) == Some(&b':');
    let (h, m, s) = match bytes.len() {
        2 => (pair(0)?, 0, 0),
        4 => (pair(0)?, pair(2)?, 0),
        6 => (pair(0)?, pair(2)?, pair(4)?),
        5 if colon(2) => (pair(0)?, pair(3)?, 0),
        8 if colon(2) && colon(5) => (pair(0)?, pair(3)?, pair(6)?),
        _ => return None,
    };
    if m > 59 || s > 59 {
        return None;
    }
    let seconds = h * 3600 + m * 60 + s;
    let seconds = if sign == '-' { -seconds } else { seconds };
    Offset::from_seconds(seconds).ok().map(TimeZone::fixed)
}
