//! Differential tests: cano's cron engine against `cron` 0.16 and 0.17 (cano 0.12's parser:
//! 6/7 fields, Quartz weekdays, AND), croner 4.0.3 (5/6 fields, OR by default, `L`/`W`/`#`)
//! and cron-parser 0.12.0 (5 fields, AND), on thousands of generated expressions and start
//! times in UTC, with a fixed seed.
//!
//! Each generator stays inside the dialect both sides accept, and maps it to the cano
//! options with the same meaning; on that common ground every next and previous fire must
//! agree. Where the peers *mean* something else, `known_differences` pins it down; each one
//! is documented in `cano_core::cron`.

use std::str::FromStr;

use cano_core::cron::{Cron, CronOptions, DayMatching};
use cano_core::jiff::Timestamp;
use cano_core::jiff::tz::TimeZone;
use chrono::{DateTime, Utc};

/// SplitMix64: a tiny deterministic generator, so every run sees the same cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n)) as u32
    }

    fn between(&mut self, low: u32, high: u32) -> u32 {
        low + self.below(high - low + 1)
    }

    fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent
    }
}

/// What a field may contain in the dialect being generated.
#[derive(Clone, Copy)]
struct FieldShape {
    min: u32,
    max: u32,
    /// The largest step the peer accepts.
    max_step: u32,
    /// Names for `min..`, if the field takes names.
    names: Option<&'static [&'static str]>,
    /// Whether `a/s` (a start with a step) is accepted.
    start_step: bool,
    /// Chance (percent) of a bare `*`.
    star: u32,
}

