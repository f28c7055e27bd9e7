//! Durable workflow runs: the checkpoint store contract, its rows, their codec, and an
//! in-memory store.
//!
//! A checkpointed workflow writes a **log of rows** per run (keyed by [`RunId`]) into a
//! [`CheckpointStore`]. A row is written *before* the work it announces, so after a crash
//! [`Workflow::resume_from_with`](crate::Workflow::resume_from_with) finds the state that was in
//! flight and runs it again: **at-least-once per state**. Side effects become effectively-once
//! when they are keyed by the [`IdempotencyKey`] every task can read.
//!
//! ## The contract, in one table
//!
//! | call | does | fails with |
//! |---|---|---|
//! | [`start(run, row0)`](CheckpointStore::start) | creates the log with its row 0, issues a new [`Fence`] | [`Conflict`](CheckpointError::Conflict) if the run has an unfinished log |
//! | [`resume(run)`](CheckpointStore::resume) | issues a new fence that supersedes every older one for the run (a zombie writer is locked out) | [`NotFound`](CheckpointError::NotFound) if there is no unfinished log |
//! | [`append(run, fence, row)`](CheckpointStore::append) | appends `row` if `row.sequence == last + 1` | [`Fenced`](CheckpointError::Fenced) if `fence` is not the run's current fence (or the run is finished), [`Conflict`](CheckpointError::Conflict) if the sequence is a duplicate, stale or leaves a gap |
//! | [`load(run)`](CheckpointStore::load) | the run's [`RunLog`]: unknown, unfinished rows, or finished | — |
//! | [`finish(run, fence, outcome)`](CheckpointStore::finish) | ends the run: clears its rows (the store may keep a bounded tombstone with the [`RunOutcome`]) | [`Fenced`](CheckpointError::Fenced) |
//! | [`list_unfinished()`](CheckpointStore::list_unfinished) | every run with an unfinished log, sorted: the recovery scan at start | — |
//!
//! Every call may also fail with [`Unavailable`](CheckpointError::Unavailable) (retryable
//! I/O), [`Corrupt`](CheckpointError::Corrupt) or [`Backend`](CheckpointError::Backend).
//!
//! **Fences** are issued by the store, are unique across the whole store and only grow
//! (a store-wide counter), so a fence issued before a run was finished and started again can
//! never be mistaken for the new run's. Only the holder of a run's current fence can write it.
//!
//! The trait is async in the style of [`Task`](crate::Task): implement it with plain
//! `async fn`s (static dispatch, no boxing); [`DynCheckpointStore`] is its object-safe
//! companion, implemented for every store, and `Arc<dyn DynCheckpointStore>` is a store again.
//!
//! ## Rows
//!
//! A [`CheckpointRow`] names its state by a **stable key** ([`StateKey`]), never by `Debug`
//! output (cano 0.12 did, so renaming a variant broke resuming old logs), and carries the
//! workflow version (resuming another version's log is
//! [`CanoError::WorkflowVersionMismatch`]). Its [`RowKind`]s are cano 0.12's three (state
//! entry, compensation completion, step cursor) plus rollback started and compensation done,
//! so a crash in the middle of a rollback resumes the drain instead of re-running finished
//! compensations or the failed state.
//!
//! Stores that persist rows encode them with [`encode_row`] / [`decode_row`] (postcard, with
//! a leading format byte, [`ROW_FORMAT`]); blobs inside rows (compensation outputs, cursors)
//! use [`encode_blob`] / [`decode_blob`] ([`BLOB_FORMAT`]). Unknown format bytes and
//! undecodable bytes are [`CheckpointError::Corrupt`], never a panic.
//!
//! ## Cursors: one API for every long-running task shape
//!
//! A state that makes progress inside one task (a
//! [`SteppedTask`](crate::SteppedTask) today; poll, batch or stream tasks reuse it) persists
//! a **cursor blob** for its state as a [`RowKind::StepCursor`] row
//! ([`CheckpointRow::cursor`]). On resume the newest cursor row *after the state's last entry
//! row* is handed back ([`resume_cursor`] says which), so a task shape only decides what its
//! cursor is and how to encode it ([`encode_blob`]); ordering, fencing, versions and the
//! at-least-once rule come from the log. Inside the engine a task shape writes a cursor with
//! the workflow's `record_cursor` (one row; the state's idempotency keys then name that row
//! as their visit) and reads the resumed one with the ledger's `take_resume_cursor`; the
//! stepped runner in `workflow/durable.rs` is the model. A stream task's per-window cursor is
//! one such row per flushed window.

