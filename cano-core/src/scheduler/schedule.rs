//! When a flow fires: [`Schedule`] (`Every`, `Cron`, `Manual`) and the policies
//! cano 0.12 lacked, each defaulting to cano 0.12's behaviour: [`OverlapPolicy`],
//! [`MissedFirePolicy`], [`IntervalMode`], [`FirstRun`] and schedule jitter, gathered in
//! [`SchedulePolicy`].
//!
//! # Fires, and what "missed" means
//!
//! A *fire* is one scheduled time of a flow: `start + k · interval` for a fixed-rate
//! interval, each match of a cron expression, or "the end of the last run + interval" for a
//! fixed-delay interval. Every run carries a [`FireId`](crate::scheduler::FireId): the flow's
//! id and the fire's time.
//!
//! When the scheduler gets to a flow later than one of its fires (the machine was suspended,
//! the wall clock jumped forward, the runtime was overloaded, or the flow's previous run was
//! still going under [`OverlapPolicy::Skip`]), the fires that passed meanwhile are handed to
//! the flow's [`MissedFirePolicy`]. A fire that is late by no more than the scheduler's grace
//! (one second by default, see
//! [`Scheduler::set_misfire_grace`](crate::scheduler::Scheduler::set_misfire_grace)) is on
//! time. Fixed-delay intervals have no grid, so nothing is ever missed: a late fixed-delay
//! fire simply runs late.
//!
//! Fires that come due inside a backoff window are *skipped* (as cano 0.12 suppressed them),
//! not missed: they are not caught up later.

use alloc::sync::Arc;
use core::fmt;
use core::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::cron::Cron;
use crate::error::{CanoError, CanoResult};
use crate::random::mix;

/// When a flow fires.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Schedule {
    /// Every `interval` on the monotonic clock (see [`IntervalMode`] and [`FirstRun`]).
    Every(Duration),
    /// At each match of a cron expression, in its `CRON_TZ=` zone or else the scheduler's
    /// time zone (UTC unless set). The next fire is found in wall time, slept for on the
    /// monotonic clock, and checked against the wall clock again on waking, so a wall-clock
    /// step or a suspend goes through the [`MissedFirePolicy`] instead of drifting.
    Cron(Cron),
    /// Only when triggered.
    Manual,
}

/// What happens when a flow is due (a scheduled fire or a `trigger`) while runs of it are in
/// flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OverlapPolicy {
    /// Never two runs at once (as in cano 0.12). A `trigger` is refused with "already
    /// running"; scheduled fires that pass during the run go to the [`MissedFirePolicy`]
    /// when it ends (with the default policy: dropped, counted as missed).
    #[default]
    Skip,
    /// Never two runs at once, but one due fire or trigger is held and started as soon as
    /// the run ends (Temporal's `BufferOne`). Fires passing during a run are coalesced into
    /// that one run; a second `trigger` while one is held is refused.
    BufferOne,
    /// Up to `n` runs of the flow at once (`n >= 1`; `AllowConcurrent(1)` is `Skip`). Beyond
    /// that, as `Skip`.
    AllowConcurrent(u32),
}

impl OverlapPolicy {
    /// Runs that may be in flight at once.
    pub fn limit(self) -> u32 {
        match self {
            OverlapPolicy::Skip | OverlapPolicy::BufferOne => 1,
            OverlapPolicy::AllowConcurrent(n) => n,
        }
    }
}

/// What happens to fires that passed while the scheduler could not start them (see the
/// [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MissedFirePolicy {
    /// Drop them (as cano 0.12 did: no catch-up, no burst); only a fire within the grace runs.
    /// The flow continues with its next fire after now.
    #[default]
    Skip,
    /// Coalesce them: run once, for the most recent passed fire, if it is no older than
    /// `window` (a catch-up window, as in Temporal); drop the rest.
    RunOnce {
        /// How late a fire may still be caught up.
        window: Duration,
    },
    /// Run the most recent `max` of them, oldest first, one after another (or concurrently,
    /// as the overlap policy allows); drop the older ones. `max >= 1`.
    RunAll {
        /// The most fires caught up at once.
        max: u32,
    },
}

