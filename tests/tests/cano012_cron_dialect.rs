//! A cron expression written for cano 0.12 keeps its meaning when the scheduler is told so:
//! `Scheduler::cron` takes `(expr, CronOptions::quartz())` or a `Cron` parsed with those
//! options, and then fires exactly when cano 0.12's parser (the `cron` crate, 0.16) says.
//! Without the options the same text is read as POSIX cron, where numeric weekdays and
//! day-of-month with day-of-week mean something else (documented in `Scheduler::cron`).

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cano_core::testing::Simulation;
use cano_tokio::jiff::Timestamp;
use cano_tokio::prelude::*;

type Fires = Arc<Mutex<Vec<Timestamp>>>;

fn recorder() -> (Fires, impl Job<()>) {
    let fires: Fires = Arc::default();
    let sink = fires.clone();
    let job = job_fn(move |(), fire: Fire| {
        sink.lock().unwrap().push(fire.id().scheduled());
        async { Ok(()) }
    });
    (fires, job)
}

/// What cano 0.12 (cron 0.16) fires for `expr` in `(start, end]`.
fn cano012_fires(expr: &str, start: Timestamp, end: Timestamp) -> Vec<Timestamp> {
    let schedule = cron016::Schedule::from_str(expr).unwrap();
    let from = chrono::DateTime::from_timestamp(start.as_second(), 0).unwrap();
    schedule
        .after(&from)
        .map(|t| Timestamp::from_second(t.timestamp()).unwrap())
        .take_while(|&t| t <= end)
        .collect()
}

/// Expressions as cano 0.12 users wrote them: numeric weekdays (Sunday = 1), ranges and
/// lists of them, both day fields restricted (AND), and dialect-neutral ones.
const CANO_012_EXPRESSIONS: [&str; 10] = [
    "0 0 9 * * 2",
    "0 0 9 * * 1-5",
    "0 30 9 1-7 * MON",
    "0 0 12 * * 1,7",
    "0 0 8 1,15 * 2-6",
    "0 0 18 * * 6-7",
    "0 */30 9-10 * * 3",
    "0 0 9 * * MON",
    "0 */5 * * * *",
    "0 0 0 * * *",
];

#[test]
fn cano012_expressions_with_quartz_options_fire_as_they_did_in_cano012() {
    let days = 45;
    for expr in CANO_012_EXPRESSIONS {
        let sim = Simulation::new();
        let start = sim.clock().wall_now();
        let mut scheduler = Scheduler::new();
        let (as_tuple, job) = recorder();
        scheduler
            .cron("tuple", job, (), (expr, CronOptions::quartz()))
            .unwrap();
        let (as_cron, job) = recorder();
        let parsed = Cron::parse_with(expr, CronOptions::quartz()).unwrap();
        scheduler.cron("parsed", job, (), &parsed).unwrap();
        let (as_owned, job) = recorder();
        scheduler.cron("owned", job, (), parsed).unwrap();
        let running = sim
            .block_on(scheduler.start(sim.clock(), sim.spawner()))
            .unwrap();
        sim.run_for(Duration::from_secs(days * 24 * 3600));
        let end = sim.clock().wall_now();
        sim.block_on(running.stop()).unwrap();

        let expected = cano012_fires(expr, start, end);
        assert!(!expected.is_empty(), "{expr}");
        for (form, fires) in [("tuple", as_tuple), ("&Cron", as_cron), ("Cron", as_owned)] {
            assert_eq!(*fires.lock().unwrap(), expected, "{expr} as {form}");
        }
    }
}

#[test]
fn the_default_dialect_reads_numeric_weekdays_and_both_day_fields_as_posix() {
    let sim = Simulation::new(); // Thursday 2026-01-01
    let start = sim.clock().wall_now();
    let mut scheduler = Scheduler::new();
    let mut recorded = Vec::new();
    for expr in ["0 0 9 * * 2", "0 0 9 * * 1-5", "0 30 9 1-7 * MON"] {
        let (fires, job) = recorder();
        scheduler.cron(expr, job, (), expr).unwrap();
        recorded.push((expr, fires));
    }
    let running = sim
        .block_on(scheduler.start(sim.clock(), sim.spawner()))
        .unwrap();
    sim.run_for(Duration::from_secs(14 * 24 * 3600));
    let end = sim.clock().wall_now();
    sim.block_on(running.stop()).unwrap();

    let weekdays = |fires: &Fires| -> Vec<String> {
        fires
            .lock()
            .unwrap()
            .iter()
            .map(|t| t.strftime("%a %d").to_string())
            .collect()
    };
    let [(_, tuesday), (_, workdays), (_, either)] = &recorded[..] else {
        unreachable!()
    };
    // POSIX: 2 is Tuesday (cano 0.12: Monday).
    assert_eq!(weekdays(tuesday), ["Tue 06", "Tue 13"]);
    // POSIX: 1-5 is Monday to Friday (cano 0.12: Sunday to Thursday).
    assert_eq!(
        weekdays(workdays),
        [
            "Thu 01", "Fri 02", "Mon 05", "Tue 06", "Wed 07", "Thu 08", "Fri 09", "Mon 12",
            "Tue 13", "Wed 14"
        ]
    );
    // POSIX: days 1-7 OR Mondays (cano 0.12: the first Monday only).
    assert_eq!(
        weekdays(either),
        [
            "Thu 01", "Fri 02", "Sat 03", "Sun 04", "Mon 05", "Tue 06", "Wed 07", "Mon 12"
        ]
    );
    for (expr, fires) in &recorded {
        assert_ne!(
            *fires.lock().unwrap(),
            cano012_fires(expr, start, end),
            "{expr} reads the same in both dialects; pick one that differs"
        );
    }
}
