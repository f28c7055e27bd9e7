//! The core's side of the recovery scan at start: which unfinished runs a flow resumes or
//! abandons (by its [`Recovery`] choice), when each resumed run starts (as a run of its
//! flow, under its overlap limit), and how they ended ([`RecoveryCounts`]).
//!
//! The async side (listing a job's unfinished runs, abandoning logs) is
//! `scheduler::recovery::scan`; it only performs what [`SchedulerCore::recover`] decides.

use alloc::string::ToString;
use alloc::vec::Vec;

use jiff::Timestamp;

use super::{Dispatch, FlowIndex, RunOutcome, SchedulerCore, Stage};
use crate::checkpoint::{Recovery, RunId as LogId};
use crate::scheduler::error::SchedulerError;
use crate::scheduler::events::SchedulerEvent;
use crate::scheduler::flow::StartRefusal;
use crate::scheduler::info::RecoveryCounts;
use crate::scheduler::job::FireId;
use crate::scheduler::runs::RunId;
use crate::time::Instant;

/// What a core that recovers runs keeps beside its flows. Boxed in an `Option`: a core
/// with no recovery choice and nothing recovered pays one pointer and one branch.
#[derive(Debug, Default)]
pub(super) struct Recovering {
    /// Per flow (by index, grown on demand): its choice; `Resume` past the end.
    choices: Vec<Recovery>,
    /// Per flow (by index, grown on demand): what its recovered runs did.
    counts: Vec<RecoveryCounts>,
    /// Resumes still to start: (flow, fire time in µs), in the order they were found.
    pending: Vec<(u32, i64)>,
    /// Resumed runs in flight (few, and only right after start: a vector is enough).
    in_flight: Vec<RunId>,
}

impl Recovering {
    fn counts_mut(&mut self, flow: usize) -> &mut RecoveryCounts {
        if self.counts.len() <= flow {
            self.counts.resize(flow + 1, RecoveryCounts::default());
        }
        &mut self.counts[flow]
    }
}

