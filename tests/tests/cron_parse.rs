//! The cron dialect, pinned: what parses to what, what is rejected and how the error reads,
//! and the normalized text `Display` prints.

use cano_core::CanoError;
use cano_core::cron::{Cron, CronErrorKind, CronField, CronOptions, DayMatching, WeekdayNumbering};
use cano_core::jiff::tz::TimeZone;
use cano_core::jiff::{Timestamp, ZonedDateTime};

fn utc(text: &str) -> ZonedDateTime {
    text.parse::<Timestamp>()
        .unwrap()
        .to_zoned_datetime(TimeZone::UTC)
}

/// The next `n` fires in UTC after `start`, as RFC 3339 text.
fn fires(expression: &str, options: CronOptions, start: &str, n: usize) -> Vec<String> {
    let cron =
        Cron::parse_with(expression, options).unwrap_or_else(|e| panic!("{expression}: {e}"));
    cron.upcoming(&utc(start))
        .take(n)
        .map(|z| z.timestamp().to_string())
        .collect()
}

#[track_caller]
fn same(a: &str, b: &str) {
    assert_eq!(
        Cron::parse(a).unwrap(),
        Cron::parse(b).unwrap(),
        "{a} vs {b}"
    );
}

#[test]
fn field_counts_and_aliases() {
    same("*/5 * * * *", "0 */5 * * * *");
    same("0 0 12 * * *", "0 0 12 * * * *");
    same("@yearly", "0 0 1 1 *");
    same("@annually", "0 0 1 1 *");
    same("@monthly", "0 0 1 * *");
    same("@weekly", "0 0 * * 0");
    same("@daily", "0 0 * * *");
    same("@midnight", "0 0 * * *");
    same("@hourly", "0 * * * *");
    same("@DAILY", "@daily");
    assert_eq!(Cron::parse("@weekly").unwrap().to_string(), "0 0 * * SUN");
    assert_eq!(
        Cron::parse("CRON_TZ=UTC @hourly").unwrap().to_string(),
        "CRON_TZ=UTC 0 * * * *"
    );
}

#[test]
fn lists_ranges_steps_and_names() {
    same("0,15,30,45 * * * *", "*/15 * * * *");
    same("10-50/7 * * * *", "10,17,24,31,38,45 * * * *");
    same("5/15 * * * *", "5,20,35,50 * * * *");
    same("0 0 * jan-Mar *", "0 0 * 1-3 *");
    same("0 0 * * monday-Friday", "0 0 * * MON-FRI");
    same("0 0 * * 7", "0 0 * * 0");
    same("0 0 * * FRI-SUN", "0 0 * * 5-7");
    same("0 0 ? * MON", "0 0 * * MON");
    same("0 0 0 * * * 2030-2032", "0 0 0 * * * 2030,2031,2032");
    // Quartz numbering: 1 is Sunday, 7 Saturday; names are unaffected.
    let quartz = CronOptions::new().with_weekday_numbering(WeekdayNumbering::Quartz);
    assert_eq!(
        Cron::parse_with("0 0 * * 1", quartz).unwrap(),
        Cron::parse("0 0 * * SUN").unwrap()
    );
    assert_eq!(
        Cron::parse_with("0 0 * * MON-FRI", quartz).unwrap(),
        Cron::parse("0 0 * * MON-FRI").unwrap()
    );
    assert!(Cron::parse_with("0 0 * * 0", quartz).is_err());
}

