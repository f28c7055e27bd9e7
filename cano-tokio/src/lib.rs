//! # cano-tokio
//!
//! cano on [tokio](https://tokio.rs): [`TokioClock`] and [`TokioSpawner`] implement cano's
//! runtime contract, and the whole of `cano-core` is re-exported, so this is the only cano
//! dependency a tokio application needs. `use cano_tokio::prelude::*;` imports the names
//! most programs use (see [`prelude`]).
//!
//! A workflow runs once with [`WorkflowExt::orchestrate`], or on a schedule: the same
//! workflow is a scheduler job. [`start_scheduler`] starts a [`Scheduler`] on the current
//! runtime in one call, and [`shutdown_on_ctrl_c`] (or [`shutdown_on`] any other signal)
//! stops it gracefully; `examples/quickstart.rs` shows both.
//!
//! ```
//! use cano_tokio::jiff::Timestamp;
//! use cano_tokio::prelude::*;
//! use std::time::Duration;
//!
//! #[derive(Debug, Clone, PartialEq, Eq, Hash)]
//! enum Step { Fetch, Sum, Done }
//!
//! struct Fetch;
//! impl Task<Step> for Fetch {
//!     async fn run(&self, res: &Resources) -> CanoResult<TaskResult<Step>> {
//!         res.get::<MemoryStore, _>("store")?.put("rows", vec![1u32, 2, 3])?;
//!         Ok(TaskResult::Single(Step::Sum))
//!     }
//! }
//!
//! struct Sum;
//! impl Task<Step> for Sum {
//!     async fn run(&self, res: &Resources) -> CanoResult<TaskResult<Step>> {
//!         let store = res.get::<MemoryStore, _>("store")?;
//!         let rows: Vec<u32> = store.get("rows")?;
//!         store.put("total", rows.iter().sum::<u32>())?;
//!         Ok(TaskResult::Single(Step::Done))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = MemoryStore::new();
//! let workflow = Workflow::new(Resources::new().insert("store", store.clone())?)
//!     .register(Step::Fetch, Fetch)
//!     .register(Step::Sum, Sum)
//!     .add_exit_state(Step::Done);
//!
//! // Once, now.
//! assert_eq!(workflow.orchestrate(Step::Fetch).await?, Step::Done);
//! assert_eq!(store.get::<u32>("total")?, 6);
//!
//! // On a schedule: every hour (the first run at start) and at 02:30 UTC every night.
//! let mut scheduler = Scheduler::new();
//! scheduler.every("hourly", workflow.clone(), Step::Fetch, Duration::from_secs(3600))?;
//! scheduler.cron("nightly", workflow, Step::Fetch, "30 2 * * *")?;
//! // `start_scheduler(scheduler)` in production; this test's tokio time is paused, so its
//! // wall clock follows tokio's from a fixed instant to make the cron flow deterministic.
//! let clock = TokioClock::with_wall_anchor("2026-01-01T00:00:00Z".parse::<Timestamp>()?);
//! let running = scheduler.start(clock, TokioSpawner::current()).await?;
//! tokio::time::sleep(Duration::from_secs(23 * 3600 + 59 * 60)).await; // a day, at once
//! assert_eq!(running.status("hourly").unwrap().run_count, 24); // 00:00, 01:00, … 23:00
//! assert_eq!(running.status("nightly").unwrap().run_count, 1);
//! running.stop().await?;
//! # Ok(())
//! # }
//! ```
//!
//! The clock uses `tokio::time`, so `#[tokio::test(start_paused = true)]` controls it. Its
//! wall clock is the system's by default; [`TokioClock::with_wall_anchor`] derives wall time
//! from tokio's clock instead, so cron schedules follow paused time too. With the `testing`
//! feature, `cano_tokio::testing` also offers cano's virtual-time `Simulation`.
//!
//! ```
//! use cano_tokio::{Clock, Spawner, TokioClock, TokioSpawner};
//! use core::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let clock = TokioClock::new();
//! let start = clock.now();
//! clock.sleep_until(start + Duration::from_secs(3600)).await; // instant under paused time
//! assert!(clock.now() >= start + Duration::from_secs(3600));
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::sync::OnceLock;

pub use cano_core::*;

mod workflow_ext;
pub use workflow_ext::WorkflowExt;
mod scheduler_ext;
pub use scheduler_ext::start_scheduler;
mod tokio_runtime;
pub use tokio_runtime::TokioRuntime;
mod shutdown;
pub use shutdown::{shutdown_on, shutdown_on_ctrl_c};

pub mod prelude;

// The README's and the migration guide's Rust snippets, compiled and run the way a user of
// this crate alone (with its `testing` feature) would.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}
#[cfg(doctest)]
#[doc = include_str!("../../MIGRATING.md")]
mod migrating {}

use cano_core::jiff::{SignedDuration, Timestamp};

/// The longest sleep handed to tokio; a later deadline sleeps this long and is re-armed by
/// the caller's own logic. Tokio's timer wheel covers about two years.
const LONGEST_SLEEP: Duration = Duration::from_secs(365 * 24 * 3600);

/// How far before the first clock of the process its time origin lies.
///
/// A `start_paused` runtime's clock stands at the real instant the runtime was built, which
/// can be earlier than the first `TokioClock`; an origin a day before that moment keeps every
/// such runtime's time at or after the origin, so no reading saturates at zero.
const ORIGIN_LEAD: Duration = Duration::from_secs(24 * 3600);

