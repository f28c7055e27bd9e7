//! The per-flow status machine: what starting a run, its outcome, `reset_flow`, `pause` and
//! `resume` do to one scheduled flow. Pure: time comes in as arguments.
//!
//! ```text
//!  Idle / Completed / Backoff ──start──▶ Running ──Ok──▶ Completed (streak 0)
//!                                          │
//!                                          └─Err─▶ streak+1 ─┬─ limit reached ─▶ Tripped
//!                                                            └─ otherwise ─────▶ Backoff { until }
//!  Tripped ──reset──▶ Idle          any ──pause──▶ Paused ──resume──▶ (what it was)
//! ```
//!
//! As in cano 0.12, `reset` clears the streak and the backoff window but leaves a running
//! flow running (a failure of that run then starts a new streak at 1), and a success clears
//! any backoff. Unlike in cano 0.12, a flow may have several runs in flight (with
//! [`OverlapPolicy::AllowConcurrent`](crate::scheduler::schedule::OverlapPolicy::AllowConcurrent)), so
//! "running" is a count.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;

use jiff::Timestamp;

use crate::random::RandomSource;
use crate::scheduler::backoff::BackoffPolicy;
use crate::time::{Instant, to_wall};

/// What a flow is doing, as reported by `status` and `list`.
///
/// A flow with a run in flight is `Running` whatever else holds; otherwise a tripped flow is
/// `Tripped`, a paused one `Paused`, and so on. `Backoff` stays visible until the next run
/// starts (as in cano 0.12), even once `until` has passed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// Never run since start (or since `reset_flow` un-tripped it).
    Idle,
    /// At least one run is in flight.
    Running,
    /// The last run succeeded.
    Completed,
    /// The last run failed; scheduled fires wait until `until`.
    Backoff {
        /// When scheduled fires may run again (wall time, for display).
        until: Timestamp,
        /// Consecutive failures so far.
        streak: u32,
        /// The last failure's `Display` text.
        last_error: String,
    },
    /// Too many consecutive failures: no scheduled fire runs and `trigger` is refused until
    /// `reset_flow`.
    Tripped {
        /// Consecutive failures.
        streak: u32,
        /// The last failure's `Display` text.
        last_error: String,
    },
    /// Paused by `pause`: no scheduled fire runs until `resume`.
    Paused,
}

/// What the last finished run did to the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// It succeeded: streak and backoff cleared.
    Completed,
    /// It failed: scheduled fires wait until `until` (monotonic).
    Backoff {
        /// The end of the backoff window.
        until: Instant,
    },
    /// It failed once too often: the flow is tripped.
    Tripped,
}

/// Why a run may not start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartRefusal {
    /// The flow is tripped: only `reset_flow` lets it run again.
    Tripped,
    /// As many runs as the overlap policy allows are already in flight.
    AtLimit,
}

/// What the runs so far left the flow in (running and paused are kept beside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    Idle,
    Completed,
    Backoff,
    Tripped,
}

/// One flow's status: its standing (idle, completed, backoff, tripped), failure streak, backoff window, counters.
#[derive(Debug, Clone)]
pub struct FlowState {
    standing: Standing,
    paused: bool,
    running: u32,
    run_count: u64,
    /// Wall time (µs since the Unix epoch) the last run started; `i64::MIN` = never.
    last_run_micros: i64,
    /// What failures left, on the heap only while any of it is set (a flow whose runs
    /// succeed holds none: issue 15, 24 bytes less per flow).
    failure: Option<Box<Failure>>,
}

/// The part of a [`FlowState`] that only failures set.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    streak: u32,
    /// Read only while the standing is `Backoff`.
    backoff_until: Instant,
    /// Shared, so a status snapshot copies a pointer, not the text.
    last_error: Option<Arc<str>>,
}

impl Failure {
    const NONE: Failure = Failure {
        streak: 0,
        backoff_until: Instant::ZERO,
        last_error: None,
    };
}

impl Default for FlowState {
    fn default() -> Self {
        FlowState::new()
    }
}

impl FlowState {
    /// A flow that has never run.
    pub const fn new() -> Self {
        FlowState {
            standing: Standing::Idle,
            paused: false,
            running: 0,
            run_count: 0,
            last_run_micros: i64::MIN,
            failure: None,
        }
    }

    fn streak(&self) -> u32 {
        self.failure.as_ref().map_or(0, |f| f.streak)
    }

    fn backoff_until_any(&self) -> Instant {
        self.failure
            .as_ref()
            .map_or(Instant::ZERO, |f| f.backoff_until)
    }

    /// Changes the failure part with `change`, freeing it once nothing is set.
    fn update_failure(&mut self, change: impl FnOnce(&mut Failure)) {
        let failure = self.failure.get_or_insert_with(|| Box::new(Failure::NONE));
        change(failure);
        if **failure == Failure::NONE {
            self.failure = None;
        }
    }

