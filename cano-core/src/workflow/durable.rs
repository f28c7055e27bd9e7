//! The durability layer around a run: opening a run's log (start or resume), the rows
//! written at state entry, after compensatable tasks and after steps, and the rollback
//! drain. The run loop calls in here only through a `Ledger`, which a plain workflow (no
//! checkpoint store, no compensatable task) never creates.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::hash::Hash;
use core::pin::pin;
use core::time::Duration;

use futures::future::{Either, select};

use super::observer::{TaskEvents, TaskId};
use super::retry::Attempts;
use super::run::{BoxedRun, RunContext, RunGuard};
use super::saga::{RegisteredCompensatable, RunCompensatable};
use super::stepped::{RegisteredStepped, RunStep, StepOutcome};
use super::task::{KeyBase, TaskContext};
use super::{Handler, Workflow};
use futures::future::BoxFuture;

use crate::checkpoint::{
    CheckpointError, CheckpointResult, CheckpointRow, DynCheckpointStore, Fence, RowKind, RunId,
    RunLog, RunOutcome,
};
use crate::error::CanoError;
use crate::panic::{Isolated, isolate_panic};
use crate::runtime::{Clock, DynClock, DynSpawner};
use crate::telemetry;
use crate::time::DurationText;

/// The compensation budget when neither it nor a total timeout is set.
const DEFAULT_COMPENSATION_BUDGET: Duration = Duration::from_secs(30);

/// An entry row's write: made already, or the store's future to await.
enum EntryWrite<'l> {
    Done(CheckpointResult<()>),
    Pending(BoxFuture<'l, CheckpointResult<()>>),
}

/// A run with a ledger (a checkpoint log, a compensation stack), on a context of one type
/// whatever the caller's clock and spawner, in its own box; with `traced`, inside the
/// run's telemetry.
///
/// Runs reach this code only through this pointer, which `with_checkpoint_store` and
/// `register_compensatable` set (to [`ledgered_run`]): a program that uses neither names
/// none of it, and the linker drops the checkpointed run, its log writes and the rollback
/// (about 10 KB of firmware, issue 15). A run through it reads its clock and spawns through
/// one more pointer, and boxes each sleep; its store writes cost far more.
pub(crate) type LedgeredRun<S, K> = for<'a> fn(
    &'a Workflow<S, K>,
    RunContext<DynClock, DynSpawner>,
    Begin<S>,
    bool,
) -> BoxedRun<'a, S>;

/// The [`LedgeredRun`] of every workflow.
pub(crate) fn ledgered_run<S, K>(
    workflow: &Workflow<S, K>,
    ctx: RunContext<DynClock, DynSpawner>,
    begin: Begin<S>,
    traced: bool,
) -> BoxedRun<'_, S>
where
    S: Clone + Eq + Hash + fmt::Debug + Send + Sync + 'static,
    K: Send + Sync + 'static,
{
    if traced {
        Box::pin(telemetry::workflow_run(ctx, |ctx| {
            workflow.run_ledgered(ctx, begin)
        }))
    } else {
        Box::pin(workflow.run_ledgered(ctx, begin))
    }
}

/// Why a workflow without a checkpoint store cannot resume a run.
pub(crate) fn resume_needs_a_store() -> CanoError {
    CanoError::configuration("resume_from needs a checkpoint store: call with_checkpoint_store")
}

/// How a ledgered run begins.
pub(crate) enum Begin<S> {
    /// A new run from `initial`, under `run` (or the workflow's id).
    Fresh { run: Option<RunId>, initial: S },
    /// The unfinished run `run`, from its log.
    Resume(RunId),
}

/// What a run does after its ledger is open.
pub(crate) enum Opened<S> {
    /// Run the state machine from this state.
    Run(S),
    /// The log shows a rollback in progress: finish its drain; this is the original error.
    Rollback(CanoError),
}