/// The one monotonic origin of every [`TokioClock`] in the process.
fn process_origin() -> tokio::time::Instant {
    static ORIGIN: OnceLock<tokio::time::Instant> = OnceLock::new();
    *ORIGIN.get_or_init(|| {
        // The real time, not tokio's: under paused time tokio's reading is one runtime's
        // virtual time, which other runtimes (other tests) may be far behind.
        let now = std::time::Instant::now();
        // Some platforms cannot represent instants long before boot: lead by less there.
        let origin = [
            ORIGIN_LEAD,
            Duration::from_secs(3600),
            Duration::from_secs(60),
        ]
        .into_iter()
        .find_map(|lead| now.checked_sub(lead))
        .unwrap_or(now);
        tokio::time::Instant::from_std(origin)
    })
}

/// [`Clock`] on `tokio::time`. Cheap to clone.
///
/// Every `TokioClock` in the process measures from one origin, so [`Instant`]s read from any
/// two of them (the scheduler's, `orchestrate`'s, your own) are comparable: a
/// [`CircuitBreaker`] opened by a scheduled run stays open for an `orchestrate` call and for
/// `breaker.state(TokioClock::new().now())` alike. The origin lies a little before the first
/// clock was made, so `now()` does not start at zero. Under `start_paused` the clock follows
/// the runtime's paused time.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    // No origin field: every clock's is `process_origin()`, and a smaller clock is a smaller
    // future for every run that holds one (issue 15).
    /// Wall time and tokio time at the moment a [`TokioClock::with_wall_anchor`] clock was
    /// made; `None` for the system wall clock.
    wall_anchor: Option<(Timestamp, tokio::time::Instant)>,
}

impl TokioClock {
    /// A clock on the process's monotonic origin whose wall clock is the system clock.
    ///
    /// Making one never panics; sleeping on it needs a tokio runtime with the time driver
    /// enabled, like `tokio::time` itself.
    pub fn new() -> Self {
        TokioClock { wall_anchor: None }
    }

    /// A clock whose wall time is `wall_now` at this moment, moving on with tokio's time
    /// from here (its monotonic time is every `TokioClock`'s).
    ///
    /// Under `start_paused` this makes cron schedules as deterministic as intervals. It does
    /// not see NTP steps or suspend, so production code should use [`TokioClock::new`].
    pub fn with_wall_anchor(wall_now: Timestamp) -> Self {
        TokioClock {
            wall_anchor: Some((wall_now, tokio::time::Instant::now())),
        }
    }

    fn to_tokio(self, deadline: Instant) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        let latest = now + LONGEST_SLEEP;
        process_origin()
            .checked_add(deadline.elapsed_since_origin())
            .map_or(latest, |d| d.min(latest))
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock::new()
    }
}

impl Clock for TokioClock {
    type Sleep = TokioSleep;

    fn now(&self) -> Instant {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(process_origin());
        Instant::ZERO + elapsed
    }

    fn wall_now(&self) -> Timestamp {
        match self.wall_anchor {
            None => Timestamp::now(),
            Some((wall, at)) => {
                let elapsed = tokio::time::Instant::now().saturating_duration_since(at);
                let elapsed = SignedDuration::try_from(elapsed).unwrap_or(SignedDuration::MAX);
                wall.checked_add(elapsed).unwrap_or(Timestamp::MAX)
            }
        }
    }

    fn sleep_until(&self, deadline: Instant) -> TokioSleep {
        TokioSleep {
            sleep: Box::pin(tokio::time::sleep_until(self.to_tokio(deadline))),
            clock: *self,
            deadline,
        }
    }
}

/// The future returned by [`TokioClock::sleep_until`].
#[derive(Debug)]
pub struct TokioSleep {
    sleep: Pin<Box<tokio::time::Sleep>>,
    clock: TokioClock,
    deadline: Instant,
}

impl Future for TokioSleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // Deadlines beyond LONGEST_SLEEP are reached in several legs.
            if self.clock.now() >= self.deadline {
                return Poll::Ready(());
            }
            let next = self.clock.to_tokio(self.deadline);
            self.sleep.as_mut().reset(next);
        }
    }
}

/// [`Spawner`] onto a tokio runtime.
#[derive(Debug, Clone)]
pub struct TokioSpawner {
    handle: tokio::runtime::Handle,
}

impl TokioSpawner {
    /// A spawner onto the current runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime. Use [`TokioSpawner::try_current`] to get an error instead.
    pub fn current() -> Self {
        TokioSpawner {
            handle: tokio::runtime::Handle::current(),
        }
    }

    /// A spawner onto the current runtime, or [`SpawnError::Shutdown`] outside one.
    pub fn try_current() -> Result<Self, SpawnError> {
        tokio::runtime::Handle::try_current()
            .map(|handle| TokioSpawner { handle })
            .map_err(|_| SpawnError::Shutdown)
    }

    /// A spawner onto the runtime behind `handle`.
    pub fn from_handle(handle: tokio::runtime::Handle) -> Self {
        TokioSpawner { handle }
    }
}

impl Spawner for TokioSpawner {
    fn spawn(&self, future: BoxFuture) -> Result<(), SpawnError> {
        // `Handle::spawn` on a runtime that has shut down returns a handle whose task is
        // cancelled; it does not panic. Detached: cano tracks completion itself.
        drop(self.handle.spawn(future));
        Ok(())
    }
}
