//! A scheduler started (planned) at any instant around a DST transition — the last
//! microseconds before a gap, inside a fold, next to a fire — runs a cron flow at exactly the
//! fires the expression gives from that instant: a fixed-time flow once on the gap day and
//! once on the fold day, never doubled and never lost (issue 10's class, on the Simulation).

mod scheduler_support;

use cano_core::cron::Cron;
use cano_core::jiff::{SignedDuration, Timestamp, tz::TimeZone};
use cano_core::scheduler::Scheduler;
use cano_core::testing::Simulation;
use scheduler_support::{Behaviour, Recorder, secs, start};

#[test]
fn a_cron_flow_planned_at_any_instant_around_a_transition_fires_as_the_expression_says() {
    let cases = [
        ("America/New_York", "0 30 2 * * *"),
        ("America/New_York", "0 30 1 * * *"),
        ("America/New_York", "0 */20 1-2 * * *"),
        ("America/Santiago", "0 0 0 * * *"),
        ("America/Havana", "0 30 0 * * *"),
        ("Asia/Beirut", "0 0 0 * * *"),
        ("Antarctica/Troll", "0 30 1 * * *"),
        ("Australia/Lord_Howe", "0 45 1 * * *"),
        ("Australia/Lord_Howe", "0 15 2 * * *"),
        ("Europe/London", "0 30 1 * * *"),
    ];
    let from = "2025-06-01T00:00:00Z".parse::<Timestamp>().unwrap();
    let mut checked = 0;
    for (zone, expression) in cases {
        let tz = TimeZone::get(zone).unwrap();
        let full = format!("CRON_TZ={zone} {expression}");
        let cron = Cron::parse(&full).unwrap();
        let transitions: Vec<Timestamp> =
            tz.following(from).take(2).map(|t| t.timestamp()).collect();
        for transition in transitions {
            let us = SignedDuration::from_micros;
            let mut starts: Vec<Timestamp> = [-1_000_000, -500_000, -1, 0, 1]
                .iter()
                .map(|&d| transition + us(d))
                .collect();
            // Inside a fold (or just after a gap): minutes into the new offset.
            for minutes in [1, 30, 59] {
                starts.push(transition + SignedDuration::from_mins(minutes) - us(1));
            }
            // Next to every fire within a day of the transition.
            let window_start =
                (transition - SignedDuration::from_hours(24)).to_zoned_datetime(tz.clone());
            for fire in cron
                .upcoming(&window_start)
                .map(|z| z.timestamp())
                .take_while(|f| *f < transition + SignedDuration::from_hours(24))
            {
                starts.extend([fire - us(1), fire]);
            }
            for planned_at in starts {
                let sim = Simulation::starting_at(planned_at);
                let recorder = Recorder::new(sim.clock());
                let mut scheduler = Scheduler::new();
                scheduler
                    .cron(
                        "flow",
                        recorder.job(Behaviour::INSTANT_OK),
                        (),
                        full.as_str(),
                    )
                    .unwrap();
                let _running = start(&sim, scheduler);
                sim.run_for(secs(2 * 86_400));
                let fired: Vec<Timestamp> = recorder
                    .runs_of("flow")
                    .iter()
                    .map(|run| run.fire.scheduled())
                    .collect();
                let end = planned_at + SignedDuration::from_hours(48);
                let expected: Vec<Timestamp> = cron
                    .upcoming(&planned_at.to_zoned_datetime(tz.clone()))
                    .map(|z| z.timestamp())
                    .take_while(|t| *t <= end)
                    .collect();
                assert_eq!(fired, expected, "{full} planned at {planned_at}");
                if cron.is_fixed_time() {
                    // One fire per local day it covers, the transition's day included.
                    let mut days: Vec<_> =
                        fired.iter().map(|f| tz.to_datetime(*f).date()).collect();
                    days.dedup();
                    assert_eq!(days.len(), fired.len(), "{full} planned at {planned_at}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 200, "{checked}");
}

/// The scheduler is planned three hours before `fire`; an hour later the wall clock jumps
/// (`how`: 0 a suspend, 1 an NTP step, 2 a set) to `fire + land`. Returns the fires run in
/// the day after, and the flow's missed-fire count.
fn jump_before_a_fire(
    expression: &str,
    fire: Timestamp,
    land: SignedDuration,
    how: u8,
    wall_check: Option<std::time::Duration>,
) -> (Vec<Timestamp>, u64) {
    let planned_at = fire - SignedDuration::from_hours(3);
    let sim = Simulation::starting_at(planned_at);
    let clock = sim.clock();
    let recorder = Recorder::new(sim.clock());
    let mut scheduler = Scheduler::new();
    scheduler
        .cron("flow", recorder.job(Behaviour::INSTANT_OK), (), expression)
        .unwrap();
    scheduler.set_wall_clock_check(wall_check);
    let running = start(&sim, scheduler);
    sim.run_for(secs(3600));
    let target = fire + land;
    let jump = target - (planned_at + SignedDuration::from_hours(1));
    match how {
        0 => clock.suspend(jump.unsigned_abs()),
        1 => clock.step_wall(jump),
        _ => clock.set_wall(target),
    }
    sim.run_for(secs(25 * 3600));
    let fired = recorder
        .runs_of("flow")
        .iter()
        .map(|run| run.fire.scheduled())
        .collect();
    (fired, running.status("flow").unwrap().missed_fires)
}

/// A wake-up (or clock step) that lands in the last second before a spring-forward gap: the
/// fixed-time flow whose time falls in the gap came due 1 s later, while the machine was
/// awake, but the scheduler noticed the jump only at its next wall-clock check (up to a
/// minute later) and dropped that fire as missed beyond the 1 s grace: 0 runs that day.
#[test]
fn a_wake_up_in_the_last_second_before_a_gap_keeps_the_gap_day() {
    let gap_end = "2026-03-08T07:00:00Z".parse::<Timestamp>().unwrap();
    let (fired, missed) = jump_before_a_fire(
        "CRON_TZ=America/New_York 0 30 2 * * *",
        gap_end,
        SignedDuration::from_secs(-1),
        0,
        Some(secs(60)),
    );
    let at = |s: &str| s.parse::<Timestamp>().unwrap();
    assert_eq!(fired, [gap_end, at("2026-03-09T06:30:00Z")]);
    assert_eq!(missed, 0);
}

/// The class: a wall-clock jump forward (suspend, step or set; with a wall-clock check of a
/// minute or ten seconds) landing up to a check interval before a fire (a gap's end in
/// several zones, or a plain fire in UTC): the fire may have come due after the jump, so it
/// runs once, at most one check interval late. A fire the jump skipped over is still missed,
/// per the missed-fire policy; so is one noticed only at the planned wake (no check).
#[test]
fn a_fire_due_after_a_wall_clock_jump_runs_once_and_one_jumped_over_is_missed() {
    let at = |s: &str| s.parse::<Timestamp>().unwrap();
    let cases = [
        (
            "CRON_TZ=America/New_York 0 30 2 * * *",
            at("2026-03-08T07:00:00Z"),
        ),
        (
            "CRON_TZ=America/Santiago 0 0 0 * * *",
            at("2026-09-06T04:00:00Z"),
        ),
        (
            "CRON_TZ=Australia/Lord_Howe 0 15 2 * * *",
            at("2026-10-03T15:30:00Z"),
        ),
        (
            "CRON_TZ=Antarctica/Troll 0 30 1 * * *",
            at("2026-03-29T01:00:00Z"),
        ),
        ("CRON_TZ=UTC 0 0 7 * * *", at("2026-03-08T07:00:00Z")),
    ];
    let checks = [Some(secs(60)), Some(secs(10))];
    for (expression, fire) in cases {
        for wall_check in checks {
            // How far before the fire the jump may land and the fire still count as due
            // after it: the check interval.
            let reach = wall_check.map_or(0, |every| every.as_secs() as i64);
            let lands = [-reach + 1, -1, 0]
                .map(SignedDuration::from_secs)
                .into_iter()
                .chain([-500_000, -1].map(SignedDuration::from_micros));
            for land in lands {
                for how in 0..3 {
                    let (fired, missed) =
                        jump_before_a_fire(expression, fire, land, how, wall_check);
                    let context = format!(
                        "{expression}: landed {land} from {fire}, jump {how}, check {wall_check:?}"
                    );
                    assert_eq!(fired.first(), Some(&fire), "{context}: {fired:?}");
                    assert_eq!(fired.iter().filter(|f| **f == fire).count(), 1, "{context}");
                    assert!(fired.windows(2).all(|w| w[0] < w[1]), "{context}");
                    assert_eq!(missed, 0, "{context}");
                }
            }
            // Landing after the fire: the jump skipped it; it is not run late.
            for how in 0..3 {
                let (fired, missed) = jump_before_a_fire(
                    expression,
                    fire,
                    SignedDuration::from_mins(30),
                    how,
                    wall_check,
                );
                assert!(!fired.contains(&fire), "{expression}: {fired:?}");
                assert_eq!(missed, 1, "{expression}, jump {how}, check {wall_check:?}");
            }
        }
        // Without a check the jump is noticed at the planned wake, hours late: missed.
        for how in 0..3 {
            let (fired, missed) =
                jump_before_a_fire(expression, fire, SignedDuration::from_secs(-1), how, None);
            assert!(!fired.contains(&fire), "{expression}: {fired:?}");
            assert_eq!(missed, 1, "{expression}, jump {how}, no check");
        }
    }
}
