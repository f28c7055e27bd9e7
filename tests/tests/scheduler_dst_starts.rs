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
