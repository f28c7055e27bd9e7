//! From civil matches to instants in a time zone, with cano's DST rules.
//!
//! A zone's timeline is a run of *segments*: maximal spans of real time with one UTC offset,
//! separated by transitions. Within a segment with offset `o`, the civil time `c` is the
//! instant `c - o`, so the civil search of `search.rs` applies directly. At the edges:
//!
//! * **Gap** (the offset grows at a transition `t`): civil times in `[t + before, t + after)`
//!   never happen. A *fixed-time* job whose civil time falls there fires once, at `t`, the
//!   first instant after the gap; any other job skips them.
//! * **Fold** (the offset shrinks at `t`): civil times in `[t + after, t + before)` happen
//!   twice. A fixed-time job fires only at the first of them; any other job fires at both,
//!   because each is a real instant that matches.
//!
//! Because every answer is the least instant strictly after (or greatest strictly before)
//! the one asked about, fire times are strictly increasing in real time, always.

use jiff::Timestamp;
use jiff::tz::{AmbiguousOffset, TimeZone};

use super::calendar::Civil;
use super::fields::Fields;

/// A generous cap on the segments one search may cross: about 12 transitions a year for
/// [`SEARCH_YEARS`](super::search::SEARCH_YEARS) years. Real zones have at most two a year.
const MAX_SEGMENTS: u32 = 5_000;

/// A time zone as the search sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Zone<'a> {
    /// UTC or a fixed offset (in seconds): no transitions, no lookups.
    Fixed(i64),
    /// A zone with transitions (IANA or POSIX rules).
    Rules(&'a TimeZone),
}

impl<'a> Zone<'a> {
    /// Classifies `tz`, cheaply for the common cases (UTC and named zones).
    pub(crate) fn of(tz: &'a TimeZone) -> Zone<'a> {
        if *tz == TimeZone::UTC {
            return Zone::Fixed(0);
        }
        // Named zones have rules; asking jiff for a fixed offset of one would build an error.
        if tz.iana_name().is_some() {
            return Zone::Rules(tz);
        }
        match tz.to_fixed_offset() {
            Ok(offset) => Zone::Fixed(i64::from(offset.seconds())),
            Err(_) => Zone::Rules(tz),
        }
    }

    /// `tz` as already classified: fixed at `offset`, or with rules.
    pub(crate) fn with_offset(tz: &'a TimeZone, offset: Option<i64>) -> Zone<'a> {
        match offset {
            Some(offset) => Zone::Fixed(offset),
            None => Zone::Rules(tz),
        }
    }

    pub(crate) fn fixed_offset(self) -> Option<i64> {
        match self {
            Zone::Fixed(offset) => Some(offset),
            Zone::Rules(_) => None,
        }
    }
}

/// A compiled expression together with its DST class.
#[derive(Clone, Copy)]
pub(crate) struct Job<'a> {
    pub(crate) fields: &'a Fields,
    /// Seconds, minutes and hours are written without `*` or a step.
    pub(crate) fixed_time: bool,
}

/// The whole second just after `t` (the first candidate strictly after it).
fn first_second_after(t: Timestamp) -> i64 {
    let seconds = t.as_second();
    if t.subsec_nanosecond() < 0 {
        seconds
    } else {
        seconds.saturating_add(1)
    }
}

/// The whole second just before `t` (the last candidate strictly before it).
fn last_second_before(t: Timestamp) -> i64 {
    let seconds = t.as_second();
    if t.subsec_nanosecond() > 0 {
        seconds
    } else {
        seconds.saturating_sub(1)
    }
}

fn timestamp(seconds: i64) -> Option<Timestamp> {
    Timestamp::from_second(seconds).ok()
}

fn offset_at(tz: &TimeZone, seconds: i64) -> Option<i64> {
    Some(i64::from(tz.to_offset(timestamp(seconds)?).seconds()))
}

impl Job<'_> {
    /// The first fire strictly after `after`.
    pub(crate) fn next_after(&self, zone: Zone<'_>, after: Timestamp) -> Option<Timestamp> {
        let start = first_second_after(after);
        match zone {
            Zone::Fixed(offset) => {
                let civil = self.fields.next_at_or_after(start.checked_add(offset)?)?;
                timestamp(civil - offset)
            }
            Zone::Rules(tz) => self.next_in_rules(tz, start),
        }
    }

    /// The last fire strictly before `before`.
    pub(crate) fn prev_before(&self, zone: Zone<'_>, before: Timestamp) -> Option<Timestamp> {
        let start = last_second_before(before);
        match zone {
            Zone::Fixed(offset) => {
                let civil = self.fields.prev_at_or_before(start.checked_add(offset)?)?;
                timestamp(civil - offset)
            }
            Zone::Rules(tz) => self.prev_in_rules(tz, start),
        }
    }

