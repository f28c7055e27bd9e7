//! The runtime contract: [`Clock`] and [`Spawner`]. Nothing else from a runtime enters the
//! core.
//!
//! An adapter crate implements both for its runtime; the scheduler and workflow drivers are
//! generic over them. [`Runtime`] bundles the two into one value for the adapters' one-call
//! entry points ([`Workflow::orchestrate_in`](crate::Workflow::orchestrate_in),
//! [`Scheduler::start_in`](crate::Scheduler::start_in)). See the crate docs for why
//! everything here is `Send`.

use core::fmt;
use core::future::Future;

use jiff::Timestamp;

use crate::time::Instant;

mod dyn_clock;
pub use dyn_clock::DynClock;
mod dyn_spawner;
pub(crate) use dyn_spawner::DynSpawner;
mod entry;
pub use entry::Runtime;

#[cfg(feature = "futures-timer")]
pub mod futures_timer;

/// A boxed, `Send` future with no output: what a [`Spawner`] runs.
pub type BoxFuture = futures::future::BoxFuture<'static, ()>;

/// A source of time: monotonic now, wall-clock now, and sleeping until a monotonic deadline.
///
/// The two clocks are independent on purpose. A suspended laptop's wall clock moves on while
/// its monotonic clock stands still; an NTP step moves the wall clock alone. Decision code
/// receives both readings as arguments and never reads a clock itself.
///
/// Implementations: `TokioClock` (cano-tokio), `SmolClock` (cano-smol), `EmbassyClock`
/// (cano-embassy) and `testing::FakeClock` (feature `testing`).
pub trait Clock: Clone + Send + Sync + 'static {
    /// The future returned by [`Clock::sleep_until`].
    type Sleep: Future<Output = ()> + Send + 'static;

    /// The current monotonic time.
    fn now(&self) -> Instant;

    /// The current wall-clock time.
    fn wall_now(&self) -> Timestamp;

    /// A future that completes once [`Clock::now`] has reached `deadline`.
    ///
    /// A deadline in the past completes at once; [`Instant::MAX`] never completes.
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep;
}

/// Why a [`Spawner`] refused a future.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpawnError {
    /// A fixed-size task pool (embassy) has no free slot. Size the pool for the number of
    /// runs that may be in flight at once.
    PoolFull,
    /// The runtime is shutting down or gone; nothing can be spawned any more.
    Shutdown,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::PoolFull => f.write_str("task pool is full: no free slot to spawn into"),
            SpawnError::Shutdown => f.write_str("runtime is shut down: cannot spawn"),
        }
    }
}

impl core::error::Error for SpawnError {}

/// Runs futures concurrently on a runtime.
///
/// `spawn` never panics: a full pool or a stopped runtime is an `Err`, which cano reports as
/// a [`CanoError::Spawn`](crate::CanoError::Spawn) for the run that could not start.
pub trait Spawner: Clone + Send + Sync + 'static {
    /// Runs `future` to completion concurrently with the caller. The spawned future is
    /// detached: cano tracks completion itself, so no join handle is needed, and cancels a
    /// task by having it drop its work at its next poll.
    ///
    /// # Errors
    ///
    /// [`SpawnError::PoolFull`] or [`SpawnError::Shutdown`]; `future` is dropped unpolled.
    fn spawn(&self, future: BoxFuture) -> Result<(), SpawnError>;
}

/// A [`Spawner`] that refuses everything: the spawner of a [`RunContext`](crate::workflow::RunContext) that has none.
/// Splits that ask for spawned branches then poll them in place.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSpawner;

impl Spawner for NoSpawner {
    fn spawn(&self, _future: BoxFuture) -> Result<(), SpawnError> {
        Err(SpawnError::Shutdown)
    }
}
