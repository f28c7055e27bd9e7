//! # cano-core
//!
//! The runtime-agnostic heart of cano: every decision cano makes (which flow is due, what a
//! failure does to a flow, how long a backoff lasts, when a cron expression fires next) is
//! plain synchronous code that takes the current time as an argument. Async code is a thin
//! driver written once against two traits, [`Clock`] and [`Spawner`], which each runtime
//! adapter (`cano-tokio`, `cano-smol`, `cano-embassy`) implements.
//!
//! This crate is `#![no_std]` and needs only `alloc`.
//!
//! ## Two clocks
//!
//! * [`Instant`] is monotonic: it drives intervals, backoff and timeouts. It never jumps
//!   backwards and does not move while a machine is suspended.
//! * Wall time is a [`jiff::Timestamp`]; it drives cron only. It may jump (NTP steps,
//!   suspend, a user setting the clock), so cano re-reads it after every wake-up.
//!
//! ## The `Send` story
//!
//! One core serves tokio's multi-threaded runtime, which needs `Send` futures, and embassy,
//! which would happily run `!Send` ones. cano does not keep two copies of its code behind a
//! feature flag (features are additive, and a workspace that enables "send" for one crate
//! would silently change another). Instead, **everything cano stores or spawns is `Send`**:
//!
//! * tasks, jobs, resources and observers are `Send + Sync`;
//! * the futures they return are `Send`;
//! * [`Spawner::spawn`] takes a [`BoxFuture`], which is `Send`.
//!
//! What each user gives up:
//!
//! * **tokio / smol users** give up nothing: multi-threaded executors need exactly this.
//! * **embassy users** cannot hold `Rc`, `RefCell` or other `!Send` values *across an
//!   `.await` inside a task*. Shared state goes into `embassy_sync` mutexes with a
//!   `CriticalSectionRawMutex` (which are `Sync`), atomics, or `static` cells, which is how
//!   embassy code shares state between tasks anyway. Values that live entirely between two
//!   awaits are unaffected. In exchange the same task type runs unchanged on a server.
//!
//! ## Workflows
//!
//! A [`Workflow`] is a finite state machine of [`Task`]s: each state runs a task (or a
//! split of tasks joined by a [`JoinStrategy`]) and the task names the next state, until an
//! exit state. Retries ([`RetryMode`], [`TaskConfig`]), per-attempt timeouts and
//! [`CircuitBreaker`]s run on the run's [`Clock`]; retry jitter comes from an injectable
//! [`random::RandomSource`]. Splits poll their branches inside the workflow's own future,
//! so they need no spawning and run the same on every runtime.
//!
//! ## Durable workflows
//!
//! With [`Workflow::with_checkpoint_store`] a run writes a log row before each state's task
//! (see [`checkpoint`]): a crashed run resumes with [`Workflow::resume_from_with`] and re-runs
//! only the state that was in flight, whose tasks see the same [`checkpoint::IdempotencyKey`]
//! ([`TaskContext`]) as before. [`CompensatableTask`]s are rolled back in reverse when a run
//! fails ([`workflow::saga`]); [`SteppedTask`]s persist a cursor after each step. A workflow
//! without a store or compensatable task pays nothing for any of it.
//!
//! Shared state ([`MemoryStore`], [`CircuitBreaker`], [`Resources`]' lifecycle,
//! [`CancellationToken`], a running scheduler) sits behind a lock of its own, so unrelated
//! objects never contend: with feature `std` a `std::sync::Mutex` per object; without it a
//! `critical-section` mutex, the lock embassy itself uses (unlike a spin lock it cannot
//! deadlock against an interrupt-mode executor), with the implementation the final binary
//! picks. cano-core never enables `critical-section/std`. No cano lock is ever held across an
//! `.await` or while user code runs.
//!
//! ## Restarts and fleets
//!
//! [`persist`] holds the contracts of the scheduler's stores: a
//! [`ScheduleStore`](persist::ScheduleStore) (each flow's last fire, streak, pause and trip,
//! so a restart catches up per the flow's missed-fire policy) and a
//! [`FireLedger`](persist::FireLedger) (a fleet's claims, one per fire, with leases in the
//! store's clock and fencing tokens), their in-memory implementations, and the pure decisions
//! made from their answers (catch-up, lease trust, clock skew). `cano-postgres` implements
//! both on PostgreSQL.
//!
//! ## Features
//!
//! * `std`: panic isolation (a panicking task is an error of its state, not a crash),
//!   IANA time zone names from the system database, and `std::sync::Mutex` locks.
//! * `testing`: `testing::FakeClock` and `testing::Simulation`, a virtual-time executor
//!   that jumps time to the next timer so a test simulates a day in milliseconds.
//! * `tracing`: spans for a workflow run (with a process-unique run number), each state,
//!   each attempt and each split branch, and events for retries, circuit transitions and
//!   panics, through the `tracing` facade.
//! * `metrics`: counters, gauges and histograms through the `metrics` facade, with cano
//!   0.15's names (`cano_workflow_runs_total`, `cano_task_retries_total`, …) and
//!   low-cardinality labels.
//! * `defmt`: the same events as `defmt` logs for firmware, without `core::fmt`.
//! * `futures-timer`: `runtime::futures_timer`, a clock and a spawner for executors that
//!   have no cano adapter (`futures::executor`, for one).
//!
//! With `tracing`, `metrics` and `defmt` off, cano contains no instrumentation code at all.
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

