//! One scenario, every runtime: a [`Harness`] runs an async scenario on one runtime with that
//! runtime's [`Clock`] and [`Spawner`].
//!
//! Virtual-time harnesses (the fake clock, tokio with paused time, embassy's virtual driver)
//! give exact results; real-time harnesses (tokio multi-thread, smol) run the same scenario
//! with short real durations and are checked with tolerances (see [`Expect`]).

use core::future::Future;
use core::time::Duration;
use std::sync::Arc;

use cano_core::testing::Simulation;
use cano_core::{Clock, Spawner};
use jiff::Timestamp;

/// A runtime to run conformance scenarios on.
pub trait Harness {
    /// The runtime's clock.
    type Clock: Clock;
    /// The runtime's spawner.
    type Spawner: Spawner;
    /// A short name for test output.
    const NAME: &'static str;
    /// Whether time is virtual (results are exact and instant) or real (results need
    /// tolerances, and the scenario should use [`Harness::UNIT`]-scaled short durations).
    const VIRTUAL_TIME: bool;
    /// The scenario's unit of time: a second on virtual time, a few milliseconds on real time.
    const UNIT: Duration;

    /// Runs `scenario` to completion on this runtime, the wall clock starting at
    /// [`DEFAULT_WALL_START`] on virtual time (real-time runtimes use the system clock).
    fn run<F, Fut, T>(scenario: F) -> T
    where
        F: FnOnce(Self::Clock, Self::Spawner) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        Self::run_at(DEFAULT_WALL_START, scenario)
    }

    /// Runs `scenario` to completion with the wall clock starting at `wall_start` (virtual
    /// time only: real-time runtimes ignore it and use the system clock).
    fn run_at<F, Fut, T>(wall_start: Timestamp, scenario: F) -> T
    where
        F: FnOnce(Self::Clock, Self::Spawner) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static;
}

/// Where virtual wall clocks start: 2026-01-01T00:00:00Z.
pub const DEFAULT_WALL_START: Timestamp = Timestamp::constant(1_767_225_600, 0);

/// How to compare a measured count with the ideal one.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// Exactly this many (virtual time).
    Exactly(u64),
    /// Within `[min, max]` (real time on a loaded machine).
    Between(u64, u64),
}

impl Expect {
    /// `Exactly(ideal)` on virtual time, else `Between(min, ideal + slack)`: real timers fire
    /// late, never early, so fewer runs than ideal are expected under load, never many more.
    pub fn for_harness<H: Harness>(ideal: u64, min: u64, slack: u64) -> Self {
        if H::VIRTUAL_TIME {
            Expect::Exactly(ideal)
        } else {
            Expect::Between(min, ideal + slack)
        }
    }

    /// Panics with a clear message when `actual` does not match.
    #[track_caller]
    pub fn check(self, what: &str, actual: u64) {
        match self {
            Expect::Exactly(n) => assert_eq!(actual, n, "{what}: expected exactly {n}"),
            Expect::Between(lo, hi) => {
                assert!(
                    (lo..=hi).contains(&actual),
                    "{what}: {actual} not in [{lo}, {hi}]"
                )
            }
        }
    }
}

/// The fake clock on cano's own virtual-time executor.
#[derive(Debug)]
pub struct FakeHarness;

impl Harness for FakeHarness {
    type Clock = cano_core::testing::FakeClock;
    type Spawner = cano_core::testing::SimSpawner;
    const NAME: &'static str = "fake clock";
    const VIRTUAL_TIME: bool = true;
    const UNIT: Duration = Duration::from_secs(1);

    fn run_at<F, Fut, T>(wall_start: Timestamp, scenario: F) -> T
    where
        F: FnOnce(Self::Clock, Self::Spawner) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let sim = Simulation::starting_at(wall_start);
        let fut = scenario(sim.clock(), sim.spawner());
        sim.block_on(fut)
    }
}

/// tokio's current-thread runtime with paused (auto-advancing) time.
#[derive(Debug)]
pub struct TokioPausedHarness;

impl Harness for TokioPausedHarness {
    type Clock = cano_tokio::TokioClock;
    type Spawner = cano_tokio::TokioSpawner;
    const NAME: &'static str = "tokio current-thread, paused time";
    const VIRTUAL_TIME: bool = true;
    const UNIT: Duration = Duration::from_secs(1);

    fn run_at<F, Fut, T>(wall_start: Timestamp, scenario: F) -> T
    where
        F: FnOnce(Self::Clock, Self::Spawner) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("tokio runtime");
        rt.block_on(async {
            // Cron scenarios need a wall clock that follows paused time.
            let fut = scenario(
                cano_tokio::TokioClock::with_wall_anchor(wall_start),
                cano_tokio::TokioSpawner::current(),
            );
            fut.await
        })
    }
}

/// tokio's multi-thread runtime on real time.
#[derive(Debug)]
pub struct TokioMultiThreadHarness;

impl Harness for TokioMultiThreadHarness {
    type Clock = cano_tokio::TokioClock;
    type Spawner = cano_tokio::TokioSpawner;
    const NAME: &'static str = "tokio multi-thread, real time";
    const VIRTUAL_TIME: bool = false;
    const UNIT: Duration = Duration::from_millis(20);