//! ## What happens when the store fails
//!
//! * **Start fails**: nothing runs; the error is returned.
//! * **An entry row's append fails**: the run stops there with
//!   [`CanoError::CheckpointStore`]; the state whose entry could not be recorded does not run
//!   (a resume could not know it ran). With compensations on the stack the rollback drain
//!   runs (its own rows are best-effort); without, the log is left as it was, so the run can
//!   be resumed once the store is back, from the last recorded state.
//! * **A completion or cursor row's append fails**: the same, after the work it records (a
//!   completion still goes on the stack, so the rollback undoes it).
//! * **An acknowledgement is lost** (the row landed, the call failed): the same as a failed
//!   append; the resume re-runs the state the row names.
//! * **Finishing the log fails** after a successful run: the run's result is returned and
//!   [`WorkflowObserver::on_checkpoint_error`](crate::WorkflowObserver::on_checkpoint_error)
//!   is told; the log stays unfinished, and a resume would run its last state again
//!   (at-least-once).
//! * **[`Fenced`](CheckpointError::Fenced) or [`Conflict`](CheckpointError::Conflict)
//!   mid-run**: another owner has the run; this one stops at once and rolls nothing back.
//!
//! ## Guarantees
//!
//! * A checkpointed run re-runs **at most the state that was in flight** when it stopped
//!   (per resume), and only after its entry row landed: **at-least-once per state**.
//! * Effects keyed by the [`IdempotencyKey`] are **effectively-once**: a re-run sees the
//!   keys of the run that crashed.
//! * A finished compensation (one with a [`RowKind::CompensationDone`] row) never runs
//!   again; one that was running when the process died runs again (compensations must be
//!   idempotent).
//! * Not guaranteed: exactly-once execution of anything; a task that was cancelled or timed
//!   out mid-run is dropped at its `.await` (a compensatable one only after a grace of one
//!   compensation budget, see [`CompensatableTask`](crate::CompensatableTask)), and work it
//!   did without returning has no completion row, so a rollback cannot undo it.

mod codec;
#[cfg(feature = "testing")]
mod contract;
mod key;
mod memory;

pub use codec::{BLOB_FORMAT, ROW_FORMAT, decode_blob, decode_row, encode_blob, encode_row};
#[cfg(feature = "testing")]
pub use contract::check_store_contract;
pub use key::{IdempotencyKey, StateKey, VisitKey};
pub use memory::MemoryCheckpointStore;
#[cfg(feature = "testing")]
pub use memory::{Fault, Operation};

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::future::Future;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::error::{CanoError, Message};

/// The id of one workflow run: the key of its log.
///
/// Ad-hoc runs take the id given to `Workflow::with_workflow_id`;
/// scheduled runs derive theirs from their fire (`flow@timestamp`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(Arc<str>);

impl RunId {
    /// A run id.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        RunId(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for RunId {
    fn from(id: &str) -> Self {
        RunId(Arc::from(id))
    }
}

impl From<String> for RunId {
    fn from(id: String) -> Self {
        RunId(Arc::from(id))
    }
}

impl From<Arc<str>> for RunId {
    fn from(id: Arc<str>) -> Self {
        RunId(id)
    }
}

impl AsRef<str> for RunId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The fencing token of a run's log: proof that its holder owns the log. Issued by
/// [`CheckpointStore::start`] and [`CheckpointStore::resume`]; unique and increasing across a
/// store. The same type as the schedule store's and fire ledger's fences
/// ([`persist::Fence`](crate::persist::Fence)): one concept, one name.
pub use crate::persist::Fence;