    fn next_in_rules(&self, tz: &TimeZone, mut t: i64) -> Option<Timestamp> {
        // The walk below checks a gap when it crosses into the segment after it. A search
        // that *starts* on a gap's end instant (from the last second before the gap, or a
        // fraction of it) crosses nothing, so the gap it starts on is checked here.
        if self.fixed_time && self.fires_at_gap_end(tz, t) {
            return timestamp(t);
        }
        // The first civil match at or after `searched_from`, reused while still valid.
        let mut cached: Option<(i64, i64)> = None;
        for _ in 0..MAX_SEGMENTS {
            let now = timestamp(t)?;
            let offset = i64::from(tz.to_offset(now).seconds());
            let next_transition = tz.following(now).next();
            let from = t + offset;
            let civil = match cached {
                Some((searched_from, civil)) if searched_from <= from && civil >= from => civil,
                _ => {
                    let civil = self.fields.next_at_or_after(from)?;
                    cached = Some((from, civil));
                    civil
                }
            };
            let instant = civil - offset;
            let segment_end = next_transition
                .as_ref()
                .map(|tr| tr.timestamp().as_second());
            if segment_end.is_none_or(|end| instant < end) {
                match self.fold_end_if_repeat(tz, civil, offset) {
                    None => return timestamp(instant),
                    Some(fold_end) => {
                        // A fixed-time job already fired at the first pass of this civil
                        // time: skip to the end of the repeated span.
                        t = fold_end;
                        continue;
                    }
                }
            }
            let (end, transition) = match (segment_end, next_transition) {
                (Some(end), Some(transition)) => (end, transition),
                _ => return None,
            };
            let next_offset = i64::from(transition.offset().seconds());
            if self.fixed_time && next_offset > offset && civil < end + next_offset {
                // The job's civil time falls in the gap: it fires as the gap ends.
                return timestamp(end);
            }
            t = end;
        }
        None
    }

    fn prev_in_rules(&self, tz: &TimeZone, mut t: i64) -> Option<Timestamp> {
        let mut cached: Option<(i64, i64)> = None;
        for _ in 0..MAX_SEGMENTS {
            let now = timestamp(t)?;
            let offset = i64::from(tz.to_offset(now).seconds());
            // The transition that started this segment (at or before `t`).
            let start_transition = tz.preceding(timestamp(t + 1)?).next();
            let from = t + offset;
            let civil = match cached {
                Some((searched_from, civil)) if searched_from >= from && civil <= from => civil,
                _ => {
                    let civil = self.fields.prev_at_or_before(from)?;
                    cached = Some((from, civil));
                    civil
                }
            };
            let instant = civil - offset;
            let segment_start = start_transition
                .as_ref()
                .map(|tr| tr.timestamp().as_second());
            // A repeated civil time of a fixed-time job is skipped: its first pass lies before
            // this segment, and so do all other first passes.
            if segment_start.is_none_or(|start| instant >= start)
                && self.fold_end_if_repeat(tz, civil, offset).is_none()
            {
                return timestamp(instant);
            }
            let start = segment_start?;
            let previous_offset = offset_at(tz, start - 1)?;
            if self.fixed_time && previous_offset < offset && civil >= start + previous_offset {
                // The last civil match before this segment falls in the gap that opens it.
                return timestamp(start);
            }
            t = start - 1;
        }
        None
    }

    /// Whether `t` is the end of a gap (a transition at which the offset grows) that holds
    /// a civil time of this job: a fixed-time job then fires at `t`.
    fn fires_at_gap_end(&self, tz: &TimeZone, t: i64) -> bool {
        let Some(transition) = timestamp(t.saturating_add(1)).and_then(|n| tz.preceding(n).next())
        else {
            return false;
        };
        if transition.timestamp().as_second() != t {
            return false;
        }
        let after = i64::from(transition.offset().seconds());
        let Some(before) = offset_at(tz, t - 1) else {
            return false;
        };
        after > before
            && self
                .fields
                .next_at_or_after(t + before)
                .is_some_and(|civil| civil < t + after)
    }

    /// For a fixed-time job whose civil time `civil`, read with `offset`, is the *second*
    /// pass through a fold: the instant at which the fold's repeated span ends. `None` when
    /// the job should fire at `civil`.
    fn fold_end_if_repeat(&self, tz: &TimeZone, civil: i64, offset: i64) -> Option<i64> {
        if !self.fixed_time {
            return None;
        }
        let c = Civil::from_local_seconds(civil);
        let datetime = jiff::civil::DateTime::new(
            c.year as i16,
            c.month as i8,
            c.day as i8,
            c.hour as i8,
            c.minute as i8,
            c.second as i8,
            0,
        )
        .ok()?;
        match tz.to_ambiguous_timestamp(datetime).offset() {
            AmbiguousOffset::Fold { before, after } if i64::from(after.seconds()) == offset => {
                let repeated = i64::from(before.seconds()) - offset;
                // The fold began at the transition at or before this instant; its repeated
                // span lasts `before - after` seconds from there.
                let transition = tz.preceding(timestamp(civil - offset + 1)?).next()?;
                Some(transition.timestamp().as_second() + repeated)
            }
            _ => None,
        }
    }
}
