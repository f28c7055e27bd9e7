//! [`PollTask`]: a state that checks something repeatedly until it is ready.
//!
//! Each [`poll`](PollTask::poll) says [`PollOutcome::Ready`] (continue in a state) or
//! [`PollOutcome::Pending`] (ask again after a pause). [`PollRunner`] drives the loop on a
//! [`Clock`] and is the [`Task`] you register.
//!
//! Fixed from cano 0.12:
//!
//! * an error policy that tolerates errors now **waits between error re-polls**
//!   ([`PollErrorPolicy::RetryOnError::delay`]); 0.12 re-polled at once, hammering whatever
//!   was failing;
//! * a zero pause (`Pending { after: ZERO }`) **yields** to the executor instead of
//!   re-polling in a busy loop, so timers, cancellation and other tasks still run;
//! * the loop is bounded by the task's attempt timeout
//!   ([`TaskConfig::with_attempt_timeout`] bounds the whole loop, which is one attempt) and by
//!   the run's cancellation, both of which take effect at the loop's next pause.
//!
//! ```
//! use cano_core::{CanoError, Clock, Resources, TaskResult, Workflow};
//! use cano_core::shapes::poll::{PollOutcome, PollRunner, PollTask};
//! use cano_core::testing::Simulation;
//! use core::time::Duration;
//! use std::sync::atomic::{AtomicU32, Ordering};
//!
//! #[derive(Debug, Clone, PartialEq, Eq, Hash)]
//! enum State { WaitForJob, Done }
//!
//! struct JobStatus { checks: AtomicU32 }
//! impl PollTask<State> for JobStatus {
//!     async fn poll(&self, _res: &Resources) -> Result<PollOutcome<State>, CanoError> {
//!         if self.checks.fetch_add(1, Ordering::SeqCst) < 3 {
//!             Ok(PollOutcome::Pending { after: Duration::from_secs(10) })
//!         } else {
//!             Ok(PollOutcome::Ready(TaskResult::Single(State::Done)))
//!         }
//!     }
//! }
//!
//! let sim = Simulation::new();
//! let clock = sim.clock();
//! let workflow = Workflow::bare()
//!     .register(State::WaitForJob, PollRunner::new(JobStatus { checks: AtomicU32::new(0) }, clock.clone()))
//!     .add_exit_state(State::Done);
//! assert_eq!(sim.block_on(workflow.orchestrate_on(&clock, State::WaitForJob)), Ok(State::Done));
//! assert_eq!(sim.clock().now().as_millis(), 30_000); // three pauses of 10 s
//! ```

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::sync::Arc;
use core::future::Future;
use core::time::Duration;

use futures::future::BoxFuture;

use super::pause;
use crate::error::CanoError;
use crate::resource::{DefaultKey, Resources};
use crate::runtime::Clock;
use crate::workflow::retry::TaskConfig;
use crate::workflow::task::{Task, TaskResult};

/// What one poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollOutcome<S> {
    /// Done: continue in this state.
    Ready(TaskResult<S>),
    /// Not yet: poll again after `after` (zero: after yielding to the executor once).
    Pending {
        /// The pause before the next poll.
        after: Duration,
    },
}

/// What a failing poll does to the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PollErrorPolicy {
    /// The first error fails the state.
    #[default]
    FailFast,
    /// Up to `max_errors` consecutive errors are tolerated (the next one fails the state with
    /// that error), each followed by a pause of `delay` before polling again. A `Pending`
    /// resets the count.
    RetryOnError {
        /// Consecutive errors tolerated.
        max_errors: u32,
        /// The pause after a tolerated error (zero: yield once).
        delay: Duration,
    },
}

/// What the loop does next: the pure decision behind [`PollRunner`].
#[derive(Debug, PartialEq, Eq)]
pub enum PollStep<S> {
    /// The loop ends with this result.
    Finish(Result<TaskResult<S>, CanoError>),
    /// Poll again after this pause.
    Again(Duration),
}

/// The poll loop's state between polls: the consecutive-error count under a policy.
#[derive(Debug, Clone)]
pub struct PollLoop {
    policy: PollErrorPolicy,
    consecutive_errors: u32,
}

impl PollLoop {
    /// A loop under `policy`, with no error seen yet.
    pub fn new(policy: PollErrorPolicy) -> Self {
        PollLoop {
            policy,
            consecutive_errors: 0,
        }
    }

