//! [`TimerTask`]: wait, then continue (cano 0.15's `TimerTask`).
//!
//! [`wait`](TimerTask::wait) says how long: [`TimerOutcome::Duration`] (on the monotonic
//! clock) or [`TimerOutcome::Until`] a wall-clock [`Timestamp`]. Then
//! [`after_wait`](TimerTask::after_wait) names the next state. [`TimerRunner`] sleeps on its
//! [`Clock`] and is the [`Task`] you register.
//!
//! ## Resuming
//!
//! A state is re-run from its start when a run resumes (after a crash, or a retry), so `wait`
//! is asked again:
//!
//! * `Until(t)` is a **wall** deadline: a resumed run waits only for what is left until `t`
//!   (nothing if `t` has passed), however long the process was down. The wall clock is read
//!   again after every wake, so a wall clock stepped back while sleeping (NTP) still waits
//!   until `t`; one stepped forward is noticed at the next wake (the sleep itself runs on
//!   the monotonic clock).
//! * `Duration(d)` is measured from when the state starts: a resumed run waits the whole `d`
//!   again (cano 0.15 does the same). Compute an `Until` from data you persisted if the
//!   deadline must survive a restart.
//!
//! ```
//! use cano_core::{CanoError, Clock, Resources, TaskResult, Workflow};
//! use cano_core::shapes::timer::{TimerOutcome, TimerRunner, TimerTask};
//! use cano_core::testing::Simulation;
//! use core::time::Duration;
//!
//! #[derive(Debug, Clone, PartialEq, Eq, Hash)]
//! enum State { Cooldown, Done }
//!
//! struct Cooldown;
//! impl TimerTask<State> for Cooldown {
//!     async fn wait(&self, _res: &Resources) -> Result<TimerOutcome, CanoError> {
//!         Ok(TimerOutcome::Duration(Duration::from_secs(90)))
//!     }
//!     async fn after_wait(&self, _res: &Resources) -> Result<TaskResult<State>, CanoError> {
//!         Ok(TaskResult::Single(State::Done))
//!     }
//! }
//!
//! let sim = Simulation::new();
//! let workflow = Workflow::bare()
//!     .register(State::Cooldown, TimerRunner::new(Cooldown, sim.clock()))
//!     .add_exit_state(State::Done);
//! assert_eq!(sim.block_on(workflow.orchestrate_on(&sim.clock(), State::Cooldown)), Ok(State::Done));
//! assert_eq!(sim.clock().now().as_millis(), 90_000);
//! ```

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::sync::Arc;
use core::future::Future;
use core::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;

use crate::error::CanoError;
use crate::resource::{DefaultKey, Resources};
use crate::runtime::Clock;
use crate::workflow::retry::TaskConfig;
use crate::workflow::task::{Task, TaskResult};

/// How long a timer waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerOutcome {
    /// This long on the monotonic clock, from when the state starts.
    Duration(Duration),
    /// Until the wall clock reads this (a deadline that survives a restart).
    Until(Timestamp),
}

/// How long from `wall_now` until the wall deadline `until` (zero if it has passed).
pub fn wall_remaining(until: Timestamp, wall_now: Timestamp) -> Duration {
    let left = until.duration_since(wall_now);
    if left.is_negative() {
        Duration::ZERO
    } else {
        left.unsigned_abs()
    }
}

/// A state that waits, then continues. Register it through a [`TimerRunner`].
pub trait TimerTask<S, K = DefaultKey>: Send + Sync {
    /// How long to wait. An error fails the state.
    fn wait(
        &self,
        res: &Resources<K>,
    ) -> impl Future<Output = Result<TimerOutcome, CanoError>> + Send;

    /// Names the next state once the wait is over.
    fn after_wait(
        &self,
        res: &Resources<K>,
    ) -> impl Future<Output = Result<TaskResult<S>, CanoError>> + Send;

