//! [`WorkflowObserver`]: synchronous hooks a workflow calls as it runs.
//!
//! Observers are for metrics, logs and tests. With none attached a workflow does no observer
//! work at all: no labels are formatted, no ids are built.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crate::checkpoint::{CheckpointError, CheckpointRow, RunId};
use crate::error::CanoError;

/// Which task an event is about: its name, and for a branch of a split its index.
///
/// Displays as `name` or `name[index]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskId<'a> {
    /// The task's [`name`](crate::Task::name).
    pub name: &'a str,
    /// The branch index inside a split state, `None` for a single task.
    pub branch: Option<usize>,
}

impl fmt::Display for TaskId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.branch {
            None => f.write_str(self.name),
            Some(i) => write!(f, "{}[{i}]", self.name),
        }
    }
}

/// Hooks called by a workflow run, in this order for a state:
/// `on_state_enter` → (`on_checkpoint`) → `on_task_start` → (`on_retry`)* /
/// `on_circuit_open` → `on_task_success` | `on_task_failure`. A rollback calls
/// `on_rollback_start`, then `on_compensation_start` → `on_compensation_finish` per
/// compensation; a resume calls `on_resume` before the resumed state is entered.
///
/// Every method has a no-op default, so an observer implements only what it needs. Hooks
/// are synchronous and run on the workflow's own task: keep them short. A panicking hook is
/// not caught.
///
/// ```
/// use cano_core::{TaskId, WorkflowObserver};
/// use std::sync::Mutex;
///
/// #[derive(Default)]
/// struct Path(Mutex<Vec<String>>);
///
/// impl<S: core::fmt::Debug> WorkflowObserver<S> for Path {
///     fn on_state_enter(&self, state: &S) {
///         self.0.lock().unwrap().push(format!("{state:?}"));
///     }
/// }
/// ```
pub trait WorkflowObserver<S>: Send + Sync {
    /// The run entered `state` (also called for the initial and the final exit state).
    fn on_state_enter(&self, state: &S) {
        let _ = state;
    }
    /// A task is about to run its first attempt.
    fn on_task_start(&self, task: TaskId<'_>) {
        let _ = task;
    }
    /// A task succeeded.
    fn on_task_success(&self, task: TaskId<'_>) {
        let _ = task;
    }
    /// A task failed for good (after its retries, if any).
    fn on_task_failure(&self, task: TaskId<'_>, error: &CanoError) {
        let _ = (task, error);
    }
    /// Attempt number `attempt` (1-based count of failed attempts so far) failed and the
    /// task will be retried.
    fn on_retry(&self, task: TaskId<'_>, attempt: u32) {
        let _ = (task, attempt);
    }
    /// The task's circuit breaker rejected the call; `on_task_failure` follows.
    fn on_circuit_open(&self, task: TaskId<'_>) {
        let _ = task;
    }
    /// A resource failed to tear down at the end of `orchestrate`. The run's own result is
    /// returned unchanged; this hook is where such errors are reported.
    fn on_resource_error(&self, error: &CanoError) {
        let _ = error;
    }
    /// `row` was appended to `run`'s checkpoint log (row 0 by the run's start).
    fn on_checkpoint(&self, run: &RunId, row: &CheckpointRow) {
        let _ = (run, row);
    }
    /// A best-effort checkpoint write failed (finishing the log, a rollback's rows); the
    /// run's result is unchanged and the log stays resumable.
    fn on_checkpoint_error(&self, run: &RunId, error: &CheckpointError) {
        let _ = (run, error);
    }
    /// `run`, left unfinished by a previous process, was finished as abandoned without
    /// running anything (a scheduler's recovery scan with
    /// [`Recovery::Abandon`](crate::checkpoint::Recovery::Abandon)).
    fn on_abandon(&self, run: &RunId) {
        let _ = run;
    }
    /// `run` was resumed from its log and re-enters `state` (which runs again).
    fn on_resume(&self, run: &RunId, state: &S) {
        let _ = (run, state);
    }
    /// The run failed with `error` and its rollback (the compensation drain) starts.
    fn on_rollback_start(&self, error: &CanoError) {
        let _ = error;
    }
    /// A compensation is about to run.
    fn on_compensation_start(&self, task: TaskId<'_>) {
        let _ = task;
    }
    /// A compensation ended.
    fn on_compensation_finish(&self, task: TaskId<'_>, outcome: Result<(), &CanoError>) {
        let _ = (task, outcome);
    }
}

/// The observers of one workflow, shared with spawned split branches. No observer (the
/// common case) costs no heap: the list is only allocated when the first one is added.
pub(crate) struct Observers<S>(Option<Arc<Vec<Arc<dyn WorkflowObserver<S>>>>>);

impl<S> Observers<S> {
    /// No observers.
    pub(crate) const fn none() -> Self {
        Observers(None)
    }

    /// Adds `observer` after the others (copying the list if another workflow shares it).
    pub(crate) fn push(&mut self, observer: Arc<dyn WorkflowObserver<S>>) {
        Arc::make_mut(self.0.get_or_insert_with(Default::default)).push(observer);
    }

    /// The observers, in the order they were added.
    pub(crate) fn as_slice(&self) -> &[Arc<dyn WorkflowObserver<S>>] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl<S> Clone for Observers<S> {
    fn clone(&self) -> Self {
        Observers(self.0.clone())
    }
}

impl<S> core::ops::Deref for Observers<S> {
    type Target = [Arc<dyn WorkflowObserver<S>>];

    fn deref(&self) -> &Self::Target {
        self.as_slice()
    }
}

/// Emits the per-task events of one task (or split branch) to a list of observers.
pub(crate) struct TaskEvents<'a, S> {
    pub(crate) observers: &'a [Arc<dyn WorkflowObserver<S>>],
    pub(crate) id: TaskId<'a>,
}

impl<S> Clone for TaskEvents<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for TaskEvents<'_, S> {}

impl<S> TaskEvents<'_, S> {
    pub(crate) fn start(&self) {
        self.observers.iter().for_each(|o| o.on_task_start(self.id));
    }
    pub(crate) fn finish<T>(&self, outcome: &Result<T, CanoError>) {
        match outcome {
            Ok(_) => self
                .observers
                .iter()
                .for_each(|o| o.on_task_success(self.id)),
            Err(e) => self
                .observers
                .iter()
                .for_each(|o| o.on_task_failure(self.id, e)),
        }
    }
}

impl<S> crate::workflow::retry::AttemptEvents for TaskEvents<'_, S> {
    fn retry(&self, attempt: u32) {
        self.observers
            .iter()
            .for_each(|o| o.on_retry(self.id, attempt));
    }
    fn circuit_open(&self) {
        self.observers
            .iter()
            .for_each(|o| o.on_circuit_open(self.id));
    }
    fn task_name(&self) -> Option<&str> {
        Some(self.id.name)
    }
}