impl FieldShape {
    /// Numbers `min..=max`, any step up to `max_step`, `a/s` allowed, `*` 30% of the time.
    fn plain(min: u32, max: u32, max_step: u32) -> FieldShape {
        FieldShape {
            min,
            max,
            max_step,
            names: None,
            start_step: true,
            star: 30,
        }
    }
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS_FROM_SUNDAY: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn value(shape: FieldShape, v: u32, named: bool, lower: bool) -> String {
    match shape.names {
        Some(names) if named && ((v - shape.min) as usize) < names.len() => {
            let name = names[(v - shape.min) as usize];
            if lower {
                name.to_lowercase()
            } else {
                name.to_string()
            }
        }
        _ => v.to_string(),
    }
}

fn field(rng: &mut Rng, shape: FieldShape) -> String {
    if rng.chance(shape.star) {
        return "*".to_string();
    }
    let count = 1 + rng.below(3) as usize;
    let mut items = Vec::new();
    for _ in 0..count {
        let a = rng.between(shape.min, shape.max);
        let width = rng.between(1, 12);
        let b = rng.between(a, shape.max.min(a + width));
        let step = rng.between(1, shape.max_step.min(shape.max - shape.min + 1));
        // A range is all names or all numbers (`cron` takes nothing else), and a named
        // range never ends on a Sunday numbered 0 (`SUN-SUN`: cano reads Sunday, croner the
        // whole week; see `known_differences`).
        let named = rng.chance(30);
        let lower = rng.chance(50);
        let range_named = named && !(shape.names.is_some() && b == shape.min);
        let range = |low, high| {
            format!(
                "{}-{}",
                value(shape, low, range_named, lower),
                value(shape, high, range_named, lower)
            )
        };
        let item = match rng.below(6) {
            0 | 1 => value(shape, a, named, lower),
            2 => range(a, b),
            3 => format!("*/{step}"),
            4 => format!("{}/{step}", range(a, b)),
            _ if shape.start_step => format!("{a}/{step}"),
            _ => value(shape, a, named, lower),
        };
        items.push(item);
    }
    items.join(",")
}

fn start(rng: &mut Rng) -> i64 {
    // 2000-01-01 .. 2090-01-01, any second.
    946_684_800 + i64::from(rng.below(90 * 365)) * 86_400 + i64::from(rng.below(86_400))
}

fn zoned(seconds: i64) -> cano_core::jiff::ZonedDateTime {
    Timestamp::from_second(seconds)
        .unwrap()
        .to_zoned_datetime(TimeZone::UTC)
}

fn chrono(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

/// cano's next `count` fires after `seconds`, stopping before `limit`.
fn cano_next(cron: &Cron, seconds: i64, count: usize, limit: i64) -> Vec<i64> {
    cron.upcoming(&zoned(seconds))
        .map(|z| z.timestamp().as_second())
        .take_while(|&t| t < limit)
        .take(count)
        .collect()
}

fn cano_prev(cron: &Cron, seconds: i64, count: usize) -> Vec<i64> {
    cron.preceding(&zoned(seconds))
        .map(|z| z.timestamp().as_second())
        .take(count)
        .collect()
}

/// 2100-01-01T00:00:00Z: `cron` never goes past 2100.
const YEAR_2100: i64 = 4_102_444_800;

#[test]
fn agrees_with_cron_0_16_and_0_17_on_quartz_expressions() {
    let mut rng = Rng(0x0c40_0016);
    let plain = FieldShape::plain;
    let mut compared = 0;
    for _ in 0..1500 {
        let mut fields = vec![
            field(&mut rng, plain(0, 59, 59)),
            field(&mut rng, plain(0, 59, 59)),
            field(&mut rng, plain(0, 23, 23)),
            field(
                &mut rng,
                FieldShape {
                    star: 50,
                    ..plain(1, 31, 31)
                },
            ),
            field(
                &mut rng,
                FieldShape {
                    names: Some(&MONTHS),
                    ..plain(1, 12, 12)
                },
            ),
            field(
                &mut rng,
                FieldShape {
                    names: Some(&WEEKDAYS_FROM_SUNDAY),
                    star: 50,
                    ..plain(1, 7, 7)
                },
            ),
        ];
        // Quartz writes `?` for the day field that does not matter.
        if fields[3] == "*" && rng.chance(50) {
            fields[3] = "?".into();
        } else if fields[5] == "*" && rng.chance(50) {
            fields[5] = "?".into();
        }
        if rng.chance(20) {
            fields.push(field(
                &mut rng,
                FieldShape {
                    star: 20,
                    ..plain(2000, 2099, 99)
                },
            ));
        }
        let expression = fields.join(" ");
        let peer16 = cron016::Schedule::from_str(&expression)
            .unwrap_or_else(|e| panic!("cron 0.16 rejects {expression}: {e}"));
        let peer17 = cron017::Schedule::from_str(&expression)
            .unwrap_or_else(|e| panic!("cron 0.17 rejects {expression}: {e}"));
        let cano = match Cron::parse_with(&expression, CronOptions::quartz()) {
            Ok(cano) => cano,
            Err(e) => {
                // cano refuses days that no selected month has; cron accepts them and never fires.
                assert_eq!(
                    e.kind(),
                    &cano_core::cron::CronErrorKind::NeverFires,
                    "{expression}: {e}"
                );
                assert_eq!(
                    peer17.after(&chrono(946_684_800)).next(),
                    None,
                    "{expression}"
                );
                continue;
            }
        };
        for _ in 0..2 {
            let at = start(&mut rng);
            let expected: Vec<i64> = peer16
                .after(&chrono(at))
                .take(5)
                .map(|t| t.timestamp())
                .collect();
            let expected17: Vec<i64> = peer17
                .after(&chrono(at))
                .take(5)
                .map(|t| t.timestamp())
                .collect();
            assert_eq!(
                expected, expected17,
                "cron 0.16 and 0.17 differ on {expression}"
            );
            let actual = cano_next(&cano, at, 5, YEAR_2100);
            assert_eq!(actual, expected, "{expression} after {}", zoned(at));
            // `cron`'s reverse search is wrong once a year field sends it to an earlier year
            // (see `known_differences`), so compare backwards without one.
            if fields.len() == 6 {
                let expected_prev: Vec<i64> = peer17
                    .after(&chrono(at))
                    .rev()
                    .take(3)
                    .map(|t| t.timestamp())
                    .collect();
                let actual_prev = cano_prev(&cano, at, expected_prev.len());
                assert_eq!(
                    actual_prev,
                    expected_prev,
                    "{expression} before {}",
                    zoned(at)
                );
            }
            compared += 1;
        }
    }
    assert!(compared > 2500, "only {compared} comparisons");
}

/// A croner-dialect day-of-month field, with `L`, `nW` and `LW` now and then.
fn croner_days_of_month(rng: &mut Rng, shape: FieldShape) -> String {
    let mut text = field(rng, shape);
    if text != "*" && rng.chance(25) {
        let special = match rng.below(3) {
            0 => "L".to_string(),
            1 => format!("{}W", rng.between(1, 31)),
            _ => "LW".to_string(),
        };
        text = if rng.chance(50) {
            special
        } else {
            format!("{text},{special}")
        };
    }
    text
}

/// A croner-dialect day-of-week field, with `dL` and `d#n` now and then.
fn croner_days_of_week(rng: &mut Rng, shape: FieldShape) -> String {
    let mut text = field(rng, shape);
    if text != "*" && rng.chance(25) {
        let day = rng.between(0, 7);
        let special = if rng.chance(50) {
            format!("{day}L")
        } else {
            format!("{day}#{}", rng.between(1, 5))
        };
        text = if rng.chance(50) {
            special
        } else {
            format!("{text},{special}")
        };
    }
    text
}

#[test]
fn agrees_with_croner_on_posix_expressions_either_and_both() {
    let mut rng = Rng(0xc407_e400);
    // croner (strict) rejects `5/15`.
    let plain = |min, max| FieldShape {
        start_step: false,
        ..FieldShape::plain(min, max, max)
    };
    let mut compared = 0;
    for case in 0..1500 {
        let both = case % 3 == 0;
        let mut fields = Vec::new();
        let six = rng.chance(40);
        if six {
            fields.push(field(&mut rng, plain(0, 59)));
        }
        fields.push(field(&mut rng, plain(0, 59)));
        fields.push(field(&mut rng, plain(0, 23)));
        let days = FieldShape {
            star: 40,
            ..plain(1, 31)
        };
        let weekdays = FieldShape {
            names: Some(&WEEKDAYS_FROM_SUNDAY),
            star: 40,
            ..plain(0, 7)
        };
        if both {
            fields.push(field(&mut rng, days));
        } else {
            fields.push(croner_days_of_month(&mut rng, days));
        }
        fields.push(field(
            &mut rng,
            FieldShape {
                names: Some(&MONTHS),
                ..plain(1, 12)
            },
        ));
        if both {
            fields.push(field(&mut rng, weekdays));
        } else {
            fields.push(croner_days_of_week(&mut rng, weekdays));
        }
        let expression = fields.join(" ");
        let options = if both {
            CronOptions::new().with_day_matching(DayMatching::Both)
        } else {
            CronOptions::new()
        };
        let cano = match Cron::parse_with(&expression, options) {
            Ok(cano) => cano,
            Err(e) => {
                assert_eq!(
                    e.kind(),
                    &cano_core::cron::CronErrorKind::NeverFires,
                    "{expression}: {e}"
                );
                continue;
            }
        };
        let peer = croner::parser::CronParser::builder()
            .dom_and_dow(both)
            .build()
            .parse(&expression)
            .unwrap_or_else(|e| panic!("croner rejects {expression}: {e}"));
        for _ in 0..2 {
            let at = start(&mut rng);
            let actual = cano_next(&cano, at, 4, i64::MAX);
            if actual.len() < 4 {
                // Sparse enough to send croner walking day by day to year 5000; not a
                // comparison worth minutes of debug-mode time.
                continue;
            }
            let mut expected = Vec::new();
            let mut cursor = chrono(at);
            for _ in 0..4 {
                cursor = peer
                    .find_next_occurrence(&cursor, false)
                    .unwrap_or_else(|e| panic!("croner fails on {expression}: {e}"));
                expected.push(cursor.timestamp());
            }
            assert_eq!(
                actual,
                expected,
                "{expression} (both: {both}) after {}",
                zoned(at)
            );
            let expected_prev = peer
                .find_previous_occurrence(&chrono(at), false)
                .map(|t| t.timestamp())
                .ok();
            assert_eq!(
                cano_prev(&cano, at, 1).first().copied(),
                expected_prev,
                "{expression} (both: {both}) before {}",
                zoned(at)
            );
            compared += 1;
        }
    }
    assert!(compared > 2000, "only {compared} comparisons");
}

#[test]
fn agrees_with_cron_parser_on_five_field_expressions() {
    let mut rng = Rng(0xc407_9a45);
    let plain = |min, max| FieldShape::plain(min, max, max);
    let mut compared = 0;
    for _ in 0..1500 {
        let expression = [
            field(&mut rng, plain(0, 59)),
            field(&mut rng, plain(0, 23)),
            field(
                &mut rng,
                FieldShape {
                    star: 50,
                    ..plain(1, 31)
                },
            ),
            // cron-parser takes weekday names but no month names.
            field(&mut rng, plain(1, 12)),
            field(
                &mut rng,
                FieldShape {
                    names: Some(&WEEKDAYS_FROM_SUNDAY),
                    star: 50,
                    ..plain(0, 6)
                },
            ),
        ]
        .join(" ");
        let options = CronOptions::new().with_day_matching(DayMatching::Both);
        let (peer, cano) = match (
            cron_parser::Schedule::parse(&expression),
            Cron::parse_with(&expression, options),
        ) {
            (Ok(peer), Ok(cano)) => (peer, cano),
            // Both refuse a day no selected month has (`30 2`).
            (Err(_), Err(e)) if e.kind() == &cano_core::cron::CronErrorKind::NeverFires => continue,
            (peer, cano) => panic!("{expression}: cron-parser {peer:?}, cano {cano:?}"),
        };
        for _ in 0..2 {
            let at = start(&mut rng);
            let expected: Vec<i64> = peer
                .after(&chrono(at))
                .take(5)
                .map(|t| t.timestamp())
                .collect();
            assert_eq!(
                cano_next(&cano, at, 5, i64::MAX),
                expected,
                "{expression} after {}",
                zoned(at)
            );
            let expected_prev = peer.previous_before(&chrono(at)).map(|t| t.timestamp());
            assert_eq!(
                cano_prev(&cano, at, 1).first().copied(),
                expected_prev,
                "{expression} before {}",
                zoned(at)
            );
            compared += 1;
        }
    }
    assert!(compared > 2500, "only {compared} comparisons");
}

/// The intended differences, each documented in `cano_core::cron`.
#[test]
fn known_differences() {
    let sunday = 1_773_569_843; // 2026-03-15T10:17:23Z, a Sunday
    let first_of_2026 = 1_767_225_600;
    // `cron` numbers weekdays Quartz-style: `1-5` is Sunday to Thursday. cano's default is
    // POSIX (Monday to Friday); `CronOptions::quartz()` gives cron's meaning.
    let quartz = cron017::Schedule::from_str("0 0 12 * * 1-5").unwrap();
    let sunday_noon = quartz.after(&chrono(sunday)).next().unwrap().timestamp();
    let posix = Cron::parse("0 0 12 * * 1-5").unwrap();
    assert_ne!(cano_next(&posix, sunday, 1, i64::MAX), [sunday_noon]);
    let compatible = Cron::parse_with("0 0 12 * * 1-5", CronOptions::quartz()).unwrap();
    assert_eq!(cano_next(&compatible, sunday, 1, i64::MAX), [sunday_noon]);
    // `cron` rejects weekday 0 and 5-field expressions; cano accepts both.
    assert!(cron017::Schedule::from_str("0 0 12 * * 0").is_err());
    assert!(cron017::Schedule::from_str("*/5 * * * *").is_err());
    assert!(Cron::parse("0 0 12 * * 0").is_ok() && Cron::parse("*/5 * * * *").is_ok());
    // `cron` ANDs day-of-month with day-of-week; cano (like croner and Vixie) ORs by default.
    let and = cron017::Schedule::from_str("0 30 9 1-7 * MON").unwrap();
    let or = croner::Cron::from_str("0 30 9 1-7 * MON").unwrap();
    let cano_or = Cron::parse("0 30 9 1-7 * MON").unwrap();
    let cano_and = Cron::parse_with("0 30 9 1-7 * MON", CronOptions::quartz()).unwrap();
    let and_first = and
        .after(&chrono(first_of_2026))
        .next()
        .unwrap()
        .timestamp();
    let or_first = or
        .find_next_occurrence(&chrono(first_of_2026), false)
        .unwrap()
        .timestamp();
    assert_ne!(and_first, or_first);
    assert_eq!(cano_next(&cano_or, first_of_2026, 1, i64::MAX), [or_first]);
    assert_eq!(
        cano_next(&cano_and, first_of_2026, 1, i64::MAX),
        [and_first]
    );
    // `cron` stops at 2100 (18 leap days from 2026); cano goes on.
    let leap_days = cron017::Schedule::from_str("0 0 0 29 2 *").unwrap();
    assert_eq!(leap_days.after(&chrono(first_of_2026)).count(), 18);
    let cano_leap = Cron::parse("0 0 0 29 2 *").unwrap();
    assert_eq!(cano_next(&cano_leap, first_of_2026, 19, i64::MAX).len(), 19);
    // `cron`'s reverse search, sent to an earlier year by the year field, keeps the start's
    // month and day instead of taking that year's last fire (a bug in `cron`).
    let in_2020 = cron017::Schedule::from_str("0 0 0 * 1,10 * 2020").unwrap();
    let before_2027 = 1_800_000_000; // 2027-01-15T08:00:00Z
    let cron_prev = in_2020.after(&chrono(before_2027)).next_back().unwrap();
    assert_eq!(cron_prev.to_rfc3339(), "2020-01-15T00:00:00+00:00");
    let cano_2020 = Cron::parse_with("0 0 0 * 1,10 * 2020", CronOptions::quartz()).unwrap();
    let cano_prev_2020 = cano_2020.prev_before(&zoned(before_2027)).unwrap();
    assert_eq!(cano_prev_2020.to_string(), "2020-10-31T00:00:00+00:00[UTC]");
    // `SUN` ending a range is day 7 in both cano and croner, so `FRI-SUN` is Friday to
    // Sunday; but `SUN-SUN` is Sunday alone to cano and the whole week to croner.
    let weekend = croner::Cron::from_str("0 12 * * FRI-SUN").unwrap();
    let cano_weekend = Cron::parse("0 12 * * FRI-SUN").unwrap();
    let mut cursor = chrono(first_of_2026);
    for fire in cano_next(&cano_weekend, first_of_2026, 6, i64::MAX) {
        cursor = weekend.find_next_occurrence(&cursor, false).unwrap();
        assert_eq!(cursor.timestamp(), fire);
    }
    let croner_sundays = croner::Cron::from_str("0 12 * * SUN-SUN").unwrap();
    let croner_next = croner_sundays
        .find_next_occurrence(&chrono(first_of_2026), false)
        .unwrap();
    assert_eq!(croner_next.to_rfc3339(), "2026-01-01T12:00:00+00:00"); // a Thursday
    let cano_sundays = Cron::parse("0 12 * * SUN-SUN").unwrap();
    assert_eq!(cano_sundays, Cron::parse("0 12 * * SUN").unwrap());
    // A weekday step from a start runs to Saturday (7 is only Sunday's other number), as in
    // cron-parser: `4/3` is Thursday alone, not Thursday and Sunday.
    let thursdays = cron_parser::Schedule::parse("0 12 * * 4/3").unwrap();
    let cano_thursdays = Cron::parse("0 12 * * 4/3").unwrap();
    let expected: Vec<i64> = thursdays
        .after(&chrono(first_of_2026))
        .take(4)
        .map(|t| t.timestamp())
        .collect();
    assert_eq!(
        cano_next(&cano_thursdays, first_of_2026, 4, i64::MAX),
        expected
    );
    assert_eq!(cano_thursdays.to_string(), "0 12 * * THU");
    // croner (strict) rejects a single-number step; cano, `cron` and cron-parser accept it.
    assert!(croner::Cron::from_str("5/15 * * * *").is_err());
    assert!(cron_parser::Schedule::parse("5/15 * * * *").is_ok());
    assert_eq!(
        Cron::parse("5/15 * * * *").unwrap().to_string(),
        "5/15 * * * *"
    );
    // croner accepts any step, even one that selects a single value; cano (like Quartz,
    // `cron` and cron-parser) rejects a step larger than the field's largest value.
    assert!(croner::Cron::from_str("*/60 * * * *").is_ok());
    assert!(croner::Cron::from_str("0 0 * * */8").is_ok());
    assert!(Cron::parse("*/60 * * * *").is_err() && Cron::parse("0 0 * * */8").is_err());
    // cron-parser: weekday 7 and `?` are rejected.
    assert!(cron_parser::Schedule::parse("0 12 * * 7").is_err());
    assert!(cron_parser::Schedule::parse("0 12 ? * 1").is_err());
    assert_eq!(
        Cron::parse("0 12 * * 7").unwrap(),
        Cron::parse("0 12 * * 0").unwrap()
    );
    // Ranges never wrap, in any of them.
    assert!(Cron::parse("0 12 * * FRI-MON").is_err());
    assert!(croner::Cron::from_str("0 12 * * FRI-MON").is_err());
    assert!(cron_parser::Schedule::parse("0 12 * * 5-1").is_err());
}

/// Steps: for every field and step 0..=70, written `*/n`, `first/n`, `first-last/n` and (in
/// the day fields) `?/n`, cano accepts exactly what `cron` 0.16 and 0.17 accept (Quartz
/// numbering), and in the 5-field fields exactly what cron-parser accepts. (croner accepts
/// any step: see `known_differences`.)
#[test]
fn step_bounds_agree_with_cron_and_cron_parser() {
    let quartz = CronOptions::quartz();
    // (field index in 6 fields, first, last)
    let six = [
        (0, 0, 59),
        (1, 0, 59),
        (2, 0, 23),
        (3, 1, 31),
        (4, 1, 12),
        (5, 1, 7),
    ];
    let base = ["0", "0", "0", "*", "*", "*"];
    let mut compared = 0;
    for (index, first, last) in six {
        let mut forms = vec![
            String::from("*"),
            first.to_string(),
            format!("{first}-{last}"),
        ];
        if index >= 3 {
            forms.push(String::from("?"));
        }
        for form in &forms {
            for step in 0..=70 {
                let mut parts = base.map(String::from);
                parts[index] = format!("{form}/{step}");
                let expression = parts.join(" ");
                let cano = Cron::parse_with(&expression, quartz).is_ok();
                let cron16 = cron016::Schedule::from_str(&expression).is_ok();
                let cron17 = cron017::Schedule::from_str(&expression).is_ok();
                assert_eq!(cano, cron16, "{expression}: cano vs cron 0.16");
                assert_eq!(cano, cron17, "{expression}: cano vs cron 0.17");
                // cron-parser: 5 fields, no `?`, weekdays 0-6 (so its largest step there is
                // 6, where cano's is 7, Sunday's other number).
                let weekday_seven = index == 5 && step == 7;
                if index >= 1 && form != "?" && !weekday_seven {
                    let five = if index == 5 {
                        parts[5] = format!("{}/{step}", form.replace('7', "6"));
                        parts[1..].join(" ")
                    } else {
                        parts[1..].join(" ")
                    };
                    let cano = Cron::parse(&five).is_ok();
                    let parser = cron_parser::Schedule::parse(&five).is_ok();
                    assert_eq!(cano, parser, "{five}: cano vs cron-parser");
                }
                compared += 1;
            }
        }
    }
    assert!(compared > 1_000, "{compared}");
}

/// Sparse days, where a search jumps over months and years (leap days, month ends, the
/// first week of a month with a weekday, several weekday and month combinations): cano
/// with AND against cron-parser (which never stops early), and with OR and AND against
/// croner, next and previous, from starts spread over 1970–2090.
#[test]
fn agrees_on_sparse_days_with_cron_parser_and_croner() {
    const DAYS: &[&str] = &[
        "29", "29", "30", "31", "1-7", "8-14", "22-28", "28-31", "29-31", "1", "13", "29,31",
        "1,15", "1-7,29",
    ];
    const MONTHS_FIVE: &[&str] = &[
        "2",
        "2",
        "2,4",
        "4,6,9,11",
        "1,3,5,7,8,10,12",
        "*",
        "2-3",
        "12",
        "*/5",
        "1,2",
    ];
    const WEEKDAYS: &[&str] = &["*", "*", "1", "0", "6", "1-5", "0,6", "5", "2,4", "3"];
    let mut rng = Rng(0x5ba2_5e00);
    let pick =
        |rng: &mut Rng, items: &[&'static str]| items[rng.below(items.len() as u32) as usize];
    let (mut compared, mut fired) = (0, 0);
    for case in 0..1200 {
        let minute = pick(&mut rng, &["0", "30", "59", "0,30", "*/20"]);
        let hour = pick(&mut rng, &["0", "9", "23", "6,18"]);
        let expression = format!(
            "{minute} {hour} {} {} {}",
            pick(&mut rng, DAYS),
            pick(&mut rng, MONTHS_FIVE),
            pick(&mut rng, WEEKDAYS)
        );
        let both = CronOptions::new().with_day_matching(DayMatching::Both);
        let (parser, cano) = match (
            cron_parser::Schedule::parse(&expression),
            Cron::parse_with(&expression, both),
        ) {
            (Ok(parser), Ok(cano)) => (parser, cano),
            (Err(_), Err(e)) if e.kind() == &cano_core::cron::CronErrorKind::NeverFires => continue,
            (parser, cano) => panic!("{expression}: cron-parser {parser:?}, cano {cano:?}"),
        };
        let either = Cron::parse(&expression).expect("cano accepted it with AND");
        for _ in 0..3 {
            // 1970 .. 2090, any second.
            let at = i64::from(rng.below(120 * 365)) * 86_400 + i64::from(rng.below(86_400));
            let expected: Vec<i64> = parser
                .after(&chrono(at))
                .take(4)
                .map(|t| t.timestamp())
                .collect();
            assert_eq!(
                cano_next(&cano, at, 4, i64::MAX),
                expected,
                "{expression} (AND) after {}",
                zoned(at)
            );
            assert_eq!(
                cano_prev(&cano, at, 1).first().copied(),
                parser.previous_before(&chrono(at)).map(|t| t.timestamp()),
                "{expression} (AND) before {}",
                zoned(at)
            );
            compared += 1;
            fired += usize::from(!expected.is_empty());
            // croner walks day by day, so it only checks what fires within a few years.
            for (label, cano, and) in [("OR", &either, false), ("AND", &cano, true)] {
                let actual = cano_next(cano, at, 3, at + 8 * 366 * 86_400);
                if actual.len() < 3 || (and && case % 4 != 0) {
                    continue;
                }
                let peer = croner::parser::CronParser::builder()
                    .dom_and_dow(and)
                    .build()
                    .parse(&expression)
                    .unwrap_or_else(|e| panic!("croner rejects {expression}: {e}"));
                let mut expected = Vec::new();
                let mut cursor = chrono(at);
                for _ in 0..3 {
                    cursor = peer.find_next_occurrence(&cursor, false).unwrap();
                    expected.push(cursor.timestamp());
                }
                assert_eq!(
                    actual,
                    expected,
                    "{expression} ({label}) after {}",
                    zoned(at)
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 3000, "only {compared} comparisons");
    assert!(fired > 2000, "only {fired} fired");
}
