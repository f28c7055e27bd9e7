//! [`SteppedTask`]: a long task that makes progress in steps, with a cursor persisted after
//! each step.
//!
//! Register one with [`Workflow::register_stepped`](crate::Workflow::register_stepped). The
//! workflow calls [`step`](SteppedTask::step) with the cursor of the previous step (`None`
//! first) until it returns [`StepOutcome::Done`]:
//!
//! * each step is its own retried attempt (the task's [`TaskConfig`]: retries and
//!   `attempt_timeout` apply **per step**), and a retry reuses the step's cursor;
//! * in a checkpointed run each cursor is written as a
//!   [`RowKind::StepCursor`](crate::checkpoint::RowKind::StepCursor) row before the next
//!   step, and a resumed run starts the state from the newest cursor (at-least-once: the
//!   step that was in flight runs again).

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::future::Future;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::checkpoint::{decode_blob, encode_blob};
use crate::error::CanoError;
use crate::resource::{DefaultKey, Resources};
use crate::workflow::retry::{MakeAttempt, TaskConfig};
use crate::workflow::task::{KeyBase, TaskContext, TaskResult};

/// What one step of a [`SteppedTask`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome<C, S> {
    /// More to do; the next step starts from this cursor.
    More(C),
    /// Finished; the workflow continues in this state.
    Done(TaskResult<S>),
}

/// A task that works in resumable steps.
///
/// ```
/// use cano_core::{CanoError, StepOutcome, SteppedTask, TaskContext, TaskResult};
///
/// #[derive(Debug, Clone, PartialEq, Eq, Hash)]
/// enum State { Copy, Done }
///
/// /// Copies 1 000 rows, 100 per step.
/// struct CopyRows;
/// impl SteppedTask<State> for CopyRows {
///     type Cursor = u32; // rows copied so far
///     async fn step(&self, _ctx: TaskContext<'_>, cursor: Option<u32>)
///         -> Result<StepOutcome<u32, State>, CanoError>
///     {
///         let done = cursor.unwrap_or(0) + 100;
///         Ok(if done >= 1_000 { StepOutcome::Done(State::Done.into()) } else { StepOutcome::More(done) })
///     }
/// }
/// ```
pub trait SteppedTask<S, K = DefaultKey>: Send + Sync {
    /// Where the next step starts; serialised with postcard into the checkpoint log.
    type Cursor: Serialize + DeserializeOwned + Send + Sync;

    /// Runs one step from `cursor` (`None` for the first step of a visit).
    fn step(
        &self,
        ctx: TaskContext<'_, K>,
        cursor: Option<Self::Cursor>,
    ) -> impl Future<Output = Result<StepOutcome<Self::Cursor, S>, CanoError>> + Send;

    /// Retry and timeout settings, applied per step. Default: [`TaskConfig::default`].
    fn config(&self) -> TaskConfig {
        TaskConfig::default()
    }

    /// The name observers see and cursor rows record. Default: the type's name.
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(core::any::type_name::<Self>())
    }
}

/// One erased step's outcome: the cursor travels encoded.
pub(crate) type ErasedStep<S> = StepOutcome<Vec<u8>, S>;

pub(crate) trait DynStepped<S, K>: Send + Sync {
    fn step_dyn<'a>(
        &'a self,
        ctx: TaskContext<'a, K>,
        cursor: Option<&'a [u8]>,
    ) -> BoxFuture<'a, Result<ErasedStep<S>, CanoError>>;
}

impl<S: Send + 'static, K: Sync + 'static, T: SteppedTask<S, K>> DynStepped<S, K> for T {
    fn step_dyn<'a>(
        &'a self,
        ctx: TaskContext<'a, K>,
        cursor: Option<&'a [u8]>,
    ) -> BoxFuture<'a, Result<ErasedStep<S>, CanoError>> {
        Box::pin(async move {
            let cursor: Option<T::Cursor> = match cursor {
                None => None,
                Some(bytes) => Some(decode_blob(bytes)?),
            };
            match self.step(ctx, cursor).await? {
                StepOutcome::Done(next) => Ok(StepOutcome::Done(next)),
                StepOutcome::More(cursor) => match encode_blob(&cursor) {
                    Ok(blob) => Ok(StepOutcome::More(blob)),
                    Err(e) => Err(CanoError::task_execution(alloc::format!(
                        "the cursor of {} does not serialise: {e}",
                        core::any::type_name::<T>()
                    ))),
                },
            }
        })
    }
}

/// A stepped task as a workflow stores it.
pub(crate) struct RegisteredStepped<S, K> {
    pub(crate) task: Box<dyn DynStepped<S, K>>,
    pub(crate) name: Cow<'static, str>,
    pub(crate) config: TaskConfig,
}

impl<S: Send + 'static, K: Sync + 'static> RegisteredStepped<S, K> {
    pub(crate) fn new<T: SteppedTask<S, K> + 'static>(task: T) -> Self {
        RegisteredStepped {
            name: task.name(),
            config: task.config(),
            task: Box::new(task),
        }
    }
}

/// Makes attempts of one step, all from the same cursor.
pub(crate) struct RunStep<'a, S, K> {
    pub(crate) task: &'a dyn DynStepped<S, K>,
    pub(crate) resources: &'a Resources<K>,
    pub(crate) key: Option<KeyBase<'a>>,
    pub(crate) cursor: Option<&'a [u8]>,
    pub(crate) attempts: u32,
}

impl<'a, S, K> MakeAttempt<'a, ErasedStep<S>> for RunStep<'a, S, K> {
    fn make(&mut self) -> BoxFuture<'a, Result<ErasedStep<S>, CanoError>> {
        self.attempts += 1;
        self.task.step_dyn(
            KeyBase::context(self.key, self.resources, self.attempts),
            self.cursor,
        )
    }
}