    fn run_at<F, Fut, T>(_wall_start: Timestamp, scenario: F) -> T
    where
        F: FnOnce(Self::Clock, Self::Spawner) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .expect("tokio runtime");
        let fut = {
            // The clock and spawner bind to the runtime they are created in.
            let _entered = rt.enter();
            scenario(
                cano_tokio::TokioClock::new(),
                cano_tokio::TokioSpawner::current(),
            )
        };
        // Run the scenario on a worker, as application code would.
        rt.block_on(async move { tokio::spawn(fut).await.expect("scenario panicked") })
    }
}

/// smol's building blocks: an async-executor driven by async-io, on real time.
#[derive(Debug)]
pub struct SmolHarness;

impl Harness for SmolHarness {
    type Clock = cano_smol::SmolClock;
    type Spawner = cano_smol::SmolSpawner;
    const NAME: &'static str = "smol, real time";
    const VIRTUAL_TIME: bool = false;
    const UNIT: Duration = Duration::from_millis(20);

    fn run_at<F, Fut, T>(_wall_start: Timestamp, scenario: F) -> T
    where
        F: FnOnce(Self::Clock, Self::Spawner) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let ex = Arc::new(async_executor::Executor::new());
        let fut = scenario(
            cano_smol::SmolClock::new(),
            cano_smol::SmolSpawner::new(ex.clone()),
        );
        async_io::block_on(ex.run(fut))
    }
}

/// No adapter crate: `futures::executor::block_on` for the scenario, a `ThreadPool` for what it
/// spawns, and cano-core's `futures-timer` clock (`cano_core::runtime::futures_timer`), on
/// real time.
#[derive(Debug)]
pub struct FuturesHarness;

impl Harness for FuturesHarness {
    type Clock = cano_core::runtime::futures_timer::FuturesTimerClock;
    type Spawner = cano_core::runtime::futures_timer::FuturesSpawner<futures::executor::ThreadPool>;
    const NAME: &'static str = "futures executor + futures-timer, real time";
    const VIRTUAL_TIME: bool = false;
    const UNIT: Duration = Duration::from_millis(20);

    fn run_at<F, Fut, T>(_wall_start: Timestamp, scenario: F) -> T
    where
        F: FnOnce(Self::Clock, Self::Spawner) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = futures::executor::ThreadPool::builder()
            .pool_size(2)
            .create()
            .expect("thread pool");
        let fut = scenario(
            cano_core::runtime::futures_timer::FuturesTimerClock::new(),
            cano_core::runtime::futures_timer::FuturesSpawner::new(pool),
        );
        futures::executor::block_on(fut)
    }
}

/// embassy's executor on a virtual-time driver (`cano-embassy-testkit`): exact and instant.
///
/// The driver is process-global, so embassy runs take turns; each run gets its own task pool
/// (leaked: tasks a scenario leaves behind must not starve the next scenario).
#[derive(Debug)]
pub struct EmbassyHarness;

/// Task slots for one embassy scenario run: the scheduler's driver plus its in-flight runs.
pub const EMBASSY_POOL_SIZE: usize = 32;

impl Harness for EmbassyHarness {
    type Clock = cano_embassy::EmbassyClock;
    type Spawner = cano_embassy::EmbassySpawner<EMBASSY_POOL_SIZE>;
    const NAME: &'static str = "embassy, virtual time";
    const VIRTUAL_TIME: bool = true;
    const UNIT: Duration = Duration::from_secs(1);

    fn run_at<F, Fut, T>(wall_start: Timestamp, scenario: F) -> T
    where
        F: FnOnce(Self::Clock, Self::Spawner) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        cano_embassy_testkit::block_on_virtual(|spawner| {
            let pool: &'static cano_embassy::Pool<EMBASSY_POOL_SIZE> =
                Box::leak(Box::new(cano_embassy::Pool::new()));
            let clock = cano_embassy::EmbassyClock::new();
            // Virtual time never resets between runs; pin the wall clock per run instead.
            clock.set_wall_now(wall_start);
            scenario(clock, cano_embassy::EmbassySpawner::new(spawner, pool))
        })
    }
}

/// Declares one `#[test]` per harness for a scenario function generic over [`Harness`].
///
/// ```text
/// conformance!(interval_counts); // mod interval_counts { fn fake_clock() .. fn futures_executor() }
/// ```
#[macro_export]
macro_rules! conformance {
    ($scenario:ident) => {
        mod $scenario {
            #[test]
            fn fake_clock() {
                super::$scenario::<$crate::harness::FakeHarness>();
            }
            #[test]
            fn tokio_paused() {
                super::$scenario::<$crate::harness::TokioPausedHarness>();
            }
            #[test]
            fn tokio_multi_thread() {
                super::$scenario::<$crate::harness::TokioMultiThreadHarness>();
            }
            #[test]
            fn smol() {
                super::$scenario::<$crate::harness::SmolHarness>();
            }
            #[test]
            fn embassy() {
                super::$scenario::<$crate::harness::EmbassyHarness>();
            }
            #[test]
            fn futures_executor() {
                super::$scenario::<$crate::harness::FuturesHarness>();
            }
        }
    };
}