    /// The state's settings. Default: [`TaskConfig::minimal`]. An attempt timeout shorter
    /// than the wait fails the state with [`CanoError::Timeout`].
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }

    /// The name observers see. Default: the type's name.
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(core::any::type_name::<Self>())
    }
}

/// The object-safe form of [`TimerTask`], implemented for every timer task.
pub trait DynTimerTask<S, K = DefaultKey>: Send + Sync {
    /// [`TimerTask::wait`], boxed.
    fn wait_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
    ) -> BoxFuture<'a, Result<TimerOutcome, CanoError>>;
    /// [`TimerTask::after_wait`], boxed.
    fn after_wait_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
    ) -> BoxFuture<'a, Result<TaskResult<S>, CanoError>>;
    /// [`TimerTask::config`].
    fn config_dyn(&self) -> TaskConfig;
    /// [`TimerTask::name`].
    fn name_dyn(&self) -> Cow<'static, str>;
}

impl<S: 'static, K: 'static, T: TimerTask<S, K>> DynTimerTask<S, K> for T {
    fn wait_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
    ) -> BoxFuture<'a, Result<TimerOutcome, CanoError>> {
        Box::pin(self.wait(res))
    }
    fn after_wait_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
    ) -> BoxFuture<'a, Result<TaskResult<S>, CanoError>> {
        Box::pin(self.after_wait(res))
    }
    fn config_dyn(&self) -> TaskConfig {
        self.config()
    }
    fn name_dyn(&self) -> Cow<'static, str> {
        self.name()
    }
}

macro_rules! forward_timer {
    ($ty:ty) => {
        impl<S: 'static, K: Sync + 'static> TimerTask<S, K> for $ty {
            fn wait(
                &self,
                res: &Resources<K>,
            ) -> impl Future<Output = Result<TimerOutcome, CanoError>> + Send {
                async move { (**self).wait_dyn(res).await }
            }
            fn after_wait(
                &self,
                res: &Resources<K>,
            ) -> impl Future<Output = Result<TaskResult<S>, CanoError>> + Send {
                async move { (**self).after_wait_dyn(res).await }
            }
            fn config(&self) -> TaskConfig {
                (**self).config_dyn()
            }
            fn name(&self) -> Cow<'static, str> {
                (**self).name_dyn()
            }
        }
    };
}

forward_timer!(Box<dyn DynTimerTask<S, K>>);
forward_timer!(Arc<dyn DynTimerTask<S, K>>);

/// Runs a [`TimerTask`], sleeping on `clock`; register it like any [`Task`].
#[derive(Debug, Clone)]
pub struct TimerRunner<T, C> {
    task: T,
    clock: C,
}

impl<T, C: Clock> TimerRunner<T, C> {
    /// `task`, sleeping on `clock`.
    pub fn new(task: T, clock: C) -> Self {
        TimerRunner { task, clock }
    }
}

/// Sleeps on `clock` as `outcome` says.
pub async fn wait_on<C: Clock>(clock: &C, outcome: TimerOutcome) {
    match outcome {
        TimerOutcome::Duration(d) => clock.sleep_until(clock.now() + d).await,
        TimerOutcome::Until(until) => loop {
            let left = wall_remaining(until, clock.wall_now());
            if left.is_zero() {
                return;
            }
            clock.sleep_until(clock.now() + left).await;
        },
    }
}

impl<S, K, T, C> Task<S, K> for TimerRunner<T, C>
where
    S: Send,
    K: Sync,
    T: TimerTask<S, K>,
    C: Clock,
{
    async fn run(&self, res: &Resources<K>) -> Result<TaskResult<S>, CanoError> {
        let outcome = self.task.wait(res).await?;
        wait_on(&self.clock, outcome).await;
        self.task.after_wait(res).await
    }
    fn config(&self) -> TaskConfig {
        self.task.config()
    }
    fn name(&self) -> Cow<'static, str> {
        self.task.name()
    }
}
