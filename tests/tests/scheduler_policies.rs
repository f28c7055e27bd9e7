//! A long-running flow under each overlap and missed-fire policy, fixed delay vs fixed
//! rate, first run, schedule jitter, pause/resume and fire ids, all on the fake clock.
//!
//! The common setup: a flow every 10 s whose runs take 25 s, observed for 99 s.

mod scheduler_support;

use std::time::Duration;

use cano_core::jiff::{SignedDuration, Timestamp};
use cano_core::schedule::{
    FirstRun, IntervalMode, MissedFirePolicy, OverlapPolicy, SchedulePolicy,
};
use cano_core::scheduler::Scheduler;
use cano_core::testing::Simulation;
use cano_core::{Clock, Status};
use scheduler_support::{Behaviour, Recorder, secs, start};

struct Outcome {
    starts: Vec<f64>,
    fires: Vec<i64>,
    missed: u64,
    max_in_flight: u32,
}

fn long_runs(policy: SchedulePolicy) -> Outcome {
    let sim = Simulation::new();
    let origin = sim.clock().wall_now();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.every_seconds("long", rec.job(Behaviour::taking(secs(25))), (), 10)
        .unwrap();
    s.set_policy("long", policy).unwrap();
    let running = start(&sim, s);
    sim.run_for(secs(99));
    Outcome {
        starts: rec.start_secs("long"),
        fires: rec
            .runs_of("long")
            .iter()
            .map(|r| r.fire.scheduled().duration_since(origin).as_secs())
            .collect(),
        missed: running.status("long").unwrap().missed_fires,
        max_in_flight: rec.max_in_flight("long"),
    }
}

fn rate(overlap: OverlapPolicy, missed: MissedFirePolicy) -> SchedulePolicy {
    SchedulePolicy {
        overlap,
        missed,
        interval_mode: IntervalMode::FixedRate,
        ..SchedulePolicy::default()
    }
}

#[test]
fn fixed_delay_default_measures_from_the_end_of_each_run() {
    let o = long_runs(SchedulePolicy::default());
    assert_eq!(o.starts, [0.0, 35.0, 70.0]);
    assert_eq!(o.fires, [0, 35, 70]);
    assert_eq!(o.missed, 0);
    assert_eq!(o.max_in_flight, 1);
}

#[test]
fn skip_skip_drops_the_fires_that_passed_during_a_run() {
    let o = long_runs(rate(OverlapPolicy::Skip, MissedFirePolicy::Skip));
    assert_eq!(o.starts, [0.0, 30.0, 60.0, 90.0]);
    assert_eq!(o.fires, [0, 30, 60, 90]);
    assert_eq!(o.missed, 6);
    assert_eq!(o.max_in_flight, 1);
}

#[test]
fn run_once_coalesces_into_the_most_recent_fire_within_the_window() {
    let once = MissedFirePolicy::RunOnce { window: secs(10) };
    let o = long_runs(rate(OverlapPolicy::Skip, once));
    // At 50 the fire of 50 itself is on time and is the most recent.
    assert_eq!(o.starts, [0.0, 25.0, 50.0, 75.0]);
    assert_eq!(o.fires, [0, 20, 50, 70]);
    assert_eq!(o.missed, 4);
    // A window shorter than the lateness drops them all.
    let tight = MissedFirePolicy::RunOnce { window: secs(2) };
    let o = long_runs(rate(OverlapPolicy::Skip, tight));
    assert_eq!(o.fires, [0, 30, 60, 90]);
}

#[test]
fn run_all_replays_the_most_recent_max_oldest_first() {
    let o = long_runs(rate(
        OverlapPolicy::Skip,
        MissedFirePolicy::RunAll { max: 2 },
    ));
    assert_eq!(o.starts, [0.0, 25.0, 50.0, 75.0]);
    assert_eq!(o.fires, [0, 10, 40, 60]);
    assert_eq!(o.missed, 3);
    assert_eq!(o.max_in_flight, 1);
}

#[test]
fn buffer_one_starts_one_coalesced_run_as_soon_as_the_run_ends() {
    let o = long_runs(rate(OverlapPolicy::BufferOne, MissedFirePolicy::Skip));
    assert_eq!(o.starts, [0.0, 25.0, 50.0, 75.0]);
    assert_eq!(o.fires, [0, 20, 50, 70]);
    assert_eq!(o.missed, 4);
    assert_eq!(o.max_in_flight, 1);
}