    /// Whether a new run may start with at most `limit` runs in flight.
    ///
    /// # Errors
    ///
    /// [`StartRefusal::Tripped`] or [`StartRefusal::AtLimit`].
    pub fn check_start(&self, limit: u32) -> Result<(), StartRefusal> {
        if self.standing == Standing::Tripped {
            Err(StartRefusal::Tripped)
        } else if self.running >= limit {
            Err(StartRefusal::AtLimit)
        } else {
            Ok(())
        }
    }

    /// Records that a run started at wall time `wall` (cano 0.12 also stamped `run_count`
    /// and `last_run` at the start).
    pub fn start(&mut self, wall: Timestamp) {
        self.running += 1;
        self.run_count += 1;
        self.last_run_micros = wall.as_microsecond();
    }

    /// Applies a finished run's outcome at monotonic time `now`, drawing backoff jitter from
    /// `rng`. A failure comes as its error's `Display` text, rendered by the caller (outside
    /// any lock: the text is user-sized).
    pub fn finish(
        &mut self,
        now: Instant,
        outcome: Result<(), Arc<str>>,
        policy: &BackoffPolicy,
        rng: &(impl RandomSource + ?Sized),
    ) -> Transition {
        self.running = self.running.saturating_sub(1);
        match outcome {
            Ok(()) => {
                // The streak and the error go; the backoff window is read only in
                // `Backoff`, which every way in sets anew.
                self.failure = None;
                self.standing = Standing::Completed;
                Transition::Completed
            }
            Err(error) => {
                let streak = self.streak().saturating_add(1);
                if policy.is_tripped(streak) {
                    self.update_failure(|f| {
                        f.streak = streak;
                        f.last_error = Some(error);
                    });
                    self.standing = Standing::Tripped;
                    Transition::Tripped
                } else {
                    let until = now + policy.compute_delay(streak, rng);
                    self.update_failure(|f| {
                        f.streak = streak;
                        f.last_error = Some(error);
                        f.backoff_until = until;
                    });
                    self.standing = Standing::Backoff;
                    Transition::Backoff { until }
                }
            }
        }
    }

    /// Takes over what a schedule store kept across a restart: the failure streak, a trip,
    /// a pause, the end of a backoff window (monotonic, in this process's clock), the last
    /// failure's text and when the last run was scheduled. The run count starts at zero
    /// (it counts runs since this start).
    pub(crate) fn restore(
        &mut self,
        streak: u32,
        tripped: bool,
        paused: bool,
        backoff_until: Option<Instant>,
        last_error: Option<Arc<str>>,
        last_run: Option<Timestamp>,
    ) {
        self.paused = paused;
        self.last_run_micros = last_run.map_or(i64::MIN, Timestamp::as_microsecond);
        let backoff = !tripped && streak > 0;
        self.update_failure(|f| {
            f.streak = streak;
            f.last_error = last_error;
            if backoff {
                f.backoff_until = backoff_until.unwrap_or(Instant::ZERO);
            }
        });
        self.standing = if tripped {
            Standing::Tripped
        } else if backoff {
            Standing::Backoff
        } else if last_run.is_some() {
            Standing::Completed
        } else {
            Standing::Idle
        };
    }

    /// Records that a run was cancelled (by a scheduler stop): neither success nor failure.
    pub fn cancelled(&mut self) {
        self.running = self.running.saturating_sub(1);
    }

    /// Clears the streak, the backoff window and a trip. A running flow stays running.
    pub fn reset(&mut self) {
        self.update_failure(|f| {
            f.streak = 0;
            f.backoff_until = Instant::ZERO;
        });
        if matches!(self.standing, Standing::Tripped | Standing::Backoff) {
            self.standing = Standing::Idle;
        }
    }

    /// Pauses or resumes scheduled fires.
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    /// Whether scheduled fires are paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Whether the flow is tripped.
    pub fn is_tripped(&self) -> bool {
        self.standing == Standing::Tripped
    }

    /// Runs in flight.
    pub fn running(&self) -> u32 {
        self.running
    }

    /// Runs started since the scheduler started.
    pub fn run_count(&self) -> u64 {
        self.run_count
    }

    /// Consecutive failures.
    pub fn failure_streak(&self) -> u32 {
        self.streak()
    }

    /// The end of the backoff window, if one is open at `now`.
    pub fn backoff_until(&self, now: Instant) -> Option<Instant> {
        let until = self.backoff_until_any();
        (self.standing == Standing::Backoff && until > now).then_some(until)
    }

    /// The end of the last backoff window, open or not, while the flow is in `Backoff`.
    pub fn backoff_end(&self) -> Option<Instant> {
        (self.standing == Standing::Backoff).then(|| self.backoff_until_any())
    }

    /// Wall time the last run started.
    pub fn last_run(&self) -> Option<Timestamp> {
        (self.last_run_micros != i64::MIN)
            .then(|| Timestamp::from_microsecond(self.last_run_micros).ok())
            .flatten()
    }