/// What a [`CheckpointRow`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RowKind {
    /// The run entered `state` (written before the state's task runs).
    StateEntry,
    /// The compensatable task `task` of `state` succeeded; `blob` is its output, which its
    /// compensation receives.
    CompensationCompletion,
    /// A long-running task of `state` made progress; `blob` is its cursor.
    StepCursor,
    /// The run failed and its rollback started; `blob` is the original error's text.
    RollbackStarted,
    /// The compensation of the completion row with sequence `completion` succeeded (a
    /// failed one gets no row, so a resumed drain retries it).
    CompensationDone {
        /// The sequence of the [`RowKind::CompensationCompletion`] row it undid.
        completion: u64,
    },
}

/// One row of a run's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRow {
    /// The row's place in the log: dense, from 0.
    pub sequence: u64,
    /// What the row records.
    pub kind: RowKind,
    /// The state's stable key ([`StateKey::state_key`]).
    pub state: Cow<'static, str>,
    /// The task's name (the compensation lookup key for completion rows; empty when no task
    /// is involved).
    pub task: Cow<'static, str>,
    /// The version of the workflow that wrote the row
    /// (`Workflow::with_workflow_version`).
    pub workflow_version: u32,
    /// A compensation output, a cursor, or an error text, by kind.
    pub blob: Option<Vec<u8>>,
}

impl CheckpointRow {
    /// A [`RowKind::StateEntry`] row.
    pub fn state_entry(sequence: u64, state: Cow<'static, str>, workflow_version: u32) -> Self {
        CheckpointRow {
            sequence,
            kind: RowKind::StateEntry,
            state,
            task: Cow::Borrowed(""),
            workflow_version,
            blob: None,
        }
    }

    /// A [`RowKind::CompensationCompletion`] row carrying the task's encoded output.
    pub fn completion(
        sequence: u64,
        state: Cow<'static, str>,
        task: Cow<'static, str>,
        workflow_version: u32,
        output: Vec<u8>,
    ) -> Self {
        CheckpointRow {
            sequence,
            kind: RowKind::CompensationCompletion,
            state,
            task,
            workflow_version,
            blob: Some(output),
        }
    }

    /// A [`RowKind::StepCursor`] row carrying a state's encoded cursor: the one row every
    /// long-running task shape uses to persist progress.
    pub fn cursor(
        sequence: u64,
        state: Cow<'static, str>,
        task: Cow<'static, str>,
        workflow_version: u32,
        cursor: Vec<u8>,
    ) -> Self {
        CheckpointRow {
            sequence,
            kind: RowKind::StepCursor,
            state,
            task,
            workflow_version,
            blob: Some(cursor),
        }
    }
}

/// How a run ended, as [`CheckpointStore::finish`] records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RunOutcome {
    /// The run reached an exit state.
    Completed,
    /// The run failed and every compensation succeeded.
    RolledBack,
    /// The run was given up by its owner (for instance a scheduler set to abandon
    /// unfinished runs at start) without running to an end.
    Abandoned,
}

/// What [`CheckpointStore::load`] finds for a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunLog {
    /// The store knows nothing of the run (never started, or finished and forgotten).
    Unknown,
    /// The run is unfinished; its rows, ascending by sequence (never empty).
    Unfinished(Vec<CheckpointRow>),
    /// The run finished and the store kept a tombstone.
    Finished(RunOutcome),
}

/// Why a [`CheckpointStore`] call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The write conflicts with the log: a duplicate, stale or out-of-order sequence, or a
    /// second start of a run whose log is unfinished (two live runs with one id).
    Conflict {
        /// The run.
        run: RunId,
        /// What conflicted.
        detail: Message,
    },
    /// The writer's fence is not the run's current one: another owner resumed the run (the
    /// writer is a zombie), or the run was finished.
    Fenced {
        /// The run.
        run: RunId,
        /// The fence the writer presented.
        presented: Fence,
        /// The run's current fence, `None` if the run has no unfinished log.
        current: Option<Fence>,
    },
    /// [`resume`](CheckpointStore::resume) of a run with no unfinished log.
    NotFound {
        /// The run.
        run: RunId,
    },
    /// The store cannot be reached right now; retrying later may succeed.
    Unavailable(Message),
    /// Stored bytes could not be decoded (a foreign or damaged file, an unknown format).
    Corrupt(Message),
    /// Any other failure of the backend.
    Backend(Message),
}