/// How an `Every` interval is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IntervalMode {
    /// The next fire is `interval` after the previous run *ended* (as in cano 0.12). No fire
    /// comes due while a run is in flight, so none is ever missed.
    #[default]
    FixedDelay,
    /// Fires are `interval` apart on a grid anchored at the first fire, whatever the runs
    /// take (tokio's `interval`). Fires that pass during a long run are missed fires.
    FixedRate,
    /// Fires at the wall times `k · interval + phase` since the Unix epoch (UTC), whatever
    /// the runs take, like a cron expression: every process computes the same fire times
    /// (and so the same [`FireId`](crate::scheduler::FireId)s), which a fleet needs, and a
    /// restart continues on the same grid. A phase of an interval or more is taken modulo
    /// the interval. Fires that pass during a long run are missed fires; the first fire is
    /// the first grid point after start ([`FirstRun`] does not apply).
    EpochAligned {
        /// The offset of the grid from the epoch.
        phase: Duration,
    },
}

/// The grid of [`IntervalMode::EpochAligned`]: `k · interval + phase` µs since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EpochGrid {
    pub(crate) interval: i64,
    /// In `0..interval`.
    pub(crate) phase: i64,
}

impl EpochGrid {
    pub(crate) fn new(interval: i64, phase: Duration) -> EpochGrid {
        let interval = interval.max(1);
        EpochGrid {
            interval,
            phase: micros(phase).rem_euclid(interval),
        }
    }
}

impl WallSchedule for EpochGrid {
    fn next_after(&self, after: i64) -> Option<i64> {
        let k = after.saturating_sub(self.phase).div_euclid(self.interval);
        k.checked_add(1)?
            .checked_mul(self.interval)?
            .checked_add(self.phase)
    }

    fn epoch_grid(&self) -> Option<EpochGrid> {
        Some(*self)
    }
}

/// When an `Every` flow fires first. (Cron flows always wait for their next match.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FirstRun {
    /// At `start()` (as in cano 0.12).
    #[default]
    AtStart,
    /// One interval after `start()`.
    AfterInterval,
}

/// How a flow's runs start on the scheduler's runtime.
///
/// ```
/// use cano_core::schedule::{RunStart, SchedulePolicy};
///
/// assert_eq!(SchedulePolicy::default().run_start, RunStart::Inline);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RunStart {
    /// The scheduler's loop polls a run once itself, and spawns it on the scheduler's
    /// [`Spawner`](crate::Spawner) only if that poll did not finish it: a job that finishes
    /// without waiting (a counter, a channel send, a workflow of such tasks) costs no task.
    /// A job that waits (on I/O, a timer, a lock) runs up to its first wait on the loop, then
    /// as a spawned task.
    ///
    /// A first poll that takes longer than [`INLINE_START_BUDGET`] (measured from just before
    /// the poll to the run's end, or to the spawner's answer when the run waits) moves the
    /// flow to [`Spawned`](Self::Spawned) for good, and once a pass of the loop has spent
    /// that budget on inline polls it spawns the rest of that pass's runs: a job with slow
    /// synchronous work delays other flows' starts once, by about one such poll. Time is
    /// read on the scheduler's clock: under a fake clock a poll takes only the time the job
    /// itself advances the clock by, and on a loaded machine a poll the OS preempted can
    /// count as slow (its flow then runs as `Spawned`, as every flow did before `Inline`
    /// existed).
    ///
    /// A run [`RunningScheduler::trigger`](crate::scheduler::RunningScheduler::trigger)
    /// starts is spawned from the caller's task whatever this says: the caller may hold a
    /// lock the job takes.
    #[default]
    Inline,
    /// Every run is spawned before its first poll (as cano 0.12 and tokio-cron-scheduler
    /// do): for a job that must never run on the loop's task, such as one that blocks its
    /// thread, reads task-local values, or whose first poll must run in parallel with other
    /// flows' on a multi-thread runtime.
    Spawned,
}

/// How long a run's inline first poll ([`RunStart::Inline`]) may take before its flow's
/// later runs are spawned; also what one pass of the loop spends on inline polls before it
/// spawns the rest of its runs. Tokio's guidance for the longest stretch between two
/// awaits is 10–100 µs.
pub const INLINE_START_BUDGET: Duration = Duration::from_micros(50);

