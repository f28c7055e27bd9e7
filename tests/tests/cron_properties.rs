//! Property tests for the cron engine: the parser never panics or hangs on arbitrary bytes
//! and reports spans that point into its input; every expression it accepts prints back to
//! itself, and its fire times are consistent forwards and backwards, in UTC and in a DST
//! zone. Fixed seed, so every run sees the same cases.

use cano_core::cron::{Cron, CronOptions};
use cano_core::jiff::tz::TimeZone;
use cano_core::jiff::{SignedDuration, Timestamp, ZonedDateTime};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x0c40_c404),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Pieces that cron expressions are made of, so random joins are often valid.
const PIECES: &[&str] = &[
    "*",
    "?",
    "0",
    "1",
    "5",
    "7",
    "12",
    "15",
    "23",
    "29",
    "30",
    "31",
    "59",
    "60",
    "2026",
    "2099",
    "-",
    "/",
    ",",
    "L",
    "W",
    "LW",
    "L-3",
    "#",
    "#2",
    "MON",
    "fri",
    "SUN",
    "JAN",
    "dec",
    "5L",
    "FRIL",
    "15W",
    " ",
    " ",
    " ",
    " ",
    "\t",
    "@daily",
    "@weekly",
    "@reboot",
    "CRON_TZ=UTC ",
    "TZ=Europe/London ",
    "CRON_TZ=+05:30 ",
    "CRON_TZ=EST5EDT,M3.2.0,M11.1.0 ",
    "é",
    "\u{0}",
];

fn grammar_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..24).prop_map(|pieces| pieces.concat())
}

/// One field's items: values in `min..=max`, ranges, steps, and the field's specials.
fn field(min: u32, max: u32, specials: &'static [&'static str]) -> BoxedStrategy<String> {
    let value = move || min..=max;
    let mut items = vec![
        Just("*".to_string()).boxed(),
        value().prop_map(|v| v.to_string()).boxed(),
        (value(), 0..=max - min)
            .prop_map(move |(a, w)| format!("{a}-{}", (a + w).min(max)))
            .boxed(),
        (1..=max - min + 1).prop_map(|s| format!("*/{s}")).boxed(),
        (value(), 1..=max - min + 1)
            .prop_map(|(a, s)| format!("{a}/{s}"))
            .boxed(),
    ];
    if !specials.is_empty() {
        items.push(
            prop::sample::select(specials)
                .prop_map(str::to_string)
                .boxed(),
        );
    }
    prop::collection::vec(prop::strategy::Union::new(items), 1..3)
        .prop_map(|items| items.join(","))
        .boxed()
}

/// Expressions of 5, 6 or 7 fields, almost all of them valid, sometimes with a zone.
fn expression() -> impl Strategy<Value = String> {
    let days: &'static [&'static str] = &["L", "LW", "15W", "L-2", "?", "31", "1W"];
    let weekdays: &'static [&'static str] =
        &["MON-FRI", "5L", "FRI#2", "?", "SUN", "sat-sun", "FRIL"];
    let months: &'static [&'static str] = &["JAN-MAR", "dec", "FEB"];
    (
        prop::option::of(field(0, 59, &[])),
        field(0, 59, &[]),
        field(0, 23, &[]),
        field(1, 31, days),
        field(1, 12, months),
        field(0, 7, weekdays),
        prop::option::of(field(1970, 2099, &[])),
        prop::sample::select(
            &[
                "",
                "CRON_TZ=America/New_York ",
                "TZ=EST5EDT,M3.2.0,M11.1.0 ",
            ][..],
        ),
    )
        .prop_map(|(second, minute, hour, day, month, weekday, year, zone)| {
            let mut fields: Vec<String> = second.into_iter().collect();
            fields.extend([minute, hour, day, month, weekday]);
            if !fields.is_empty() && fields.len() == 6 {
                fields.extend(year);
            }
            format!("{zone}{}", fields.join(" "))
        })
}

fn zoned(seconds: i64, tz: &TimeZone) -> ZonedDateTime {
    Timestamp::from_second(seconds)
        .unwrap()
        .to_zoned_datetime(tz.clone())
}

fn check_parse_is_total(input: &str) -> Result<(), TestCaseError> {
    for options in [CronOptions::new(), CronOptions::quartz()] {
        match Cron::parse_with(input, options) {
            Ok(cron) => check_accepted(&cron, options)?,
            Err(error) => {
                let span = error.span();
                prop_assert!(
                    span.start <= span.end && span.end <= input.len(),
                    "{error:?}"
                );
                prop_assert_eq!(input.get(span).unwrap_or("<not a boundary>"), error.token());
                prop_assert!(!error.to_string().is_empty());
            }
        }
    }
    Ok(())
}

