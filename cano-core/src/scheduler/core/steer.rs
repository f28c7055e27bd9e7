//! Flows changed while the core runs: added, removed, replaced, and their runs cancelled.
//!
//! A flow's [`FlowIndex`] stays its own while it has runs in flight: a removed flow's slot
//! is forgotten by id at once (so the id can be added again) but is reused for a new flow
//! only once its last run ended, so an outcome is never recorded against the wrong flow.

use alloc::vec::Vec;
use core::hash::BuildHasher;
use core::time::Duration;

use jiff::Timestamp;

use super::{FlowIndex, SchedulerCore, Stage};
use crate::scheduler::backoff::BackoffPolicy;
use crate::scheduler::error::SchedulerError;
use crate::scheduler::events::SchedulerEvent;
use crate::scheduler::runs::RunId;
use crate::scheduler::schedule::{Schedule, SchedulePolicy, Timeline, micros};
use crate::scheduler::slot::FlowConfig;
use crate::scheduler::slot::{FlowSlot, Held};
use crate::time::Instant;

/// What removing or replacing a flow does to its runs in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum InFlight {
    /// Let them finish (their outcomes are still recorded, in the run history too).
    #[default]
    Wait,
    /// Let them finish within `grace`, then cancel them: their cancellation is signalled
    /// (a workflow stops before its next state and drains its compensations) and a run still
    /// in flight one cancellation wind-down later
    /// ([`Scheduler::set_cancel_wind_down`](crate::scheduler::Scheduler::set_cancel_wind_down))
    /// is dropped. They end as cancelled, not failed. `Duration::ZERO` signals at once.
    Cancel {
        /// How long they may still run.
        grace: Duration,
    },
}

/// The core's bookkeeping for runtime changes.
#[derive(Debug, Default)]
pub(crate) struct Steering {
    /// Slots of removed flows whose runs all ended: reused by the next flow added.
    vacant: Vec<u32>,
    /// Removed slots (vacant or still draining), so `len` counts live flows only.
    removed: usize,
    /// Runs whose cancellation is to be signalled, and when (from `remove_flow`,
    /// `replace_flow`, `cancel_flow`).
    signals: Vec<(RunId, Instant)>,
    /// Runs signalled outside a stop, to be dropped at their wind-down's end.
    drops: Vec<(RunId, Instant)>,
}

impl Steering {
    pub(crate) fn removed(&self) -> usize {
        self.removed
    }
}

impl SchedulerCore {
    /// Checks that `id` with `schedule` and these policies could be added now (what
    /// [`add_running_flow`](Self::add_running_flow) checks), so a driver can refuse before it
    /// sets the flow's job up.
    ///
    /// # Errors
    ///
    /// As [`add_running_flow`](Self::add_running_flow).
    pub fn check_new_flow(
        &self,
        id: &str,
        schedule: &Schedule,
        policy: &SchedulePolicy,
        backoff: &BackoffPolicy,
    ) -> Result<(), SchedulerError> {
        self.check_running()?;
        if self.contains(id) {
            return Err(SchedulerError::DuplicateFlow { id: id.into() });
        }
        check_settings(id, schedule, policy, backoff).map(drop)
    }

    /// Checks that flow `id` could be replaced by `schedule` with these policies now (what
    /// [`replace_flow`](Self::replace_flow) checks).
    ///
    /// # Errors
    ///
    /// As [`replace_flow`](Self::replace_flow).
    pub fn check_replacement(
        &self,
        id: &str,
        schedule: &Schedule,
        policy: &SchedulePolicy,
        backoff: &BackoffPolicy,
    ) -> Result<(), SchedulerError> {
        self.check_running()?;
        self.flow(id)?;
        check_settings(id, schedule, policy, backoff).map(drop)
    }

