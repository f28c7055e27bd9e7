//! [`Runtime`]: a runtime's [`Clock`] and [`Spawner`] as one value, and the one-call entry
//! points every adapter offers, written once here against it:
//! [`Workflow::orchestrate_in`], [`Workflow::resume_from_in`] and [`Scheduler::start_in`].

use core::fmt;
use core::future::Future;
use core::hash::Hash;

use futures::future::Either;

use crate::checkpoint::RunId;
use crate::error::{CanoError, CanoResult};
use crate::runtime::{Clock, SpawnError, Spawner};
use crate::scheduler::{RunningScheduler, Scheduler};
use crate::workflow::{RunContext, Workflow};

/// A runtime as cano's entry points need it: the adapter's clock and, when the runtime has
/// one in reach, a spawner.
///
/// Each adapter implements it once (`TokioRuntime` in cano-tokio, `SmolRuntime` in
/// cano-smol), and its `WorkflowExt::orchestrate` and `start_scheduler` are
/// [`Workflow::orchestrate_in`] and [`Scheduler::start_in`] on it. Every clock an adapter
/// hands out shares one time origin, so instants from any two of them are comparable.
///
/// ```
/// use cano_core::runtime::Runtime;
/// use cano_core::testing::{FakeClock, SimSpawner, Simulation};
///
/// /// The simulation as a runtime.
/// struct Sim(Simulation);
///
/// impl Runtime for Sim {
///     type Clock = FakeClock;
///     type Spawner = SimSpawner;
///     fn clock(&self) -> FakeClock {
///         self.0.clock()
///     }
///     fn spawner(&self) -> Option<SimSpawner> {
///         Some(self.0.spawner())
///     }
/// }
///
/// let sim = Sim(Simulation::new());
/// let scheduler: cano_core::Scheduler<()> = cano_core::Scheduler::new();
/// let running = sim.0.block_on(scheduler.start_in(&sim)).unwrap();
/// sim.0.block_on(running.stop()).unwrap();
/// ```
pub trait Runtime {
    /// The runtime's clock.
    type Clock: Clock;
    /// The runtime's spawner.
    type Spawner: Spawner;

    /// The clock (cheap: clocks are handles).
    fn clock(&self) -> Self::Clock;

    /// A spawner onto the runtime, or `None` when there is none to spawn onto here (outside
    /// a tokio runtime; a smol runtime made without an executor).
    fn spawner(&self) -> Option<Self::Spawner>;
}

impl<S, K> Workflow<S, K>
where
    S: Clone + Eq + Hash + fmt::Debug + Send + Sync + 'static,
    K: Send + Sync + 'static,
{
    /// Runs from `initial` to an exit state in `runtime`: on its clock, with its spawner for
    /// splits that ask for spawned branches (other splits, and all splits when the runtime
    /// has no spawner, poll their branches in place). The spawner is looked up only when
    /// some split wants it.
    ///
    /// Errors: see [`orchestrate_with`](Self::orchestrate_with).
    pub fn orchestrate_in<'a, R: Runtime>(
        &'a self,
        runtime: &R,
        initial: S,
    ) -> impl Future<Output = Result<S, CanoError>> + Send + use<'a, S, K, R> {
        let ctx = RunContext::new(runtime.clock());
        if self.uses_spawner() {
            let ctx = ctx.with_optional_spawner(runtime.spawner());
            Either::Left(self.orchestrate_with(ctx, initial))
        } else {
            Either::Right(self.orchestrate_with(ctx, initial))
        }
    }

    /// Resumes the unfinished checkpointed run `run` in `runtime`, with the clock and
    /// spawner [`orchestrate_in`](Self::orchestrate_in) would use.
    ///
    /// Errors and what re-runs: see [`resume_from_with`](Self::resume_from_with).
    pub fn resume_from_in<'a, Rt: Runtime, Id: Into<RunId>>(
        &'a self,
        runtime: &Rt,
        run: Id,
    ) -> impl Future<Output = Result<S, CanoError>> + Send + use<'a, S, K, Rt, Id> {
        let ctx = RunContext::new(runtime.clock());
        if self.uses_spawner() {
            let ctx = ctx.with_optional_spawner(runtime.spawner());
            Either::Left(self.resume_from_with(ctx, run))
        } else {
            Either::Right(self.resume_from_with(ctx, run))
        }
    }
}

impl<S> Scheduler<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// Starts the scheduler in `runtime`: [`start`](Self::start) with the runtime's clock
    /// and spawner.
    ///
    /// # Errors
    ///
    /// [`CanoError::Spawn`] with [`SpawnError::Shutdown`] when the runtime has no spawner
    /// here (nothing is validated or set up then), or any error of [`start`](Self::start).
    pub fn start_in<R: Runtime>(
        self,
        runtime: &R,
    ) -> impl Future<Output = CanoResult<RunningScheduler>> + Send + use<S, R> {
        let parts = runtime.spawner().map(|spawner| (runtime.clock(), spawner));
        async move {
            match parts {
                Some((clock, spawner)) => self.start(clock, spawner).await,
                None => Err(CanoError::Spawn(SpawnError::Shutdown)),
            }
        }
    }
}