#[test]
fn last_nearest_and_nth_day_modifiers() {
    let start = "2026-01-01T00:00:00Z";
    let posix = CronOptions::new();
    assert_eq!(
        fires("0 0 L * *", posix, start, 3),
        [
            "2026-01-31T00:00:00Z",
            "2026-02-28T00:00:00Z",
            "2026-03-31T00:00:00Z"
        ]
    );
    assert_eq!(
        fires("0 0 L-2 2 *", posix, start, 2),
        ["2026-02-26T00:00:00Z", "2027-02-26T00:00:00Z"]
    );
    // 2026-02-01 is a Sunday: the nearest weekday is Monday the 2nd (never January 30th).
    // 2026-05-31 is a Sunday at the end of the month: Friday the 29th.
    assert_eq!(
        fires("0 0 1W 2 *", posix, start, 1),
        ["2026-02-02T00:00:00Z"]
    );
    assert_eq!(
        fires("0 0 31W 5 *", posix, start, 1),
        ["2026-05-29T00:00:00Z"]
    );
    // 2026-01-31 is a Saturday: the last weekday of January is Friday the 30th.
    assert_eq!(
        fires("0 0 LW 1 *", posix, start, 1),
        ["2026-01-30T00:00:00Z"]
    );
    assert_eq!(
        fires("0 0 * * FRIL", posix, start, 2),
        ["2026-01-30T00:00:00Z", "2026-02-27T00:00:00Z"]
    );
    assert_eq!(
        fires("0 0 * * 5L", posix, start, 1),
        ["2026-01-30T00:00:00Z"]
    );
    assert_eq!(
        fires("0 0 * * MON#2", posix, start, 2),
        ["2026-01-12T00:00:00Z", "2026-02-09T00:00:00Z"]
    );
    // The fifth Friday exists only in some months.
    assert_eq!(
        fires("0 0 * * FRI#5", posix, start, 2),
        ["2026-01-30T00:00:00Z", "2026-05-29T00:00:00Z"]
    );
    // Quartz numbering for `#`: 6 is Friday.
    assert_eq!(
        fires("0 0 0 ? * 6#5", CronOptions::quartz(), start, 1),
        ["2026-01-30T00:00:00Z"]
    );
}

#[test]
fn day_of_month_with_day_of_week() {
    let start = "2026-01-01T00:00:00Z";
    // Either (default): the 13th or any Friday.
    assert_eq!(
        fires("0 0 13 * FRI", CronOptions::new(), start, 3),
        [
            "2026-01-02T00:00:00Z",
            "2026-01-09T00:00:00Z",
            "2026-01-13T00:00:00Z"
        ]
    );
    // Both: Friday the 13th.
    let both = CronOptions::new().with_day_matching(DayMatching::Both);
    assert_eq!(
        fires("0 0 13 * FRI", both, start, 2),
        ["2026-02-13T00:00:00Z", "2026-03-13T00:00:00Z"]
    );
    // Only one field restricted: it alone decides, under either option.
    for options in [CronOptions::new(), both] {
        assert_eq!(
            fires("0 0 13 * *", options, start, 1),
            ["2026-01-13T00:00:00Z"]
        );
        assert_eq!(
            fires("0 0 ? * FRI", options, start, 1),
            ["2026-01-02T00:00:00Z"]
        );
    }
    // `*/2` is restricted (unlike Vixie's star rule): odd days OR Fridays.
    assert_eq!(
        fires(
            "0 0 */2 * FRI",
            CronOptions::new(),
            "2026-01-01T00:00:01Z",
            2
        ),
        ["2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"]
    );
}

#[track_caller]
fn rejects(
    expression: &str,
    kind: CronErrorKind,
    field: Option<CronField>,
    token: &str,
    span: std::ops::Range<usize>,
) {
    let err = Cron::parse(expression).unwrap_err();
    assert_eq!(err.kind(), &kind, "{expression}: {err}");
    assert_eq!(err.field(), field, "{expression}: {err}");
    assert_eq!(err.token(), token, "{expression}: {err}");
    assert_eq!(err.span(), span, "{expression}: {err}");
    assert_eq!(&expression[err.span()], token);
    assert!(!err.allowed().is_empty());
}

