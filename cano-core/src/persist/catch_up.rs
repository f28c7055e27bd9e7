//! [`plan_catch_up`]: which fires a restarted scheduler runs for the time it was down.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::{FlowRecord, ScheduleHash};
use crate::scheduler::schedule::{
    CronSchedule, IntervalMode, Schedule, SchedulePolicy, Timeline, choose, keep, micros,
};

/// Why nothing from before a restart is caught up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CatchUpReason {
    /// The store has no record of the flow (a new flow, or a first start).
    NoRecord,
    /// The flow never fired before the restart.
    NeverFired,
    /// The flow's schedule changed while the scheduler was down ([`ScheduleHash`]): fires of
    /// the old schedule are not the new one's to catch up.
    ScheduleChanged,
    /// The flow was paused: fires that pass while paused do not run later.
    Paused,
    /// The flow was tripped: nothing runs until a reset.
    Tripped,
    /// A manual flow has no fires of its own.
    Manual,
}

/// What a restarted scheduler does about the fires a flow had while it was down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchUp {
    /// The fires to run now, oldest first (their [`FireId`](crate::scheduler::FireId) times).
    pub fires: Vec<Timestamp>,
    /// Fires that passed and are dropped by the flow's
    /// [`MissedFirePolicy`](crate::schedule::MissedFirePolicy) (counted as missed).
    pub dropped: u64,
    /// Why nothing was looked at, if so.
    pub reason: Option<CatchUpReason>,
    /// The record held a buffered trigger that never started: start it (unless tripped or
    /// the schedule changed).
    pub buffered_trigger: bool,
}

impl CatchUp {
    fn nothing(reason: CatchUpReason) -> CatchUp {
        CatchUp {
            fires: Vec::new(),
            dropped: 0,
            reason: Some(reason),
            buffered_trigger: false,
        }
    }
}

/// The catch-up of one flow at restart, from its stored `record` and its schedule as
/// registered now: the same [`MissedFirePolicy`](crate::schedule::MissedFirePolicy) rules
/// the running scheduler applies to fires it could not start, over the fires after the
/// record's last fire up to `now` (wall time).
///
/// * A missing record, a flow that never fired, a changed [`ScheduleHash`] (computed here
///   from `schedule`, `policy` and `zone`), a paused or a tripped flow: nothing is caught up
///   ([`CatchUp::reason`] says why).
/// * Fires before the record's `next_eligible` (a backoff window) are skipped, as they are
///   while running: neither run nor counted.
/// * `Skip` runs the latest passed fire only if it is no later than `grace`; `RunOnce` runs
///   the latest if it is within its window; `RunAll { max }` runs the most recent `max`,
///   oldest first. The rest are [`CatchUp::dropped`].
/// * A fixed-rate interval continues its grid from the last fire. A fixed-delay interval
///   has no grid: if its next fire (last fire + interval) passed, it runs once, late, and
///   nothing is dropped.
/// * The last fire itself is never in the plan: it started before the restart (in a fleet,
///   the ledger decides whether an unfinished run is taken over).
///
/// ```
/// use cano_core::persist::{plan_catch_up, FlowRecord, ScheduleHash};
/// use cano_core::schedule::{MissedFirePolicy, Schedule, SchedulePolicy};
/// use cano_core::jiff::{tz::TimeZone, Timestamp};
/// use cano_core::Cron;
/// use core::time::Duration;
///
/// let schedule = Schedule::Cron(Cron::parse("0 * * * *")?); // hourly
/// let policy = SchedulePolicy { missed: MissedFirePolicy::RunAll { max: 2 }, ..Default::default() };
/// let zone = TimeZone::UTC;
/// let mut record = FlowRecord::new(ScheduleHash::of(&schedule, &policy, &zone));
/// record.last_fire = Some("2026-01-01T00:00:00Z".parse()?);
/// let now: Timestamp = "2026-01-01T03:30:00Z".parse()?; // down for 01:00, 02:00, 03:00
/// let plan = plan_catch_up(Some(&record), &schedule, &policy, &zone, now, Duration::from_secs(1));
/// assert_eq!(plan.fires, ["2026-01-01T02:00:00Z".parse::<Timestamp>()?, "2026-01-01T03:00:00Z".parse()?]);
/// assert_eq!(plan.dropped, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn plan_catch_up(
    record: Option<&FlowRecord>,
    schedule: &Schedule,
    policy: &SchedulePolicy,
    zone: &TimeZone,
    now: Timestamp,
    grace: Duration,
) -> CatchUp {
    let Some(record) = record else {
        return CatchUp::nothing(CatchUpReason::NoRecord);
    };
    if record.schedule_hash != ScheduleHash::of(schedule, policy, zone) {
        return CatchUp::nothing(CatchUpReason::ScheduleChanged);
    }
    if record.tripped {
        return CatchUp::nothing(CatchUpReason::Tripped);
    }
    let buffered_trigger = record.buffered_trigger;
    let with_trigger = |mut plan: CatchUp| {
        plan.buffered_trigger = buffered_trigger;
        plan
    };
    if record.paused {
        return with_trigger(CatchUp::nothing(CatchUpReason::Paused));
    }
    let Some(last) = record.last_fire else {
        return with_trigger(CatchUp::nothing(CatchUpReason::NeverFired));
    };
    let last = last.as_microsecond();
    let now_us = now.as_microsecond();
    let eligible = record
        .next_eligible
        .map_or(i64::MIN, |t| t.as_microsecond());
    let timeline = match schedule {
        Schedule::Manual => return with_trigger(CatchUp::nothing(CatchUpReason::Manual)),
        Schedule::Every(interval) => {
            let interval = micros(*interval).max(1);
            match policy.interval_mode {
                IntervalMode::FixedDelay => {
                    let due = last.saturating_add(interval).max(eligible);
                    let fires = if due <= now_us {
                        alloc::vec![timestamp(due)]
                    } else {
                        Vec::new()
                    };
                    return with_trigger(CatchUp {
                        fires,
                        dropped: 0,
                        reason: None,
                        buffered_trigger: false,
                    });
                }
                IntervalMode::FixedRate => Timeline::FixedRate {
                    interval,
                    anchor: last,
                },
            }
        }
        Schedule::Cron(cron) => Timeline::Wall(Box::new(CronSchedule {
            cron: cron.clone(),
            zone: cron.time_zone().cloned().unwrap_or_else(|| zone.clone()),
        })),
    };
    // The first fire after the last one that is also past the backoff window.
    let first = if eligible > last {
        timeline.next_at_or_after(eligible)
    } else {
        timeline.next_after(last)
    };
    let Some(first) = first.filter(|f| *f <= now_us) else {
        return with_trigger(CatchUp {
            fires: Vec::new(),
            dropped: 0,
            reason: None,
            buffered_trigger: false,
        });
    };
    let passed = timeline.passed(first, now_us, keep(policy.missed));
    let choice = choose(policy.missed, &passed, now_us, micros(grace), false);
    let mut fires = Vec::new();
    if let Some(run) = choice.run {
        // `RunAll` starts at the oldest kept and runs every kept fire; the others run one.
        let runs = if run == passed.latest { 1 } else { passed.kept };
        let mut fire = Some(run);
        while let Some(f) = fire.filter(|f| *f <= now_us) {
            fires.push(timestamp(f));
            if fires.len() as u64 >= runs {
                break;
            }
            fire = timeline.next_after(f);
        }
    }
    with_trigger(CatchUp {
        fires,
        dropped: choice.dropped,
        reason: None,
        buffered_trigger: false,
    })
}

