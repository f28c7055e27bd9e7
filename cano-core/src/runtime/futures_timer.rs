//! cano on executors that have no adapter crate: a [`Clock`] on
//! [`futures-timer`](https://docs.rs/futures-timer) and a [`Spawner`] over any
//! [`futures::task::Spawn`] (feature `futures-timer`, which implies `std`).
//!
//! `futures-timer` runs one helper thread for all timers of the process, so the clock works
//! under any executor: `futures::executor::block_on`, a `ThreadPool`, a `LocalPool`, or one
//! of your own. [`FuturesSpawner`] hands spawned work to anything that implements
//! `futures::task::Spawn` and is `Send + Sync` (a `ThreadPool`, for instance); a
//! single-threaded `LocalPool` runs workflows with no spawner instead.
//!
//! All [`FuturesTimerClock`]s of a process share one monotonic origin, so their
//! [`Instant`]s are comparable.
//!
//! ```
//! use cano_core::runtime::futures_timer::FuturesTimerClock;
//! use cano_core::{Clock, Workflow, Task, TaskResult, Resources, CanoError};
//! use core::time::Duration;
//!
//! #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
//! enum Step { Start, Done }
//!
//! struct Nap;
//! impl Task<Step> for Nap {
//!     async fn run(&self, _: &Resources) -> Result<TaskResult<Step>, CanoError> {
//!         Ok(TaskResult::Single(Step::Done))
//!     }
//! }
//!
//! let workflow = Workflow::bare().register(Step::Start, Nap).add_exit_state(Step::Done);
//! let clock = FuturesTimerClock::new();
//! let started = clock.now();
//! futures::executor::block_on(async {
//!     clock.sleep_until(started + Duration::from_millis(5)).await;
//!     assert_eq!(workflow.orchestrate_on(&clock, Step::Start).await, Ok(Step::Done));
//! });
//! assert!(clock.now() >= started + Duration::from_millis(5));
//! ```

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::sync::OnceLock;
use std::time::Instant as StdInstant;

use futures::task::{FutureObj, Spawn};
use jiff::Timestamp;

use crate::runtime::{BoxFuture, Clock, SpawnError, Spawner};
use crate::time::Instant;

/// The process's monotonic origin, shared by every [`FuturesTimerClock`].
fn origin() -> StdInstant {
    static ORIGIN: OnceLock<StdInstant> = OnceLock::new();
    *ORIGIN.get_or_init(StdInstant::now)
}

/// [`Clock`] on `futures-timer`'s timer thread and the system wall clock. Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct FuturesTimerClock {
    _private: (),
}

impl FuturesTimerClock {
    /// The clock (the process-wide origin is fixed by the first clock made).
    pub fn new() -> Self {
        origin();
        FuturesTimerClock { _private: () }
    }
}

impl Default for FuturesTimerClock {
    fn default() -> Self {
        FuturesTimerClock::new()
    }
}

impl Clock for FuturesTimerClock {
    type Sleep = FuturesTimerSleep;

    fn now(&self) -> Instant {
        Instant::ZERO + origin().elapsed()
    }

    fn wall_now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn sleep_until(&self, deadline: Instant) -> FuturesTimerSleep {
        let at = if deadline == Instant::MAX {
            None
        } else {
            origin().checked_add(deadline.elapsed_since_origin())
        };
        let delay =
            at.map(|at| futures_timer::Delay::new(at.saturating_duration_since(StdInstant::now())));
        FuturesTimerSleep { at, delay }
    }
}

/// The future returned by [`FuturesTimerClock::sleep_until`]: ready once the deadline has
/// passed (at once for a deadline in the past), never for [`Instant::MAX`].
#[derive(Debug)]
pub struct FuturesTimerSleep {
    at: Option<StdInstant>,
    delay: Option<futures_timer::Delay>,
}

impl Future for FuturesTimerSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(at) = self.at else {
            return Poll::Pending;
        };
        // A deadline already passed is ready now, without a round trip to the timer thread.
        if StdInstant::now() >= at {
            return Poll::Ready(());
        }
        match self.delay.as_mut() {
            Some(delay) => Pin::new(delay).poll(cx),
            None => Poll::Pending,
        }
    }
}

/// [`Spawner`] onto any `futures::task::Spawn` executor that can be shared between threads
/// (`futures::executor::ThreadPool`, for instance). Spawned futures are detached.
///
/// Errors: [`SpawnError::Shutdown`] when the executor refuses the future (it is shutting
/// down).
///
/// ```
/// use cano_core::runtime::futures_timer::FuturesSpawner;
/// use cano_core::Spawner;
/// use futures::executor::ThreadPool;
///
/// let pool = ThreadPool::new().unwrap();
/// let spawner = FuturesSpawner::new(pool);
/// let (tx, rx) = futures::channel::oneshot::channel();
/// spawner.spawn(Box::pin(async move { let _ = tx.send(42); })).unwrap();
/// assert_eq!(futures::executor::block_on(rx), Ok(42));
/// ```
#[derive(Debug, Clone)]
pub struct FuturesSpawner<E> {
    executor: E,
}

impl<E> FuturesSpawner<E> {
    /// A spawner onto `executor`.
    pub fn new(executor: E) -> Self {
        FuturesSpawner { executor }
    }

    /// The executor this spawner spawns onto.
    pub fn executor(&self) -> &E {
        &self.executor
    }
}

impl<E: Spawn + Clone + Send + Sync + 'static> Spawner for FuturesSpawner<E> {
    fn spawn(&self, future: BoxFuture) -> Result<(), SpawnError> {
        self.executor
            .spawn_obj(FutureObj::new(future))
            .map_err(|_| SpawnError::Shutdown)
    }
}
