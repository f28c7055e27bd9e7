//! Golden DST tests for the cron engine, plus a brute-force oracle that checks every minute
//! around every transition against the written rules.
//!
//! Zones: America/New_York, Europe/London, Australia/Lord_Howe (30-minute shift),
//! America/Santiago and Africa/Cairo (transitions at midnight), the New York rules as a POSIX
//! TZ string, UTC and fixed offsets. Expected times were worked out by hand from each zone's
//! 2026 rules (system tzdata), as local time with its offset.

use cano_core::cron::Cron;
use cano_core::jiff::tz::{AmbiguousOffset, TimeZone};
use cano_core::jiff::{Timestamp, ZonedDateTime};

fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `2026-03-08T01:00:00-05:00` in `tz`.
fn at(tz: &TimeZone, text: &str) -> ZonedDateTime {
    let timestamp: Timestamp = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
    timestamp.to_zoned_datetime(tz.clone())
}

fn show(z: &ZonedDateTime) -> String {
    z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// The first `expected.len()` fires of `expression` in `tz` strictly after `start`.
#[track_caller]
fn assert_fires(tz: &str, expression: &str, start: &str, expected: &[&str]) {
    let tz = zone(tz);
    let cron = Cron::parse(expression).unwrap();
    let start = at(&tz, start);
    let fires: Vec<String> = cron
        .upcoming(&start)
        .take(expected.len())
        .map(|z| show(&z))
        .collect();
    assert_eq!(fires, expected, "{expression} after {}", show(&start));
    // The same fires, walked backwards from just after the last one.
    let last = at(&tz, expected[expected.len() - 1]);
    let after_last = last.timestamp() + cano_core::jiff::SignedDuration::from_secs(1);
    let mut back: Vec<String> = cron
        .preceding(&after_last.to_zoned_datetime(tz.clone()))
        .take(expected.len())
        .map(|z| show(&z))
        .collect();
    back.reverse();
    assert_eq!(back, expected, "{expression} backwards");
}

#[test]
fn new_york_spring_forward() {
    let tz = "America/New_York";
    // 2026-03-08 02:00 EST -> 03:00 EDT.
    assert_fires(
        tz,
        "30 2 * * *",
        "2026-03-07T12:00:00-05:00",
        &["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"],
    );
    assert_fires(
        tz,
        "*/30 * * * *",
        "2026-03-08T01:00:00-05:00",
        &[
            "2026-03-08T01:30:00-05:00",
            "2026-03-08T03:00:00-04:00",
            "2026-03-08T03:30:00-04:00",
        ],
    );
    assert_fires(
        tz,
        "0 * * * *",
        "2026-03-08T00:30:00-05:00",
        &[
            "2026-03-08T01:00:00-05:00",
            "2026-03-08T03:00:00-04:00",
            "2026-03-08T04:00:00-04:00",
        ],
    );
    // Several fixed times in one gap fire once, together.
    assert_fires(
        tz,
        "0 0,30 2 * * *",
        "2026-03-08T01:00:00-05:00",
        &["2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00"],
    );
}

#[test]
fn new_york_fall_back() {
    let tz = "America/New_York";
    // 2026-11-01 02:00 EDT -> 01:00 EST: 01:00-01:59 happens twice.
    assert_fires(
        tz,
        "30 1 * * *",
        "2026-10-31T12:00:00-04:00",
        &["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
    );
    assert_fires(
        tz,
        "*/30 * * * *",
        "2026-11-01T00:45:00-04:00",
        &[
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T01:30:00-04:00",
            "2026-11-01T01:00:00-05:00",
            "2026-11-01T01:30:00-05:00",
            "2026-11-01T02:00:00-05:00",
        ],
    );
    // A list is fixed-time too: 01:00 once (first pass), then 02:00.
    assert_fires(
        tz,
        "0 1,2 * * *",
        "2026-11-01T00:00:00-04:00",
        &["2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00"],
    );
    // Asked during the second pass, a fixed-time job's next fire is the next day.
    assert_fires(
        tz,
        "30 1 * * *",
        "2026-11-01T01:10:00-05:00",
        &["2026-11-02T01:30:00-05:00"],
    );
    let cron = Cron::parse("30 1 * * *").unwrap();
    let second_pass = at(&zone(tz), "2026-11-01T01:45:00-05:00");
    assert_eq!(
        show(&cron.prev_before(&second_pass).unwrap()),
        "2026-11-01T01:30:00-04:00"
    );
}

#[test]
fn london() {
    let tz = "Europe/London";
    // 2026-03-29 01:00 GMT -> 02:00 BST.
    assert_fires(
        tz,
        "30 1 * * *",
        "2026-03-28T12:00:00+00:00",
        &["2026-03-29T02:00:00+01:00", "2026-03-30T01:30:00+01:00"],
    );
    assert_fires(
        tz,
        "15 * * * *",
        "2026-03-29T00:00:00+00:00",
        &[
            "2026-03-29T00:15:00+00:00",
            "2026-03-29T02:15:00+01:00",
            "2026-03-29T03:15:00+01:00",
        ],
    );
    // 2026-10-25 02:00 BST -> 01:00 GMT.
    assert_fires(
        tz,
        "30 1 * * *",
        "2026-10-24T12:00:00+01:00",
        &["2026-10-25T01:30:00+01:00", "2026-10-26T01:30:00+00:00"],
    );
    // A fixed hour with a minute step is an interval job: both passes.
    assert_fires(
        tz,
        "*/20 1 * * *",
        "2026-10-25T00:50:00+01:00",
        &[
            "2026-10-25T01:00:00+01:00",
            "2026-10-25T01:20:00+01:00",
            "2026-10-25T01:40:00+01:00",
            "2026-10-25T01:00:00+00:00",
            "2026-10-25T01:20:00+00:00",
            "2026-10-25T01:40:00+00:00",
            "2026-10-26T01:00:00+00:00",
        ],
    );
}

#[test]
fn lord_howe_half_hour_shift() {
    let tz = "Australia/Lord_Howe";
    // 2026-04-05 02:00 (+11) -> 01:30 (+10:30): 01:30-01:59 twice.
    assert_fires(
        tz,
        "45 1 * * *",
        "2026-04-04T12:00:00+11:00",
        &["2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"],
    );
    assert_fires(
        tz,
        "*/15 * * * *",
        "2026-04-05T01:20:00+11:00",
        &[
            "2026-04-05T01:30:00+11:00",
            "2026-04-05T01:45:00+11:00",
            "2026-04-05T01:30:00+10:30",
            "2026-04-05T01:45:00+10:30",
            "2026-04-05T02:00:00+10:30",
        ],
    );
    // 2026-10-04 02:00 (+10:30) -> 02:30 (+11): 02:00-02:29 never happens.
    assert_fires(
        tz,
        "15 2 * * *",
        "2026-10-03T12:00:00+10:30",
        &["2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"],
    );
    assert_fires(
        tz,
        "*/15 * * * *",
        "2026-10-04T01:50:00+10:30",
        &["2026-10-04T02:30:00+11:00", "2026-10-04T02:45:00+11:00"],
    );
}

#[test]
fn santiago_midnight_transitions() {
    let tz = "America/Santiago";
    // 2026-09-06 00:00 (-04) -> 01:00 (-03): the day starts at 01:00.
    assert_fires(
        tz,
        "0 0 * * *",
        "2026-09-05T12:00:00-04:00",
        &["2026-09-06T01:00:00-03:00", "2026-09-07T00:00:00-03:00"],
    );
    assert_fires(
        tz,
        "0 * * * *",
        "2026-09-05T22:30:00-04:00",
        &[
            "2026-09-05T23:00:00-04:00",
            "2026-09-06T01:00:00-03:00",
            "2026-09-06T02:00:00-03:00",
        ],
    );
    // 2026-04-05 00:00 (-03) -> 2026-04-04 23:00 (-04): 23:00-23:59 on the 4th twice.
    assert_fires(
        tz,
        "30 23 * * *",
        "2026-04-04T12:00:00-03:00",
        &["2026-04-04T23:30:00-03:00", "2026-04-05T23:30:00-04:00"],
    );
    assert_fires(
        tz,
        "0 * * * *",
        "2026-04-04T22:30:00-03:00",
        &[
            "2026-04-04T23:00:00-03:00",
            "2026-04-04T23:00:00-04:00",
            "2026-04-05T00:00:00-04:00",
        ],
    );
    // Midnight on the fall-back day happens once (the clock never shows 00:00 twice).
    assert_fires(
        tz,
        "0 0 * * *",
        "2026-04-04T12:00:00-03:00",
        &["2026-04-05T00:00:00-04:00", "2026-04-06T00:00:00-04:00"],
    );
}

#[test]
fn cairo_midnight_transitions() {
    let tz = "Africa/Cairo";
    // 2026-04-24 (last Friday of April) 00:00 (+02) -> 01:00 (+03).
    assert_fires(
        tz,
        "0 0 * * *",
        "2026-04-23T12:00:00+02:00",
        &["2026-04-24T01:00:00+03:00", "2026-04-25T00:00:00+03:00"],
    );
    assert_fires(
        tz,
        "0 * * * *",
        "2026-04-23T23:30:00+02:00",
        &["2026-04-24T01:00:00+03:00", "2026-04-24T02:00:00+03:00"],
    );
    // 2026-10-29 (last Thursday of October) 24:00 (+03) -> 23:00 (+02).
    assert_fires(
        tz,
        "30 23 * * *",
        "2026-10-29T12:00:00+03:00",
        &["2026-10-29T23:30:00+03:00", "2026-10-30T23:30:00+02:00"],
    );
    assert_fires(
        tz,
        "*/30 23 * * *",
        "2026-10-29T22:50:00+03:00",
        &[
            "2026-10-29T23:00:00+03:00",
            "2026-10-29T23:30:00+03:00",
            "2026-10-29T23:00:00+02:00",
            "2026-10-29T23:30:00+02:00",
            "2026-10-30T23:00:00+02:00",
        ],
    );
    assert_fires(
        tz,
        "0 0 * * *",
        "2026-10-29T12:00:00+03:00",
        &["2026-10-30T00:00:00+02:00", "2026-10-31T00:00:00+02:00"],
    );
}

#[test]
fn utc_and_fixed_offsets_have_no_transitions() {
    assert_fires(
        "UTC",
        "30 2 * * *",
        "2026-03-08T00:00:00Z",
        &["2026-03-08T02:30:00+00:00", "2026-03-09T02:30:00+00:00"],
    );
    let cron = Cron::parse("CRON_TZ=+05:30 0 9 * * *").unwrap();
    let after = at(&TimeZone::UTC, "2026-01-01T00:00:00Z");
    let next = cron.next_after(&after).unwrap();
    assert_eq!(show(&next), "2026-01-01T09:00:00+05:30");
    assert_eq!(next.timestamp().to_string(), "2026-01-01T03:30:00Z");
    // A fixed-offset value zone, no prefix.
    let minus_eight = TimeZone::fixed(cano_core::jiff::tz::offset(-8));
    let cron = Cron::parse("0 9 * * *").unwrap();
    let next = cron
        .next_after(&at(&minus_eight, "2026-03-08T10:00:00Z"))
        .unwrap();
    assert_eq!(show(&next), "2026-03-08T09:00:00-08:00");
}

#[test]
fn prefix_zone_overrides_the_value_zone() {
    let cron = Cron::parse("CRON_TZ=Europe/London 30 1 * * *").unwrap();
    assert_eq!(cron.time_zone(), Some(&zone("Europe/London")));
    let tokyo = at(&zone("Asia/Tokyo"), "2026-03-28T12:00:00Z");
    let next = cron.next_after(&tokyo).unwrap();
    assert_eq!(next.time_zone(), &zone("Europe/London"));
    assert_eq!(show(&next), "2026-03-29T02:00:00+01:00");
    let tz_prefix = Cron::parse("TZ=Europe/London 30 1 * * *").unwrap();
    assert_eq!(tz_prefix, cron);
    assert_eq!(tz_prefix.to_string(), "CRON_TZ=Europe/London 30 1 * * *");
}

#[test]
fn posix_rules_match_the_iana_zone_since_2007() {
    for expression in ["30 2 * * *", "*/30 * * * *", "30 1 * * *", "0 * * * *"] {
        let posix = Cron::parse(&format!("CRON_TZ=EST5EDT,M3.2.0,M11.1.0 {expression}")).unwrap();
        let iana = Cron::parse(&format!("CRON_TZ=America/New_York {expression}")).unwrap();
        let start = at(&TimeZone::UTC, "2026-01-01T00:00:00Z");
        let posix_fires = posix.upcoming(&start).take(800).map(|z| z.timestamp());
        let iana_fires = iana.upcoming(&start).take(800).map(|z| z.timestamp());
        assert!(posix_fires.eq(iana_fires), "{expression}");
    }
}

/// What the rules say about instant `t`: does the job fire at it? Civil matching comes from
/// the engine in UTC (checked against the peers in the differential tests); the DST part is
/// written out here independently of the engine's segment walk.
fn fires_at(cron: &Cron, tz: &TimeZone, t: Timestamp) -> bool {
    let civil_matches = |local: i64| {
        let as_utc = Timestamp::from_second(local).unwrap();
        let before = Timestamp::from_second(local - 1).unwrap();
        cron.next_after_timestamp(before, &TimeZone::UTC) == Some(as_utc)
    };
    let offset = i64::from(tz.to_offset(t).seconds());
    let local = t.as_second() + offset;
    if civil_matches(local) {
        if !cron.is_fixed_time() {
            return true;
        }
        let datetime = tz.to_datetime(t);
        return match tz.to_ambiguous_timestamp(datetime).offset() {
            // The second pass of a fold: a fixed-time job already fired at the first.
            AmbiguousOffset::Fold { after, .. } => i64::from(after.seconds()) != offset,
            _ => true,
        };
    }
    // A fixed-time job whose civil time fell into a gap that ends at `t` fires at `t`.
    let previous = i64::from(
        tz.to_offset(t - cano_core::jiff::SignedDuration::from_secs(1))
            .seconds(),
    );
    if cron.is_fixed_time() && previous < offset {
        let gap_start = t.as_second() + previous;
        return (gap_start..local).step_by(60).any(civil_matches);
    }
    false
}

#[test]
fn every_minute_around_every_2026_transition_follows_the_rules() {
    let zones = [
        "America/New_York",
        "Europe/London",
        "Australia/Lord_Howe",
        "America/Santiago",
        "Africa/Cairo",
    ];
    let expressions = [
        "30 2 * * *",
        "0 2 * * *",
        "45 1 * * *",
        "15 2 * * *",
        "30 23 * * *",
        "0 0 * * *",
        "0 1,2 * * *",
        "0-59/20 1-2 * * *",
        "*/15 * * * *",
        "0 * * * *",
        "*/20 1 * * *",
        "10 0-3 * * *",
    ];
    let start = "2026-01-01T00:00:00Z".parse::<Timestamp>().unwrap();
    for name in zones {
        let tz = zone(name);
        let transitions: Vec<Timestamp> = tz
            .following(start)
            .take_while(|t| t.timestamp().as_second() < start.as_second() + 366 * 86_400)
            .map(|t| t.timestamp())
            .collect();
        assert_eq!(transitions.len(), 2, "{name} has two transitions in 2026");
        for expression in expressions {
            let cron = Cron::parse(expression).unwrap();
            for transition in &transitions {
                let from = transition.as_second() - 30 * 3600;
                let to = transition.as_second() + 30 * 3600;
                let expected: Vec<i64> = (from / 60 + 1..to / 60)
                    .map(|minute| minute * 60)
                    .filter(|&t| fires_at(&cron, &tz, Timestamp::from_second(t).unwrap()))
                    .collect();
                let after = Timestamp::from_second(from)
                    .unwrap()
                    .to_zoned_datetime(tz.clone());
                let actual: Vec<i64> = cron
                    .upcoming(&after)
                    .map(|z| z.timestamp().as_second())
                    .take_while(|&t| t < to)
                    .collect();
                assert_eq!(
                    actual, expected,
                    "{expression} in {name} around {transition}"
                );
                assert!(
                    actual.windows(2).all(|w| w[0] < w[1]),
                    "strictly increasing"
                );
                let before = Timestamp::from_second(to)
                    .unwrap()
                    .to_zoned_datetime(tz.clone());
                let mut backwards: Vec<i64> = cron
                    .preceding(&before)
                    .map(|z| z.timestamp().as_second())
                    .take_while(|&t| t > from)
                    .collect();
                backwards.reverse();
                assert_eq!(backwards, expected, "{expression} backwards in {name}");
            }
        }
    }
}

/// Issue 10, item 1: a search starting in the last second before a gap (or a fraction of it)
/// began exactly at the transition, where the engine no longer looked back into the gap, so
/// a fixed-time job lost its day.
#[test]
fn a_search_from_the_last_second_before_a_gap_keeps_the_gap_day() {
    let cases = [
        // (expression, start, expected fire)
        (
            "CRON_TZ=America/New_York 30 2 * * *",
            "2026-03-08T01:59:59-05:00",
            "2026-03-08T03:00:00-04:00",
        ),
        (
            "CRON_TZ=America/New_York 30 2 * * *",
            "2026-03-08T01:59:59.5-05:00",
            "2026-03-08T03:00:00-04:00",
        ),
        (
            "CRON_TZ=America/New_York 30 2 * * *",
            "2026-03-08T01:59:59.999999999-05:00",
            "2026-03-08T03:00:00-04:00",
        ),
        (
            "CRON_TZ=America/New_York 0 30 2 * * *",
            "2026-03-08T01:59:59-05:00",
            "2026-03-08T03:00:00-04:00",
        ),
        (
            "CRON_TZ=EST5EDT,M3.2.0,M11.1.0 30 2 * * *",
            "2026-03-08T01:59:59-05:00",
            "2026-03-08T03:00:00-04:00",
        ),
        (
            "CRON_TZ=EST5EDT,M3.2.0,M11.1.0 0 30 2 * * *",
            "2026-03-08T01:59:59.5-05:00",
            "2026-03-08T03:00:00-04:00",
        ),
        (
            "CRON_TZ=Europe/Stockholm 30 2 * * *",
            "2026-03-29T01:59:59+01:00",
            "2026-03-29T03:00:00+02:00",
        ),
        (
            "CRON_TZ=Europe/Paris 0 30 2 * * *",
            "2026-03-29T01:59:59.5+01:00",
            "2026-03-29T03:00:00+02:00",
        ),
        (
            "CRON_TZ=Australia/Lord_Howe 15 2 * * *",
            "2026-10-04T01:59:59+10:30",
            "2026-10-04T02:30:00+11:00",
        ),
        (
            "CRON_TZ=America/Santiago 0 0 * * *",
            "2026-09-05T23:59:59.25-04:00",
            "2026-09-06T01:00:00-03:00",
        ),
    ];
    for (expression, start, expected) in cases {
        let cron = Cron::parse(expression).unwrap();
        let tz = cron.time_zone().unwrap().clone();
        let start = at(&tz, start);
        let next = cron.next_after(&start).unwrap();
        assert_eq!(show(&next), expected, "{expression} after {start}");
        // The other direction agrees: the fire after this one looks back to it.
        let following = cron.next_after(&next).unwrap();
        assert_eq!(
            cron.prev_before(&following).map(|z| show(&z)).as_deref(),
            Some(expected),
            "{expression} before {following}"
        );
        assert!(
            cron.prev_before(&next).unwrap().timestamp() <= start.timestamp(),
            "{expression}: nothing fires between {start} and {next}"
        );
    }
}

/// The instants at which `cron` fires in `tz` for civil times in `[from, to)` (local seconds),
/// derived from the written DST rules: civil matching comes from the engine in UTC (checked
/// against the peers in the differential tests), the DST mapping from jiff's own
/// disambiguation, independently of the engine's segment walk.
fn fires_for_civil_window(cron: &Cron, tz: &TimeZone, from: i64, to: i64) -> Vec<i64> {
    let fixed = cron.is_fixed_time();
    let start = Timestamp::from_second(from - 1).unwrap();
    let mut fires = Vec::new();
    let mut cursor = start;
    while let Some(civil) = cron.next_after_timestamp(cursor, &TimeZone::UTC) {
        let local = civil.as_second();
        if local >= to {
            break;
        }
        cursor = civil;
        let datetime = civil.to_zoned_datetime(TimeZone::UTC).datetime();
        match tz.to_ambiguous_timestamp(datetime).offset() {
            AmbiguousOffset::Unambiguous { offset } => {
                fires.push(local - i64::from(offset.seconds()));
            }
            AmbiguousOffset::Gap { before, .. } => {
                if fixed {
                    // The gap's transition: the latest one at or before `local - before`.
                    let latest =
                        Timestamp::from_second(local - i64::from(before.seconds()) + 1).unwrap();
                    let transition = tz.preceding(latest).next().unwrap();
                    fires.push(transition.timestamp().as_second());
                }
            }
            AmbiguousOffset::Fold { before, after } => {
                fires.push(local - i64::from(before.seconds()));
                if !fixed {
                    fires.push(local - i64::from(after.seconds()));
                }
            }
        }
    }
    fires.sort_unstable();
    fires.dedup();
    fires
}

/// Start instants at sub-second offsets through the seconds around every transition of many
/// zones (IANA and POSIX rules) over decades, and around every fire near it: `next_after`
/// and `prev_before` must give the least fire strictly after and the greatest strictly before,
/// as the gap and fold rules define them.
#[test]
fn every_start_instant_around_every_transition_follows_the_rules() {
    let zones: Vec<(&str, TimeZone)> = [
        "America/New_York",
        "Europe/Stockholm",
        "Europe/Paris",
        "Europe/London",
        "Europe/Dublin",
        "Australia/Lord_Howe",
        "America/Santiago",
        "America/Sao_Paulo",
        "America/Havana",
        "America/St_Johns",
        "Africa/Cairo",
        "Africa/Casablanca",
        "Asia/Tehran",
        "Pacific/Apia",
        "Pacific/Chatham",
        "Antarctica/Troll",
    ]
    .into_iter()
    .map(|name| (name, zone(name)))
    .chain(
        [
            "EST5EDT,M3.2.0,M11.1.0",
            "CET-1CEST,M3.5.0,M10.5.0/3",
            "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
            "<-04>4<-03>,M9.1.6/24,M4.1.6/24",
        ]
        .into_iter()
        .map(|rule| (rule, TimeZone::posix(rule).unwrap())),
    )
    .collect();
    let expressions = [
        "30 2 * * *",
        "0 30 2 * * *",
        "59 59 1 * * *",
        "0 2 * * *",
        "0 3 * * *",
        "15,45 2 * * *",
        "30 1 * * *",
        "0 0 * * *",
        "30 23 * * *",
        "0 0-30 1-2 * * *",
        "*/15 * * * *",
        "*/30 0-3 * * * *",
    ]
    .map(|e| Cron::parse(e).unwrap());
    // Fractions of a second a start instant may carry.
    let fractions = [0, 500_000_000, 999_999_999];
    let first = "1970-01-01T00:00:00Z".parse::<Timestamp>().unwrap();
    let last = "2040-01-01T00:00:00Z".parse::<Timestamp>().unwrap();
    let at_nanos = |nanos: i128| Timestamp::from_nanosecond(nanos).unwrap();
    let mut checked = 0u64;
    for (name, tz) in &zones {
        let transitions: Vec<i64> = tz
            .following(first)
            .map(|t| t.timestamp())
            .take_while(|t| *t < last)
            .map(|t| t.as_second())
            .collect();
        assert!(transitions.len() >= 10, "{name} has transitions");
        for &transition in &transitions {
            for cron in &expressions {
                // Instants within a day of the transition are checked (three hours for
                // interval jobs, which fire often), with every fire among them.
                let reach = if cron.is_fixed_time() {
                    86_400
                } else {
                    3 * 3600
                };
                let (low, high) = (transition - reach, transition + reach);
                let offsets = [low, transition - 1, transition, high]
                    .into_iter()
                    .chain(
                        transitions
                            .iter()
                            .copied()
                            .filter(|t| (low..=high).contains(t)),
                    )
                    .map(|t| i64::from(tz.to_offset(Timestamp::from_second(t).unwrap()).seconds()));
                let (least, most) =
                    offsets.fold((i64::MAX, i64::MIN), |(l, m), o| (l.min(o), m.max(o)));
                let fires = fires_for_civil_window(cron, tz, low + least, high + most + 1);
                let mut starts: Vec<i64> = (-3..=3).map(|k| transition + k).collect();
                starts.extend(
                    fires
                        .iter()
                        .filter(|&&f| (transition - 3600..transition + 3600).contains(&f))
                        .flat_map(|&f| [f - 1, f]),
                );
                for second in starts {
                    for fraction in fractions {
                        let t = i128::from(second) * 1_000_000_000 + fraction;
                        let start = at_nanos(t);
                        let next = cron.next_after_timestamp(start, tz).map(|n| n.as_second());
                        let expected_next = fires
                            .iter()
                            .copied()
                            .find(|&f| i128::from(f) * 1_000_000_000 > t && f <= high);
                        match expected_next {
                            Some(expected) => assert_eq!(
                                next,
                                Some(expected),
                                "{cron} in {name}: next after {start} (transition {})",
                                at_nanos(i128::from(transition) * 1_000_000_000)
                            ),
                            None => assert!(
                                next.is_none_or(|n| n > high),
                                "{cron} in {name}: next after {start} is {next:?}, none expected"
                            ),
                        }
                        let prev = cron.prev_before_timestamp(start, tz).map(|p| p.as_second());
                        let expected_prev = fires
                            .iter()
                            .copied()
                            .rev()
                            .find(|&f| (i128::from(f) * 1_000_000_000) < t && f >= low);
                        match expected_prev {
                            Some(expected) => assert_eq!(
                                prev,
                                Some(expected),
                                "{cron} in {name}: prev before {start} (transition {})",
                                at_nanos(i128::from(transition) * 1_000_000_000)
                            ),
                            None => assert!(
                                prev.is_none_or(|p| p < low),
                                "{cron} in {name}: prev before {start} is {prev:?}, none expected"
                            ),
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 100_000, "{checked} start instants");
}