/// The fire time (µs) of `run` if it is a run id this scheduler gives flow `flow`'s fires
/// (`flow@timestamp`, exactly as [`FireId`] displays it): another flow's run (`flow@x@…`
/// belongs to flow `flow@x`), an ad-hoc id or a foreign format is `None`, and left alone.
fn fire_time_of(flow: &str, run: &LogId) -> Option<i64> {
    let text = run.as_str().strip_prefix(flow)?.strip_prefix('@')?;
    let micros = utc_timestamp_of(text)?.as_microsecond();
    let canonical = FireId::new(flow, Timestamp::from_microsecond(micros).ok()?);
    (canonical.to_string() == run.as_str()).then_some(micros)
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`: how jiff displays a timestamp of the years 0 to 9999,
/// so how a fire id names its time. Read here rather than by jiff's parser, which also
/// reads offsets, time zone annotations and the other RFC 3339 and RFC 9557 forms: it was
/// 7 KB of every firmware (issue 15), and a fire id has one form. Loose on nothing that
/// matters: [`fire_time_of`] takes a time only if the id made from it is the text again.
fn utc_timestamp_of(text: &str) -> Option<Timestamp> {
    let bytes = text.as_bytes();
    let number = |digits: &[u8]| -> Option<i32> {
        digits.iter().try_fold(0i32, |n, digit| {
            digit
                .is_ascii_digit()
                .then(|| n * 10 + i32::from(digit - b'0'))
        })
    };
    let field = |at: usize, len: usize| number(bytes.get(at..at + len)?);
    let separated = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')]
        .iter()
        .all(|&(at, separator)| bytes.get(at) == Some(&separator));
    if !separated {
        return None;
    }
    let nanosecond = match bytes.get(19..)? {
        [b'Z'] => 0,
        [b'.', fraction @ .., b'Z'] if (1..=9).contains(&fraction.len()) => {
            number(fraction)? * 10i32.pow(9 - fraction.len() as u32)
        }
        _ => return None,
    };
    let datetime = jiff::civil::DateTime::new(
        i16::try_from(field(0, 4)?).ok()?,
        i8::try_from(field(5, 2)?).ok()?,
        i8::try_from(field(8, 2)?).ok()?,
        i8::try_from(field(11, 2)?).ok()?,
        i8::try_from(field(14, 2)?).ok()?,
        i8::try_from(field(17, 2)?).ok()?,
        nanosecond,
    )
    .ok()?;
    jiff::tz::TimeZone::UTC.to_timestamp(datetime).ok()
}

impl SchedulerCore {
    fn recovering_mut(&mut self) -> &mut Recovering {
        self.recovery.get_or_insert_with(Default::default)
    }

    /// What the recovery scan at start does with flow `flow`'s unfinished runs (default
    /// [`Recovery::Resume`]). Only jobs that keep a log per run (checkpointed workflows)
    /// have any.
    ///
    /// # Errors
    ///
    /// [`SchedulerError::SetAfterStart`] once the core started; [`SchedulerError::UnknownFlow`]
    /// if `flow` is not a flow of this core.
    pub fn set_recovery(
        &mut self,
        flow: FlowIndex,
        recovery: Recovery,
    ) -> Result<(), SchedulerError> {
        let i = self.registered(flow, "recovery")?;
        if recovery == Recovery::default() && self.recovery.is_none() {
            return Ok(());
        }
        let recovering = self.recovering_mut();
        if recovering.choices.len() <= i {
            recovering.choices.resize(i + 1, Recovery::default());
        }
        recovering.choices[i] = recovery;
        Ok(())
    }

    /// Flow `flow`'s [`Recovery`] choice.
    pub fn recovery(&self, flow: FlowIndex) -> Recovery {
        self.recovery
            .as_deref()
            .and_then(|r| r.choices.get(flow.get()).copied())
            .unwrap_or_default()
    }

    /// The recovery decision for flow `flow`, given every unfinished run its job's store
    /// lists (`unfinished`, from the scan at start). Keeps only the runs of this flow
    /// (`flow@timestamp`, as its fires are named; anything else is left alone). With
    /// [`Recovery::Resume`] they are queued: [`poll`](Self::poll) starts each as
    /// [`Action::Resume`](super::Action::Resume), oldest first, as a run of the flow
    /// (counted in flight, cancelled by a stop's deadline, and the flow's live run for its
    /// overlap policy: at most its overlap limit of them at a time, and a fire that comes due
    /// meanwhile is handled as if a run were in flight). A run of a tripped flow is not
    /// started (its log stays for a later start); a paused flow's wait for its resume. Fire
    /// ids given later are all newer than the recovered ones. Returns the runs to abandon
    /// (with [`Recovery::Abandon`]; empty otherwise): finish each log as abandoned and report
    /// it with [`recovery_abandoned`](Self::recovery_abandoned).
    ///
    /// Call it after [`start`](Self::start) (a stopping or stopped core queues nothing).
    ///
    /// # Panics
    ///
    /// If `flow` did not come from this core.
    pub fn recover(&mut self, flow: FlowIndex, unfinished: &[LogId]) -> Vec<LogId> {
        let i = flow.get();
        let id = self.flows[i].id.clone();
        let mut fires: Vec<(&LogId, i64)> = unfinished
            .iter()
            .filter_map(|run| Some((run, fire_time_of(&id, run)?)))
            .collect();
        // A fleet node leaves them to the fleet: their claims expire and a node takes each
        // over (resuming its log), so a run is not resumed both here and there.
        if fires.is_empty()
            || self.fleet.is_some()
            || !matches!(self.stage, Stage::Registering | Stage::Running)
        {
            return Vec::new();
        }
        // Unstable, with the id breaking ties (no two of a flow's fires share one): a total
        // order, without the stable sort's code (1.6 KB of firmware).
        fires.sort_unstable_by_key(|&(run, at)| (at, run));
        if self.recovery(flow) == Recovery::Abandon {
            return fires.into_iter().map(|(run, _)| run.clone()).collect();
        }
        let newest = fires.last().map_or(i64::MIN, |&(_, at)| at);
        let slot = &mut self.flows[i];
        slot.last_fire_id.raise_to(newest);
        let recovering = self.recovering_mut();
        recovering
            .pending
            .extend(fires.into_iter().map(|(_, at)| (i as u32, at)));
        Vec::new()
    }

    /// Records that one of flow `flow`'s logs handed out by [`recover`](Self::recover) was
    /// finished as abandoned (`finished`) or could not be.
    ///
    /// # Panics
    ///
    /// If `flow` did not come from this core.
    pub fn recovery_abandoned(&mut self, flow: FlowIndex, finished: bool) {
        let _ = self.flows[flow.get()];
        let counts = self.recovering_mut().counts_mut(flow.get());
        if finished {
            counts.abandoned += 1;
        } else {
            counts.failed += 1;
        }
    }

    /// What flow `flow`'s recovered runs did so far.
    pub fn recovery_counts(&self, flow: FlowIndex) -> RecoveryCounts {
        self.recovery
            .as_deref()
            .and_then(|r| r.counts.get(flow.get()).copied())
            .unwrap_or_default()
    }

    /// Whether a queued resume can start now (a wake at once while running).
    pub(super) fn recovery_ready(&self) -> bool {
        self.stage == Stage::Running
            && self.recovery.as_deref().is_some_and(|r| {
                r.pending.iter().any(|&(flow, _)| {
                    let slot = &self.flows[flow as usize];
                    !slot.state.is_paused()
                        && slot.state.check_start(slot.config.overlap.limit())
                            != Err(StartRefusal::AtLimit)
                })
            })
    }

    /// Starts the oldest queued resume whose flow can start now (those of a tripped flow
    /// are dropped: their logs stay for a later start).
    pub(super) fn start_recovery(&mut self, now: Instant, wall: Timestamp) -> Option<Dispatch> {
        let recovering = self.recovery.as_deref_mut()?;
        if recovering.pending.is_empty() {
            return None;
        }
        let flows = &self.flows;
        recovering
            .pending
            .retain(|&(flow, _)| !flows[flow as usize].state.is_tripped());
        let position = recovering.pending.iter().position(|&(flow, _)| {
            let slot = &flows[flow as usize];
            !slot.state.is_paused() && slot.state.check_start(slot.config.overlap.limit()).is_ok()
        })?;
        let (flow, at) = recovering.pending.remove(position);
        if recovering.pending.is_empty() {
            recovering.pending = Vec::new();
        }
        let i = flow as usize;
        let slot = &mut self.flows[i];
        slot.last_fire_id.raise_to(at);
        slot.state.start(wall);
        let fire = FireId::new(slot.id.clone(), crate::time::timestamp_at(at));
        self.mark_dirty(i);
        let run = self.runs.insert(flow, at, now);
        if let Some(recovering) = self.recovery.as_deref_mut() {
            recovering.in_flight.push(run);
        }
        self.events.push(|| SchedulerEvent::FireStarted {
            fire: fire.clone(),
            run,
        });
        Some(Dispatch {
            run,
            flow: FlowIndex(flow),
            fire,
            fence: crate::persist::Fence::ZERO,
            takeover: false,
            inline: self.flows[i].starts_inline(),
        })
    }

    /// Counts how a resumed run ended (a run that was not resumed changes nothing).
    pub(super) fn recovery_ended(
        &mut self,
        run: RunId,
        flow: usize,
        outcome: &RunOutcome,
        stopping: bool,
    ) {
        let Some(recovering) = self.recovery.as_deref_mut() else {
            return;
        };
        let Some(position) = recovering.in_flight.iter().position(|&r| r == run) else {
            return;
        };
        recovering.in_flight.swap_remove(position);
        let counts = recovering.counts_mut(flow);
        match outcome {
            RunOutcome::Succeeded => counts.resumed += 1,
            RunOutcome::Failed(failure) if !(stopping && failure.is_cancellation()) => {
                counts.failed += 1;
            }
            RunOutcome::Failed(_) | RunOutcome::Cancelled => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CanoError;
    use crate::scheduler::Action;
    use crate::scheduler::schedule::{OverlapPolicy, Schedule, SchedulePolicy};
    use crate::time::Instant;
    use alloc::format;
    use core::time::Duration;

    const WALL: i64 = 1_767_225_600;

    fn wall() -> Timestamp {
        Timestamp::from_second(WALL).unwrap()
    }

    fn run_of(flow: &str, secs: i64) -> LogId {
        LogId::from(FireId::new(flow, Timestamp::from_second(WALL - secs).unwrap()).to_string())
    }

    /// A started core with a manual flow `a` (overlap `overlap`) and a manual flow `b`.
    fn core(overlap: OverlapPolicy) -> (SchedulerCore, FlowIndex, FlowIndex) {
        core_with(overlap, Recovery::Resume)
    }

    fn core_with(
        overlap: OverlapPolicy,
        a_does: Recovery,
    ) -> (SchedulerCore, FlowIndex, FlowIndex) {
        let mut core = SchedulerCore::new();
        let a = core.add_flow("a", Schedule::Manual).unwrap();
        let b = core.add_flow("b", Schedule::Manual).unwrap();
        let policy = SchedulePolicy {
            overlap,
            ..SchedulePolicy::default()
        };
        core.set_policy(a, policy).unwrap();
        core.set_recovery(a, a_does).unwrap();
        core.start(Instant::ZERO, wall());
        (core, a, b)
    }

    fn resumes(core: &mut SchedulerCore, now: Instant) -> Vec<Dispatch> {
        let mut out = Vec::new();
        while let Action::Resume(d) = core.poll(now, wall()) {
            out.push(d);
        }
        out
    }

    /// The fire-id reader agrees with jiff on every form jiff displays (whole seconds and
    /// each length of fraction, across the years 0 to 9999) and reads nothing else that
    /// jiff would display differently.
    #[test]
    fn fire_times_are_read_as_jiff_reads_them() {
        let random = crate::random::SplitMix64::new(15);
        let first = Timestamp::from_second(-62_167_219_200).unwrap(); // 0000-01-01
        let last = Timestamp::MAX; // 9999-12-30T22:00:00.999999999Z
        let span = last.as_second() - first.as_second();
        for case in 0..20_000u64 {
            use crate::random::RandomSource;
            let second = first.as_second() + (random.next_u64() % span as u64) as i64;
            // Every fraction length: whole seconds, then 1 to 9 significant digits.
            let digits = (case % 10) as u32;
            let nanos = match digits {
                0 => 0,
                n => {
                    let unit = 10i32.pow(9 - n);
                    (random.next_u64() % 1_000_000_000) as i32 / unit * unit
                }
            };
            let at = Timestamp::new(second, nanos).unwrap();
            let text = at.to_string();
            assert_eq!(utc_timestamp_of(&text), Some(at), "{text}");
        }
        for text in [
            "",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00z",
            "2026-01-01T00:00:00+00:00",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00.0000000001Z",
            "2026-01-01 00:00:00Z",
            "2026-1-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:60Z",
            "+2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00Z[UTC]",
            "２026-01-01T00:00:00Z",
        ] {
            assert_eq!(utc_timestamp_of(text), None, "{text}");
        }
    }

    #[test]
    fn only_a_flows_own_canonical_fire_ids_are_its_runs() {
        let ours = run_of("a", 60);
        assert_eq!(fire_time_of("a", &ours), Some((WALL - 60) * 1_000_000));
        let micro = LogId::from("a@2026-01-01T00:00:00.000001Z");
        assert_eq!(fire_time_of("a", &micro), Some(WALL * 1_000_000 + 1));
        for other in [
            "a",
            "a@",
            "ab@2026-01-01T00:00:00Z",
            "a@b@2026-01-01T00:00:00Z",
            "a@2026-01-01T00:00:00.000000001Z",
            "a@2026-01-01T00:00:00+00:00",
            "a@2026-01-01T00:00:00.000Z",
            "b@2026-01-01T00:00:00Z",
        ] {
            assert_eq!(fire_time_of("a", &LogId::from(other)), None, "{other}");
        }
        assert_eq!(
            fire_time_of("a@b", &LogId::from("a@b@2026-01-01T00:00:00Z")),
            Some(WALL * 1_000_000)
        );
    }

    #[test]
    fn resumes_start_oldest_first_within_the_overlap_limit_and_are_counted_by_outcome() {
        for (overlap, limit) in [
            (OverlapPolicy::Skip, 1),
            (OverlapPolicy::BufferOne, 1),
            (OverlapPolicy::AllowConcurrent(2), 2),
            (OverlapPolicy::AllowConcurrent(5), 3),
        ] {
            let (mut core, a, b) = core(overlap);
            // Listed in id order, which is not age order across a day boundary here.
            let listed = [
                run_of("a", 10),
                run_of("a", 30),
                run_of("a", 20),
                run_of("b", 5),
            ];
            assert!(core.recover(a, &listed).is_empty());
            let mut now = Instant::ZERO;
            let mut started = resumes(&mut core, now);
            assert_eq!(started.len(), limit, "{overlap:?}");
            assert!(started.iter().all(|d| d.flow == a));
            let mut order = Vec::new();
            let mut outcomes = 0;
            while !started.is_empty() {
                let d = started.remove(0);
                order.push(d.fire.to_string());
                now += Duration::from_secs(1);
                let outcome = if outcomes % 2 == 0 {
                    Ok(())
                } else {
                    Err(&CanoError::task_execution("boom"))
                };
                outcomes += 1;
                core.finish(d.run, now, wall(), outcome).unwrap();
                let pending = core
                    .recovery
                    .as_deref()
                    .is_some_and(|r| !r.pending.is_empty());
                assert_eq!(
                    core.next_wake() == Some(Instant::ZERO),
                    pending,
                    "a freed slot wakes the loop"
                );
                started.extend(resumes(&mut core, now));
            }
            let mut expected = [run_of("a", 30), run_of("a", 20), run_of("a", 10)]
                .map(|r| r.to_string())
                .to_vec();
            if limit > 1 {
                // Started together: ended in start order.
                expected.sort();
                order.sort();
            }
            assert_eq!(order, expected, "{overlap:?}");
            let counts = core.recovery_counts(a);
            assert_eq!((counts.resumed, counts.failed, counts.abandoned), (2, 1, 0));
            assert_eq!(core.recovery_counts(b), RecoveryCounts::default());
            assert_eq!(core.info(a, now, wall()).run_count, 3);
        }
    }

    #[test]
    fn a_fire_id_given_after_a_recovery_is_newer_than_every_recovered_run() {
        let (mut core, a, _) = core(OverlapPolicy::AllowConcurrent(3));
        // A run "from the future" (the wall clock went back since the crash).
        let ahead =
            LogId::from(FireId::new("a", Timestamp::from_second(WALL + 3600).unwrap()).to_string());
        core.recover(a, core::slice::from_ref(&ahead));
        let resumed = resumes(&mut core, Instant::ZERO);
        assert_eq!(resumed.len(), 1);
        let fresh = core.trigger(a, Instant::ZERO, wall()).unwrap().unwrap();
        assert!(fresh.fire > resumed[0].fire, "{fresh:?} {resumed:?}");
    }

    /// A fleet node leaves unfinished runs to the fleet's takeover, whatever the flow's
    /// recovery says: resuming here too would run a fire on two nodes.
    #[test]
    fn a_fleet_node_neither_resumes_nor_abandons_at_start() {
        for recovery in [Recovery::Resume, Recovery::Abandon] {
            let mut core = SchedulerCore::new();
            let a = core.add_flow("a", Schedule::Manual).unwrap();
            core.set_recovery(a, recovery).unwrap();
            core.join_fleet(
                crate::persist::NodeId::new("n1"),
                crate::scheduler::FleetConfig::default(),
            )
            .unwrap();
            core.start(Instant::ZERO, wall());
            let listed = [run_of("a", 2), run_of("a", 1)];
            assert!(core.recover(a, &listed).is_empty(), "{recovery:?}");
            assert!(resumes(&mut core, Instant::ZERO).is_empty(), "{recovery:?}");
            assert_eq!(core.info(a, Instant::ZERO, wall()).run_count, 0);
        }
    }

    #[test]
    fn abandon_hands_the_flows_runs_back_and_queues_nothing() {
        let (mut core, a, b) = core_with(OverlapPolicy::Skip, Recovery::Abandon);
        assert_eq!(core.recovery(b), Recovery::Resume);
        assert_eq!(core.recovery(a), Recovery::Abandon);
        let listed = [run_of("a", 1), run_of("b", 1), run_of("a", 2)];
        assert_eq!(core.recover(a, &listed), [run_of("a", 2), run_of("a", 1)]);
        assert!(resumes(&mut core, Instant::ZERO).is_empty());
        core.recovery_abandoned(a, true);
        core.recovery_abandoned(a, false);
        let counts = core.recovery_counts(a);
        assert_eq!((counts.resumed, counts.abandoned, counts.failed), (0, 1, 1));
        assert_eq!(core.info(a, Instant::ZERO, wall()).recovered, counts);
        assert_eq!(core.info(a, Instant::ZERO, wall()).run_count, 0);
    }

    #[test]
    fn a_stop_cancels_resumed_runs_at_its_deadline_and_drops_those_not_started() {
        let (mut core, a, _) = core(OverlapPolicy::Skip);
        core.recover(a, &[run_of("a", 2), run_of("a", 1)]);
        let resumed = resumes(&mut core, Instant::ZERO);
        assert_eq!(resumed.len(), 1);
        assert!(core.begin_stop(Instant::ZERO, Duration::from_secs(5)));
        assert_eq!(
            core.poll(Instant::ZERO, wall()),
            Action::WakeAt(Instant::from_secs(5))
        );
        assert_eq!(
            core.poll(Instant::from_secs(5), wall()),
            Action::Cancel(resumed[0].run)
        );
        assert_eq!(core.cancelled_fires(), [resumed[0].fire.clone()]);
        core.finish(
            resumed[0].run,
            Instant::from_secs(5),
            wall(),
            RunOutcome::Cancelled,
        )
        .unwrap();
        assert_eq!(core.poll(Instant::from_secs(5), wall()), Action::Stopped);
        assert_eq!(core.recovery_counts(a), RecoveryCounts::default());
        let _ = format!("{core:?}");
    }

    #[test]
    fn a_tripped_flow_resumes_nothing_and_a_paused_one_waits_for_its_resume() {
        let (mut core, a, b) = core(OverlapPolicy::Skip);
        core.pause(b).unwrap();
        core.recover(b, &[run_of("b", 1)]);
        assert!(resumes(&mut core, Instant::ZERO).is_empty());
        assert_ne!(
            core.next_wake(),
            Some(Instant::ZERO),
            "no busy wake while paused"
        );
        core.resume(b, Instant::ZERO, wall()).unwrap();
        let resumed = resumes(&mut core, Instant::ZERO);
        assert_eq!(resumed.len(), 1);
        assert_eq!(resumed[0].flow, b);
        let _ = a;
    }

    #[test]
    fn set_recovery_refuses_an_unknown_flow_and_a_started_core() {
        let (mut core, a, _) = core(OverlapPolicy::Skip);
        assert!(matches!(
            core.set_recovery(a, Recovery::Abandon),
            Err(SchedulerError::SetAfterStart { .. })
        ));
        let mut core = SchedulerCore::new();
        core.add_flow("a", Schedule::Manual).unwrap();
        let mut other = SchedulerCore::new();
        for id in ["x", "y", "z"] {
            other.add_flow(id, Schedule::Manual).unwrap();
        }
        let stranger = other.flow("z").unwrap();
        assert!(matches!(
            core.set_recovery(stranger, Recovery::Abandon),
            Err(SchedulerError::UnknownFlow { .. })
        ));
    }
}
