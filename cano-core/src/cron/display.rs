//! The normalized text of an expression (`Display` on [`Cron`](super::Cron)).
//!
//! The output is a function of the schedule alone, so two expressions print the same text
//! exactly when they fire at the same times under the same DST class; and it parses back
//! (with the same [`CronOptions`](super::CronOptions)) to an equal [`Cron`](super::Cron).
//! Weekdays print as names, which mean the same under both numberings.

use alloc::vec::Vec;
use core::fmt::{self, Write};

use super::fields::{DayRule, FIRST_YEAR, Fields, LAST_YEAR};
use super::parse::{WEEKDAY_NAMES, Wild};

/// How a set may be written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    /// Written with `*` or a step: must print with one, to keep the DST class.
    Wild,
    /// Plain values, lists and ranges only, to keep the DST class.
    Plain,
    /// The DST class does not depend on it: the shortest form.
    Any,
    /// A restricted day field: never a bare `*` (which would lift the restriction), and no
    /// `a/s` shorthand (whose end differs between weekday numberings).
    Listed,
}

struct Set {
    values: Vec<u32>,
    min: u32,
    max: u32,
}

pub(crate) fn write(
    f: &mut fmt::Formatter<'_>,
    fields: &Fields,
    wild: Wild,
    arity: u8,
    zone: Option<&str>,
) -> fmt::Result {
    if let Some(zone) = zone {
        write!(f, "CRON_TZ={zone} ")?;
    }
    if arity >= 6 {
        write_set(f, &set(fields.seconds, 0, 59), style(wild.second), number)?;
        f.write_char(' ')?;
    }
    write_set(f, &set(fields.minutes, 0, 59), style(wild.minute), number)?;
    f.write_char(' ')?;
    write_set(
        f,
        &set(u64::from(fields.hours), 0, 23),
        style(wild.hour),
        number,
    )?;
    f.write_char(' ')?;
    write_days_of_month(f, fields)?;
    f.write_char(' ')?;
    write_set(f, &set(u64::from(fields.months), 1, 12), Style::Any, number)?;
    f.write_char(' ')?;
    write_days_of_week(f, fields)?;
    if arity == 7 {
        f.write_char(' ')?;
        match fields.years {
            None => f.write_char('*')?,
            Some(years) => {
                let years = set_of(|v| years.contains(v), 0, (LAST_YEAR - FIRST_YEAR) as u32);
                write_set(f, &years, Style::Any, |f, v| {
                    write!(f, "{}", v + FIRST_YEAR as u32)
                })?;
            }
        }
    }
    Ok(())
}

fn style(wild: bool) -> Style {
    if wild { Style::Wild } else { Style::Plain }
}

fn set(bits: u64, min: u32, max: u32) -> Set {
    set_of(|v| bits >> v & 1 == 1, min, max)
}

fn set_of(contains: impl Fn(u32) -> bool, min: u32, max: u32) -> Set {
    Set {
        values: (min..=max).filter(|&v| contains(v)).collect(),
        min,
        max,
    }
}

fn number(f: &mut fmt::Formatter<'_>, value: u32) -> fmt::Result {
    write!(f, "{value}")
}

fn weekday(f: &mut fmt::Formatter<'_>, value: u32) -> fmt::Result {
    f.write_str(WEEKDAY_NAMES[value as usize % 7])
}