impl CheckpointError {
    /// Whether retrying the same call later may succeed ([`CheckpointError::Unavailable`]).
    pub fn is_retryable(&self) -> bool {
        matches!(self, CheckpointError::Unavailable(_))
    }
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::Conflict { run, detail } => {
                write!(f, "conflict on run `{run}`: {detail}")
            }
            CheckpointError::Fenced {
                run,
                presented,
                current: Some(current),
            } => write!(
                f,
                "run `{run}` is owned by another writer ({current}); this writer holds {presented}"
            ),
            CheckpointError::Fenced {
                run,
                presented,
                current: None,
            } => write!(
                f,
                "run `{run}` has no unfinished log; the write with {presented} is stale"
            ),
            CheckpointError::NotFound { run } => {
                write!(f, "run `{run}` has no unfinished checkpoint log")
            }
            CheckpointError::Unavailable(m) => write!(f, "store unavailable: {m}"),
            CheckpointError::Corrupt(m) => write!(f, "corrupt checkpoint data: {m}"),
            CheckpointError::Backend(m) => write!(f, "{m}"),
        }
    }
}

impl core::error::Error for CheckpointError {}

impl From<CheckpointError> for CanoError {
    fn from(e: CheckpointError) -> Self {
        CanoError::CheckpointStore(e)
    }
}

/// `Result<T, CheckpointError>`.
pub type CheckpointResult<T> = Result<T, CheckpointError>;

/// Where checkpointed workflows keep their run logs. See the [module docs](self) for the
/// contract; [`MemoryCheckpointStore`] keeps logs in RAM and `cano-redb` on disk; both
/// pass `check_store_contract` (feature `testing`).
///
/// Implementations must tolerate concurrent calls (many runs share one store) and must
/// apply each call atomically: a call that fails changes nothing.
pub trait CheckpointStore: Send + Sync {
    /// Creates `run`'s log with `first` (whose sequence must be 0) and returns a new fence.
    /// A run that finished before (cleared or tombstoned) may be started again.
    ///
    /// Errors: [`CheckpointError::Conflict`] if `run` has an unfinished log or `first` is not
    /// sequence 0.
    fn start(
        &self,
        run: &RunId,
        first: &CheckpointRow,
    ) -> impl Future<Output = CheckpointResult<Fence>> + Send;

    /// Takes over `run`'s unfinished log: returns a new fence, after which writes with any
    /// older fence fail with [`CheckpointError::Fenced`].
    ///
    /// Errors: [`CheckpointError::NotFound`] if `run` has no unfinished log.
    fn resume(&self, run: &RunId) -> impl Future<Output = CheckpointResult<Fence>> + Send;

    /// Appends `row` to `run`'s log if `fence` is the run's current fence and
    /// `row.sequence` is the last sequence + 1.
    ///
    /// Errors: [`CheckpointError::Fenced`], then [`CheckpointError::Conflict`].
    fn append(
        &self,
        run: &RunId,
        fence: Fence,
        row: &CheckpointRow,
    ) -> impl Future<Output = CheckpointResult<()>> + Send;

    /// [`append`](Self::append) made at once, by a store that can complete it without
    /// waiting: `Some` with exactly what `append` would return (and having done what it
    /// would do), or `None` (the default) when the caller must await `append`. The run loop
    /// tries it first: an in-memory store answers every call, which spares a checkpointed
    /// transition the boxed future of [`DynCheckpointStore::append_dyn`]. A store that
    /// wraps another must not forward it unless its own `append` adds nothing.
    fn try_append_now(
        &self,
        run: &RunId,
        fence: Fence,
        row: &CheckpointRow,
    ) -> Option<CheckpointResult<()>> {
        let _ = (run, fence, row);
        None
    }

    /// `run`'s log. Never fails for an unknown run ([`RunLog::Unknown`]).
    fn load(&self, run: &RunId) -> impl Future<Output = CheckpointResult<RunLog>> + Send;

    /// Ends `run`: its rows are dropped; the store may keep a tombstone with `outcome`
    /// (bounded: the oldest tombstones are forgotten first).
    ///
    /// Errors: [`CheckpointError::Fenced`] if `fence` is not the run's current fence.
    fn finish(
        &self,
        run: &RunId,
        fence: Fence,
        outcome: RunOutcome,
    ) -> impl Future<Output = CheckpointResult<()>> + Send;