#[test]
fn allow_concurrent_runs_up_to_n_at_once() {
    let o = long_runs(rate(
        OverlapPolicy::AllowConcurrent(3),
        MissedFirePolicy::Skip,
    ));
    assert_eq!(
        o.starts,
        [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]
    );
    assert_eq!(o.missed, 0);
    assert_eq!(o.max_in_flight, 3);

    let o = long_runs(rate(
        OverlapPolicy::AllowConcurrent(2),
        MissedFirePolicy::Skip,
    ));
    assert_eq!(o.starts, [0.0, 10.0, 30.0, 40.0, 60.0, 70.0, 90.0]);
    assert_eq!(o.missed, 3);
    assert_eq!(o.max_in_flight, 2);
}

#[test]
fn buffer_one_holds_one_trigger() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.manual("m", rec.job(Behaviour::taking(secs(5))), ())
        .unwrap();
    s.set_overlap("m", OverlapPolicy::BufferOne).unwrap();
    let running = start(&sim, s);
    running.trigger("m").unwrap();
    sim.run_for(secs(1));
    running.trigger("m").unwrap(); // held
    let err = running.trigger("m").unwrap_err();
    assert!(err.to_string().contains("already running"), "{err}");
    sim.run_for(secs(20));
    assert_eq!(rec.start_secs("m"), [0.0, 5.0]);
    assert_eq!(rec.max_in_flight("m"), 1);
}

#[test]
fn first_run_after_one_interval() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.every_seconds("d", rec.job(Behaviour::INSTANT_OK), (), 10)
        .unwrap();
    s.set_first_run("d", FirstRun::AfterInterval).unwrap();
    s.every_seconds("r", rec.job(Behaviour::INSTANT_OK), (), 10)
        .unwrap();
    s.set_first_run("r", FirstRun::AfterInterval).unwrap();
    s.set_interval_mode("r", IntervalMode::FixedRate).unwrap();
    let _running = start(&sim, s);
    sim.run_for(secs(35));
    assert_eq!(rec.start_secs("d"), [10.0, 20.0, 30.0]);
    assert_eq!(rec.start_secs("r"), [10.0, 20.0, 30.0]);
}

fn jittered_starts(seed: u64) -> Vec<f64> {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.set_seed(seed);
    s.every_seconds("j", rec.job(Behaviour::INSTANT_OK), (), 10)
        .unwrap();
    s.set_policy(
        "j",
        SchedulePolicy {
            interval_mode: IntervalMode::FixedRate,
            jitter: secs(60), // larger than the interval: capped just before the next fire
            ..SchedulePolicy::default()
        },
    )
    .unwrap();
    let _running = start(&sim, s);
    sim.run_for(secs(100));
    let runs = rec.runs_of("j");
    let origin = Timestamp::from_second(1_767_225_600).unwrap();
    for (k, run) in runs.iter().enumerate() {
        // The fire id is the unjittered grid time.
        assert_eq!(
            run.fire.scheduled(),
            origin + SignedDuration::from_secs(10 * k as i64)
        );
    }
    rec.start_secs("j")
}

#[test]
fn schedule_jitter_is_positive_bounded_by_the_next_fire_and_stable_per_seed() {
    let a = jittered_starts(1);
    assert_eq!(a, jittered_starts(1), "same seed, same offsets");
    let offset = a[0];
    assert!(offset > 0.0 && offset < 10.0, "{offset}");
    let drawn = cano_core::schedule::stable_jitter(1, "j", secs(60));
    let capped = drawn.min(Duration::from_micros(9_999_999)).as_secs_f64();
    assert!((offset - capped).abs() < 1e-9, "{offset} vs {capped}");
    // Some seeds draw an offset beyond the interval: it is capped one microsecond short.
    let capped_seed = (0..64)
        .find(|seed| cano_core::schedule::stable_jitter(*seed, "j", secs(60)) >= secs(10))
        .expect("a seed whose offset exceeds the interval");
    assert_eq!(jittered_starts(capped_seed)[0], 9.999999);
    for (k, t) in a.iter().enumerate() {
        assert!((t - (10.0 * k as f64 + offset)).abs() < 1e-9);
    }
}

