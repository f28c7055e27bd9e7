//! Sagas: [`CompensatableTask`], a task that can undo itself.
//!
//! Register one with [`Workflow::register_compensatable`](crate::Workflow::register_compensatable).
//! When it succeeds its output is kept (in a checkpointed run, as a
//! [`RowKind::CompensationCompletion`](crate::checkpoint::RowKind::CompensationCompletion)
//! row); when the run later fails, is cancelled or times out, the workflow **drains** the
//! completed tasks' compensations in reverse order (LIFO) before returning:
//!
//! * every compensation runs once, bounded by its task's `attempt_timeout` and by the
//!   workflow's compensation budget ([`Workflow::with_compensation_timeout`](crate::Workflow::with_compensation_timeout)),
//!   with panics isolated (feature `std`); the drain never stops early and cannot be
//!   cancelled;
//! * all succeed: the run's log is finished as rolled back and the **original** error is
//!   returned;
//! * any fails: [`CanoError::CompensationFailed`] with the original error first, then each
//!   compensation error in drain order; the log is kept, so resuming the run retries only
//!   the compensations that did not finish (each finished one has a
//!   [`RowKind::CompensationDone`](crate::checkpoint::RowKind::CompensationDone) row).
//!
//! A compensation must be idempotent: a crash after it ran but before its done row was
//! written runs it again on resume.
//!
//! A crash between a task's completion row and the next state's entry row re-runs the task
//! on resume (at-least-once, under the same idempotency key); its new completion replaces
//! the old one on the stack, so the work is compensated once, with the re-run's output. If
//! the re-run fails instead, the first run's completion stays and is compensated.
//!
//! A compensatable task **in flight when the run is cancelled or times out finishes first**
//! (as in cano 0.15): its current attempt runs on (no new attempt starts) for up to one
//! compensation budget after the cancellation, its completion is recorded, the run ends
//! before the next state, and the drain undoes it with the rest. So a cancelled saga returns
//! within two compensation budgets (the task's grace, then the drain's). A task still running
//! when its grace ends is dropped at its `.await`, like any other task at cancellation.
//!
//! Not covered: a task dropped mid-run (a plain task at cancellation, or a compensatable one
//! past its grace) did work without returning; it has no completion, so the rollback cannot
//! undo it.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::future::Future;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::checkpoint::{decode_blob, encode_blob};
use crate::error::CanoError;
use crate::resource::DefaultKey;
use crate::workflow::retry::{MakeAttempt, TaskConfig};
use crate::workflow::task::{KeyBase, TaskContext, TaskResult};

/// A task with an undo: [`run`](Self::run) returns the next state and an output, and
/// [`compensate`](Self::compensate) gets that output back if the run fails later.
///
/// ```
/// use cano_core::{CanoError, CompensatableTask, TaskContext, TaskResult};
///
/// #[derive(Debug, Clone, PartialEq, Eq, Hash)]
/// enum State { Reserve, Charge, Done }
///
/// struct Reserve;
/// impl CompensatableTask<State> for Reserve {
///     type Output = u64; // the reservation id
///     async fn run(&self, _ctx: TaskContext<'_>) -> Result<(TaskResult<State>, u64), CanoError> {
///         Ok((TaskResult::Single(State::Charge), 42))
///     }
///     async fn compensate(&self, _ctx: TaskContext<'_>, reservation: u64) -> Result<(), CanoError> {
///         assert_eq!(reservation, 42); // release it
///         Ok(())
///     }
/// }
/// ```
pub trait CompensatableTask<S, K = DefaultKey>: Send + Sync {
    /// What [`compensate`](Self::compensate) needs to undo the work; serialised with
    /// postcard into the checkpoint log.
    type Output: Serialize + DeserializeOwned + Send + Sync;

    /// Does the work. Retried per [`config`](Self::config), like a [`Task`](crate::Task).
    fn run(
        &self,
        ctx: TaskContext<'_, K>,
    ) -> impl Future<Output = Result<(TaskResult<S>, Self::Output), CanoError>> + Send;

