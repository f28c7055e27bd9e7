//! # cano-smol
//!
//! cano on smol's building blocks: [`SmolClock`] sleeps on `async-io`'s [`Timer`], and
//! [`SmolSpawner`] spawns onto an `async-executor` [`Executor`]. The whole of `cano-core` is
//! re-exported, so this is the only cano dependency a smol application needs;
//! `use cano_smol::prelude::*;` imports the names most programs use (see [`prelude`]), and
//! the `testing` feature adds `cano_smol::testing` (cano's fake clock and `Simulation`).
//!
//! ```
//! use std::sync::Arc;
//! use cano_smol::{Clock, Spawner, SmolClock, SmolSpawner};
//! use async_executor::Executor;
//! use core::time::Duration;
//!
//! let ex = Arc::new(Executor::new());
//! let clock = SmolClock::new();
//! let spawner = SmolSpawner::new(ex.clone());
//! let (tx, rx) = async_channel_like();
//! # fn async_channel_like() -> (futures::channel::oneshot::Sender<()>, futures::channel::oneshot::Receiver<()>) { futures::channel::oneshot::channel() }
//! let c = clock.clone();
//! spawner.spawn(Box::pin(async move {
//!     c.sleep_until(c.now() + Duration::from_millis(5)).await;
//!     tx.send(()).unwrap();
//! })).unwrap();
//! futures_lite::future::block_on(ex.run(rx)).unwrap();
//! assert!(clock.now().as_millis() >= 5);
//! ```

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::sync::{Arc, OnceLock};
use std::time::Instant as StdInstant;

pub use cano_core::*;

mod workflow_ext;
pub use workflow_ext::WorkflowExt;
mod scheduler_ext;
pub use scheduler_ext::start_scheduler;
mod smol_runtime;
pub use smol_runtime::SmolRuntime;
mod shutdown;
/// Re-exported for [`shutdown_on_signals`]: name signals as `cano_smol::async_signal::Signal`.
pub use async_signal;
pub use shutdown::{shutdown_on, shutdown_on_ctrl_c, shutdown_on_signals};

pub mod prelude;

use async_executor::Executor;
use async_io::Timer;
use cano_core::jiff::Timestamp;

/// The one monotonic origin of every [`SmolClock`] in the process: the moment the first one
/// was made.
fn process_origin() -> StdInstant {
    static ORIGIN: OnceLock<StdInstant> = OnceLock::new();
    *ORIGIN.get_or_init(StdInstant::now)
}

/// [`Clock`] on `async-io`'s reactor timers and the system wall clock. Cheap to clone.
///
/// Every `SmolClock` in the process measures from one origin (the moment the first one was
/// made), so [`Instant`]s read from any two of them (the scheduler's, `orchestrate`'s, your
/// own) are comparable: a [`CircuitBreaker`] opened by a scheduled run stays open for an
/// `orchestrate` call and for `breaker.state(SmolClock::new().now())` alike.
#[derive(Debug, Clone, Copy)]
pub struct SmolClock {
    origin: StdInstant,
}

impl SmolClock {
    /// A clock on the process's monotonic origin.
    pub fn new() -> Self {
        SmolClock {
            origin: process_origin(),
        }
    }
}

impl Default for SmolClock {
    fn default() -> Self {
        SmolClock::new()
    }
}

impl Clock for SmolClock {
    type Sleep = SmolSleep;

    fn now(&self) -> Instant {
        Instant::ZERO + self.origin.elapsed()
    }

    fn wall_now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn sleep_until(&self, deadline: Instant) -> SmolSleep {
        let timer = match self.origin.checked_add(deadline.elapsed_since_origin()) {
            Some(at) if deadline != Instant::MAX => Timer::at(at),
            _ => Timer::never(),
        };
        SmolSleep { timer }
    }
}

/// The future returned by [`SmolClock::sleep_until`].
#[derive(Debug)]
pub struct SmolSleep {
    timer: Timer,
}

impl Future for SmolSleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.timer).poll(cx).map(drop)
    }
}

/// [`Spawner`] onto an `async-executor` [`Executor`]. Spawned tasks are detached and run
/// while the application drives the executor (`executor.run(..)`).
#[derive(Debug, Clone)]
pub struct SmolSpawner {
    executor: Arc<Executor<'static>>,
}

impl SmolSpawner {
    /// A spawner onto `executor`.
    pub fn new(executor: Arc<Executor<'static>>) -> Self {
        SmolSpawner { executor }
    }

    /// The executor this spawner spawns onto.
    pub fn executor(&self) -> &Arc<Executor<'static>> {
        &self.executor
    }
}

impl Spawner for SmolSpawner {
    fn spawn(&self, future: BoxFuture) -> Result<(), SpawnError> {
        self.executor.spawn(future).detach();
        Ok(())
    }
}