/// One run's durable bookkeeping: its log (if the workflow has a store) and its
/// compensation stack.
pub(crate) struct Ledger<'w, S> {
    journal: Option<Journal<'w, S>>,
    stack: Vec<Completion>,
    /// A stepped state's cursor from the log, for the state a resume starts in.
    resume_cursor: Option<(usize, Vec<u8>)>,
    /// The next state entered already has its entry row (row 0 of a fresh run, or the
    /// resumed state's).
    entry_written: bool,
    /// The sequence of the row the current work follows (see `IdempotencyKey::visit`).
    visit: u64,
    state_key: Cow<'static, str>,
    /// The log already has its `RollbackStarted` row.
    rollback_recorded: bool,
    /// The entry row being written (kept here so the write borrows it, not the run loop),
    /// reused by every entry of the run: only its sequence and state change.
    entry_row: CheckpointRow,
    /// `entry_row` is written and waits for [`commit_entry`](Workflow::commit_entry).
    entry_pending: bool,
}

struct Journal<'w, S> {
    store: &'w dyn DynCheckpointStore,
    state_key: fn(&S) -> Cow<'static, str>,
    run: RunId,
    fence: Fence,
    next: u64,
    version: u32,
}

/// A completed compensatable task, waiting on the stack.
struct Completion {
    /// The visit it completed in: a re-run of the same visit after a resume replaces it.
    visit: u64,
    /// Its completion row, in a checkpointed run.
    sequence: Option<u64>,
    task: Cow<'static, str>,
    state: Cow<'static, str>,
    output: Vec<u8>,
}

impl<S> Ledger<'_, S> {
    /// Passes a router state, which writes no row: only the "entry already written" mark of
    /// a run that starts (or resumes) in it is used up, so the next state records its own.
    pub(crate) fn pass_router(&mut self) {
        self.entry_written = false;
    }

    /// The idempotency key of the current work, in a checkpointed run.
    pub(crate) fn key_base(&self) -> Option<KeyBase<'_>> {
        self.journal.as_ref().map(|journal| KeyBase {
            run: &journal.run,
            visit: self.visit,
            state: &self.state_key,
        })
    }

    /// The cursor a resumed run left for the state in slot `at`, once (a later visit of the
    /// state starts without one).
    pub(crate) fn take_resume_cursor(&mut self, at: usize) -> Option<Vec<u8>> {
        match self.resume_cursor.take() {
            Some((slot, cursor)) if slot == at => Some(cursor),
            _ => None,
        }
    }
}

/// Where the run loop finds its ledger: [`NoLedger`] for a plain workflow (every lookup is
/// a constant `None`, so the loop is compiled without the checkpoint code), or a ledger.
pub(crate) trait LedgerSlot<'w, S>: Send {
    fn get(&self) -> Option<&Ledger<'w, S>>;
    fn get_mut(&mut self) -> Option<&mut Ledger<'w, S>>;
}

/// No ledger: a plain run.
pub(crate) struct NoLedger;

impl<'w, S> LedgerSlot<'w, S> for NoLedger {
    #[inline(always)]
    fn get(&self) -> Option<&Ledger<'w, S>> {
        None
    }
    #[inline(always)]
    fn get_mut(&mut self) -> Option<&mut Ledger<'w, S>> {
        None
    }
}

impl<'w, S: Send + Sync> LedgerSlot<'w, S> for &mut Ledger<'w, S> {
    fn get(&self) -> Option<&Ledger<'w, S>> {
        Some(self)
    }
    fn get_mut(&mut self) -> Option<&mut Ledger<'w, S>> {
        Some(self)
    }
}

/// Whether `error` means another writer owns the run now: this run must stop touching it
/// (no rollback: the new owner decides).
pub(crate) fn ownership_lost(error: &CanoError) -> bool {
    matches!(
        error,
        CanoError::CheckpointStore(
            CheckpointError::Fenced { .. } | CheckpointError::Conflict { .. }
        )
    )
}