fn timestamp(micros: i64) -> Timestamp {
    Timestamp::from_microsecond(micros).unwrap_or(if micros > 0 {
        Timestamp::MAX
    } else {
        Timestamp::MIN
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cron::Cron;
    use crate::scheduler::schedule::MissedFirePolicy;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn hourly() -> Schedule {
        Schedule::Cron(Cron::parse("0 * * * *").unwrap())
    }

    fn record(schedule: &Schedule, policy: &SchedulePolicy, last: &str) -> FlowRecord {
        let mut r = FlowRecord::new(ScheduleHash::of(schedule, policy, &TimeZone::UTC));
        r.last_fire = Some(t(last));
        r
    }

    fn plan(r: &FlowRecord, s: &Schedule, p: &SchedulePolicy, now: &str) -> CatchUp {
        plan_catch_up(
            Some(r),
            s,
            p,
            &TimeZone::UTC,
            t(now),
            Duration::from_secs(1),
        )
    }

    #[test]
    fn skip_runs_only_a_fire_within_the_grace() {
        let s = hourly();
        let p = SchedulePolicy::default();
        let r = record(&s, &p, "2026-01-01T00:00:00Z");
        let late = plan(&r, &s, &p, "2026-01-01T03:30:00Z");
        assert!(late.fires.is_empty());
        assert_eq!(late.dropped, 3);
        let on_time = plan(&r, &s, &p, "2026-01-01T03:00:00.5Z");
        assert_eq!(on_time.fires, [t("2026-01-01T03:00:00Z")]);
        assert_eq!(on_time.dropped, 2);
    }

    #[test]
    fn run_once_runs_the_latest_within_its_window() {
        let s = hourly();
        let p = SchedulePolicy {
            missed: MissedFirePolicy::RunOnce {
                window: Duration::from_secs(3600),
            },
            ..SchedulePolicy::default()
        };
        let r = record(&s, &p, "2026-01-01T00:00:00Z");
        let within = plan(&r, &s, &p, "2026-01-01T03:59:00Z");
        assert_eq!(within.fires, [t("2026-01-01T03:00:00Z")]);
        assert_eq!(within.dropped, 2);
        let outside = plan(&r, &s, &p, "2026-01-01T04:59:59Z");
        assert_eq!(outside.fires, [t("2026-01-01T04:00:00Z")]);
        let gap = plan(&r, &s, &p, "2026-01-01T05:00:00Z");
        assert_eq!(gap.fires, [t("2026-01-01T05:00:00Z")]);
    }

    #[test]
    fn run_all_runs_the_most_recent_up_to_its_cap() {
        let s = hourly();
        let p = SchedulePolicy {
            missed: MissedFirePolicy::RunAll { max: 5 },
            ..SchedulePolicy::default()
        };
        let r = record(&s, &p, "2026-01-01T00:00:00Z");
        let few = plan(&r, &s, &p, "2026-01-01T02:10:00Z");
        assert_eq!(
            few.fires,
            [t("2026-01-01T01:00:00Z"), t("2026-01-01T02:00:00Z")]
        );
        assert_eq!(few.dropped, 0);
        let many = plan(&r, &s, &p, "2026-01-02T00:00:00Z");
        assert_eq!(many.fires.len(), 5);
        assert_eq!(many.fires[0], t("2026-01-01T20:00:00Z"));
        assert_eq!(many.fires[4], t("2026-01-02T00:00:00Z"));
        assert_eq!(many.dropped, 19);
    }

    #[test]
    fn a_changed_schedule_paused_or_tripped_flow_catches_nothing_up() {
        let s = hourly();
        let p = SchedulePolicy {
            missed: MissedFirePolicy::RunAll { max: 5 },
            ..SchedulePolicy::default()
        };
        let mut r = record(&s, &p, "2026-01-01T00:00:00Z");
        let other = Schedule::Cron(Cron::parse("30 * * * *").unwrap());
        let changed = plan(&r, &other, &p, "2026-01-01T05:00:00Z");
        assert_eq!(changed.reason, Some(CatchUpReason::ScheduleChanged));
        assert!(changed.fires.is_empty());
        r.paused = true;
        r.buffered_trigger = true;
        let paused = plan(&r, &s, &p, "2026-01-01T05:00:00Z");
        assert_eq!(paused.reason, Some(CatchUpReason::Paused));
        assert!(paused.fires.is_empty() && paused.buffered_trigger);
        r.tripped = true;
        let tripped = plan(&r, &s, &p, "2026-01-01T05:00:00Z");
        assert_eq!(tripped.reason, Some(CatchUpReason::Tripped));
        assert!(!tripped.buffered_trigger);
        let none = plan_catch_up(
            None,
            &s,
            &p,
            &TimeZone::UTC,
            t("2026-01-01T05:00:00Z"),
            Duration::ZERO,
        );
        assert_eq!(none.reason, Some(CatchUpReason::NoRecord));
    }

    #[test]
    fn fires_inside_the_backoff_window_are_skipped_not_dropped() {
        let s = hourly();
        let p = SchedulePolicy {
            missed: MissedFirePolicy::RunAll { max: 10 },
            ..SchedulePolicy::default()
        };
        let mut r = record(&s, &p, "2026-01-01T00:00:00Z");
        r.next_eligible = Some(t("2026-01-01T02:30:00Z"));
        let after = plan(&r, &s, &p, "2026-01-01T04:10:00Z");
        assert_eq!(
            after.fires,
            [t("2026-01-01T03:00:00Z"), t("2026-01-01T04:00:00Z")]
        );
        assert_eq!(after.dropped, 0);
    }

    #[test]
    fn intervals_continue_from_the_last_fire() {
        let s = Schedule::Every(Duration::from_secs(600));
        let rate = SchedulePolicy {
            interval_mode: IntervalMode::FixedRate,
            missed: MissedFirePolicy::RunAll { max: 2 },
            ..SchedulePolicy::default()
        };
        let r = record(&s, &rate, "2026-01-01T00:00:00Z");
        let p = plan(&r, &s, &rate, "2026-01-01T00:35:00Z");
        assert_eq!(
            p.fires,
            [t("2026-01-01T00:20:00Z"), t("2026-01-01T00:30:00Z")]
        );
        assert_eq!(p.dropped, 1);
        let delay = SchedulePolicy::default();
        let r = record(&s, &delay, "2026-01-01T00:00:00Z");
        let overdue = plan(&r, &s, &delay, "2026-01-01T05:00:00Z");
        assert_eq!(overdue.fires, [t("2026-01-01T00:10:00Z")]);
        assert_eq!(overdue.dropped, 0);
        let not_yet = plan(&r, &s, &delay, "2026-01-01T00:05:00Z");
        assert!(not_yet.fires.is_empty() && not_yet.reason.is_none());
    }
}