    /// The last failure's text, if the last run failed.
    pub fn last_error(&self) -> Option<&str> {
        self.failure.as_ref()?.last_error.as_deref()
    }

    /// The status to report at monotonic `now` / wall `wall`.
    pub fn status(&self, now: Instant, wall: Timestamp) -> Status {
        let last_error = || self.last_error().unwrap_or("").into();
        if self.running > 0 {
            Status::Running
        } else if self.standing == Standing::Tripped {
            Status::Tripped {
                streak: self.streak(),
                last_error: last_error(),
            }
        } else if self.paused {
            Status::Paused
        } else {
            match self.standing {
                Standing::Idle => Status::Idle,
                Standing::Completed => Status::Completed,
                Standing::Backoff | Standing::Tripped => Status::Backoff {
                    until: to_wall(self.backoff_until_any(), now, wall),
                    streak: self.streak(),
                    last_error: last_error(),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CanoError;
    use crate::random::SplitMix64;
    use alloc::string::ToString;
    use core::time::Duration;

    fn text(error: &CanoError) -> Arc<str> {
        error.to_string().into()
    }

    fn wall0() -> Timestamp {
        Timestamp::from_second(1_767_225_600).unwrap()
    }

    fn policy(limit: Option<u32>) -> BackoffPolicy {
        BackoffPolicy {
            initial: Duration::from_millis(100),
            jitter: 0.0,
            streak_limit: limit,
            ..BackoffPolicy::default()
        }
    }

    #[test]
    fn failure_backs_off_success_clears() {
        let mut f = FlowState::new();
        let rng = SplitMix64::new(0);
        let err = CanoError::task_execution("Test failure");
        assert_eq!(f.status(Instant::ZERO, wall0()), Status::Idle);
        f.start(wall0());
        assert_eq!(f.status(Instant::ZERO, wall0()), Status::Running);
        let t = f.finish(Instant::from_secs(1), Err(text(&err)), &policy(None), &rng);
        assert_eq!(
            t,
            Transition::Backoff {
                until: Instant::from_millis(1_100)
            }
        );
        match f.status(Instant::from_secs(1), wall0()) {
            Status::Backoff {
                streak, last_error, ..
            } => {
                assert_eq!(streak, 1);
                assert_eq!(last_error, "Task execution error: Test failure");
            }
            other => panic!("{other:?}"),
        }
        f.start(wall0());
        let t = f.finish(Instant::from_secs(2), Err(text(&err)), &policy(None), &rng);
        assert_eq!(
            t,
            Transition::Backoff {
                until: Instant::from_millis(2_200)
            }
        );
        f.start(wall0());
        assert_eq!(
            f.finish(Instant::from_secs(3), Ok(()), &policy(None), &rng),
            Transition::Completed
        );
        assert_eq!(f.failure_streak(), 0);
        assert_eq!(f.backoff_until(Instant::from_secs(3)), None);
        assert_eq!(f.status(Instant::from_secs(3), wall0()), Status::Completed);
        assert_eq!(f.run_count(), 3);
    }

    #[test]
    fn trip_blocks_start_until_reset() {
        let mut f = FlowState::new();
        let rng = SplitMix64::new(0);
        let err = CanoError::task_execution("x");
        for i in 1..=2 {
            f.start(wall0());
            let t = f.finish(Instant::ZERO, Err(text(&err)), &policy(Some(2)), &rng);
            assert_eq!(t == Transition::Tripped, i == 2);
        }
        assert_eq!(f.check_start(1), Err(StartRefusal::Tripped));
        assert!(matches!(
            f.status(Instant::ZERO, wall0()),
            Status::Tripped { streak: 2, .. }
        ));
        f.reset();
        assert_eq!(f.check_start(1), Ok(()));
        assert_eq!(f.status(Instant::ZERO, wall0()), Status::Idle);
    }

    #[test]
    fn reset_leaves_a_running_flow_running_and_the_race_restarts_the_streak() {
        let mut f = FlowState::new();
        let rng = SplitMix64::new(0);
        let err = CanoError::task_execution("x");
        for _ in 0..3 {
            f.start(wall0());
            f.finish(Instant::ZERO, Err(text(&err)), &policy(None), &rng);
        }
        f.start(wall0());
        f.reset();
        assert_eq!(f.status(Instant::ZERO, wall0()), Status::Running);
        f.finish(Instant::ZERO, Err(text(&err)), &policy(None), &rng);
        assert_eq!(f.failure_streak(), 1);
    }

    #[test]
    fn overlap_limit_and_pause() {
        let mut f = FlowState::new();
        f.start(wall0());
        assert_eq!(f.check_start(1), Err(StartRefusal::AtLimit));
        assert_eq!(f.check_start(2), Ok(()));
        f.cancelled();
        f.set_paused(true);
        assert_eq!(f.status(Instant::ZERO, wall0()), Status::Paused);
        assert_eq!(f.last_run(), Some(wall0()));
    }
}