impl<S, K> Workflow<S, K>
where
    S: Clone + Eq + Hash + fmt::Debug + Send + Sync + 'static,
    K: Send + Sync + 'static,
{
    fn no_ledger_yet(&self) -> Ledger<'_, S> {
        Ledger {
            journal: None,
            stack: Vec::new(),
            resume_cursor: None,
            entry_written: false,
            visit: 0,
            state_key: Cow::Borrowed(""),
            rollback_recorded: false,
            entry_row: CheckpointRow::state_entry(
                0,
                Cow::Borrowed(""),
                self.settings.workflow_version(),
            ),
            entry_pending: false,
        }
    }

    /// Resumes or abandons (per `recovery`) every unfinished run of this workflow's store
    /// whose id starts with `prefix` (a scheduled flow's runs are `flow@…`: pass
    /// `"flow@"`), one after another, in id order; the recovery scan a process does at
    /// start. Resumed runs run without the resource lifecycle (see
    /// [`resume_fsm`](Self::resume_fsm)): hold the resources around this call.
    ///
    /// Errors: [`CanoError::Configuration`] without a checkpoint store; the store's error
    /// if the scan fails. A run that fails to resume or abandon is reported in the
    /// [`RecoveryReport`](crate::checkpoint::RecoveryReport), not as an error.
    pub async fn recover_runs<C: crate::Clock, Sp: crate::Spawner>(
        &self,
        ctx: crate::RunContext<C, Sp>,
        prefix: &str,
        recovery: crate::checkpoint::Recovery,
    ) -> Result<crate::checkpoint::RecoveryReport, CanoError> {
        let Some(checkpoint) = self.settings.checkpoint() else {
            return Err(CanoError::configuration(
                "recover_runs needs a checkpoint store: call with_checkpoint_store",
            ));
        };
        let mut report = crate::checkpoint::RecoveryReport::default();
        let runs = checkpoint.store.list_unfinished_dyn().await?;
        for run in runs
            .into_iter()
            .filter(|run| run.as_str().starts_with(prefix))
        {
            match recovery {
                crate::checkpoint::Recovery::Resume => {
                    let outcome = self.resume_fsm(ctx.clone(), run.clone()).await;
                    report.resumed.push((run, outcome.map(drop)));
                }
                crate::checkpoint::Recovery::Abandon => match self.abandon_run(&run).await {
                    Ok(()) => report.abandoned.push(run),
                    Err(error) => report.resumed.push((run, Err(error))),
                },
            }
        }
        Ok(report)
    }

    /// Every unfinished run in the checkpoint store (none without one).
    pub(crate) async fn unfinished_runs(&self) -> Result<Vec<RunId>, CanoError> {
        match self.settings.checkpoint() {
            Some(checkpoint) => Ok(checkpoint.store.list_unfinished_dyn().await?),
            None => Ok(Vec::new()),
        }
    }

    /// Takes the unfinished run `run` over (a new fence) and finishes its log as
    /// [`RunOutcome::Abandoned`], running nothing; observers hear
    /// [`on_abandon`](super::observer::WorkflowObserver::on_abandon).
    pub(crate) async fn abandon_run(&self, run: &RunId) -> Result<(), CanoError> {
        let Some(checkpoint) = self.settings.checkpoint() else {
            return Err(CanoError::configuration(
                "abandoning a run needs a checkpoint store: call with_checkpoint_store",
            ));
        };
        let store = &checkpoint.store;
        let finished = match store.resume_dyn(run).await {
            Ok(fence) => store.finish_dyn(run, fence, RunOutcome::Abandoned).await,
            Err(error) => Err(error),
        };
        match finished {
            Ok(()) => self.observers().iter().for_each(|o| o.on_abandon(run)),
            Err(ref error) => self
                .observers()
                .iter()
                .for_each(|o| o.on_checkpoint_error(run, error)),
        }
        Ok(finished?)
    }

    /// Starts or resumes the run's log.
    pub(crate) async fn open_ledger(
        &self,
        begin: Begin<S>,
    ) -> Result<(Ledger<'_, S>, Opened<S>), CanoError> {
        let mut ledger = self.no_ledger_yet();
        let Some(checkpoint) = self.settings.checkpoint() else {
            return match begin {
                Begin::Fresh { initial, .. } => Ok((ledger, Opened::Run(initial))),
                Begin::Resume(_) => Err(resume_needs_a_store()),
            };
        };
        let version = self.settings.workflow_version();
        match begin {
            Begin::Fresh { run, initial } => {
                let run = run
                    .or_else(|| self.settings.workflow_id().cloned())
                    .ok_or_else(|| {
                        CanoError::configuration(
                            "a checkpointed workflow needs a run id: call with_workflow_id",
                        )
                    })?;
                if self.slot(&initial).is_some_and(|slot| slot.exit) {
                    // Nothing runs, so nothing is recorded.
                    return Ok((ledger, Opened::Run(initial)));
                }
                let key = (checkpoint.state_key)(&initial);
                let first = CheckpointRow::state_entry(0, key.clone(), version);
                let fence = checkpoint.store.start_dyn(&run, &first).await?;
                self.observers()
                    .iter()
                    .for_each(|o| o.on_checkpoint(&run, &first));
                ledger.journal = Some(Journal {
                    store: &*checkpoint.store,
                    state_key: checkpoint.state_key,
                    run,
                    fence,
                    next: 1,
                    version,
                });
                ledger.entry_written = true;
                ledger.state_key = key;
                Ok((ledger, Opened::Run(initial)))
            }
            Begin::Resume(run) => {
                // Checked before taking the run over, so a workflow of the wrong version
                // or shape never fences out a live owner.
                let rows = self.unfinished_rows(&run).await?;
                self.check_resumable(&run, &rows)?;
                let fence = checkpoint.store.resume_dyn(&run).await?;
                let rows = self.unfinished_rows(&run).await?;
                let resumed = self.check_resumable(&run, &rows)?;
                let opened = self.rebuild(&mut ledger, &run, &rows, resumed)?;
                if let Opened::Run(state) = &opened {
                    self.observers()
                        .iter()
                        .for_each(|o| o.on_resume(&run, state));
                }
                ledger.journal = Some(Journal {
                    store: &*checkpoint.store,
                    state_key: checkpoint.state_key,
                    run,
                    fence,
                    next: rows.len() as u64,
                    version,
                });
                Ok((ledger, opened))
            }
        }
    }

    async fn unfinished_rows(&self, run: &RunId) -> Result<Vec<CheckpointRow>, CanoError> {
        let Some(checkpoint) = self.settings.checkpoint() else {
            return Ok(Vec::new());
        };
        match checkpoint.store.load_dyn(run).await? {
            RunLog::Unfinished(rows) if !rows.is_empty() => Ok(rows),
            _ => Err(CheckpointError::NotFound { run: run.clone() }.into()),
        }
    }

    /// Checks versions, density and state keys; returns the index of the last entry row
    /// and the slot of its state.
    fn check_resumable(
        &self,
        run: &RunId,
        rows: &[CheckpointRow],
    ) -> Result<(usize, usize), CanoError> {
        let expected = self.settings.workflow_version();
        let mut last_entry = None;
        for (i, row) in rows.iter().enumerate() {
            if row.workflow_version != expected {
                return Err(CanoError::WorkflowVersionMismatch {
                    stored: row.workflow_version,
                    expected,
                });
            }
            if row.sequence != i as u64 {
                return Err(CheckpointError::Corrupt(Cow::Owned(alloc::format!(
                    "the log of run `{run}` has sequence {} at position {i}",
                    row.sequence
                )))
                .into());
            }
            if row.kind == RowKind::StateEntry {
                last_entry = Some(i);
            }
        }
        let Some(last) = last_entry else {
            return Err(CheckpointError::Corrupt(Cow::Owned(alloc::format!(
                "the log of run `{run}` has no state entry row"
            )))
            .into());
        };
        let key = &rows[last].state;
        let slot = self
            .state_by_key(key)
            .and_then(|state| self.position(state))
            .ok_or_else(|| {
                CanoError::workflow(alloc::format!(
                    "the checkpoint log of run `{run}` names state key `{key}` (row {last}), \
                     which is not a state of this workflow (renamed or removed?)"
                ))
            })?;
        Ok((last, slot))
    }

    /// Rebuilds the compensation stack, the cursor and the position from the log.
    fn rebuild(
        &self,
        ledger: &mut Ledger<'_, S>,
        run: &RunId,
        rows: &[CheckpointRow],
        (last_entry, slot): (usize, usize),
    ) -> Result<Opened<S>, CanoError> {
        let mut visit = 0;
        let mut rollback: Option<String> = None;
        for row in rows {
            match row.kind {
                RowKind::StateEntry => visit = row.sequence,
                RowKind::CompensationCompletion => {
                    let completion = Completion {
                        visit,
                        sequence: Some(row.sequence),
                        task: row.task.clone(),
                        state: row.state.clone(),
                        output: row.blob.clone().unwrap_or_default(),
                    };
                    push_completion(&mut ledger.stack, completion);
                }
                RowKind::CompensationDone { completion } => {
                    ledger.stack.retain(|c| c.sequence != Some(completion));
                }
                RowKind::RollbackStarted => {
                    let text = row.blob.as_deref().unwrap_or_default();
                    rollback = Some(String::from_utf8_lossy(text).into_owned());
                }
                RowKind::StepCursor => {}
            }
        }
        if let Some(original) = rollback {
            ledger.rollback_recorded = true;
            return Ok(Opened::Rollback(CanoError::workflow(alloc::format!(
                "run `{run}` was rolling back when it stopped; it had failed with: {original}"
            ))));
        }
        let entry = &rows[last_entry];
        ledger.entry_written = true;
        ledger.visit = entry.sequence;
        ledger.state_key = entry.state.clone();
        if let Some(cursor_row) = rows[last_entry..]
            .iter()
            .rev()
            .find(|row| row.kind == RowKind::StepCursor && row.state == entry.state)
        {
            ledger.visit = cursor_row.sequence;
            ledger.resume_cursor = Some((slot, cursor_row.blob.clone().unwrap_or_default()));
        }
        Ok(Opened::Run(self.states[slot].state.clone()))
    }

    async fn append(
        &self,
        journal: &mut Journal<'_, S>,
        row: CheckpointRow,
    ) -> Result<u64, CanoError> {
        let store = journal.store;
        match store.try_append_now_dyn(&journal.run, journal.fence, &row) {
            Some(done) => done?,
            None => store.append_dyn(&journal.run, journal.fence, &row).await?,
        }
        journal.next += 1;
        self.observers()
            .iter()
            .for_each(|o| o.on_checkpoint(&journal.run, &row));
        Ok(row.sequence)
    }

    /// Records entering the state in slot `at`, before its task runs (a router only
    /// decides: it writes no row, see [`register_router`](Workflow::register_router)).
    /// Its own future, so the run loop holds none of this across its other awaits.
    // An `async` block holds its arguments once; an `async fn` twice (see `drive`).
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn record_entry<'l>(
        &'l self,
        ledger: &'l mut Ledger<'_, S>,
        at: usize,
    ) -> impl Future<Output = Result<(), CanoError>> + 'l {
        async move {
            if let Some(Handler::Router(_)) = self.states[at].handler {
                ledger.pass_router();
                return Ok(());
            }
            {
                // Only the store's boxed future lives across the await, not the match on it.
                let pending = match self.prepare_entry(ledger, at) {
                    None => return Ok(()),
                    Some(EntryWrite::Done(done)) => {
                        done?;
                        None
                    }
                    Some(EntryWrite::Pending(write)) => Some(write),
                };
                if let Some(write) = pending {
                    write.await?;
                }
            }
            self.commit_entry(ledger);
            Ok(())
        }
    }

    /// Prepares the record of entering the state in slot `at` (before its task runs):
    /// `Some` write (made already by a store that answers at once, else to await), then
    /// [`commit_entry`](Self::commit_entry).
    fn prepare_entry<'l>(
        &self,
        ledger: &'l mut Ledger<'_, S>,
        at: usize,
    ) -> Option<EntryWrite<'l>> {
        if core::mem::take(&mut ledger.entry_written) {
            return None;
        }
        ledger.resume_cursor = None;
        let Some(journal) = ledger.journal.as_ref() else {
            ledger.visit += 1;
            return None;
        };
        ledger.entry_row.sequence = journal.next;
        ledger.entry_row.state = (journal.state_key)(&self.states[at].state);
        ledger.entry_pending = true;
        let ledger: &'l Ledger<'_, S> = ledger;
        let (journal, row) = (ledger.journal.as_ref()?, &ledger.entry_row);
        Some(
            match journal
                .store
                .try_append_now_dyn(&journal.run, journal.fence, row)
            {
                Some(done) => EntryWrite::Done(done),
                None => {
                    EntryWrite::Pending(journal.store.append_dyn(&journal.run, journal.fence, row))
                }
            },
        )
    }

    /// After the write of [`prepare_entry`](Self::prepare_entry) succeeded.
    fn commit_entry(&self, ledger: &mut Ledger<'_, S>) {
        let Some(journal) = ledger.journal.as_mut() else {
            return;
        };
        if !core::mem::take(&mut ledger.entry_pending) {
            return;
        }
        let row = &mut ledger.entry_row;
        journal.next += 1;
        self.observers()
            .iter()
            .for_each(|o| o.on_checkpoint(&journal.run, row));
        ledger.visit = row.sequence;
        // The row keeps the previous key until the next entry replaces it.
        core::mem::swap(&mut ledger.state_key, &mut row.state);
    }

    /// Runs a compensatable state's task and records its completion.
    pub(crate) async fn run_compensatable<C: Clock>(
        &self,
        task: &RegisteredCompensatable<S, K>,
        ledger: Option<&mut Ledger<'_, S>>,
        clock: &C,
        guard: RunGuard<'_>,
    ) -> Result<S, CanoError> {
        let key = ledger.as_deref().and_then(Ledger::key_base);
        let run = RunCompensatable {
            task: &*task.task,
            resources: &self.resources,
            key,
            attempts: 0,
        };
        let outcome = self
            .observed_attempts(&task.name, &task.config, clock, run, guard)
            .await;
        let (next, output) = outcome?;
        if let Some(ledger) = ledger {
            self.record_completion(ledger, task.name.clone(), output)
                .await?;
        }
        Ok(next.into_state())
    }

    /// Puts a completion on the stack, after writing its row. A failed write still puts
    /// it on the stack: the task's work happened and the rollback must undo it.
    async fn record_completion(
        &self,
        ledger: &mut Ledger<'_, S>,
        task: Cow<'static, str>,
        output: Vec<u8>,
    ) -> Result<(), CanoError> {
        let mut completion = Completion {
            visit: ledger.visit,
            sequence: None,
            task,
            state: ledger.state_key.clone(),
            output,
        };
        let written = match ledger.journal.as_mut() {
            None => Ok(()),
            Some(journal) => {
                let row = CheckpointRow::completion(
                    journal.next,
                    completion.state.clone(),
                    completion.task.clone(),
                    journal.version,
                    completion.output.clone(),
                );
                self.append(journal, row)
                    .await
                    .map(|sequence| completion.sequence = Some(sequence))
            }
        };
        push_completion(&mut ledger.stack, completion);
        written
    }

    /// Records a cursor of the current state (a [`RowKind::StepCursor`] row), after which the
    /// state's idempotency keys name that row as their visit. The one way every
    /// long-running task shape (stepped tasks; poll, batch and stream tasks) persists its
    /// progress: a resumed run hands the newest cursor back through
    /// `Ledger::take_resume_cursor`. Does nothing in a run without a store.
    pub(crate) async fn record_cursor(
        &self,
        ledger: &mut Ledger<'_, S>,
        task: Cow<'static, str>,
        cursor: Vec<u8>,
    ) -> Result<(), CanoError> {
        let Some(journal) = ledger.journal.as_mut() else {
            return Ok(());
        };
        let row = CheckpointRow::cursor(
            journal.next,
            ledger.state_key.clone(),
            task,
            journal.version,
            cursor,
        );
        ledger.visit = self.append(journal, row).await?;
        Ok(())
    }

    /// Runs a stepped state: one retried attempt per step, a cursor row after each.
    pub(crate) async fn run_stepped<C: Clock>(
        &self,
        task: &RegisteredStepped<S, K>,
        mut ledger: Option<&mut Ledger<'_, S>>,
        at: usize,
        clock: &C,
        guard: RunGuard<'_>,
    ) -> Result<S, CanoError> {
        let events = TaskEvents {
            observers: self.observers(),
            id: TaskId {
                name: &task.name,
                branch: None,
            },
        };
        events.start();
        let mut cursor = ledger
            .as_deref_mut()
            .and_then(|ledger| ledger.take_resume_cursor(at));
        let outcome = loop {
            let step = RunStep {
                task: &*task.task,
                resources: &self.resources,
                key: ledger.as_deref().and_then(Ledger::key_base),
                cursor: cursor.as_deref(),
                attempts: 0,
            };
            match Attempts::new(
                &task.config,
                clock,
                self.jitter().get(),
                step,
                events,
                Some(guard),
            )
            .await
            {
                Err(error) => break Err(error),
                Ok(StepOutcome::Done(next)) => break Ok(next.into_state()),
                Ok(StepOutcome::More(next_cursor)) => {
                    if let Some(ledger) = ledger.as_deref_mut()
                        && let Err(error) = self
                            .record_cursor(ledger, task.name.clone(), next_cursor.clone())
                            .await
                    {
                        break Err(error);
                    }
                    cursor = Some(next_cursor);
                }
            }
        };
        events.finish(&outcome);
        outcome
    }

    /// Ends a ledgered run: finishes the log after success, drains the compensations after
    /// a failure.
    pub(crate) async fn settle<C: Clock>(
        &self,
        ledger: &mut Ledger<'_, S>,
        outcome: Result<S, CanoError>,
        resumed_rollback: bool,
        clock: &C,
    ) -> Result<S, CanoError> {
        match outcome {
            Ok(exit) => {
                self.finish_log(ledger, RunOutcome::Completed).await;
                Ok(exit)
            }
            Err(error) if ownership_lost(&error) => Err(error),
            Err(error) if ledger.stack.is_empty() && !resumed_rollback => {
                // Nothing to undo: the log stays, so the run can be resumed.
                Err(error)
            }
            // Boxed: the drain is the rare path and its future is large.
            Err(error) => Err(alloc::boxed::Box::pin(self.drain(ledger, error, clock)).await),
        }
    }

    async fn finish_log(&self, ledger: &mut Ledger<'_, S>, outcome: RunOutcome) {
        let Some(journal) = ledger.journal.as_ref() else {
            return;
        };
        if let Err(error) = journal
            .store
            .finish_dyn(&journal.run, journal.fence, outcome)
            .await
        {
            self.observers()
                .iter()
                .for_each(|o| o.on_checkpoint_error(&journal.run, &error));
        }
    }

    /// A best-effort row of the drain: `Ok(true)` if it landed, `Ok(false)` if not (or
    /// there is no log), `Err` only when the run is no longer ours.
    async fn drain_row(
        &self,
        ledger: &mut Ledger<'_, S>,
        kind: RowKind,
        task: Cow<'static, str>,
        blob: Option<Vec<u8>>,
    ) -> Result<bool, CanoError> {
        let Some(journal) = ledger.journal.as_mut() else {
            return Ok(false);
        };
        let row = CheckpointRow {
            sequence: journal.next,
            kind,
            state: ledger.state_key.clone(),
            task,
            workflow_version: journal.version,
            blob,
        };
        match self.append(journal, row).await {
            Ok(_) => Ok(true),
            Err(error) if ownership_lost(&error) => Err(error),
            Err(CanoError::CheckpointStore(error)) => {
                self.observers()
                    .iter()
                    .for_each(|o| o.on_checkpoint_error(&journal.run, &error));
                Ok(false)
            }
            Err(_) => Ok(false),
        }
    }

    pub(crate) fn compensation_budget(&self) -> Duration {
        self.settings.compensation_timeout().unwrap_or_else(|| {
            self.settings
                .total_timeout()
                .map_or(DEFAULT_COMPENSATION_BUDGET, |total| {
                    (total / 2).min(DEFAULT_COMPENSATION_BUDGET)
                })
        })
    }

    fn compensatable_named(&self, name: &str) -> Option<&RegisteredCompensatable<S, K>> {
        self.states.iter().find_map(|slot| match &slot.handler {
            Some(Handler::Compensatable(task)) if task.name == name => Some(&**task),
            _ => None,
        })
    }

    /// The rollback: every completion on the stack, newest first. Returns the run's error.
    async fn drain<C: Clock>(
        &self,
        ledger: &mut Ledger<'_, S>,
        original: CanoError,
        clock: &C,
    ) -> CanoError {
        self.observers()
            .iter()
            .for_each(|o| o.on_rollback_start(&original));
        if !ledger.rollback_recorded {
            let text = alloc::string::ToString::to_string(&original).into_bytes();
            let started = RowKind::RollbackStarted;
            match self
                .drain_row(ledger, started, Cow::Borrowed(""), Some(text))
                .await
            {
                Err(lost) => return CanoError::compensation_failed(alloc::vec![original, lost]),
                Ok(landed) => ledger.rollback_recorded = landed,
            }
        }
        let budget = self.compensation_budget();
        let deadline = clock.now() + budget;
        let mut errors = alloc::vec![original];
        while let Some(completion) = ledger.stack.pop() {
            let Some(task) = self.compensatable_named(&completion.task) else {
                errors.push(CanoError::workflow(alloc::format!(
                    "no compensatable task named `{}` is registered: its work in state `{}` cannot be rolled back",
                    completion.task, completion.state
                )));
                continue;
            };
            let events = TaskEvents {
                observers: self.observers(),
                id: TaskId {
                    name: &task.name,
                    branch: None,
                },
            };
            self.observers()
                .iter()
                .for_each(|o| o.on_compensation_start(events.id));
            let result = self
                .compensate(ledger, task, &completion, deadline, budget, clock)
                .await;
            self.observers()
                .iter()
                .for_each(|o| o.on_compensation_finish(events.id, result.as_ref().map(|_| ())));
            match result {
                Err(error) => errors.push(error),
                Ok(()) => {
                    let Some(sequence) = completion.sequence else {
                        continue;
                    };
                    let done = RowKind::CompensationDone {
                        completion: sequence,
                    };
                    if let Err(lost) = self.drain_row(ledger, done, completion.task, None).await {
                        errors.push(lost);
                        return CanoError::compensation_failed(errors);
                    }
                }
            }
        }
        if errors.len() == 1 {
            self.finish_log(ledger, RunOutcome::RolledBack).await;
            errors.remove(0)
        } else {
            CanoError::compensation_failed(errors)
        }
    }

    /// One compensation: bounded by the task's attempt timeout and the budget's deadline,
    /// panics isolated.
    async fn compensate<C: Clock>(
        &self,
        ledger: &Ledger<'_, S>,
        task: &RegisteredCompensatable<S, K>,
        completion: &Completion,
        deadline: crate::time::Instant,
        budget: Duration,
        clock: &C,
    ) -> Result<(), CanoError> {
        let now = clock.now();
        if now >= deadline {
            return Err(CanoError::timeout(alloc::format!(
                "the compensation budget of {} ran out before compensating `{}`",
                DurationText(budget),
                task.name
            )));
        }
        let limit = match task.config.attempt_timeout {
            Some(timeout) if now + timeout < deadline => now + timeout,
            _ => deadline,
        };
        let key = ledger.journal.as_ref().map(|journal| KeyBase {
            run: &journal.run,
            visit: completion.sequence.unwrap_or(completion.visit),
            state: &completion.state,
        });
        let ctx: TaskContext<'_, K> = KeyBase::context(key, &self.resources, 1);
        let future = isolate_panic(|| task.task.compensate_dyn(ctx, &completion.output))?;
        let sleep = clock.sleep_until(limit);
        match select(pin!(Isolated(future)), pin!(sleep)).await {
            Either::Left((Ok(result), _)) => result,
            Either::Left((Err(panicked), _)) => Err(panicked),
            Either::Right(_) => Err(CanoError::timeout(alloc::format!(
                "compensating `{}` took longer than {}",
                task.name,
                DurationText(limit.saturating_duration_since(now))
            ))),
        }
    }
}

/// Pushes a completion; a completion of the visit on top replaces it (the state re-ran
/// after a resume, so its older completion describes the same work).
fn push_completion(stack: &mut Vec<Completion>, completion: Completion) {
    match stack.last_mut() {
        Some(top) if top.visit == completion.visit => *top = completion,
        _ => stack.push(completion),
    }
}

impl<S> fmt::Debug for Ledger<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("run", &self.journal.as_ref().map(|j| &j.run))
            .field("completions", &self.stack.len())
            .finish_non_exhaustive()
    }
}