/// A flow's scheduling policies. The default keeps cano 0.12's behaviour, except that a run
/// starts [inline](RunStart::Inline).
///
/// ```
/// use cano_core::schedule::{MissedFirePolicy, OverlapPolicy, SchedulePolicy};
/// use core::time::Duration;
///
/// let p = SchedulePolicy {
///     overlap: OverlapPolicy::BufferOne,
///     missed: MissedFirePolicy::RunOnce { window: Duration::from_secs(3600) },
///     ..SchedulePolicy::default()
/// };
/// assert!(p.validate().is_ok());
/// let bad = SchedulePolicy { overlap: OverlapPolicy::AllowConcurrent(0), ..p };
/// assert_eq!(bad.validate().unwrap_err().category(), "configuration");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SchedulePolicy {
    /// Runs in flight at once.
    pub overlap: OverlapPolicy,
    /// Fires that passed unstarted.
    pub missed: MissedFirePolicy,
    /// Fixed delay or fixed rate (`Every` only).
    pub interval_mode: IntervalMode,
    /// First fire at start or after one interval (`Every` only).
    pub first_run: FirstRun,
    /// The largest schedule jitter: each flow gets a fixed offset in `[0, jitter)` derived
    /// from the scheduler's seed and its id (stable across restarts, like systemd's
    /// `FixedRandomDelay`), added to every fire's start but never reaching the next fire.
    /// Zero (the default) disables it.
    pub jitter: Duration,
    /// How runs start: polled once on the scheduler's loop first (the default), or always
    /// spawned.
    pub run_start: RunStart,
}

impl SchedulePolicy {
    /// Checks the policy.
    ///
    /// # Errors
    ///
    /// [`CanoError::Configuration`] for `AllowConcurrent(0)` or `RunAll { max: 0 }`.
    pub fn validate(&self) -> CanoResult<()> {
        if self.overlap == OverlapPolicy::AllowConcurrent(0) {
            return Err(CanoError::configuration(
                "OverlapPolicy::AllowConcurrent(n) needs n >= 1",
            ));
        }
        if self.missed == (MissedFirePolicy::RunAll { max: 0 }) {
            return Err(CanoError::configuration(
                "MissedFirePolicy::RunAll { max } needs max >= 1",
            ));
        }
        Ok(())
    }
}

/// The fixed jitter offset of the flow `id` under `seed`: uniform in `[0, max)`, the same on
/// every call (zero when `max` is zero).
///
/// ```
/// use cano_core::schedule::stable_jitter;
/// use core::time::Duration;
///
/// let max = Duration::from_secs(60);
/// let a = stable_jitter(1, "report", max);
/// assert_eq!(a, stable_jitter(1, "report", max));
/// assert!(a < max);
/// assert_ne!(a, stable_jitter(1, "backup", max));
/// ```
pub fn stable_jitter(seed: u64, id: &str, max: Duration) -> Duration {
    let max_us = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
    if max_us == 0 {
        return Duration::ZERO;
    }
    // FNV-1a over the id, then mixed with the seed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    Duration::from_micros(mix(h ^ mix(seed)) % max_us)
}

/// A schedule in wall time (a cron expression in its time zone).
// No `Debug` supertrait: it would link the cron and time-zone printers into every firmware
// through the trait object's vtable (about 10 KB of flash on thumbv7m).
pub(crate) trait WallSchedule: Send + Sync {
    /// The first fire strictly after `after` (µs since the Unix epoch), if any.
    fn next_after(&self, after: i64) -> Option<i64>;

    /// The zone for expressions that name none (set at start).
    fn set_zone(&mut self, _zone: &TimeZone) {}

    /// The cron expression behind this schedule, if it is one (for its
    /// [`ScheduleHash`](crate::persist::ScheduleHash)).
    fn cron(&self) -> Option<&Cron> {
        None
    }

    /// The epoch-aligned interval behind this schedule, if it is one.
    fn epoch_grid(&self) -> Option<EpochGrid> {
        None
    }
}

/// A cron expression evaluated in a zone.
#[derive(Debug)]
pub(crate) struct CronSchedule {
    pub(crate) cron: Cron,
    pub(crate) zone: TimeZone,
}

impl WallSchedule for CronSchedule {
    fn next_after(&self, after: i64) -> Option<i64> {
        let after = Timestamp::from_microsecond(after).ok()?;
        self.cron
            .next_after_timestamp(after, &self.zone)
            .map(Timestamp::as_microsecond)
    }

