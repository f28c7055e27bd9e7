//! cano's cron engine side by side with `cron` 0.16 (cano 0.12's), `cron` 0.17, croner 4.0.3
//! and cron-parser 0.12.0, on the same expressions, in one run, all in UTC:
//!
//! * `parse/<case>/<crate>`: parsing the expression;
//! * `next/<case>/<crate>`: one next-occurrence query, cycling over 64 start instants spread
//!   over a year (so late-in-the-day starts count as much as early ones);
//! * `iterate/<case>/<crate>`: the next 1000 occurrences from 2026-01-01 (fewer where a crate
//!   stops earlier: `cron` at year 2100, so 18 leap days); divide by the count for the cost
//!   per occurrence.
//!
//! cron-parser takes 5 fields (numeric weekdays 0-6); the others take the 6-field form.
//! `0 30 9 1-7 * MON` means "days 1-7 OR Mondays" to cano and croner by default and "days
//! 1-7 AND Mondays" to `cron` and cron-parser, so that case also runs cano with
//! [`CronOptions::quartz`] (`cano-and`) for a like-for-like comparison.
//!
//! Run: `cargo bench -p cano-tests --bench cron -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::str::FromStr;
use std::time::Duration;

use cano_core::cron::{Cron, CronOptions};
use cano_core::jiff::tz::TimeZone;
use cano_core::jiff::{Timestamp, ZonedDateTime};
use criterion::{Criterion, criterion_group, criterion_main};

struct Case {
    name: &'static str,
    six: &'static str,
    five: &'static str,
}

const CASES: [Case; 4] = [
    Case {
        name: "every-5-minutes",
        six: "0 */5 * * * *",
        five: "*/5 * * * *",
    },
    Case {
        name: "weekdays-noon",
        six: "0 0 12 * * MON-FRI",
        five: "0 12 * * 1-5",
    },
    Case {
        name: "feb-29",
        six: "0 0 0 29 2 *",
        five: "0 0 29 2 *",
    },
    Case {
        name: "dom-and-dow",
        six: "0 30 9 1-7 * MON",
        five: "30 9 1-7 * 1",
    },
];

/// 2026-01-01T00:00:00Z.
const START: i64 = 1_767_225_600;

/// 64 start instants spread over 2026 at odd times of day.
fn starts() -> Vec<i64> {
    (0..64i64)
        .map(|i| START + i * 5 * 86_400 + (i * 7_919 % 86_400))
        .collect()
}

fn chrono_utc(seconds: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(seconds, 0).expect("in range")
}

fn zoned_utc(seconds: i64) -> ZonedDateTime {
    Timestamp::from_second(seconds)
        .expect("in range")
        .to_zoned_datetime(TimeZone::UTC)
}

fn cycle<'a, T>(items: &'a [T]) -> impl FnMut() -> &'a T + 'a {
    let mut index = 0;
    move || {
        index = (index + 1) % items.len();
        &items[index]
    }
}

fn parse(c: &mut Criterion) {
    for case in &CASES {
        let mut group = c.benchmark_group(format!("parse/{}", case.name));
        group.bench_function("cano", |b| b.iter(|| Cron::parse(black_box(case.six))));
        group.bench_function("cron-0.16", |b| {
            b.iter(|| cron016::Schedule::from_str(black_box(case.six)))
        });
        group.bench_function("cron-0.17", |b| {
            b.iter(|| cron017::Schedule::from_str(black_box(case.six)))
        });
        group.bench_function("croner-4.0.3", |b| {
            b.iter(|| croner::Cron::from_str(black_box(case.six)))
        });
        group.bench_function("cron-parser-0.12", |b| {
            b.iter(|| cron_parser::Schedule::parse(black_box(case.five)))
        });
        group.finish();
    }
}

fn next(c: &mut Criterion) {
    let starts = starts();
    let zoned: Vec<ZonedDateTime> = starts.iter().map(|&s| zoned_utc(s)).collect();
    let timestamps: Vec<Timestamp> = zoned.iter().map(ZonedDateTime::timestamp).collect();
    let chrono: Vec<_> = starts.iter().map(|&s| chrono_utc(s)).collect();
    for case in &CASES {
        let mut group = c.benchmark_group(format!("next/{}", case.name));
        let cano = Cron::parse(case.six).expect("valid");
        let mut at = cycle(&zoned);
        group.bench_function("cano", |b| b.iter(|| cano.next_after(black_box(at()))));
        let mut at = cycle(&timestamps);
        group.bench_function("cano-timestamp", |b| {
            b.iter(|| cano.next_after_timestamp(*black_box(at()), &TimeZone::UTC))
        });
        if case.name == "dom-and-dow" {
            let and = Cron::parse_with(case.six, CronOptions::quartz()).expect("valid");
            let mut at = cycle(&zoned);
            group.bench_function("cano-and", |b| b.iter(|| and.next_after(black_box(at()))));
        }
        let cron16 = cron016::Schedule::from_str(case.six).expect("valid");
        let mut at = cycle(&chrono);
        group.bench_function("cron-0.16", |b| {
            b.iter(|| cron16.after(black_box(at())).next())
        });
        let cron17 = cron017::Schedule::from_str(case.six).expect("valid");
        let mut at = cycle(&chrono);
        group.bench_function("cron-0.17", |b| {
            b.iter(|| cron17.after(black_box(at())).next())
        });
        let croner = croner::Cron::from_str(case.six).expect("valid");
        let mut at = cycle(&chrono);
        group.bench_function("croner-4.0.3", |b| {
            b.iter(|| croner.find_next_occurrence(black_box(at()), false))
        });
        let parser = cron_parser::Schedule::parse(case.five).expect("valid");
        let mut at = cycle(&chrono);
        group.bench_function("cron-parser-0.12", |b| {
            b.iter(|| parser.next_after(black_box(at())))
        });
        group.finish();
    }
}

fn iterate(c: &mut Criterion) {
    const TAKE: usize = 1000;
    let zoned = zoned_utc(START);
    let chrono = chrono_utc(START);
    for case in &CASES {
        let mut group = c.benchmark_group(format!("iterate/{}", case.name));
        let cano = Cron::parse(case.six).expect("valid");
        group.bench_function("cano", |b| {
            b.iter(|| cano.upcoming(black_box(&zoned)).take(TAKE).count())
        });
        if case.name == "dom-and-dow" {
            let and = Cron::parse_with(case.six, CronOptions::quartz()).expect("valid");
            group.bench_function("cano-and", |b| {
                b.iter(|| and.upcoming(black_box(&zoned)).take(TAKE).count())
            });
        }
        let cron16 = cron016::Schedule::from_str(case.six).expect("valid");
        group.bench_function("cron-0.16", |b| {
            b.iter(|| cron16.after(black_box(&chrono)).take(TAKE).count())
        });
        let cron17 = cron017::Schedule::from_str(case.six).expect("valid");
        group.bench_function("cron-0.17", |b| {
            b.iter(|| cron17.after(black_box(&chrono)).take(TAKE).count())
        });
        let croner = croner::Cron::from_str(case.six).expect("valid");
        group.bench_function("croner-4.0.3", |b| {
            b.iter(|| croner.iter_after(black_box(chrono)).take(TAKE).count())
        });
        let parser = cron_parser::Schedule::parse(case.five).expect("valid");
        group.bench_function("cron-parser-0.12", |b| {
            b.iter(|| parser.after(black_box(&chrono)).take(TAKE).count())
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = parse, next, iterate
}
criterion_main!(benches);