    /// Adds a flow while the core runs: it is planned at once from `now` / `wall` as if
    /// registered before `start` (an interval flow fires at once unless
    /// [`FirstRun::AfterInterval`](crate::schedule::FirstRun::AfterInterval); a cron flow at
    /// its next match). With a schedule store its record is written. Emits
    /// [`SchedulerEvent::FlowAdded`].
    ///
    /// # Errors
    ///
    /// [`SchedulerError::NotStarted`], [`SchedulerError::Stopped`] (a stop began),
    /// [`SchedulerError::EmptyFlowId`], [`SchedulerError::DuplicateFlow`],
    /// [`SchedulerError::ZeroInterval`], [`SchedulerError::InvalidPolicy`] or
    /// [`SchedulerError::TooManyFlows`]. Nothing changes then.
    pub fn add_running_flow(
        &mut self,
        id: &str,
        schedule: Schedule,
        policy: SchedulePolicy,
        backoff: BackoffPolicy,
        now: Instant,
        wall: Timestamp,
    ) -> Result<FlowIndex, SchedulerError> {
        self.check_new_flow(id, &schedule, &policy, &backoff)?;
        let timeline = check_settings(id, &schedule, &policy, &backoff)?;
        let i = match self.steer.vacant.pop() {
            Some(i) => {
                self.steer.removed -= 1;
                i as usize
            }
            None => {
                let i = self.flows.len();
                u32::try_from(i).map_err(|_| SchedulerError::TooManyFlows)?;
                self.flows.push(FlowSlot::new(id, Timeline::Manual));
                self.queue.add_flow();
                i
            }
        };
        self.flows[i] = FlowSlot::new(id, timeline);
        self.configure(i, policy, backoff, now, wall);
        let hash = self.hasher.hash_one(id);
        let (flows, hasher) = (&self.flows, &self.hasher);
        self.by_id
            .insert_unique(hash, i as u32, |&k| hasher.hash_one(&*flows[k as usize].id));
        if let Some(persist) = self.persist.as_deref_mut() {
            let grow = self.flows.len();
            persist.dirty.resize(grow, false);
            persist.fenced.resize(grow, false);
            persist.dirty[i] = false;
            persist.fenced[i] = false;
        }
        self.set_schedule_hash(i);
        self.via_fleet_reset_flow(i, now);
        self.history.forget(i);
        self.mark_dirty(i);
        self.events
            .flow_event(&self.flows[i], |flow| SchedulerEvent::FlowAdded { flow });
        Ok(FlowIndex(i as u32))
    }

    /// With a schedule store: slot `i`'s schedule hash, as its records will carry it.
    fn set_schedule_hash(&mut self, i: usize) {
        if let Some(persist) = self.persist.as_deref_mut() {
            let hash = self.flows[i].schedule_hash(&self.time_zone);
            while persist.hashes.len() <= i {
                persist.hashes.push(hash);
            }
            persist.hashes[i] = hash;
        }
    }

    /// Applies `policy` and `backoff` to slot `i` (its timeline set already) and plans it.
    fn configure(
        &mut self,
        i: usize,
        policy: SchedulePolicy,
        backoff: BackoffPolicy,
        now: Instant,
        wall: Timestamp,
    ) {
        let backoff = match self.backoffs.iter().position(|p| *p == backoff) {
            Some(existing) => existing,
            None => {
                self.backoffs.push(backoff);
                self.backoffs.len() - 1
            }
        };
        let slot = &mut self.flows[i];
        slot.config.set(FlowConfig {
            overlap: policy.overlap,
            missed: policy.missed,
            jitter: micros(policy.jitter),
            backoff: backoff as u32,
        });
        slot.first_run = policy.first_run;
        slot.run_start = policy.run_start;
        if let Some(interval) = slot.timeline.every() {
            slot.timeline = Timeline::every_in(interval, policy.interval_mode);
        }
        slot.start(self.seed, &self.time_zone, now, wall);
        if self.flows[i].timeline.is_wall() {
            self.wall_flows += 1;
            if self.next_wall_check == Instant::MAX {
                self.next_wall_check = self.wall_check_after(now);
            }
        }
        self.queue.disarm(i as u32);
        self.rearm(i, now, wall, false);
    }