    /// Undoes the work of a successful [`run`](Self::run) that returned `output`. Must be
    /// idempotent. Runs once (no retries), bounded by the config's `attempt_timeout`; in a
    /// checkpointed run its context's key names the completion row it undoes.
    fn compensate(
        &self,
        ctx: TaskContext<'_, K>,
        output: Self::Output,
    ) -> impl Future<Output = Result<(), CanoError>> + Send;

    /// Retry and timeout settings of [`run`](Self::run) (the `attempt_timeout` also bounds
    /// [`compensate`](Self::compensate)). Default: [`TaskConfig::default`].
    fn config(&self) -> TaskConfig {
        TaskConfig::default()
    }

    /// The name observers see and the log records: a completion row finds its compensation
    /// by this name, so keep it stable and unique among the workflow's compensatable
    /// tasks. Default: the type's name.
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(core::any::type_name::<Self>())
    }
}

/// A forward run's result with its output encoded.
pub(crate) type Forward<S> = (TaskResult<S>, Vec<u8>);

/// The erased form the workflow stores: outputs travel as encoded blobs.
pub(crate) trait DynCompensatable<S, K>: Send + Sync {
    fn run_dyn<'a>(
        &'a self,
        ctx: TaskContext<'a, K>,
    ) -> BoxFuture<'a, Result<Forward<S>, CanoError>>;
    fn compensate_dyn<'a>(
        &'a self,
        ctx: TaskContext<'a, K>,
        output: &'a [u8],
    ) -> BoxFuture<'a, Result<(), CanoError>>;
}

impl<S: Send + 'static, K: Sync + 'static, T: CompensatableTask<S, K>> DynCompensatable<S, K>
    for T
{
    fn run_dyn<'a>(
        &'a self,
        ctx: TaskContext<'a, K>,
    ) -> BoxFuture<'a, Result<Forward<S>, CanoError>> {
        Box::pin(async move {
            let (next, output) = self.run(ctx).await?;
            let blob = encode_blob(&output).map_err(|e| {
                CanoError::task_execution(alloc::format!(
                    "the output of {} does not serialise: {e}",
                    core::any::type_name::<T>()
                ))
            })?;
            Ok((next, blob))
        })
    }

    fn compensate_dyn<'a>(
        &'a self,
        ctx: TaskContext<'a, K>,
        output: &'a [u8],
    ) -> BoxFuture<'a, Result<(), CanoError>> {
        Box::pin(async move {
            let output: T::Output = decode_blob(output)?;
            self.compensate(ctx, output).await
        })
    }
}

/// A compensatable task as a workflow stores it.
pub(crate) struct RegisteredCompensatable<S, K> {
    pub(crate) task: Box<dyn DynCompensatable<S, K>>,
    pub(crate) name: Cow<'static, str>,
    pub(crate) config: TaskConfig,
}

impl<S: Send + 'static, K: Sync + 'static> RegisteredCompensatable<S, K> {
    pub(crate) fn new<T: CompensatableTask<S, K> + 'static>(task: T) -> Self {
        RegisteredCompensatable {
            name: task.name(),
            config: task.config(),
            task: Box::new(task),
        }
    }
}

/// Makes attempts of a compensatable task's forward run.
pub(crate) struct RunCompensatable<'a, S, K> {
    pub(crate) task: &'a dyn DynCompensatable<S, K>,
    pub(crate) resources: &'a crate::resource::Resources<K>,
    pub(crate) key: Option<KeyBase<'a>>,
    pub(crate) attempts: u32,
}

impl<'a, S, K> MakeAttempt<'a, Forward<S>> for RunCompensatable<'a, S, K> {
    fn make(&mut self) -> BoxFuture<'a, Result<Forward<S>, CanoError>> {
        self.attempts += 1;
        self.task
            .run_dyn(KeyBase::context(self.key, self.resources, self.attempts))
    }
}