    /// Decides what follows a poll's `outcome`.
    ///
    /// ```
    /// use cano_core::CanoError;
    /// use cano_core::shapes::poll::{PollErrorPolicy, PollLoop, PollOutcome, PollStep};
    /// use core::time::Duration;
    ///
    /// let delay = Duration::from_secs(1);
    /// let mut lp = PollLoop::new(PollErrorPolicy::RetryOnError { max_errors: 1, delay });
    /// let boom = || Err::<PollOutcome<()>, _>(CanoError::task_execution("boom"));
    /// assert_eq!(lp.next(boom()), PollStep::Again(delay));
    /// assert!(matches!(lp.next(boom()), PollStep::Finish(Err(_))));
    /// ```
    pub fn next<S>(&mut self, outcome: Result<PollOutcome<S>, CanoError>) -> PollStep<S> {
        match outcome {
            Ok(PollOutcome::Ready(result)) => PollStep::Finish(Ok(result)),
            Ok(PollOutcome::Pending { after }) => {
                self.consecutive_errors = 0;
                PollStep::Again(after)
            }
            Err(error) => match self.policy {
                PollErrorPolicy::FailFast => PollStep::Finish(Err(error)),
                PollErrorPolicy::RetryOnError { max_errors, delay } => {
                    self.consecutive_errors = self.consecutive_errors.saturating_add(1);
                    if self.consecutive_errors > max_errors {
                        PollStep::Finish(Err(error))
                    } else {
                        PollStep::Again(delay)
                    }
                }
            },
        }
    }
}

/// Something that is checked until it is ready. Register it through a [`PollRunner`].
pub trait PollTask<S, K = DefaultKey>: Send + Sync {
    /// Checks once.
    fn poll(
        &self,
        res: &Resources<K>,
    ) -> impl Future<Output = Result<PollOutcome<S>, CanoError>> + Send;

    /// What an error does to the loop. Default: [`PollErrorPolicy::FailFast`].
    fn on_poll_error(&self) -> PollErrorPolicy {
        PollErrorPolicy::FailFast
    }

    /// The state's settings. Default: [`TaskConfig::minimal`] (as in cano 0.12). The whole
    /// loop is one attempt: an attempt timeout bounds the loop, a retry restarts it.
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }

    /// The name observers see. Default: the type's name.
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(core::any::type_name::<Self>())
    }
}

/// The object-safe form of [`PollTask`], implemented for every poll task.
pub trait DynPollTask<S, K = DefaultKey>: Send + Sync {
    /// [`PollTask::poll`] with its future boxed.
    fn poll_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
    ) -> BoxFuture<'a, Result<PollOutcome<S>, CanoError>>;
    /// [`PollTask::on_poll_error`].
    fn on_poll_error_dyn(&self) -> PollErrorPolicy;
    /// [`PollTask::config`].
    fn config_dyn(&self) -> TaskConfig;
    /// [`PollTask::name`].
    fn name_dyn(&self) -> Cow<'static, str>;
}

impl<S: 'static, K: 'static, T: PollTask<S, K>> DynPollTask<S, K> for T {
    fn poll_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
    ) -> BoxFuture<'a, Result<PollOutcome<S>, CanoError>> {
        Box::pin(self.poll(res))
    }
    fn on_poll_error_dyn(&self) -> PollErrorPolicy {
        self.on_poll_error()
    }
    fn config_dyn(&self) -> TaskConfig {
        self.config()
    }
    fn name_dyn(&self) -> Cow<'static, str> {
        self.name()
    }
}

macro_rules! forward_poll {
    ($ty:ty) => {
        impl<S: 'static, K: Sync + 'static> PollTask<S, K> for $ty {
            fn poll(
                &self,
                res: &Resources<K>,
            ) -> impl Future<Output = Result<PollOutcome<S>, CanoError>> + Send {
                async move { (**self).poll_dyn(res).await }
            }
            fn on_poll_error(&self) -> PollErrorPolicy {
                (**self).on_poll_error_dyn()
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

forward_poll!(Box<dyn DynPollTask<S, K>>);
forward_poll!(Arc<dyn DynPollTask<S, K>>);

/// Runs a [`PollTask`]'s loop on `clock`; register it like any [`Task`].
#[derive(Debug, Clone)]
pub struct PollRunner<T, C> {
    task: T,
    clock: C,
}

impl<T, C: Clock> PollRunner<T, C> {
    /// `task`'s loop, pausing on `clock`.
    pub fn new(task: T, clock: C) -> Self {
        PollRunner { task, clock }
    }

    /// The poll task.
    pub fn task(&self) -> &T {
        &self.task
    }
}

/// Polls `task` until it is ready or its error policy gives up, pausing on `clock`.
pub async fn run_poll_loop<S, K, T, C>(
    task: &T,
    res: &Resources<K>,
    clock: &C,
) -> Result<TaskResult<S>, CanoError>
where
    T: PollTask<S, K> + ?Sized,
    C: Clock,
{
    let mut decide = PollLoop::new(task.on_poll_error());
    loop {
        let outcome = task.poll(res).await;
        match decide.next(outcome) {
            PollStep::Finish(result) => return result,
            PollStep::Again(after) => pause(clock, after).await,
        }
    }
}

impl<S, K, T, C> Task<S, K> for PollRunner<T, C>
where
    S: Send,
    K: Sync,
    T: PollTask<S, K>,
    C: Clock,
{
    fn run(
        &self,
        res: &Resources<K>,
    ) -> impl Future<Output = Result<TaskResult<S>, CanoError>> + Send {
        run_poll_loop(&self.task, res, &self.clock)
    }
    fn config(&self) -> TaskConfig {
        self.task.config()
    }
    fn name(&self) -> Cow<'static, str> {
        self.task.name()
    }
}