    /// Every run with an unfinished log, sorted by id: the recovery scan at start.
    fn list_unfinished(&self) -> impl Future<Output = CheckpointResult<Vec<RunId>>> + Send;
}

/// The object-safe form of [`CheckpointStore`], implemented for every store; a workflow
/// holds its store as `Arc<dyn DynCheckpointStore>`.
pub trait DynCheckpointStore: Send + Sync {
    /// [`CheckpointStore::start`], boxed.
    fn start_dyn<'a>(
        &'a self,
        run: &'a RunId,
        first: &'a CheckpointRow,
    ) -> BoxFuture<'a, CheckpointResult<Fence>>;
    /// [`CheckpointStore::resume`], boxed.
    fn resume_dyn<'a>(&'a self, run: &'a RunId) -> BoxFuture<'a, CheckpointResult<Fence>>;
    /// [`CheckpointStore::append`], boxed.
    fn append_dyn<'a>(
        &'a self,
        run: &'a RunId,
        fence: Fence,
        row: &'a CheckpointRow,
    ) -> BoxFuture<'a, CheckpointResult<()>>;
    /// [`CheckpointStore::try_append_now`] (`None` by default).
    fn try_append_now_dyn(
        &self,
        run: &RunId,
        fence: Fence,
        row: &CheckpointRow,
    ) -> Option<CheckpointResult<()>> {
        let _ = (run, fence, row);
        None
    }
    /// [`CheckpointStore::load`], boxed.
    fn load_dyn<'a>(&'a self, run: &'a RunId) -> BoxFuture<'a, CheckpointResult<RunLog>>;
    /// [`CheckpointStore::finish`], boxed.
    fn finish_dyn<'a>(
        &'a self,
        run: &'a RunId,
        fence: Fence,
        outcome: RunOutcome,
    ) -> BoxFuture<'a, CheckpointResult<()>>;
    /// [`CheckpointStore::list_unfinished`], boxed.
    fn list_unfinished_dyn(&self) -> BoxFuture<'_, CheckpointResult<Vec<RunId>>>;
}

impl<T: CheckpointStore> DynCheckpointStore for T {
    fn start_dyn<'a>(
        &'a self,
        run: &'a RunId,
        first: &'a CheckpointRow,
    ) -> BoxFuture<'a, CheckpointResult<Fence>> {
        Box::pin(self.start(run, first))
    }
    fn resume_dyn<'a>(&'a self, run: &'a RunId) -> BoxFuture<'a, CheckpointResult<Fence>> {
        Box::pin(self.resume(run))
    }
    fn append_dyn<'a>(
        &'a self,
        run: &'a RunId,
        fence: Fence,
        row: &'a CheckpointRow,
    ) -> BoxFuture<'a, CheckpointResult<()>> {
        Box::pin(self.append(run, fence, row))
    }
    #[inline]
    fn try_append_now_dyn(
        &self,
        run: &RunId,
        fence: Fence,
        row: &CheckpointRow,
    ) -> Option<CheckpointResult<()>> {
        self.try_append_now(run, fence, row)
    }
    fn load_dyn<'a>(&'a self, run: &'a RunId) -> BoxFuture<'a, CheckpointResult<RunLog>> {
        Box::pin(self.load(run))
    }
    fn finish_dyn<'a>(
        &'a self,
        run: &'a RunId,
        fence: Fence,
        outcome: RunOutcome,
    ) -> BoxFuture<'a, CheckpointResult<()>> {
        Box::pin(self.finish(run, fence, outcome))
    }
    fn list_unfinished_dyn(&self) -> BoxFuture<'_, CheckpointResult<Vec<RunId>>> {
        Box::pin(self.list_unfinished())
    }
}