#[test]
fn errors_name_the_field_token_span_and_what_is_allowed() {
    use CronErrorKind::*;
    rejects("", Empty, None, "", 0..0);
    rejects("* * * *", FieldCount { found: 4 }, None, "* * * *", 0..7);
    rejects(
        "1 2 3 4 5 6 7 8",
        FieldCount { found: 8 },
        None,
        "1 2 3 4 5 6 7 8",
        0..15,
    );
    rejects("@reboot", UnknownAlias, None, "@reboot", 0..7);
    rejects("@daily 5", Syntax, None, "5", 7..8);
    let out_of_range = |value, min, max| OutOfRange { value, min, max };
    rejects(
        "60 * * * *",
        out_of_range(60, 0, 59),
        Some(CronField::Minute),
        "60",
        0..2,
    );
    rejects(
        "0 24 * * *",
        out_of_range(24, 0, 23),
        Some(CronField::Hour),
        "24",
        2..4,
    );
    rejects(
        "0 0 0 * *",
        out_of_range(0, 1, 31),
        Some(CronField::DayOfMonth),
        "0",
        4..5,
    );
    rejects(
        "0 0 * 13 *",
        out_of_range(13, 1, 12),
        Some(CronField::Month),
        "13",
        6..8,
    );
    rejects(
        "0 0 * * 8",
        out_of_range(8, 0, 7),
        Some(CronField::DayOfWeek),
        "8",
        8..9,
    );
    rejects(
        "0 0 0 * * * 2100",
        out_of_range(2100, 1970, 2099),
        Some(CronField::Year),
        "2100",
        12..16,
    );
    rejects(
        "0 0 * * 99999999999",
        out_of_range(u32::MAX, 0, 7),
        Some(CronField::DayOfWeek),
        "99999999999",
        8..19,
    );
    rejects(
        "0 0 * * FRI-MON",
        ReversedRange,
        Some(CronField::DayOfWeek),
        "FRI-MON",
        8..15,
    );
    rejects(
        "*/0 * * * *",
        InvalidStep { max: 59 },
        Some(CronField::Minute),
        "0",
        2..3,
    );
    rejects(
        "*/61 * * * *",
        InvalidStep { max: 59 },
        Some(CronField::Minute),
        "61",
        2..4,
    );
    rejects(
        "0 0 * FOO *",
        UnknownName,
        Some(CronField::Month),
        "FOO",
        6..9,
    );
    rejects(
        "0 MON * * *",
        UnknownName,
        Some(CronField::Hour),
        "MON",
        2..5,
    );
    rejects(
        "L * * * *",
        NotAllowedHere,
        Some(CronField::Minute),
        "L",
        0..1,
    );
    rejects(
        "0 ? * * *",
        NotAllowedHere,
        Some(CronField::Hour),
        "?",
        2..3,
    );
    rejects(
        "0 0 * * L",
        NotAllowedHere,
        Some(CronField::DayOfWeek),
        "L",
        8..9,
    );
    rejects(
        "0 0 1,,2 * *",
        Syntax,
        Some(CronField::DayOfMonth),
        "",
        6..6,
    );
    rejects("0 0 1- * *", Syntax, Some(CronField::DayOfMonth), "-", 5..6);
    rejects(
        "0 0 * * MON#6",
        out_of_range(6, 1, 5),
        Some(CronField::DayOfWeek),
        "6",
        12..13,
    );
    rejects(
        "0 0 30 2 *",
        NeverFires,
        Some(CronField::DayOfMonth),
        "30",
        4..6,
    );
    rejects(
        "0 0 31 4,6 *",
        NeverFires,
        Some(CronField::DayOfMonth),
        "31",
        4..6,
    );
    let err = Cron::parse("CRON_TZ=Mars/Olympus_Mons * * * * *").unwrap_err();
    assert!(matches!(err.kind(), TimeZone { .. }), "{err}");
    assert_eq!(err.token(), "Mars/Olympus_Mons");
    assert_eq!(err.span(), 8..25);
    let err = Cron::parse("CRON_TZ=UTC+5 * * * * *").unwrap_err();
    assert!(err.to_string().contains("ambiguous"), "{err}");
    assert_eq!(
        Cron::parse("0 0 * * 8").unwrap_err().to_string(),
        "invalid cron expression: day-of-week `8` (bytes 8..9): 8 is outside 0-7; allowed here: \
         0-7 or SUN-SAT (0 and 7 are Sunday), *, ?, dL, d#n, lists (,), ranges (-) and steps (/)"
    );
}

#[test]
fn cron_errors_become_configuration_errors_with_their_cause() {
    use std::error::Error;
    let cron_error = Cron::parse("0 0 30 2 *").unwrap_err();
    let err = CanoError::from(cron_error.clone());
    assert_eq!(err.category(), "configuration");
    assert_eq!(
        err.to_string(),
        format!("Configuration error: {cron_error}")
    );
    let source = err
        .source()
        .unwrap()
        .downcast_ref::<cano_core::cron::CronError>();
    assert_eq!(source, Some(&cron_error));
}

