//! Scheduler events on the fake clock: every kind, in the order the core decided them, the
//! same for an observer and a subscription; a lagging subscriber; the scheduler never waits.

mod scheduler_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cano_core::scheduler::schedule::{FirstRun, MissedFirePolicy};
use cano_core::scheduler::{RunOutcome, Scheduler, SchedulerEvent, SchedulerEvents};
use cano_core::testing::Simulation;
use cano_core::{BackoffPolicy, Clock};
use futures::{FutureExt, StreamExt};
use scheduler_support::{Behaviour, Recorder, secs, start};

/// A line per event, with what the tests check (times in whole seconds).
fn line(event: &SchedulerEvent) -> String {
    match event {
        SchedulerEvent::FireStarted { fire, .. } => format!("start {}", fire.flow()),
        SchedulerEvent::FireEnded {
            fire,
            outcome,
            duration,
            ..
        } => {
            let how = match outcome {
                RunOutcome::Succeeded => "ok".to_string(),
                RunOutcome::Failed(failure) => format!("failed: {}", failure.message()),
                RunOutcome::Cancelled => "cancelled".to_string(),
                other => format!("{other:?}"),
            };
            format!("end {} {how} in {}s", fire.flow(), duration.as_secs())
        }
        SchedulerEvent::FiresMissed { flow, count } => format!("missed {flow} {count}"),
        SchedulerEvent::FiresSkipped { flow, count } => format!("skipped {flow} {count}"),
        SchedulerEvent::Backoff {
            flow,
            streak,
            delay,
        } => format!("backoff {flow} streak {streak} for {}s", delay.as_secs()),
        SchedulerEvent::Tripped { flow, streak } => format!("tripped {flow} streak {streak}"),
        SchedulerEvent::Reset { flow } => format!("reset {flow}"),
        SchedulerEvent::Paused { flow } => format!("paused {flow}"),
        SchedulerEvent::Resumed { flow } => format!("resumed {flow}"),
        SchedulerEvent::FlowAdded { flow } => format!("added {flow}"),
        SchedulerEvent::FlowRemoved { flow } => format!("removed {flow}"),
        SchedulerEvent::FlowReplaced { flow } => format!("replaced {flow}"),
        SchedulerEvent::Stopping => "stopping".into(),
        SchedulerEvent::Stopped => "stopped".into(),
        SchedulerEvent::Lagged { missed } => format!("lagged {missed}"),
        other => format!("{other:?}"),
    }
}

/// Every event the subscription has now, without waiting; `None` once it ended.
fn ready(events: &mut SchedulerEvents) -> Option<Vec<String>> {
    let mut out = Vec::new();
    loop {
        match events.next().now_or_never() {
            Some(Some(event)) => out.push(line(&event)),
            Some(None) if out.is_empty() => return None,
            Some(None) | None => return Some(out),
        }
    }
}

fn no_jitter(streak_limit: Option<u32>) -> BackoffPolicy {
    BackoffPolicy {
        initial: secs(4),
        multiplier: 2.0,
        jitter: 0.0,
        streak_limit,
        ..BackoffPolicy::default()
    }
}

#[test]
fn every_kind_of_event_comes_in_order_to_observers_and_subscribers_alike() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let observed = Arc::new(Mutex::new(Vec::new()));
    let sink = observed.clone();
    let mut s = Scheduler::new();
    s.observe(move |event: &SchedulerEvent| sink.lock().unwrap().push(line(event)));
    s.every("flaky", rec.job(Behaviour::failing()), (), secs(10))
        .unwrap();
    s.set_first_run("flaky", FirstRun::AfterInterval).unwrap();
    s.set_backoff("flaky", no_jitter(Some(2))).unwrap();
    let ignores_stop = Behaviour {
        honour_stop: false,
        ..Behaviour::taking(secs(3))
    };
    s.manual("slow", rec.job(ignores_stop), ()).unwrap();
    // The slow run is dropped at the stop's deadline, with its cancellation signal.
    s.set_cancel_wind_down(Duration::ZERO);
    let running = start(&sim, s);
    let mut events = running.subscribe();

    sim.run_for(secs(10)); // flaky fails at 10 s: backoff for 4 s, next fire at 20 s
    assert_eq!(
        ready(&mut events).unwrap(),
        [
            "start flaky",
            "end flaky failed: Task execution error: Test failure in 0s",
            "backoff flaky streak 1 for 4s",
        ]
    );
    sim.run_for(secs(10)); // the second failure trips it
    assert_eq!(
        ready(&mut events).unwrap(),
        [
            "start flaky",
            "end flaky failed: Task execution error: Test failure in 0s",
            "tripped flaky streak 2",
        ]
    );
    running.reset_flow("flaky").unwrap();
    running.pause("flaky").unwrap();
    running.resume("flaky").unwrap();
    running.trigger("slow").unwrap();
    sim.run_for(secs(3));
    assert_eq!(
        ready(&mut events).unwrap(),
        [
            "reset flaky",
            "paused flaky",
            "resumed flaky",
            "start slow",
            "end slow ok in 3s",
        ]
    );
    running.pause("flaky").unwrap();
    running.trigger("slow").unwrap();
    let report = sim.block_on(running.stop_within(secs(1)));
    assert_eq!(
        report.unwrap().cancelled.len(),
        1,
        "the slow run outlives the grace"
    );
    let rest = ready(&mut events).unwrap();
    assert_eq!(
        rest,
        [
            "paused flaky",
            "start slow",
            "stopping",
            "end slow cancelled in 1s",
            "stopped",
        ]
    );
    assert_eq!(
        ready(&mut events),
        None,
        "the subscription ends after Stopped"
    );
    let observed = observed.lock().unwrap().clone();
    assert_eq!(
        observed[..],
        {
            let mut all = vec![
                "start flaky",
                "end flaky failed: Task execution error: Test failure in 0s",
                "backoff flaky streak 1 for 4s",
                "start flaky",
                "end flaky failed: Task execution error: Test failure in 0s",
                "tripped flaky streak 2",
                "reset flaky",
                "paused flaky",
                "resumed flaky",
                "start slow",
                "end slow ok in 3s",
            ];
            all.extend(rest.iter().map(String::as_str));
            all
        }[..]
    );
}