    /// Removes flow `flow` while the core runs: it is forgotten by id at once (nothing new
    /// starts; the id may be added again) and its runs in flight end as `in_flight` says.
    /// Returns those runs, so a driver can wait for them (see
    /// [`is_in_flight`](Self::is_in_flight)). With a schedule store, no record of it is
    /// written any more. Emits [`SchedulerEvent::FlowRemoved`].
    ///
    /// # Errors
    ///
    /// [`SchedulerError::NotStarted`], [`SchedulerError::Stopped`] or
    /// [`SchedulerError::UnknownFlow`]. Nothing changes then.
    pub fn remove_flow(
        &mut self,
        flow: FlowIndex,
        in_flight: InFlight,
        now: Instant,
    ) -> Result<Vec<RunId>, SchedulerError> {
        let i = self.live_flow(flow)?;
        let runs = self.runs_of(i, in_flight, now);
        self.events
            .flow_event(&self.flows[i], |flow| SchedulerEvent::FlowRemoved { flow });
        let hash = self.hasher.hash_one(&*self.flows[i].id);
        if let Ok(entry) = self.by_id.find_entry(hash, |&k| k as usize == i) {
            entry.remove();
        }
        let slot = &mut self.flows[i];
        if slot.timeline.is_wall() {
            self.wall_flows -= 1;
        }
        slot.timeline = Timeline::Manual;
        slot.held = Held::Nothing;
        slot.set_next_fire(None);
        slot.state.set_paused(true);
        slot.removed = true;
        self.queue.disarm(i as u32);
        if let Some(persist) = self.persist.as_deref_mut() {
            persist.pending.retain(|&f| f as usize != i);
            persist.catch_up.retain(|&(f, _)| f as usize != i);
            if let Some(dirty) = persist.dirty.get_mut(i) {
                *dirty = false;
            }
            // "Written no more", like a flow another scheduler took over.
            persist.fenced.resize(self.flows.len(), false);
            persist.fenced[i] = true;
        }
        self.history.forget(i);
        self.steer.removed += 1;
        self.release_if_drained(i);
        Ok(runs)
    }

    /// Replaces flow `flow`'s schedule, policies and backoff while the core runs, keeping
    /// its id, its fire ids (they keep increasing), its pause, counters and run history;
    /// its failure streak, backoff and trip are cleared and it is planned afresh from
    /// `now` (as [`add_running_flow`](Self::add_running_flow) plans). Its runs in flight
    /// end as `in_flight` says and still count for the flow as they end (returned, to wait
    /// for). With a schedule store the flow's record is rewritten with the new
    /// [`ScheduleHash`](crate::persist::ScheduleHash). Emits [`SchedulerEvent::FlowReplaced`].
    ///
    /// # Errors
    ///
    /// As [`remove_flow`](Self::remove_flow), and for a bad schedule or policy as
    /// [`add_running_flow`](Self::add_running_flow). Nothing changes then.
    #[allow(clippy::too_many_arguments)]
    pub fn replace_flow(
        &mut self,
        flow: FlowIndex,
        schedule: Schedule,
        policy: SchedulePolicy,
        backoff: BackoffPolicy,
        in_flight: InFlight,
        now: Instant,
        wall: Timestamp,
    ) -> Result<Vec<RunId>, SchedulerError> {
        let i = self.live_flow(flow)?;
        let timeline = check_settings(&self.flows[i].id, &schedule, &policy, &backoff)?;
        let runs = self.runs_of(i, in_flight, now);
        let slot = &mut self.flows[i];
        if slot.timeline.is_wall() {
            self.wall_flows -= 1;
        }
        slot.timeline = timeline;
        slot.held = Held::Nothing;
        slot.set_next_fire(None);
        slot.state.reset();
        self.configure(i, policy, backoff, now, wall);
        if let Some(persist) = self.persist.as_deref_mut() {
            // Fires the old schedule missed while the scheduler was down are not the new
            // schedule's to catch up.
            persist.catch_up.retain(|&(f, _)| f as usize != i);
        }
        self.set_schedule_hash(i);
        self.via_fleet_reset_flow(i, now);
        self.mark_dirty(i);
        self.events
            .flow_event(&self.flows[i], |flow| SchedulerEvent::FlowReplaced { flow });
        Ok(runs)
    }