#[test]
fn time_zone_prefixes() {
    for (text, offset_seconds) in [
        ("CRON_TZ=UTC", 0),
        ("TZ=Z", 0),
        ("cron_tz=+05:30", 19_800),
        ("CRON_TZ=-0800", -28_800),
        ("CRON_TZ=+01", 3_600),
    ] {
        let cron = Cron::parse(&format!("{text} 0 0 * * *")).unwrap();
        let zone = cron.time_zone().unwrap();
        let offset = zone.to_offset(Timestamp::UNIX_EPOCH).seconds();
        assert_eq!(offset, offset_seconds, "{text}");
    }
    let posix = Cron::parse("CRON_TZ=CET-1CEST,M3.5.0,M10.5.0/3 0 0 * * *").unwrap();
    let summer = "2026-07-01T00:00:00Z".parse::<Timestamp>().unwrap();
    assert_eq!(
        posix.time_zone().unwrap().to_offset(summer).seconds(),
        7_200
    );
    assert!(Cron::parse("CRON_TZ= 0 0 * * *").is_err());
    assert!(Cron::parse("CRON_TZ=+26:00 0 0 * * *").is_err());
    assert!(Cron::parse("CRON_TZ=UTC").is_err());
}

#[test]
fn display_is_normalized_and_keeps_meaning() {
    for (input, normalized) in [
        ("0 0 12 ? * mon-fri", "0 0 12 * * MON-FRI"),
        ("*/5 * * * *", "*/5 * * * *"),
        ("0,15,30,45 * * * *", "0,15,30,45 * * * *"),
        ("0-59/15 * * * *", "*/15 * * * *"),
        (
            "TZ=Europe/Paris 0 9 * * 1-5",
            "CRON_TZ=Europe/Paris 0 9 * * MON-FRI",
        ),
        ("0 0 1-31 * MON", "0 0 1-31 * MON"),
        ("0 0 * * 0-7", "0 0 * * SUN-SAT"),
        ("0 0 L,15W,LW * FRI#2,5L", "0 0 L,15W,LW * FRI#2,FRIL"),
        (
            "0 0 0 1 1 * 2026,2027,2028,2030",
            "0 0 0 1 1 * 2026-2028,2030",
        ),
        ("0 30 9 1-7 * MON", "0 30 9 1-7 * MON"),
    ] {
        let cron = Cron::parse(input).unwrap();
        assert_eq!(cron.to_string(), normalized, "{input}");
        assert_eq!(Cron::parse(normalized).unwrap(), cron, "{normalized}");
        assert_eq!(format!("{cron:?}"), format!("Cron({normalized})"));
    }
    // `0-59` and `*` fire at the same minutes but differ in DST class, so they print apart.
    assert_eq!(
        Cron::parse("0-59 1 * * *").unwrap().to_string(),
        "0-59 1 * * *"
    );
    assert!(Cron::parse("0-59 1 * * *").unwrap().is_fixed_time());
    assert_ne!(
        Cron::parse("0-59 1 * * *").unwrap(),
        Cron::parse("* 1 * * *").unwrap()
    );
}

#[test]
fn describe_in_english() {
    for (expression, description) in [
        ("30 9 * * MON-FRI", "at 09:30, Monday through Friday"),
        ("0 9,17 * * *", "at 09:00 and 17:00"),
        ("*/15 * * * *", "every 15 minutes"),
        ("* * * * *", "every minute"),
        ("0 * * * *", "every hour"),
        ("*/10 9-17 * * *", "every 10 minutes from 09:00 to 17:59"),
        ("0 0 1 * *", "at 00:00, on day 1 of the month"),
        ("0 0 L * *", "at 00:00, on the last day of the month"),
        (
            "0 12 * * FRI#2",
            "at 12:00, on the second Friday of the month",
        ),
        (
            "0 12 13 * FRI",
            "at 12:00, on day 13 of the month or Friday",
        ),
        ("0 0 1 1 *", "at 00:00, on day 1 of the month, in January"),
        ("CRON_TZ=Europe/Paris 0 8 * * *", "at 08:00 (Europe/Paris)"),
    ] {
        assert_eq!(
            Cron::parse(expression).unwrap().describe(),
            description,
            "{expression}"
        );
    }
}

