//! DST rules for day rules and unusual zones (issue 10's class, with cases its fixers did
//! not write): `L`, `LW`, `nW`, `d#n`, `dL`, year fields and day-restricted fixed times,
//! around transitions at midnight (America/Santiago, America/Havana, Asia/Beirut), whole
//! skipped days (Pacific/Apia 2011, Pacific/Kwajalein 1993, Pacific/Kiritimati 1994),
//! two-hour and odd shifts (Antarctica/Troll, Australia/Lord_Howe, America/Caracas,
//! Asia/Pyongyang), and before 1970. Every start instant near a transition, and next to
//! every fire near it, with sub-second offsets: `next_after` and `prev_before` give the least
//! fire strictly after and the greatest strictly before, as the written gap and fold rules
//! define them; the iterators are strictly monotonic and agree with both.

use cano_core::cron::Cron;
use cano_core::jiff::Timestamp;
use cano_core::jiff::tz::{AmbiguousOffset, TimeZone};

/// The instants at which `cron` fires in `tz` for civil times in `[from, to)` (local
/// seconds): civil matching from the engine in UTC (checked against the peers by the
/// differential tests), the DST mapping from jiff's own disambiguation.
fn oracle(cron: &Cron, tz: &TimeZone, from: i64, to: i64) -> Vec<i64> {
    let fixed = cron.is_fixed_time();
    let mut fires = Vec::new();
    let mut cursor = Timestamp::from_second(from - 1).unwrap();
    while let Some(civil) = cron.next_after_timestamp(cursor, &TimeZone::UTC) {
        let local = civil.as_second();
        if local >= to {
            break;
        }
        cursor = civil;
        let datetime = civil.to_zoned_datetime(TimeZone::UTC).datetime();
        match tz.to_ambiguous_timestamp(datetime).offset() {
            AmbiguousOffset::Unambiguous { offset } => {
                fires.push(local - i64::from(offset.seconds()))
            }
            AmbiguousOffset::Gap { before, .. } => {
                if fixed {
                    // Fires once, as the gap ends: at its transition.
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

/// The zones, each with the years whose transitions are checked.
const ZONES: [(&str, &[i16]); 14] = [
    ("America/Santiago", &[1990, 2016, 2022, 2026, 2035]),
    ("America/Havana", &[1985, 2012, 2026]),
    ("Asia/Beirut", &[1995, 2026, 2031]),
    ("Antarctica/Troll", &[2026, 2030]),
    ("Australia/Lord_Howe", &[1985, 2026, 2031]),
    ("Pacific/Apia", &[2011]),
    ("Pacific/Kwajalein", &[1969, 1993]),
    ("Pacific/Kiritimati", &[1994]),
    ("America/Caracas", &[2007, 2016]),
    ("Asia/Pyongyang", &[2015, 2018]),
    ("Europe/Moscow", &[2011, 2014]),
    ("America/Asuncion", &[2023, 2024]),
    ("America/Scoresbysund", &[2024]),
    ("Asia/Gaza", &[2026]),
];

const EXPRESSIONS: [&str; 18] = [
    "0 0 L * *",
    "0 0 LW * *",
    "0 0 * * SUN#1",
    "0 0 * * SATL",
    "30 0 1W * *",
    "0 0 15W * *",
    "0 0 L-1 * *",
    "0 0 1 * SUN",
    "0 0 0 * * SUN 1970-2040",
    "0 30 2 * * * 1980-2040/3",
    "59 59 23 * * *",
    "0 0 0 * * *",
    "30 12 31 12 *",
    "0 12 30 12 *",
    "0 0,30 0-3 * * *",
    "0 0 0 ? * 6#5",
    "0 */7 * * * *",
    "*/20 0-1 * * *",
];

#[test]
fn day_rules_and_unusual_zones_follow_the_gap_and_fold_rules() {
    let crons = EXPRESSIONS.map(|e| Cron::parse(e).unwrap());
    let mut checked = 0u64;
    for (name, years) in ZONES {
        let tz = TimeZone::get(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        let transitions: Vec<i64> = years
            .iter()
            .flat_map(|&year| {
                let new_year =
                    |y: i16| format!("{y}-01-01T00:00:00Z").parse::<Timestamp>().unwrap();
                let (start, end) = (new_year(year), new_year(year + 1));
                tz.following(start)
                    .map(|t| t.timestamp())
                    .take_while(move |t| *t < end)
                    .map(|t| t.as_second())
            })
            .collect();
        assert!(
            !transitions.is_empty(),
            "{name} has transitions in {years:?}"
        );
        for &transition in &transitions {
            for cron in &crons {
                let fixed = cron.is_fixed_time();
                let reach = if fixed { 3 * 86_400 } else { 4 * 3600 };
                let (low, high) = (transition - reach, transition + reach);
                // Offsets in these zones stay within ±15 h: a civil window 30 h wider on
                // each side holds every fire of the instant window.
                let fires = oracle(cron, &tz, low - 30 * 3600, high + 30 * 3600);
                let near = if fixed { 2 * 86_400 } else { 1800 };
                let mut starts: Vec<i64> = (-2..=2).map(|k| transition + k).collect();
                starts.extend(
                    fires
                        .iter()
                        .filter(|&&f| (transition - near..transition + near).contains(&f))
                        .flat_map(|&f| [f - 1, f]),
                );
                for second in starts {
                    for fraction in [0i128, 1, 500_000_000, 999_999_999] {
                        let t = i128::from(second) * 1_000_000_000 + fraction;
                        let start = Timestamp::from_nanosecond(t).unwrap();
                        let next = cron.next_after_timestamp(start, &tz).map(|n| n.as_second());
                        let expected = fires
                            .iter()
                            .copied()
                            .find(|&f| i128::from(f) * 1_000_000_000 > t);
                        match expected {
                            Some(_) => {
                                assert_eq!(next, expected, "{cron} in {name}: next after {start}")
                            }
                            // Nothing in the window: the next fire lies beyond it.
                            None => assert!(
                                next.is_none_or(|n| n >= high),
                                "{cron} in {name}: next after {start} is {next:?}"
                            ),
                        }
                        let prev = cron
                            .prev_before_timestamp(start, &tz)
                            .map(|p| p.as_second());
                        let expected = fires
                            .iter()
                            .copied()
                            .rev()
                            .find(|&f| i128::from(f) * 1_000_000_000 < t);
                        match expected {
                            Some(_) => {
                                assert_eq!(prev, expected, "{cron} in {name}: prev before {start}")
                            }
                            None => assert!(
                                prev.is_none_or(|p| p <= low),
                                "{cron} in {name}: prev before {start} is {prev:?}"
                            ),
                        }
                        checked += 1;
                    }
                }
                // The iterators over the whole window: strictly increasing (decreasing),
                // nothing skipped or doubled.
                let after = Timestamp::from_second(low)
                    .unwrap()
                    .to_zoned_datetime(tz.clone());
                let forward: Vec<i64> = cron
                    .upcoming(&after)
                    .map(|z| z.timestamp().as_second())
                    .take_while(|&t| t < high)
                    .collect();
                let expected: Vec<i64> = fires
                    .iter()
                    .copied()
                    .filter(|&f| f > low && f < high)
                    .collect();
                assert_eq!(forward, expected, "{cron} in {name} around {transition}");
                let before = Timestamp::from_second(high)
                    .unwrap()
                    .to_zoned_datetime(tz.clone());
                let mut backward: Vec<i64> = cron
                    .preceding(&before)
                    .map(|z| z.timestamp().as_second())
                    .take_while(|&t| t > low)
                    .collect();
                backward.reverse();
                assert_eq!(backward, expected, "{cron} backwards in {name}");
            }
        }
    }
    assert!(checked > 20_000, "{checked} start instants");
}

/// Whole skipped days: Samoa went from 2011-12-29 straight to 2011-12-31. A fixed-time job
/// whose day vanished fires once, as the gap ends (midnight on the 31st); one of every day
/// fires at its own time again the same day.
#[test]
fn a_skipped_day_fires_its_fixed_time_jobs_once_as_it_ends() {
    let at = |s: &str| s.parse::<Timestamp>().unwrap();
    let tz = TimeZone::get("Pacific/Apia").unwrap();
    let start = at("2011-12-29T12:00:00-10:00").to_zoned_datetime(tz.clone());
    let show = |c: &str, n: usize| -> Vec<String> {
        Cron::parse(c)
            .unwrap()
            .upcoming(&start)
            .take(n)
            .map(|z| z.strftime("%Y-%m-%dT%H:%M%:z").to_string())
            .collect()
    };
    assert_eq!(
        show("0 12 30 12 *", 2),
        ["2011-12-31T00:00+14:00", "2012-12-30T12:00+14:00"]
    );
    assert_eq!(
        show("0 12 * * *", 3),
        [
            "2011-12-31T00:00+14:00",
            "2011-12-31T12:00+14:00",
            "2012-01-01T12:00+14:00"
        ]
    );
    // An interval job skips the day that never happened.
    assert_eq!(
        show("0 0 */12 * * *", 3),
        [
            "2011-12-31T00:00+14:00",
            "2011-12-31T12:00+14:00",
            "2012-01-01T00:00+14:00"
        ]
    );
}