/// Missed fires (a suspend skipped over them) and skipped fires (inside a backoff window)
/// are counted events, with the same counts as the flow's info.
#[test]
fn missed_and_skipped_fires_are_events_with_their_counts() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.cron("minutely", rec.job(Behaviour::INSTANT_OK), (), "* * * * *")
        .unwrap();
    s.set_missed_fires("minutely", MissedFirePolicy::Skip)
        .unwrap();
    s.cron("failing", rec.job(Behaviour::failing()), (), "* * * * *")
        .unwrap();
    s.set_backoff(
        "failing",
        BackoffPolicy {
            initial: secs(300),
            ..no_jitter(None)
        },
    )
    .unwrap();
    let running = start(&sim, s);
    let mut events = running.subscribe();
    sim.run_for(secs(60));
    let mut lines = ready(&mut events).unwrap();
    assert!(lines.iter().all(|l| !l.starts_with("missed")));
    sim.clock().suspend(secs(600)); // the wall clock moves 10 minutes, monotonic does not
    sim.run_for(secs(61));
    let after_suspend = ready(&mut events).unwrap();
    let missed: Vec<_> = after_suspend
        .iter()
        .filter(|l| l.starts_with("missed minutely"))
        .collect();
    let info = running.status("minutely").unwrap();
    assert!(info.missed_fires >= 9, "{info:?}");
    assert_eq!(missed, [&format!("missed minutely {}", info.missed_fires)]);
    lines.extend(after_suspend);
    sim.run_for(secs(240));
    lines.extend(ready(&mut events).unwrap());
    let skipped: u64 = lines
        .iter()
        .filter_map(|l| l.strip_prefix("skipped failing "))
        .map(|n| n.parse::<u64>().unwrap())
        .sum();
    assert!(skipped > 0, "{lines:?}");
    assert_eq!(skipped, running.status("failing").unwrap().skipped_fires);
    sim.block_on(running.stop()).unwrap();
}

/// A subscriber that reads nothing falls behind: the scheduler runs on regardless, and the
/// subscriber then gets `Lagged` with the exact count it missed, then the newest events in
/// order. A subscriber that keeps up sees every event.
#[test]
fn a_lagging_subscriber_gets_lagged_then_continues_and_never_blocks_the_scheduler() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.every("tick", rec.job(Behaviour::INSTANT_OK), (), secs(1))
        .unwrap();
    s.set_first_run("tick", FirstRun::AfterInterval).unwrap();
    s.set_event_capacity(8);
    let running = start(&sim, s);
    let mut slow = running.subscribe();
    let mut fast = running.subscribe();
    let mut fast_seen = Vec::new();
    for _ in 0..50 {
        sim.run_for(secs(1));
        fast_seen.extend(ready(&mut fast).unwrap());
    }
    assert_eq!(
        rec.count("tick"),
        50,
        "the scheduler never waited for `slow`"
    );
    assert_eq!(fast_seen.len(), 100, "start and end of 50 runs");
    assert!(fast_seen.iter().all(|l| !l.starts_with("lagged")));
    let lines = ready(&mut slow).unwrap();
    assert_eq!(lines[0], "lagged 92");
    assert_eq!(lines[1..], fast_seen[92..]);
    // It goes on like any subscriber.
    sim.run_for(secs(1));
    assert_eq!(
        ready(&mut slow).unwrap(),
        ["start tick", "end tick ok in 0s"]
    );
    sim.block_on(running.stop()).unwrap();
}

/// A parked subscriber is woken (by the scheduler's loop, outside its lock) when an event
/// arrives, and a dropped subscription is forgotten.
#[test]
fn a_waiting_subscriber_is_woken_by_the_next_event() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.every(
        "tick",
        rec.job(Behaviour::INSTANT_OK),
        (),
        Duration::from_secs(30),
    )
    .unwrap();
    s.set_first_run("tick", FirstRun::AfterInterval).unwrap();
    let running = start(&sim, s);
    let events = running.subscribe();
    let dropped = running.subscribe();
    drop(dropped);
    let first = sim.block_on(events.take(2).map(|e| line(&e)).collect::<Vec<_>>());
    assert_eq!(first, ["start tick", "end tick ok in 0s"]);
    assert_eq!(sim.clock().now().as_micros(), 30_000_000);
    sim.block_on(running.stop()).unwrap();
}