type Name = fn(&mut fmt::Formatter<'_>, u32) -> fmt::Result;

/// One list item: `first-last/step`, with `step == 1` a plain range and `first == last` a
/// single value.
struct Item {
    first: u32,
    last: u32,
    step: u32,
}

/// Greedy split of sorted values into arithmetic runs (of three or more) and singles.
fn items(values: &[u32], allow_steps: bool) -> Vec<Item> {
    let mut items = Vec::new();
    let mut i = 0;
    while i < values.len() {
        let mut end = i;
        if i + 2 < values.len() {
            let step = values[i + 1] - values[i];
            if (allow_steps || step == 1) && values[i + 2] - values[i + 1] == step {
                end = i + 2;
                while end + 1 < values.len() && values[end + 1] - values[end] == step {
                    end += 1;
                }
            }
        }
        let step = if end > i {
            values[i + 1] - values[i]
        } else {
            1
        };
        items.push(Item {
            first: values[i],
            last: values[end],
            step,
        });
        i = end + 1;
    }
    items
}

fn write_set(f: &mut fmt::Formatter<'_>, set: &Set, style: Style, name: Name) -> fmt::Result {
    let values = &set.values;
    let full = values.len() as u32 == set.max - set.min + 1;
    if full && matches!(style, Style::Wild | Style::Any) {
        return f.write_char('*');
    }
    if matches!(style, Style::Wild | Style::Any) && values.len() >= 2 {
        // One run to the end of the field: `*/s` or `a/s`.
        let step = values[1] - values[0];
        let last = values[values.len() - 1];
        let one_run = values.windows(2).all(|w| w[1] - w[0] == step);
        if one_run && step >= 2 && last + step > set.max {
            if values[0] == set.min {
                return write!(f, "*/{step}");
            }
            name(f, values[0])?;
            return write!(f, "/{step}");
        }
    }
    if style == Style::Wild && values.len() == 1 {
        // A lone value written with a step (`5/59`, `0-0/2`): keep a step. The largest
        // step a field takes is its largest value, so `v/max` is `v` alone for `v > 0`.
        let value = values[0];
        name(f, value)?;
        if value > set.min {
            return write!(f, "/{}", set.max);
        }
        f.write_char('-')?;
        name(f, value)?;
        return f.write_str("/1");
    }
    let items = items(values, style != Style::Plain);
    let needs_marker = style == Style::Wild && items.iter().all(|item| item.step == 1);
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            f.write_char(',')?;
        }
        name(f, item.first)?;
        if item.last != item.first || (needs_marker && index == 0) {
            f.write_char('-')?;
            name(f, item.last)?;
        }
        if item.step != 1 || (needs_marker && index == 0) {
            write!(f, "/{}", item.step)?;
        }
    }
    Ok(())
}

/// Writes the items of a comma-separated list, the separators between them.
struct List<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    started: bool,
}

impl<'a, 'b> List<'a, 'b> {
    fn new(f: &'a mut fmt::Formatter<'b>) -> Self {
        List { f, started: false }
    }

    /// The formatter, after a separator if this is not the first item.
    fn item(&mut self) -> Result<&mut fmt::Formatter<'b>, fmt::Error> {
        if core::mem::replace(&mut self.started, true) {
            self.f.write_char(',')?;
        }
        Ok(self.f)
    }
}

fn write_days_of_month(f: &mut fmt::Formatter<'_>, fields: &Fields) -> fmt::Result {
    if matches!(fields.day_rule, DayRule::Every | DayRule::Weekdays) {
        return f.write_char('*');
    }
    let mut list = List::new(f);
    if fields.days != 0 {
        let days = set(u64::from(fields.days), 1, 31);
        write_set(list.item()?, &days, Style::Listed, number)?;
    }
    for n in (0..31).filter(|n| fields.days_before_last >> n & 1 == 1) {
        match n {
            0 => list.item()?.write_char('L')?,
            n => write!(list.item()?, "L-{n}")?,
        }
    }
    for day in (1..32).filter(|day| fields.nearest_weekdays >> day & 1 == 1) {
        write!(list.item()?, "{day}W")?;
    }
    if fields.last_weekday_of_month {
        list.item()?.write_str("LW")?;
    }
    Ok(())
}

fn write_days_of_week(f: &mut fmt::Formatter<'_>, fields: &Fields) -> fmt::Result {
    if matches!(fields.day_rule, DayRule::Every | DayRule::MonthDays) {
        return f.write_char('*');
    }
    let mut list = List::new(f);
    if fields.weekdays != 0 {
        let weekdays = set(u64::from(fields.weekdays), 0, 6);
        write_set(list.item()?, &weekdays, Style::Listed, weekday)?;
    }
    for bit in (0..35).filter(|bit| fields.nth_weekdays >> bit & 1 == 1) {
        let f = list.item()?;
        weekday(f, bit % 7)?;
        write!(f, "#{}", bit / 7 + 1)?;
    }
    for day in (0..7).filter(|day| fields.last_weekdays >> day & 1 == 1) {
        let f = list.item()?;
        weekday(f, day)?;
        f.write_char('L')?;
    }
    Ok(())
}