    fn set_zone(&mut self, zone: &TimeZone) {
        self.zone = zone.clone();
    }

    fn cron(&self) -> Option<&Cron> {
        Some(&self.cron)
    }
}

/// The most fires a single catch-up looks at one by one (cron only; interval grids are
/// counted arithmetically). Beyond it the scheduler jumps ahead and counts saturate.
pub(crate) const SCAN_LIMIT: u64 = 10_000;

/// A flow's fire sequence, in its own time base: monotonic µs for intervals, wall µs since
/// the Unix epoch for cron.
pub(crate) enum Timeline {
    /// `interval` after the previous run ended.
    FixedDelay { interval: i64 },
    /// `anchor + k · interval` (the anchor is set at start).
    FixedRate { interval: i64, anchor: i64 },
    /// A wall-clock schedule.
    /// Shared, so a plan of upcoming fires can be walked outside the scheduler's lock.
    Wall(Arc<dyn WallSchedule>),
    /// Never fires by itself.
    Manual,
}

/// The fires that passed between a flow's pending fire and now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Passed {
    /// How many (saturating at about [`SCAN_LIMIT`] for cron).
    pub(crate) count: u64,
    /// The most recent.
    pub(crate) latest: i64,
    /// The oldest of the most recent `keep` (`keep` as asked of [`Timeline::passed`]).
    pub(crate) oldest_kept: i64,
    /// How many are kept: `min(count, keep)`.
    pub(crate) kept: u64,
}

pub(crate) use crate::time::duration_micros as micros;

impl fmt::Debug for Timeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Timeline::FixedDelay { interval } => write!(f, "FixedDelay({interval} µs)"),
            Timeline::FixedRate { interval, anchor } => {
                write!(f, "FixedRate({interval} µs from {anchor})")
            }
            Timeline::Wall(_) => f.write_str("Wall"),
            Timeline::Manual => f.write_str("Manual"),
        }
    }
}

impl Timeline {
    /// Whether fires are in wall time.
    pub(crate) fn is_wall(&self) -> bool {
        matches!(self, Timeline::Wall(_))
    }

    /// The interval mode this timeline was made for (fixed delay for cron and manual ones).
    pub(crate) fn interval_mode(&self) -> IntervalMode {
        match self {
            Timeline::FixedRate { .. } => IntervalMode::FixedRate,
            Timeline::Wall(schedule) => match schedule.epoch_grid() {
                Some(grid) => IntervalMode::EpochAligned {
                    phase: Duration::from_micros(grid.phase as u64),
                },
                None => IntervalMode::FixedDelay,
            },
            Timeline::FixedDelay { .. } | Timeline::Manual => IntervalMode::FixedDelay,
        }
    }

    /// The interval of an `Every` flow, whatever its mode.
    pub(crate) fn every(&self) -> Option<i64> {
        match self {
            Timeline::FixedDelay { interval } | Timeline::FixedRate { interval, .. } => {
                Some(*interval)
            }
            Timeline::Wall(schedule) => schedule.epoch_grid().map(|grid| grid.interval),
            Timeline::Manual => None,
        }
    }

    /// The `Every` timeline of `interval` µs in `mode`.
    pub(crate) fn every_in(interval: i64, mode: IntervalMode) -> Timeline {
        match mode {
            IntervalMode::FixedDelay => Timeline::FixedDelay { interval },
            IntervalMode::FixedRate => Timeline::FixedRate {
                interval,
                anchor: 0,
            },
            IntervalMode::EpochAligned { phase } => {
                Timeline::Wall(Arc::new(EpochGrid::new(interval, phase)))
            }
        }
    }

    /// The first fire strictly after `t`. `None` for fixed-delay and manual timelines, and
    /// for a cron expression with no later match.
    pub(crate) fn next_after(&self, t: i64) -> Option<i64> {
        match self {
            Timeline::FixedRate { interval, anchor } => {
                if t < *anchor {
                    return Some(*anchor);
                }
                let steps = (t - anchor) / interval + 1;
                steps
                    .checked_mul(*interval)
                    .and_then(|d| anchor.checked_add(d))
            }
            Timeline::Wall(schedule) => schedule.next_after(t),
            Timeline::FixedDelay { .. } | Timeline::Manual => None,
        }
    }

