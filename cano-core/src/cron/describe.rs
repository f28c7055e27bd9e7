//! A short English description of an expression (`Cron::describe`).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::fields::{DayRule, FIRST_YEAR, Fields};

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const ORDINALS: [&str; 5] = ["first", "second", "third", "fourth", "fifth"];

pub(crate) fn describe(fields: &Fields, arity: u8, zone: Option<&str>) -> String {
    let mut parts: Vec<String> = Vec::new();
    parts.push(time(fields, arity));
    if let Some(days) = days(fields) {
        parts.push(days);
    }
    let months = values(u64::from(fields.months), 1, 12);
    if months.len() < 12 {
        parts.push(format!(
            "in {}",
            list(&months, |m| String::from(MONTHS[m as usize - 1]))
        ));
    }
    if let Some(years) = fields.years {
        let years: Vec<u32> = (0..130).filter(|&v| years.contains(v)).collect();
        parts.push(format!(
            "in {}",
            list(&years, |y| format!("{}", y + FIRST_YEAR as u32))
        ));
    }
    let mut text = parts.join(", ");
    if let Some(zone) = zone {
        text.push_str(&format!(" ({zone})"));
    }
    text
}

fn values(bits: u64, min: u32, max: u32) -> Vec<u32> {
    (min..=max).filter(|v| bits >> v & 1 == 1).collect()
}

/// `a`, `a and b`, `a, b and c`, or `a through z` for a run of three or more.
fn list(values: &[u32], name: impl Fn(u32) -> String) -> String {
    let contiguous = values.windows(2).all(|w| w[1] == w[0] + 1);
    if values.len() >= 3 && contiguous {
        return format!(
            "{} through {}",
            name(values[0]),
            name(values[values.len() - 1])
        );
    }
    let names: Vec<String> = values.iter().map(|&v| name(v)).collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// `Some(n)` when `values` is every n-th value of `min..=max` starting at `min`.
fn every_nth(values: &[u32], min: u32, max: u32) -> Option<u32> {
    let step = match values {
        [first, second, ..] if *first == min => second - first,
        _ => return None,
    };
    let expected = (min..=max).step_by(step as usize);
    (expected.clone().count() == values.len() && expected.zip(values).all(|(a, b)| a == *b))
        .then_some(step)
}

fn plural(n: u32, unit: &str) -> String {
    if n == 1 {
        format!("every {unit}")
    } else {
        format!("every {n} {unit}s")
    }
}

fn time(fields: &Fields, arity: u8) -> String {
    let seconds = values(fields.seconds, 0, 59);
    let minutes = values(fields.minutes, 0, 59);
    let hours = values(u64::from(fields.hours), 0, 23);
    let seconds_matter = arity > 5 || seconds != [0];
    let clock = |h: u32, m: u32, s: u32| {
        if seconds_matter && s != 0 {
            format!("{h:02}:{m:02}:{s:02}")
        } else {
            format!("{h:02}:{m:02}")
        }
    };
    if seconds.len() == 1 && minutes.len() * hours.len() <= 4 {
        let mut times = Vec::new();
        for &h in &hours {
            for &m in &minutes {
                times.push(clock(h, m, seconds[0]));
            }
        }
        let last = times.pop().unwrap_or_default();
        return if times.is_empty() {
            format!("at {last}")
        } else {
            format!("at {} and {last}", times.join(", "))
        };
    }
    let mut text = String::new();
    if seconds != [0] {
        text = match every_nth(&seconds, 0, 59) {
            Some(n) => plural(n, "second"),
            None => format!("at second {}", list(&seconds, |s| format!("{s}"))),
        };
    }
    let minute_text = match every_nth(&minutes, 0, 59) {
        Some(1) if !text.is_empty() => None,
        Some(n) => Some(plural(n, "minute")),
        None if minutes == [0] && text.is_empty() => Some(String::from("every hour")),
        None => Some(format!(
            "at minute {} past the hour",
            list(&minutes, |m| format!("{m}"))
        )),
    };
    if let Some(minute_text) = minute_text {
        if !text.is_empty() {
            text.push_str(" of ");
        }
        text.push_str(&minute_text);
    }
    if hours.len() < 24 {
        let contiguous = hours.windows(2).all(|w| w[1] == w[0] + 1);
        if contiguous {
            text.push_str(&format!(
                " from {:02}:00 to {:02}:59",
                hours[0],
                hours[hours.len() - 1]
            ));
        } else {
            text.push_str(&format!(" in hours {}", list(&hours, |h| format!("{h}"))));
        }
    }
    text
}

fn days(fields: &Fields) -> Option<String> {
    let month_days = || {
        let mut parts = Vec::new();
        let days = values(u64::from(fields.days), 1, 31);
        if !days.is_empty() {
            let word = if days.len() == 1 { "day" } else { "days" };
            parts.push(format!(
                "on {word} {} of the month",
                list(&days, |d| format!("{d}"))
            ));
        }
        for n in (0..31).filter(|n| fields.days_before_last >> n & 1 == 1) {
            parts.push(match n {
                0 => String::from("on the last day of the month"),
                1 => String::from("1 day before the last day of the month"),
                n => format!("{n} days before the last day of the month"),
            });
        }
        for day in (1..32).filter(|d| fields.nearest_weekdays >> d & 1 == 1) {
            parts.push(format!("on the weekday nearest day {day}"));
        }
        if fields.last_weekday_of_month {
            parts.push(String::from("on the last weekday of the month"));
        }
        parts.join(" or ")
    };
    let weekdays = || {
        let mut parts = Vec::new();
        let plain = values(u64::from(fields.weekdays), 0, 6);
        if !plain.is_empty() {
            parts.push(list(&plain, |d| String::from(WEEKDAYS[d as usize])));
        }
        for bit in (0..35).filter(|bit| fields.nth_weekdays >> bit & 1 == 1) {
            parts.push(format!(
                "on the {} {} of the month",
                ORDINALS[bit as usize / 7],
                WEEKDAYS[bit as usize % 7]
            ));
        }
        for day in (0..7).filter(|d| fields.last_weekdays >> d & 1 == 1) {
            parts.push(format!("on the last {} of the month", WEEKDAYS[day]));
        }
        parts.join(" or ")
    };
    match fields.day_rule {
        DayRule::Every => None,
        DayRule::MonthDays => Some(month_days()),
        DayRule::Weekdays => Some(weekdays()),
        DayRule::Either => Some(format!("{} or {}", month_days(), weekdays())),
        DayRule::Both => Some(format!("{}, if it is {}", month_days(), weekdays())),
    }
}