fn check_accepted(cron: &Cron, options: CronOptions) -> Result<(), TestCaseError> {
    let text = cron.to_string();
    let again = Cron::parse_with(&text, options)
        .map_err(|e| TestCaseError::fail(format!("`{text}` does not parse back: {e}")))?;
    prop_assert_eq!(&again, cron, "`{}` parses back differently", text);
    prop_assert_eq!(again.to_string(), text.clone());
    prop_assert_eq!(again.is_fixed_time(), cron.is_fixed_time(), "{}", text);
    let _ = cron.describe();
    // Every accepted expression answers (or gives up) without panicking.
    for tz in [TimeZone::UTC, TimeZone::get("America/New_York").unwrap()] {
        let at = zoned(1_790_000_000, &tz);
        let _ = cron.next_after(&at);
        let _ = cron.prev_before(&at);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn parser_is_total_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        check_parse_is_total(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn parser_is_total_on_grammar_soup(input in grammar_soup()) {
        check_parse_is_total(&input)?;
    }
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn fires_are_consistent_forwards_and_backwards(
        expression in expression(),
        start in 0i64..3_000_000_000,
        new_york in any::<bool>(),
    ) {
        let Ok(cron) = Cron::parse(&expression) else { return Ok(()) };
        check_accepted(&cron, CronOptions::new())?;
        let tz = if new_york { TimeZone::get("America/New_York").unwrap() } else { TimeZone::UTC };
        let at = zoned(start, &tz);
        let fires: Vec<Timestamp> = cron.upcoming(&at).take(6).map(|z| z.timestamp()).collect();
        prop_assert!(fires.windows(2).all(|w| w[0] < w[1]), "{expression}: {fires:?}");
        prop_assert!(fires.iter().all(|&t| t > at.timestamp()));
        for &fire in &fires {
            // Each fire is found again from just after it, backwards.
            let just_after = (fire + SignedDuration::from_secs(1)).to_zoned_datetime(tz.clone());
            let back = cron.prev_before(&just_after).map(|z| z.timestamp());
            prop_assert_eq!(back, Some(fire), "{}", expression);
        }
        if let Some(previous) = cron.prev_before(&at) {
            prop_assert!(previous.timestamp() < at.timestamp());
            // Nothing fires between the previous fire and the next, except `at` itself.
            let from_previous = cron.next_after(&previous).map(|z| z.timestamp());
            if from_previous == Some(at.timestamp()) {
                let just_after = (at.timestamp() + SignedDuration::from_secs(1)).to_zoned_datetime(tz.clone());
                prop_assert_eq!(cron.prev_before(&just_after).map(|z| z.timestamp()), from_previous);
            } else {
                prop_assert_eq!(from_previous, fires.first().copied(), "{}", expression);
            }
        }
        // The timestamp fast path agrees with the zoned API.
        let fast = cron.next_after_timestamp(at.timestamp(), &tz);
        prop_assert_eq!(fast, fires.first().copied());
    }
}

#[test]
fn impossible_expressions_are_rejected_or_answer_quickly() {
    for never in [
        "0 0 30 2 *",
        "0 0 31 4,6,9,11 *",
        "0 0 31 2,4 *",
        "0 0 L-30 2 *",
    ] {
        let err = Cron::parse(never).unwrap_err();
        assert_eq!(
            err.kind(),
            &cano_core::cron::CronErrorKind::NeverFires,
            "{never}"
        );
    }
    // Not provable at parse time: day 1 is never the fifth Monday.
    let cron = Cron::parse_with("0 0 1 * MON#5", CronOptions::quartz()).unwrap();
    let at = zoned(1_790_000_000, &TimeZone::UTC);
    assert_eq!(cron.next_after(&at), None);
    assert_eq!(cron.prev_before(&at), None);
    let new_york = zoned(1_790_000_000, &TimeZone::get("America/New_York").unwrap());
    assert_eq!(cron.next_after(&new_york), None);
    // A year field in the past ends the schedule.
    let past = Cron::parse("0 0 0 1 1 * 1999").unwrap();
    assert_eq!(past.next_after(&at), None);
    assert_eq!(past.prev_before(&at).unwrap().year(), 1999);
    // Near the end of representable time the answer is `None`, not a panic.
    let end = Timestamp::MAX.to_zoned_datetime(TimeZone::UTC);
    assert_eq!(Cron::parse("* * * * * *").unwrap().next_after(&end), None);
    let start = Timestamp::MIN.to_zoned_datetime(TimeZone::UTC);
    assert_eq!(
        Cron::parse("* * * * * *").unwrap().prev_before(&start),
        None
    );
}