    /// The first fire at or after `t`.
    pub(crate) fn next_at_or_after(&self, t: i64) -> Option<i64> {
        self.next_after(t.saturating_sub(1))
    }

    /// The jitter actually applied to `fire` for a flow whose fixed offset is `offset` µs:
    /// the offset, kept strictly before the next fire.
    pub(crate) fn jitter_for(&self, fire: i64, offset: i64) -> i64 {
        if offset == 0 {
            return 0;
        }
        let gap = match self {
            Timeline::FixedDelay { interval } | Timeline::FixedRate { interval, .. } => *interval,
            Timeline::Wall(_) => match self.next_after(fire) {
                Some(next) => next - fire,
                None => return offset,
            },
            Timeline::Manual => return 0,
        };
        offset.min(gap - 1).max(0)
    }

    /// The fires in `[first, now]`, where `first` is a fire of this timeline and `first <= now`,
    /// keeping track of the most recent `keep` (`keep >= 1`).
    pub(crate) fn passed(&self, first: i64, now: i64, keep: u64) -> Passed {
        let keep = keep.clamp(1, SCAN_LIMIT);
        match self {
            Timeline::FixedRate { interval, .. } => {
                let count = ((now - first) / interval) as u64 + 1;
                let latest = first + (count as i64 - 1) * interval;
                let kept = count.min(keep);
                Passed {
                    count,
                    latest,
                    oldest_kept: latest - (kept as i64 - 1) * interval,
                    kept,
                }
            }
            Timeline::Wall(_) => self.scan(first, now, keep),
            Timeline::FixedDelay { .. } | Timeline::Manual => Passed {
                count: 1,
                latest: first,
                oldest_kept: first,
                kept: 1,
            },
        }
    }

    /// Walks a wall schedule from `first` to `now`. Past [`SCAN_LIMIT`] fires it stops
    /// counting one by one and searches backwards from `now` for the last `keep`.
    fn scan(&self, first: i64, now: i64, keep: u64) -> Passed {
        let (count, latest, oldest_kept, kept, complete) = self.walk(first, now, keep, SCAN_LIMIT);
        if complete {
            return Passed {
                count,
                latest,
                oldest_kept,
                kept,
            };
        }
        // Too many to walk: widen a window ending at `now` until it holds `keep` fires.
        let average_gap = ((latest - first) / (count as i64 - 1).max(1)).max(1);
        let mut span = average_gap.saturating_mul(keep as i64 + 1);
        let floor = latest + 1;
        loop {
            let start = now.saturating_sub(span).max(floor);
            if let Some(from) = self.next_at_or_after(start).filter(|f| *f <= now) {
                let (c, l, o, k, _) = self.walk(from, now, keep, u64::MAX);
                if k >= keep || start == floor {
                    return Passed {
                        count: count.saturating_add(c),
                        latest: l,
                        oldest_kept: o,
                        kept: k,
                    };
                }
            } else if start == floor {
                return Passed {
                    count,
                    latest,
                    oldest_kept,
                    kept,
                };
            }
            span = span.saturating_mul(2);
        }
    }

    /// Walks fires from `first` (a fire `<= now`) while `<= now`, at most `limit` of them.
    /// Returns (count, latest, oldest kept, kept, whether it reached `now`).
    fn walk(&self, first: i64, now: i64, keep: u64, limit: u64) -> (u64, i64, i64, u64, bool) {
        let mut count = 0u64;
        let mut latest = first;
        let mut lag = first;
        let mut fire = Some(first);
        while let Some(f) = fire.filter(|f| *f <= now) {
            if count == limit {
                return (count, latest, lag, count.min(keep), false);
            }
            count += 1;
            latest = f;
            if count > keep {
                lag = self.next_after(lag).unwrap_or(f);
            }
            fire = self.next_after(f);
        }
        (count, latest, lag, count.min(keep), true)
    }
}

/// Which passed fire (if any) runs, and how many are dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Choice {
    pub(crate) run: Option<i64>,
    pub(crate) dropped: u64,
}