#[test]
fn small_jitter_is_a_fixed_offset_per_flow() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.set_seed(42);
    for id in ["a", "b", "c"] {
        s.every_seconds(id, rec.job(Behaviour::INSTANT_OK), (), 10)
            .unwrap();
        s.set_jitter(id, secs(3)).unwrap();
    }
    let _running = start(&sim, s);
    sim.run_for(secs(60));
    let offsets: Vec<f64> = ["a", "b", "c"]
        .iter()
        .map(|id| rec.start_secs(id)[0])
        .collect();
    for (id, offset) in ["a", "b", "c"].iter().zip(&offsets) {
        assert!((0.0..3.0).contains(offset), "{id}: {offset}");
        let expected = cano_core::schedule::stable_jitter(42, id, secs(3)).as_secs_f64();
        assert!((offset - expected).abs() < 1e-6);
    }
    assert!(offsets[0] != offsets[1] || offsets[1] != offsets[2]);
}

#[test]
fn pause_holds_scheduled_fires_and_resume_continues_from_now() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.every_seconds("p", rec.job(Behaviour::INSTANT_OK), (), 10)
        .unwrap();
    s.set_interval_mode("p", IntervalMode::FixedRate).unwrap();
    let running = start(&sim, s);
    sim.run_for(secs(15));
    running.pause("p").unwrap();
    assert_eq!(running.status("p").unwrap().status, Status::Paused);
    assert_eq!(running.status("p").unwrap().next_fire, None);
    sim.run_for(secs(30));
    // A trigger still works while paused.
    running.trigger("p").unwrap();
    sim.run_until_stalled();
    running.resume("p").unwrap();
    sim.run_for(secs(20));
    assert_eq!(rec.start_secs("p"), [0.0, 10.0, 45.0, 50.0, 60.0]);
    assert_eq!(running.status("p").unwrap().missed_fires, 0);
}

#[test]
fn next_fires_lists_the_plan() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.every_seconds("r", rec.job(Behaviour::INSTANT_OK), (), 10)
        .unwrap();
    s.set_interval_mode("r", IntervalMode::FixedRate).unwrap();
    s.manual("m", rec.job(Behaviour::INSTANT_OK), ()).unwrap();
    let running = start(&sim, s);
    sim.run_for(secs(5));
    let origin = Timestamp::from_second(1_767_225_600).unwrap();
    let plan = running.next_fires("r", 3).unwrap();
    assert_eq!(
        plan,
        [10, 20, 30].map(|s| origin + SignedDuration::from_secs(s))
    );
    assert_eq!(running.status("r").unwrap().next_fire, Some(plan[0]));
    assert!(running.next_fires("m", 3).unwrap().is_empty());
}

#[test]
fn fire_ids_strictly_increase_even_when_triggers_collide() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.manual("m", rec.job(Behaviour::INSTANT_OK), ()).unwrap();
    let running = start(&sim, s);
    for _ in 0..3 {
        running.trigger("m").unwrap();
        sim.run_until_stalled();
    }
    // Three triggers at the same wall instant: ids one microsecond apart.
    let ids: Vec<Timestamp> = rec
        .runs_of("m")
        .iter()
        .map(|r| r.fire.scheduled())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(ids[2] - ids[0], SignedDuration::from_micros(2));
}

#[test]
fn invalid_policies_are_configuration_errors() {
    let mut s: Scheduler = Scheduler::new();
    s.manual("m", |_f: cano_core::scheduler::Fire| async { Ok(()) }, ())
        .unwrap();
    for result in [
        s.set_overlap("m", OverlapPolicy::AllowConcurrent(0)),
        s.set_missed_fires("m", MissedFirePolicy::RunAll { max: 0 }),
        s.set_overlap("ghost", OverlapPolicy::Skip),
        s.set_backoff(
            "m",
            cano_core::BackoffPolicy {
                multiplier: f64::NAN,
                ..Default::default()
            },
        ),
    ] {
        assert_eq!(result.unwrap_err().category(), "configuration");
    }
    let _ = Duration::ZERO;
}