    /// Cancels flow `flow`'s runs in flight now: the next [`poll`](Self::poll) signals each
    /// one's cancellation with [`Action::Cancel`](super::Action::Cancel), and asks to drop
    /// those still in flight one cancellation wind-down later
    /// ([`set_cancel_wind_down`](Self::set_cancel_wind_down)) with
    /// [`Action::Abort`](super::Action::Abort). A cancelled run ends as
    /// [`RunOutcome::Cancelled`](super::RunOutcome::Cancelled): not a failure, so the
    /// flow's streak and backoff stay as they were, and its schedule goes on (as in cano
    /// 0.15). Returns how many runs were asked to cancel (0 if none was in flight).
    ///
    /// # Errors
    ///
    /// [`SchedulerError::NotStarted`], [`SchedulerError::Stopped`] or
    /// [`SchedulerError::UnknownFlow`].
    pub fn cancel_flow(&mut self, flow: FlowIndex, now: Instant) -> Result<usize, SchedulerError> {
        let i = self.live_flow(flow)?;
        Ok(self
            .runs_of(
                i,
                InFlight::Cancel {
                    grace: Duration::ZERO,
                },
                now,
            )
            .len())
    }

    /// Whether run `run` is still in flight.
    pub fn is_in_flight(&self, run: RunId) -> bool {
        self.runs.get(run).is_some()
    }

    fn live_flow(&self, flow: FlowIndex) -> Result<usize, SchedulerError> {
        let i = self.command(flow)?;
        if self.flows[i].removed {
            return Err(SchedulerError::unknown_flow(&alloc::format!("#{i}")));
        }
        Ok(i)
    }

    /// Flow `i`'s runs in flight, asked to cancel as `in_flight` says.
    fn runs_of(&mut self, i: usize, in_flight: InFlight, now: Instant) -> Vec<RunId> {
        let runs: Vec<RunId> = self.runs.of_flow(i as u32).collect();
        if let InFlight::Cancel { grace } = in_flight {
            let at = now.saturating_add(grace);
            for &run in &runs {
                if self.runs.get(run).is_some_and(|e| e.cancelling) {
                    // Signalled already: its wind-down runs on.
                    continue;
                }
                match self.steer.signals.iter_mut().find(|(r, _)| *r == run) {
                    Some((_, due)) => *due = (*due).min(at),
                    None => self.steer.signals.push((run, at)),
                }
            }
        }
        runs
    }

    /// After a run of flow `i` ended (or it was removed): a removed flow with no run left
    /// gives its slot back.
    pub(super) fn release_if_drained(&mut self, i: usize) {
        let slot = &self.flows[i];
        if slot.removed && slot.state.running() == 0 && !self.steer.vacant.contains(&(i as u32)) {
            self.steer.vacant.push(i as u32);
        }
    }

    /// A run whose cancellation is due to be signalled (while running or stopping), taken
    /// off the list, marked as signalled, and listed to be dropped one wind-down later.
    pub(super) fn due_signal(&mut self, now: Instant) -> Option<RunId> {
        if self.steer.signals.is_empty() || matches!(self.stage, Stage::Registering) {
            return None;
        }
        let position = self.steer.signals.iter().position(|&(_, at)| at <= now)?;
        let (run, _) = self.steer.signals.swap_remove(position);
        if self.steer.signals.is_empty() {
            self.steer.signals = Vec::new();
        }
        self.runs.mark_cancelling(run);
        self.steer
            .drops
            .push((run, now.saturating_add(self.wind_down)));
        Some(run)
    }

    /// A signalled run whose wind-down ended while it is still in flight, taken off the
    /// list and marked as dropped.
    pub(super) fn due_drop(&mut self, now: Instant) -> Option<RunId> {
        while !self.steer.drops.is_empty() {
            let position = self.steer.drops.iter().position(|&(_, at)| at <= now)?;
            let (run, _) = self.steer.drops.swap_remove(position);
            if self.steer.drops.is_empty() {
                self.steer.drops = Vec::new();
            }
            // A stop's own wind-down may have asked for it already.
            if self.runs.mark_dropped(run) {
                return Some(run);
            }
        }
        None
    }