// The ground: time, cron, randomness, locks.
pub mod cron;
pub mod random;
mod sync;
pub mod time;
mod type_name;

// The runtime contract: clocks, spawning, errors, cancellation.
pub mod cancel;
pub mod error;
pub mod runtime;

// Shared services used by both wings.
pub mod checkpoint;
pub mod circuit;
mod panic;
pub mod persist;
pub mod rate_limit;
pub mod resource;
pub mod store;
mod telemetry;

// The two wings: workflows (tasks, retries, split/join) and the scheduler.
pub mod scheduler;
pub mod workflow;

pub mod prelude;

// Paths from before the wings had folders; they keep working.
pub use scheduler::{backoff, flow, schedule};
pub use workflow::{join, observer, retry, shapes, task};

#[cfg(feature = "testing")]
pub mod testing;

pub use cron::{Cron, CronError, CronOptions};
pub use error::{CanoError, CanoResult};
pub use runtime::{BoxFuture, Clock, SpawnError, Spawner};
pub use time::Instant;

pub use cancel::CancellationToken;
pub use circuit::{CircuitBreaker, CircuitPolicy, CircuitState, Permit as CircuitPermit};
pub use join::{JoinConfig, JoinDecision, JoinStrategy, JoinTask, JoinTracker, SplitResult};
pub use observer::{TaskId, WorkflowObserver};
pub use rate_limit::{
    MultiRateLimiter, RateLimit, RateLimiter, RateLimiterPolicy, WindowPolicy, WindowedRateLimiter,
};
pub use resource::{DefaultKey, HealthStatus, Resource, Resources};
pub use retry::{RetryMode, TaskConfig, TaskRateLimit, run_with_retries};
pub use runtime::NoSpawner;
pub use store::{MemoryStore, StoreError, StoreResult};
pub use task::{DynTask, Task, TaskContext, TaskResult};
pub use workflow::saga::CompensatableTask;
pub use workflow::stepped::{StepOutcome, SteppedTask};
pub use workflow::{RunContext, Workflow};

pub use backoff::BackoffPolicy;
pub use flow::Status;
pub use schedule::Schedule;
pub use scheduler::{FlowInfo, RunningScheduler, Scheduler};

/// Re-exported so users name the same `jiff` version cano uses.
pub use jiff;