/// Issue 10, item 4: a step as large as the field's range selected one value silently.
#[test]
fn steps_as_large_as_a_field_are_rejected() {
    use CronErrorKind::InvalidStep;
    let cases: [(&str, CronField, &str, u32); 8] = [
        ("*/60 * * * *", CronField::Minute, "60", 59),
        ("1/60 * * * *", CronField::Minute, "60", 59),
        ("*/60 * * * * *", CronField::Second, "60", 59),
        ("1/60 * * * * *", CronField::Second, "60", 59),
        ("0 */24 * * *", CronField::Hour, "24", 23),
        ("0 0 * * */8", CronField::DayOfWeek, "8", 7),
        ("0 0 */32 * *", CronField::DayOfMonth, "32", 31),
        ("0 0 * */13 *", CronField::Month, "13", 12),
    ];
    for (expression, field, token, max) in cases {
        let err = Cron::parse(expression).unwrap_err();
        assert_eq!(err.kind(), &InvalidStep { max }, "{expression}: {err}");
        assert_eq!(err.field(), Some(field), "{expression}");
        assert_eq!(err.token(), token, "{expression}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("a step must be between 1 and {max}"))
                && text.contains(&field.to_string()),
            "{expression}: {text}"
        );
    }
    // The same kind as a step past the old bound.
    assert_eq!(
        Cron::parse("*/61 * * * *").unwrap_err().kind(),
        Cron::parse("*/60 * * * *").unwrap_err().kind()
    );
    // The largest steps still parse, and a lone value written with a step prints as one
    // that parses back.
    for (expression, normalized) in [
        ("*/59 * * * *", "*/59 * * * *"),
        ("30/59 * * * *", "30/59 * * * *"),
        ("0-0/5 * * * *", "0-0/1 * * * *"),
        ("0 5/23 * * *", "0 5/23 * * *"),
        ("0 0 */31 * *", "0 0 1 * *"),
        ("0 0 1 */12 *", "0 0 1 1 *"),
        ("0 0 * * */7", "0 0 * * SUN"),
    ] {
        let cron = Cron::parse(expression).unwrap_or_else(|e| panic!("{expression}: {e}"));
        assert_eq!(cron.to_string(), normalized, "{expression}");
        assert_eq!(Cron::parse(normalized).unwrap(), cron, "{normalized}");
    }
}

/// `?/n` in a day field is `*/n` (as in the `cron` crate, cano 0.12's parser); elsewhere `?`
/// is not allowed at all.
#[test]
fn a_question_mark_step_in_a_day_field_is_a_star_step() {
    same("0 0 ?/5 * *", "0 0 */5 * *");
    same("0 0 * * ?/2", "0 0 * * */2");
    same("0 0 0 ?/5 * MON", "0 0 0 */5 * MON");
    let quartz = CronOptions::quartz();
    assert_eq!(
        Cron::parse_with("0 0 0 ?/5 * MON", quartz).unwrap(),
        Cron::parse_with("0 0 0 */5 * MON", quartz).unwrap()
    );
    assert_eq!(
        Cron::parse("0 0 ?/32 * *").unwrap_err().kind(),
        &CronErrorKind::InvalidStep { max: 31 }
    );
    for expression in ["?/5 * * * *", "0 ?/2 * * *", "0 0 * ?/2 *", "0 0 ?,5 * *"] {
        assert!(Cron::parse(expression).is_err(), "{expression}");
    }
}