    /// A run ended: nothing more to signal or drop for it.
    pub(super) fn forget_cancel(&mut self, run: RunId) {
        if !self.steer.signals.is_empty() {
            self.steer.signals.retain(|&(r, _)| r != run);
        }
        if !self.steer.drops.is_empty() {
            self.steer.drops.retain(|&(r, _)| r != run);
        }
    }

    /// When the next asked-for signal or drop is due.
    pub(super) fn next_abort(&self) -> Option<Instant> {
        self.steer
            .signals
            .iter()
            .chain(&self.steer.drops)
            .map(|&(_, at)| at)
            .min()
    }
}

/// The timeline of `schedule` after checking it and the policies.
fn check_settings(
    id: &str,
    schedule: &Schedule,
    policy: &SchedulePolicy,
    backoff: &BackoffPolicy,
) -> Result<Timeline, SchedulerError> {
    let timeline = super::timeline_of(id, schedule.clone())?;
    policy.validate().map_err(SchedulerError::invalid_policy)?;
    backoff.validate().map_err(SchedulerError::invalid_policy)?;
    Ok(timeline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::core::Action;

    /// Every policy the grid of [`SchedulePolicy`]'s fields makes (jitter aside: once
    /// started a flow keeps its fixed offset, not the bound).
    fn every_policy() -> Vec<SchedulePolicy> {
        use crate::scheduler::schedule::{
            FirstRun, IntervalMode, MissedFirePolicy, OverlapPolicy, RunStart,
        };
        let mut all = Vec::new();
        for overlap in [
            OverlapPolicy::Skip,
            OverlapPolicy::BufferOne,
            OverlapPolicy::AllowConcurrent(3),
        ] {
            for missed in [
                MissedFirePolicy::Skip,
                MissedFirePolicy::RunOnce {
                    window: Duration::from_secs(60),
                },
                MissedFirePolicy::RunAll { max: 2 },
            ] {
                for interval_mode in [
                    IntervalMode::FixedDelay,
                    IntervalMode::FixedRate,
                    IntervalMode::EpochAligned {
                        phase: Duration::from_secs(1),
                    },
                ] {
                    for first_run in [FirstRun::AtStart, FirstRun::AfterInterval] {
                        for run_start in [RunStart::Inline, RunStart::Spawned] {
                            all.push(SchedulePolicy {
                                overlap,
                                missed,
                                interval_mode,
                                first_run,
                                run_start,
                                ..SchedulePolicy::default()
                            });
                        }
                    }
                }
            }
        }
        all
    }

    /// Each path that sets a flow's policy keeps every field of it (a field one path
    /// forgot, as `run_start` was for flows added at run time, fails here): the builder's
    /// `set_policy`, `add_running_flow` and `replace_flow`.
    #[test]
    fn every_path_that_sets_a_policy_keeps_all_of_it() {
        let wall = Timestamp::UNIX_EPOCH;
        let every = Schedule::Every(Duration::from_secs(10));
        for policy in every_policy() {
            let mut core = SchedulerCore::new();
            let built = core.add_flow("built", every.clone()).unwrap();
            core.set_policy(built, policy).unwrap();
            core.start(Instant::ZERO, wall);
            let added = core
                .add_running_flow(
                    "added",
                    every.clone(),
                    policy,
                    BackoffPolicy::default(),
                    Instant::ZERO,
                    wall,
                )
                .unwrap();
            let replaced = core
                .add_running_flow(
                    "replaced",
                    Schedule::Manual,
                    SchedulePolicy::default(),
                    BackoffPolicy::default(),
                    Instant::ZERO,
                    wall,
                )
                .unwrap();
            core.replace_flow(
                replaced,
                every.clone(),
                policy,
                BackoffPolicy::default(),
                InFlight::Wait,
                Instant::ZERO,
                wall,
            )
            .unwrap();
            for (path, flow) in [("built", built), ("added", added), ("replaced", replaced)] {
                assert_eq!(
                    core.flows[flow.get()].policy(),
                    policy,
                    "{path}: the policy read back differs"
                );
            }
        }
    }

    /// A removed flow's slot is reused only once its last run ended, so an outcome never
    /// lands on the flow that took its place; churn does not grow the core.
    #[test]
    fn a_removed_slot_is_reused_only_after_its_runs_end() {
        let mut core = SchedulerCore::new();
        let wall = Timestamp::UNIX_EPOCH;
        core.start(Instant::ZERO, wall);
        let add = |core: &mut SchedulerCore, id: &str| {
            core.add_running_flow(
                id,
                Schedule::Every(Duration::from_secs(10)),
                SchedulePolicy::default(),
                BackoffPolicy::default(),
                Instant::ZERO,
                wall,
            )
            .unwrap()
        };
        let a = add(&mut core, "a");
        let Action::Start(run) = core.poll(Instant::ZERO, wall) else {
            panic!("a fires at once");
        };
        assert_eq!(
            core.remove_flow(a, InFlight::Wait, Instant::ZERO).unwrap(),
            [run.run]
        );
        let b = add(&mut core, "b");
        assert_ne!(a, b, "a's run is still in flight: its slot is not reused");
        core.finish(run.run, Instant::from_secs(1), wall, Ok(()))
            .unwrap();
        assert_eq!(core.info(b, Instant::ZERO, wall).run_count, 0);
        for round in 0..100 {
            let id = alloc::format!("churn{round}");
            let flow = add(&mut core, &id);
            assert_eq!(flow, a, "the drained slot is reused");
            core.remove_flow(flow, InFlight::Wait, Instant::ZERO)
                .unwrap();
        }
        assert_eq!(core.flows.len(), 2);
        assert_eq!(core.len(), 1);
        assert_eq!(core.flows().collect::<Vec<_>>(), [b]);
    }

    /// A replaced flow does not catch up the fires its old schedule missed while the
    /// scheduler was down (its schedule hash changed), while the same restart without the
    /// replacement does.
    #[test]
    fn a_replaced_flow_catches_nothing_of_its_old_schedule_up() {
        use crate::cron::Cron;
        use crate::persist::{FlowRecord, StoredFlow};
        use crate::scheduler::schedule::MissedFirePolicy;
        use jiff::tz::TimeZone;

        let hour = |h: i64| Timestamp::from_second(1_767_225_600 + h * 3600).unwrap();
        let policy = SchedulePolicy {
            missed: MissedFirePolicy::RunAll { max: 10 },
            ..SchedulePolicy::default()
        };
        let restarted = |replace: bool| {
            let mut core = SchedulerCore::new();
            let flow = core
                .add_flow("hourly", Schedule::Cron(Cron::parse("0 * * * *").unwrap()))
                .unwrap();
            core.set_policy(flow, policy).unwrap();
            let mut record = FlowRecord::new(core.flows[0].schedule_hash(&TimeZone::UTC));
            record.last_fire = Some(hour(0));
            core.restore(alloc::vec![StoredFlow {
                flow: "hourly".into(),
                record,
                fence: crate::persist::Fence::ZERO,
            }]);
            let wall = hour(5) + jiff::SignedDuration::from_mins(30);
            core.start(Instant::ZERO, wall);
            if replace {
                let runs = core
                    .replace_flow(
                        flow,
                        Schedule::Cron(Cron::parse("15 * * * *").unwrap()),
                        policy,
                        BackoffPolicy::default(),
                        InFlight::Wait,
                        Instant::ZERO,
                        wall,
                    )
                    .unwrap();
                assert!(runs.is_empty());
            }
            let mut started = 0;
            loop {
                match core.poll(Instant::ZERO, wall) {
                    Action::Start(run) => {
                        started += 1;
                        core.finish(run.run, Instant::ZERO, wall, Ok(())).unwrap();
                    }
                    Action::Save(write) => core.save_done(write.flow, Instant::ZERO, &Ok(())),
                    _ => break,
                }
            }
            started
        };
        assert_eq!(restarted(false), 5, "hours 1 to 5 are caught up");
        assert_eq!(restarted(true), 0);
    }
}