macro_rules! forward_store {
    ($ty:ty) => {
        impl CheckpointStore for $ty {
            fn start(
                &self,
                run: &RunId,
                first: &CheckpointRow,
            ) -> impl Future<Output = CheckpointResult<Fence>> + Send {
                async move { (**self).start_dyn(run, first).await }
            }
            fn resume(&self, run: &RunId) -> impl Future<Output = CheckpointResult<Fence>> + Send {
                async move { (**self).resume_dyn(run).await }
            }
            fn append(
                &self,
                run: &RunId,
                fence: Fence,
                row: &CheckpointRow,
            ) -> impl Future<Output = CheckpointResult<()>> + Send {
                async move { (**self).append_dyn(run, fence, row).await }
            }
            fn try_append_now(
                &self,
                run: &RunId,
                fence: Fence,
                row: &CheckpointRow,
            ) -> Option<CheckpointResult<()>> {
                (**self).try_append_now_dyn(run, fence, row)
            }
            fn load(&self, run: &RunId) -> impl Future<Output = CheckpointResult<RunLog>> + Send {
                async move { (**self).load_dyn(run).await }
            }
            fn finish(
                &self,
                run: &RunId,
                fence: Fence,
                outcome: RunOutcome,
            ) -> impl Future<Output = CheckpointResult<()>> + Send {
                async move { (**self).finish_dyn(run, fence, outcome).await }
            }
            fn list_unfinished(&self) -> impl Future<Output = CheckpointResult<Vec<RunId>>> + Send {
                async move { (**self).list_unfinished_dyn().await }
            }
        }
    };
}

forward_store!(Box<dyn DynCheckpointStore>);
forward_store!(Arc<dyn DynCheckpointStore>);

impl<T: CheckpointStore> CheckpointStore for Arc<T> {
    fn start(
        &self,
        run: &RunId,
        first: &CheckpointRow,
    ) -> impl Future<Output = CheckpointResult<Fence>> + Send {
        T::start(self, run, first)
    }
    fn resume(&self, run: &RunId) -> impl Future<Output = CheckpointResult<Fence>> + Send {
        T::resume(self, run)
    }
    fn append(
        &self,
        run: &RunId,
        fence: Fence,
        row: &CheckpointRow,
    ) -> impl Future<Output = CheckpointResult<()>> + Send {
        T::append(self, run, fence, row)
    }
    fn try_append_now(
        &self,
        run: &RunId,
        fence: Fence,
        row: &CheckpointRow,
    ) -> Option<CheckpointResult<()>> {
        T::try_append_now(self, run, fence, row)
    }
    fn load(&self, run: &RunId) -> impl Future<Output = CheckpointResult<RunLog>> + Send {
        T::load(self, run)
    }
    fn finish(
        &self,
        run: &RunId,
        fence: Fence,
        outcome: RunOutcome,
    ) -> impl Future<Output = CheckpointResult<()>> + Send {
        T::finish(self, run, fence, outcome)
    }
    fn list_unfinished(&self) -> impl Future<Output = CheckpointResult<Vec<RunId>>> + Send {
        T::list_unfinished(self)
    }
}

/// What to do with runs a previous process left unfinished: a scheduler's choice per flow
/// ([`Scheduler::set_recovery`](crate::scheduler::Scheduler::set_recovery)), or
/// [`Workflow::recover_runs`](crate::Workflow::recover_runs)'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Recovery {
    /// Resume each run from its log (the in-flight state runs again).
    #[default]
    Resume,
    /// Finish each log as [`RunOutcome::Abandoned`] without running anything (no
    /// compensation either).
    Abandon,
}

/// What [`Workflow::recover_runs`](crate::Workflow::recover_runs) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Runs resumed, with how each ended.
    pub resumed: Vec<(RunId, Result<(), crate::CanoError>)>,
    /// Runs abandoned.
    pub abandoned: Vec<RunId>,
}

/// The cursor a resumed state starts from: the blob of the newest
/// [`RowKind::StepCursor`] row of `state` after that state's last
/// [`RowKind::StateEntry`] row, if the log's last entry is `state`'s. A state entered
/// again later starts without a cursor.
pub fn resume_cursor<'a>(rows: &'a [CheckpointRow], state: &str) -> Option<&'a [u8]> {
    for row in rows.iter().rev() {
        match row.kind {
            RowKind::StepCursor if row.state == state => return row.blob.as_deref(),
            RowKind::StateEntry => return None,
            _ => {}
        }
    }
    None
}