/// Applies `policy` to `passed` at `now`: `grace` is how late a fire may be and still be on
/// time, `coalesce` runs the most recent whatever its age (a `BufferOne` flow whose run just
/// ended).
pub(crate) fn choose(
    policy: MissedFirePolicy,
    passed: &Passed,
    now: i64,
    grace: i64,
    coalesce: bool,
) -> Choice {
    let late = now - passed.latest;
    let latest_if = |ok: bool| Choice {
        run: ok.then_some(passed.latest),
        dropped: passed.count - u64::from(ok),
    };
    if coalesce {
        return latest_if(true);
    }
    match policy {
        MissedFirePolicy::Skip => latest_if(late <= grace),
        MissedFirePolicy::RunOnce { window } => latest_if(late <= micros(window).max(grace)),
        MissedFirePolicy::RunAll { .. } => Choice {
            run: Some(passed.oldest_kept),
            dropped: passed.count - passed.kept,
        },
    }
}

/// How many of the most recent passed fires `policy` may keep.
pub(crate) fn keep(policy: MissedFirePolicy) -> u64 {
    match policy {
        MissedFirePolicy::RunAll { max } => u64::from(max.max(1)),
        _ => 1,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A wall schedule firing every `period` µs, aligned to the epoch (for tests).
    #[derive(Debug)]
    pub(crate) struct Aligned(pub(crate) i64);

    impl WallSchedule for Aligned {
        fn next_after(&self, after: i64) -> Option<i64> {
            Some(after.div_euclid(self.0) * self.0 + self.0)
        }
    }

    fn rate(interval: i64) -> Timeline {
        Timeline::FixedRate {
            interval,
            anchor: 100,
        }
    }

    #[test]
    fn fixed_rate_grid() {
        let t = rate(10);
        assert_eq!(t.next_after(0), Some(100));
        assert_eq!(t.next_after(100), Some(110));
        assert_eq!(t.next_after(105), Some(110));
        assert_eq!(t.next_at_or_after(110), Some(110));
        let p = t.passed(110, 145, 2);
        assert_eq!(
            p,
            Passed {
                count: 4,
                latest: 140,
                oldest_kept: 130,
                kept: 2
            }
        );
    }

    #[test]
    fn wall_scan_counts_and_keeps_the_most_recent() {
        let t = Timeline::Wall(Arc::new(Aligned(10)));
        let p = t.passed(10, 95, 3);
        assert_eq!(
            p,
            Passed {
                count: 9,
                latest: 90,
                oldest_kept: 70,
                kept: 3
            }
        );
        assert_eq!(t.passed(10, 10, 3).kept, 1);
    }

    #[test]
    fn wall_scan_jumps_past_the_limit() {
        let t = Timeline::Wall(Arc::new(Aligned(1)));
        let now = (SCAN_LIMIT as i64) * 50;
        let p = t.passed(1, now, 5);
        assert_eq!(p.latest, now);
        assert_eq!(p.oldest_kept, now - 4);
        assert_eq!(p.kept, 5);
        assert!(p.count >= SCAN_LIMIT);
    }

    #[test]
    fn choices() {
        let p = Passed {
            count: 4,
            latest: 140,
            oldest_kept: 120,
            kept: 3,
        };
        let skip = choose(MissedFirePolicy::Skip, &p, 141, 5, false);
        assert_eq!(
            skip,
            Choice {
                run: Some(140),
                dropped: 3
            }
        );
        let skip_late = choose(MissedFirePolicy::Skip, &p, 150, 5, false);
        assert_eq!(
            skip_late,
            Choice {
                run: None,
                dropped: 4
            }
        );
        let once = MissedFirePolicy::RunOnce {
            window: Duration::from_micros(20),
        };
        assert_eq!(choose(once, &p, 160, 5, false).run, Some(140));
        assert_eq!(choose(once, &p, 161, 5, false).run, None);
        assert_eq!(
            choose(MissedFirePolicy::RunAll { max: 3 }, &p, 500, 5, false),
            Choice {
                run: Some(120),
                dropped: 1
            }
        );
        assert_eq!(
            choose(MissedFirePolicy::Skip, &p, 500, 5, true).run,
            Some(140)
        );
    }

    #[test]
    fn jitter_stays_before_the_next_fire() {
        let t = rate(10);
        assert_eq!(t.jitter_for(110, 3), 3);
        assert_eq!(t.jitter_for(110, 50), 9);
        let w = Timeline::Wall(Arc::new(Aligned(10)));
        assert_eq!(w.jitter_for(20, 50), 9);
        assert_eq!(Timeline::Manual.jitter_for(20, 50), 0);
    }
}