/// Every field, every step form, every step from 0 past the bound: accepted exactly when
/// 1 <= step <= the field's largest value (129 for years), and otherwise rejected with
/// `InvalidStep` naming the field, the step's text and span, and the bound.
#[test]
fn every_step_of_every_field_is_judged_by_the_rule() {
    struct Field {
        field: CronField,
        index: usize,
        first: u32,
        last: u32,
        max_step: u32,
    }
    let seven = ["0", "0", "0", "1", "1", "*", "*"];
    let fields = |numbering| {
        let weekdays = match numbering {
            WeekdayNumbering::Posix => (0, 7),
            WeekdayNumbering::Quartz => (1, 7),
        };
        [
            Field {
                field: CronField::Second,
                index: 0,
                first: 0,
                last: 59,
                max_step: 59,
            },
            Field {
                field: CronField::Minute,
                index: 1,
                first: 0,
                last: 59,
                max_step: 59,
            },
            Field {
                field: CronField::Hour,
                index: 2,
                first: 0,
                last: 23,
                max_step: 23,
            },
            Field {
                field: CronField::DayOfMonth,
                index: 3,
                first: 1,
                last: 31,
                max_step: 31,
            },
            Field {
                field: CronField::Month,
                index: 4,
                first: 1,
                last: 12,
                max_step: 12,
            },
            Field {
                field: CronField::DayOfWeek,
                index: 5,
                first: weekdays.0,
                last: weekdays.1,
                max_step: 7,
            },
            Field {
                field: CronField::Year,
                index: 6,
                first: 1970,
                last: 2099,
                max_step: 129,
            },
        ]
    };
    let mut checked = 0;
    for numbering in [WeekdayNumbering::Posix, WeekdayNumbering::Quartz] {
        let options = CronOptions::new().with_weekday_numbering(numbering);
        for field in fields(numbering) {
            let mut forms = vec![
                String::from("*"),
                field.first.to_string(),
                (field.first + 1).to_string(),
                format!("{}-{}", field.first, field.last),
                format!("{}-{}", field.first, field.first),
            ];
            if matches!(field.field, CronField::DayOfMonth | CronField::DayOfWeek) {
                forms.push(String::from("?"));
            }
            let steps = (0..=field.max_step + 3).chain([200, 1000, 4_294_967_295]);
            for step in steps
                .map(|s: u32| s.to_string())
                .chain([String::from("99999999999")])
            {
                for form in &forms {
                    let mut parts = seven.map(String::from);
                    parts[field.index] = format!("{form}/{step}");
                    let expression = parts.join(" ");
                    let accepted = step
                        .parse::<u64>()
                        .is_ok_and(|s| (1..=u64::from(field.max_step)).contains(&s));
                    match Cron::parse_with(&expression, options) {
                        Ok(_) => assert!(accepted, "{expression} ({numbering:?}) was accepted"),
                        Err(err) => {
                            assert!(!accepted, "{expression} ({numbering:?}): {err}");
                            assert_eq!(
                                err.kind(),
                                &CronErrorKind::InvalidStep {
                                    max: field.max_step
                                },
                                "{expression}: {err}"
                            );
                            assert_eq!(err.field(), Some(field.field), "{expression}");
                            assert_eq!(err.token(), step, "{expression}");
                            assert_eq!(&expression[err.span()], step, "{expression}");
                        }
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 2_000, "{checked}");
}

/// A number too large for 32 bits was reported as `4294967295 is outside 0-59`: a number
/// the user never wrote. The message names the number as written.
#[test]
fn a_number_too_large_for_u32_is_named_as_written() {
    let err = Cron::parse("99999999999999999999 * * * *").unwrap_err();
    assert_eq!(
        err.kind(),
        &CronErrorKind::OutOfRange {
            value: u32::MAX,
            min: 0,
            max: 59
        }
    );
    assert!(
        err.to_string()
            .contains("`99999999999999999999` (bytes 0..20): 99999999999999999999 is outside 0-59"),
        "{err}"
    );
    // Sweep: every numeric position of every field, with numbers from just past the field's
    // range to far past `u32::MAX`; the message always quotes the digits written.
    let templates = [
        "{} * * * * *",
        "0 {} * * * *",
        "0 0 {} * * *",
        "0 0 0 {} * *",
        "0 0 0 * {} *",
        "0 0 0 * * {}",
        "0 0 0 1 1 * {}",
        "0 0 0 L-{} * *",
        "0 0 0 {}W * *",
        "0 0 0 ? * MON#{}",
        "0 0 0 * * 1-{}",
        "0 0 0 * {}-12 *",
    ];
    let numbers = [
        "4294967295",
        "4294967296",
        "99999999999",
        "18446744073709551616",
        "000000000000000000000099999999999999",
    ];
    for template in templates {
        for number in numbers {
            let expression = template.replace("{}", number);
            let err = Cron::parse(&expression).unwrap_err();
            assert!(
                matches!(err.kind(), CronErrorKind::OutOfRange { .. }),
                "{expression}: {err}"
            );
            assert_eq!(err.token(), number, "{expression}: {err}");
            assert!(
                err.to_string().contains(&format!(": {number} is outside")),
                "{expression}: {err}"
            );
        }
    }
}

/// A name with a look-alike letter from outside ASCII (a Cyrillic `О` in `MОN`) was reported
/// as the unknown name `M`. The error names the whole word, on character boundaries.
#[test]
fn a_name_with_a_non_ascii_letter_is_named_whole() {
    rejects(
        "0 0 * * MОN",
        CronErrorKind::UnknownName,
        Some(CronField::DayOfWeek),
        "MОN",
        8..12,
    );
    // Sweep: every month and weekday name, with each of its letters replaced by look-alikes
    // (Cyrillic, Greek, full-width, accented), in every position of a list or range.
    let names = [
        (
            CronField::Month,
            [
                "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
            ]
            .as_slice(),
        ),
        (
            CronField::DayOfWeek,
            ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"].as_slice(),
        ),
    ];
    let look_alikes = ['О', 'А', 'Е', 'Ο', 'Ａ', 'É', 'ß'];
    for (field, list) in names {
        for name in list {
            for position in 0..name.len() {
                for look_alike in look_alikes {
                    let mut word: String = name.to_string();
                    word.replace_range(position..position + 1, &look_alike.to_string());
                    for shape in ["{}", "{}-DEC", "JAN,{}", "{}/2"] {
                        let item = shape.replace("{}", &word);
                        let item = match field {
                            CronField::DayOfWeek => {
                                item.replace("DEC", "SAT").replace("JAN", "SUN")
                            }
                            _ => item,
                        };
                        let expression = match field {
                            CronField::Month => format!("0 0 0 * {item} *"),
                            _ => format!("0 0 0 * * {item}"),
                        };
                        let err = Cron::parse(&expression)
                            .err()
                            .unwrap_or_else(|| panic!("{expression} was accepted"));
                        assert_eq!(err.field(), Some(field), "{expression}: {err}");
                        assert_eq!(err.token(), word, "{expression}: {err}");
                        assert_eq!(&expression[err.span()], word, "{expression}");
                    }
                }
            }
        }
    }
}

/// Accepted edge forms (leading zeros, `L-0`, named steps, `?/n`, a step as large as the
/// field, ranges ending on Sunday 7): `Display` prints an expression that parses back to
/// the same schedule, forwards and backwards, and prints the same text again.
#[test]
fn edge_forms_round_trip_through_display() {
    let forms = [
        "007 * * * *",
        "00 00 * * *",
        "0\t0 * * *\n",
        "0 0 L-0 * *",
        "0 0 L-30 * *",
        "0 0 * * MON/2",
        "0 0 * * SUN/2",
        "0 0 * * 6-7/2",
        "0 0 * * 7-7",
        "0 0 * * 0-7",
        "0 0 * * SUN-SUN",
        "0 0 * * MON-SUN",
        "0 0 * * 7L",
        "0 0 * * 0L",
        "0 0 * * 7/1",
        "0 0 * * ?/2",
        "0 0 ?/2 * *",
        "0 0 * JAN/2 *",
        "0 0 * */12 *",
        "0 0 */31 * *",
        "0 */23 * * *",
        "*/59 * * * * *",
        "0 0 0 1 1 * 1970-2099/129",
        "0 0 0 29 2 * 2024/4",
        "0 0 L,15 * *",
        "0 0 LW * MON",
        "0 0 * * MON#1,FRI#2,SATL",
        "0 0 30W 4 *",
        "0 0 1W * *",
        "@HOURLY",
        "CRON_TZ=America/Santiago 0 0 L * *",
        "TZ=EST5EDT,M3.2.0,M11.1.0 30 2 * * *",
    ];
    let starts = [
        "2026-01-01T00:00:00Z",
        "2027-02-28T23:59:59Z",
        "2028-02-29T12:00:00Z",
    ];
    for form in forms {
        let cron = Cron::parse(form).unwrap_or_else(|e| panic!("{form}: {e}"));
        let shown = cron.to_string();
        let again = Cron::parse(&shown).unwrap_or_else(|e| panic!("{form} -> {shown}: {e}"));
        assert_eq!(again.to_string(), shown, "{form}");
        for start in starts {
            let start = utc(start);
            let a: Vec<_> = cron.upcoming(&start).take(40).collect();
            let b: Vec<_> = again.upcoming(&start).take(40).collect();
            assert_eq!(a, b, "{form} -> {shown}");
            let a: Vec<_> = cron.preceding(&start).take(40).collect();
            let b: Vec<_> = again.preceding(&start).take(40).collect();
            assert_eq!(a, b, "{form} -> {shown} backwards");
        }
    }
}
