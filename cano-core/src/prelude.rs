//! The names almost every cano program uses, for one glob import.
//!
//! Each adapter has its own prelude (`cano_tokio::prelude`, `cano_smol::prelude`,
//! `cano_embassy::prelude`) that adds its clock, spawner and start helpers to this one, so
//! an application writes one line, as with cano 0.12's `use cano::prelude::*;`:
//!
//! ```
//! use cano_core::prelude::*;
//!
//! #[derive(Debug, Clone, PartialEq, Eq, Hash)]
//! enum Step { Start, Done }
//!
//! struct Hello;
//! impl Task<Step> for Hello {
//!     async fn run_bare(&self) -> CanoResult<TaskResult<Step>> {
//!         Ok(TaskResult::Single(Step::Done))
//!     }
//! }
//!
//! let workflow = Workflow::bare().register(Step::Start, Hello).add_exit_state(Step::Done);
//! assert!(workflow.validate().is_ok());
//! ```
//!
//! It holds everything cano 0.12's prelude held that exists in cano (tasks, workflows,
//! split/join, retries, resources, the memory store, the circuit breaker, observers, the
//! scheduler and its status types), plus what cano added that a program needs to name: the
//! [`Clock`] and [`Spawner`] traits, [`RunContext`], [`CancellationToken`], [`Cron`] and
//! [`CronOptions`], and the scheduler's [`Job`], [`job_fn`] and [`Fire`].
//!
//! The processing models are here too (cano 0.12's router, poll, batch and stepped tasks,
//! cano 0.15's timer and stream tasks and rate limiters), with the runners that drive them
//! on a clock ([`PollRunner`], [`BatchRunner`], [`TimerRunner`], [`StreamRunner`]).

pub use crate::cancel::CancellationToken;
pub use crate::circuit::{CircuitBreaker, CircuitPolicy, CircuitState, Permit as CircuitPermit};
pub use crate::cron::{Cron, CronOptions};
pub use crate::error::{CanoError, CanoResult};
pub use crate::rate_limit::{
    MultiRateLimiter, RateLimiter, RateLimiterPolicy, WindowPolicy, WindowedRateLimiter,
};
pub use crate::resource::{HealthStatus, Resource, Resources};
pub use crate::runtime::{Clock, Spawner};
pub use crate::scheduler::backoff::BackoffPolicy;
pub use crate::scheduler::flow::Status;
pub use crate::scheduler::schedule::Schedule;
pub use crate::scheduler::{Fire, FlowInfo, Job, RunningScheduler, Scheduler, job_fn};
pub use crate::store::MemoryStore;
pub use crate::workflow::join::{JoinConfig, JoinStrategy, SplitResult};
pub use crate::workflow::observer::WorkflowObserver;
pub use crate::workflow::retry::{RetryMode, TaskConfig};
pub use crate::workflow::shapes::batch::{BatchRunner, BatchTask};
pub use crate::workflow::shapes::poll::{PollErrorPolicy, PollOutcome, PollRunner, PollTask};
pub use crate::workflow::shapes::router::RouterTask;
pub use crate::workflow::shapes::stream::{
    CloseReason, StreamErrorPolicy, StreamRunner, StreamTask, StreamWindow, WindowSignal,
};
pub use crate::workflow::shapes::timer::{TimerOutcome, TimerRunner, TimerTask};
pub use crate::workflow::stepped::{StepOutcome, SteppedTask};
pub use crate::workflow::task::{DynTask, Task, TaskResult};
pub use crate::workflow::{RunContext, Workflow};
