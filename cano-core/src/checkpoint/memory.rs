//! [`MemoryCheckpointStore`]: run logs in RAM, for tests and RAM-only devices; with feature
//! `testing`, fault injection ([`Fault`]).

use alloc::borrow::Cow;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::future::{Future, ready};

use hashbrown::HashMap;

use super::{
    CheckpointError, CheckpointResult, CheckpointRow, CheckpointStore, Fence, RunId, RunLog,
    RunOutcome,
};
use crate::sync::Lock;

/// A [`CheckpointStore`] in memory. Clones share the same logs.
///
/// Every call completes immediately (its future is ready when created) and is atomic. Logs
/// live as long as the store, so a "crash" in a test is dropping the workflow's future and
/// resuming from the same store. Finished runs are forgotten unless
/// [`with_tombstones`](Self::with_tombstones) keeps the newest ones.
///
/// ```
/// use cano_core::checkpoint::{CheckpointRow, CheckpointStore, CheckpointError, MemoryCheckpointStore, RunId, RunLog, RunOutcome};
/// use futures::executor::block_on;
///
/// let store = MemoryCheckpointStore::new().with_tombstones(8);
/// let run = RunId::new("order-1");
/// block_on(async {
///     let first = store.start(&run, &CheckpointRow::state_entry(0, "reserve".into(), 1)).await.unwrap();
///     // A second live run with the same id is refused.
///     let twin = store.start(&run, &CheckpointRow::state_entry(0, "reserve".into(), 1)).await;
///     assert!(matches!(twin, Err(CheckpointError::Conflict { .. })));
///
///     // A new owner takes over: the old writer is fenced out.
///     let owner = store.resume(&run).await.unwrap();
///     let zombie = store.append(&run, first, &CheckpointRow::state_entry(1, "charge".into(), 1)).await;
///     assert!(matches!(zombie, Err(CheckpointError::Fenced { .. })));
///     store.append(&run, owner, &CheckpointRow::state_entry(1, "charge".into(), 1)).await.unwrap();
///
///     store.finish(&run, owner, RunOutcome::Completed).await.unwrap();
///     assert_eq!(store.load(&run).await.unwrap(), RunLog::Finished(RunOutcome::Completed));
///     assert!(store.list_unfinished().await.unwrap().is_empty());
/// });
/// ```
#[derive(Clone, Default)]
pub struct MemoryCheckpointStore {
    inner: Arc<Lock<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// The last fence issued, store-wide.
    last_fence: u64,
    /// Each unfinished run's place in `logs`. A hash map, not a B-tree: it keeps its table
    /// when a finished run is removed, so a store that runs one workflow after another
    /// allocates nothing per run for the index.
    index: HashMap<RunId, usize>,
    /// The unfinished logs, dense (a finished log's place goes to the last one).
    logs: Vec<Log>,
    /// The fence and place of the log written last: a run's next append finds its log
    /// without hashing its id (checked against the log's fence and id, so never wrong).
    hot: Option<(Fence, usize)>,
    tombstones: VecDeque<(RunId, RunOutcome)>,
    tombstone_capacity: usize,
    appends: u64,
    /// The emptied row buffer of the last finished run, reused by the next start: a store
    /// that runs one workflow after another allocates no row buffer per run.
    spare_rows: Vec<CheckpointRow>,
    #[cfg(feature = "testing")]
    faults: Vec<Fault>,
}

struct Log {
    run: RunId,
    fence: Fence,
    /// A load copies the rows inside the lock: loads are rare (a resume, a test), appends
    /// are per transition and must stay one push.
    rows: Vec<CheckpointRow>,
}

impl Inner {
    fn issue_fence(&mut self) -> Fence {
        self.last_fence += 1;
        Fence(self.last_fence)
    }

    fn place(&self, run: &RunId) -> Option<usize> {
        self.index.get(run).copied()
    }

    fn get(&self, run: &RunId) -> Option<&Log> {
        self.place(run).map(|at| &self.logs[at])
    }

    #[inline]
    fn owned(&mut self, run: &RunId, presented: Fence) -> CheckpointResult<&mut Log> {
        let hot = self.hot.and_then(|(fence, at)| {
            let log = self.logs.get(at)?;
            (fence == presented && log.fence == presented && same_run(&log.run, run)).then_some(at)
        });
        let found = hot.or_else(|| self.place(run));
        match found.map(|at| (at, self.logs[at].fence)) {
            Some((at, fence)) if fence == presented => {
                self.hot = Some((presented, at));
                Ok(&mut self.logs[at])
            }
            found => Err(fenced(run, presented, found.map(|(_, fence)| fence))),
        }
    }

    fn append(&mut self, run: &RunId, fence: Fence, row: CheckpointRow) -> CheckpointResult<()> {
        let log = self.owned(run, fence)?;
        let next = log.rows.len() as u64;
        if row.sequence != next {
            return Err(CheckpointError::Conflict {
                run: run.clone(),
                detail: Cow::Owned(alloc::format!(
                    "sequence {} offered, {next} expected",
                    row.sequence
                )),
            });
        }
        log.rows.push(row);
        self.appends += 1;
        Ok(())
    }

    /// [`append`](Self::append) with the armed faults applied.
    #[cfg(feature = "testing")]
    #[cold]
    fn append_with_faults(
        &mut self,
        run: &RunId,
        fence: Fence,
        row: CheckpointRow,
    ) -> CheckpointResult<()> {
        let after_write = match self.take_fault(Operation::Append, Some(row.sequence)) {
            Some(fault) if !fault.after_write => return Err(fault.error),
            other => other,
        };
        self.append(run, fence, row)?;
        match after_write {
            Some(fault) => Err(fault.error),
            None => Ok(()),
        }
    }

    /// Adds (or replaces) `run`'s log.
    fn insert(&mut self, log: Log) -> usize {
        match self.place(&log.run) {
            Some(at) => {
                self.logs[at] = log;
                at
            }
            None => {
                self.index.insert(log.run.clone(), self.logs.len());
                self.logs.push(log);
                self.logs.len() - 1
            }
        }
    }

    fn remove(&mut self, run: &RunId) -> Option<Log> {
        let at = self.index.remove(run)?;
        let log = self.logs.swap_remove(at);
        if let Some(moved) = self.logs.get(at)
            && let Some(place) = self.index.get_mut(&moved.run)
        {
            *place = at;
        }
        self.hot = None;
        Some(log)
    }

    fn forget_tombstone(&mut self, run: &RunId) {
        self.tombstones.retain(|(id, _)| id != run);
    }
}

#[cold]
fn fenced(run: &RunId, presented: Fence, current: Option<Fence>) -> CheckpointError {
    CheckpointError::Fenced {
        run: run.clone(),
        presented,
        current,
    }
}

/// Whether two ids name one run (one shared id, as a run's writes pass it, compares at once).
fn same_run(a: &RunId, b: &RunId) -> bool {
    Arc::ptr_eq(&a.0, &b.0) || a.0 == b.0
}

impl MemoryCheckpointStore {
    /// An empty store that keeps no tombstones.
    pub fn new() -> Self {
        MemoryCheckpointStore::default()
    }

    /// Keeps the outcome of the newest `capacity` finished runs ([`RunLog::Finished`]);
    /// older ones are forgotten ([`RunLog::Unknown`]).
    pub fn with_tombstones(self, capacity: usize) -> Self {
        self.inner.with(|inner| {
            inner.tombstone_capacity = capacity;
            while inner.tombstones.len() > capacity {
                inner.tombstones.pop_front();
            }
        });
        self
    }

    /// Successful appends so far (not counting [`start`](CheckpointStore::start)'s row 0).
    pub fn appends(&self) -> u64 {
        self.inner.with(|inner| inner.appends)
    }

    /// [`CheckpointStore::load`], synchronously (for tests and inspection).
    pub fn log(&self, run: &RunId) -> RunLog {
        let snapshot = self.inner.with(|inner| match inner.get(run) {
            Some(log) => Ok(log.rows.clone()),
            None => Err(inner
                .tombstones
                .iter()
                .find(|(id, _)| id == run)
                .map(|(_, outcome)| *outcome)),
        });
        match snapshot {
            Ok(rows) => RunLog::Unfinished(rows),
            Err(Some(outcome)) => RunLog::Finished(outcome),
            Err(None) => RunLog::Unknown,
        }
    }

    /// The rows of `run`'s unfinished log (empty if it has none).
    pub fn rows(&self, run: &RunId) -> Vec<CheckpointRow> {
        match self.log(run) {
            RunLog::Unfinished(rows) => rows,
            _ => Vec::new(),
        }
    }

    /// Replaces `run`'s log with `rows` under a new fence, as if a process had written them
    /// and died: for tests that start from a crafted log (an old version's, a renamed
    /// state's). Returns the fence. `rows` must be dense from 0; the store does not check.
    pub fn seed(&self, run: &RunId, rows: Vec<CheckpointRow>) -> Fence {
        self.inner.with(|inner| {
            let fence = inner.issue_fence();
            inner.forget_tombstone(run);
            inner.insert(Log {
                run: run.clone(),
                fence,
                rows,
            });
            fence
        })
    }

    fn start_now(&self, run: &RunId, first: &CheckpointRow) -> CheckpointResult<Fence> {
        if first.sequence != 0 {
            return Err(CheckpointError::Conflict {
                run: run.clone(),
                detail: Cow::Owned(alloc::format!(
                    "a log starts at sequence 0, not {}",
                    first.sequence
                )),
            });
        }
        let first = first.clone();
        self.inner.with(|inner| {
            #[cfg(feature = "testing")]
            let after_write = match inner.take_fault(Operation::Start, Some(0)) {
                Some(fault) if !fault.after_write => return Err(fault.error),
                other => other,
            };
            if inner.place(run).is_some() {
                return Err(CheckpointError::Conflict {
                    run: run.clone(),
                    detail: Cow::Borrowed("the run already has an unfinished log"),
                });
            }
            let fence = inner.issue_fence();
            inner.forget_tombstone(run);
            let mut rows = core::mem::take(&mut inner.spare_rows);
            rows.push(first);
            let at = inner.insert(Log {
                run: run.clone(),
                fence,
                rows,
            });
            inner.hot = Some((fence, at));
            #[cfg(feature = "testing")]
            if let Some(fault) = after_write {
                return Err(fault.error);
            }
            Ok(fence)
        })
    }

    fn resume_now(&self, run: &RunId) -> CheckpointResult<Fence> {
        self.inner.with(|inner| {
            #[cfg(feature = "testing")]
            if let Some(fault) = inner.take_fault(Operation::Resume, None) {
                return Err(fault.error);
            }
            let Some(at) = inner.place(run) else {
                return Err(CheckpointError::NotFound { run: run.clone() });
            };
            let fence = inner.issue_fence();
            inner.logs[at].fence = fence;
            inner.hot = Some((fence, at));
            Ok(fence)
        })
    }

    fn append_now(&self, run: &RunId, fence: Fence, row: &CheckpointRow) -> CheckpointResult<()> {
        let row = row.clone();
        self.inner.with(|inner| {
            #[cfg(feature = "testing")]
            if !inner.faults.is_empty() {
                return inner.append_with_faults(run, fence, row);
            }
            inner.append(run, fence, row)
        })
    }

    fn finish_now(&self, run: &RunId, fence: Fence, outcome: RunOutcome) -> CheckpointResult<()> {
        let dropped = self.inner.with(|inner| {
            #[cfg(feature = "testing")]
            let after_write = match inner.take_fault(Operation::Finish, None) {
                Some(fault) if !fault.after_write => return Err(fault.error),
                other => other,
            };
            inner.owned(run, fence)?;
            let dropped = inner.remove(run);
            if inner.tombstone_capacity > 0 {
                if inner.tombstones.len() == inner.tombstone_capacity {
                    inner.tombstones.pop_front();
                }
                inner.tombstones.push_back((run.clone(), outcome));
            }
            #[cfg(feature = "testing")]
            if let Some(fault) = after_write {
                return Err(fault.error);
            }
            Ok(dropped)
        })?;
        // The rows are freed outside the lock; their buffer is kept for the next start.
        if let Some(Log { mut rows, .. }) = dropped {
            rows.clear();
            let replaced = self.inner.with(|inner| {
                if rows.capacity() > inner.spare_rows.capacity() {
                    core::mem::replace(&mut inner.spare_rows, rows)
                } else {
                    rows
                }
            });
            drop(replaced);
        }
        Ok(())
    }

    fn load_now(&self, run: &RunId) -> CheckpointResult<RunLog> {
        #[cfg(feature = "testing")]
        if let Some(fault) = self
            .inner
            .with(|inner| inner.take_fault(Operation::Load, None))
        {
            return Err(fault.error);
        }
        Ok(self.log(run))
    }

    fn list_now(&self) -> CheckpointResult<Vec<RunId>> {
        self.inner
            .with(|inner| {
                #[cfg(feature = "testing")]
                if let Some(fault) = inner.take_fault(Operation::ListUnfinished, None) {
                    return Err(fault.error);
                }
                Ok(inner
                    .logs
                    .iter()
                    .map(|log| log.run.clone())
                    .collect::<Vec<RunId>>())
            })
            .map(|mut runs| {
                runs.sort_unstable();
                runs
            })
    }
}

impl CheckpointStore for MemoryCheckpointStore {
    fn start(
        &self,
        run: &RunId,
        first: &CheckpointRow,
    ) -> impl Future<Output = CheckpointResult<Fence>> + Send {
        ready(self.start_now(run, first))
    }

    fn resume(&self, run: &RunId) -> impl Future<Output = CheckpointResult<Fence>> + Send {
        ready(self.resume_now(run))
    }

    fn append(
        &self,
        run: &RunId,
        fence: Fence,
        row: &CheckpointRow,
    ) -> impl Future<Output = CheckpointResult<()>> + Send {
        ready(self.append_now(run, fence, row))
    }

    /// Always `Some`: every call completes at once.
    fn try_append_now(
        &self,
        run: &RunId,
        fence: Fence,
        row: &CheckpointRow,
    ) -> Option<CheckpointResult<()>> {
        Some(self.append_now(run, fence, row))
    }

    fn load(&self, run: &RunId) -> impl Future<Output = CheckpointResult<RunLog>> + Send {
        ready(self.load_now(run))
    }

    fn finish(
        &self,
        run: &RunId,
        fence: Fence,
        outcome: RunOutcome,
    ) -> impl Future<Output = CheckpointResult<()>> + Send {
        ready(self.finish_now(run, fence, outcome))
    }

    fn list_unfinished(&self) -> impl Future<Output = CheckpointResult<Vec<RunId>>> + Send {
        ready(self.list_now())
    }
}

impl fmt::Debug for MemoryCheckpointStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (runs, tombstones) = self
            .inner
            .with(|inner| (inner.logs.len(), inner.tombstones.len()));
        f.debug_struct("MemoryCheckpointStore")
            .field("unfinished_runs", &runs)
            .field("tombstones", &tombstones)
            .finish()
    }
}

/// A store call [`Fault`] can target.
#[cfg(feature = "testing")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// [`CheckpointStore::start`].
    Start,
    /// [`CheckpointStore::resume`].
    Resume,
    /// [`CheckpointStore::append`].
    Append,
    /// [`CheckpointStore::load`].
    Load,
    /// [`CheckpointStore::finish`].
    Finish,
    /// [`CheckpointStore::list_unfinished`].
    ListUnfinished,
}

/// An injected failure of a [`MemoryCheckpointStore`] call (feature `testing`).
///
/// By default the targeted call fails with [`CheckpointError::Unavailable`] *before* it
/// changes anything; [`after_write`](Self::after_write) makes it fail after its write landed
/// (the lost-acknowledgement case a real store can produce).
///
/// ```
/// use cano_core::checkpoint::{CheckpointRow, CheckpointStore, CheckpointError, Fault, MemoryCheckpointStore, Operation, RunId};
/// use futures::executor::block_on;
///
/// let store = MemoryCheckpointStore::new();
/// store.inject(Fault::on(Operation::Append).at_sequence(2));
/// let run = RunId::new("r");
/// block_on(async {
///     let fence = store.start(&run, &CheckpointRow::state_entry(0, "a".into(), 1)).await.unwrap();
///     store.append(&run, fence, &CheckpointRow::state_entry(1, "b".into(), 1)).await.unwrap();
///     let failed = store.append(&run, fence, &CheckpointRow::state_entry(2, "c".into(), 1)).await;
///     assert!(matches!(failed, Err(CheckpointError::Unavailable(_))));
///     // The fault fired once; the retry succeeds.
///     store.append(&run, fence, &CheckpointRow::state_entry(2, "c".into(), 1)).await.unwrap();
/// });
/// ```
#[cfg(feature = "testing")]
#[derive(Debug, Clone)]
pub struct Fault {
    operation: Operation,
    sequence: Option<u64>,
    skip: u32,
    times: u32,
    after_write: bool,
    error: CheckpointError,
}

#[cfg(feature = "testing")]
impl Fault {
    /// Fails the next call of `operation`, once, with [`CheckpointError::Unavailable`].
    pub fn on(operation: Operation) -> Self {
        Fault {
            operation,
            sequence: None,
            skip: 0,
            times: 1,
            after_write: false,
            error: CheckpointError::Unavailable(Cow::Borrowed("injected fault")),
        }
    }

    /// Only calls writing the row with this sequence count ([`Operation::Append`] and
    /// [`Operation::Start`], whose row is 0).
    pub fn at_sequence(mut self, sequence: u64) -> Self {
        self.sequence = Some(sequence);
        self
    }

    /// Lets the first `calls` matching calls pass.
    pub fn after(mut self, calls: u32) -> Self {
        self.skip = calls;
        self
    }

    /// Fails `times` matching calls (default 1; `u32::MAX` for "from now on").
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }

    /// Applies the write, then reports the failure.
    pub fn after_write(mut self) -> Self {
        self.after_write = true;
        self
    }

    /// Fails with `error` instead of [`CheckpointError::Unavailable`].
    pub fn with_error(mut self, error: CheckpointError) -> Self {
        self.error = error;
        self
    }
}

#[cfg(feature = "testing")]
impl MemoryCheckpointStore {
    /// Arms `fault`; faults are checked in the order they were injected.
    pub fn inject(&self, fault: Fault) {
        self.inner.with(|inner| inner.faults.push(fault));
    }

    /// Disarms every fault.
    pub fn clear_faults(&self) {
        self.inner.with(|inner| inner.faults.clear());
    }
}

#[cfg(feature = "testing")]
impl Inner {
    /// The fault that fires for this call, if any (consuming one of its times).
    #[inline(always)]
    fn take_fault(&mut self, operation: Operation, sequence: Option<u64>) -> Option<Fault> {
        if self.faults.is_empty() {
            None
        } else {
            self.take_armed_fault(operation, sequence)
        }
    }

    #[cold]
    fn take_armed_fault(&mut self, operation: Operation, sequence: Option<u64>) -> Option<Fault> {
        let at = self.faults.iter().position(|fault| {
            fault.operation == operation && (fault.sequence.is_none() || fault.sequence == sequence)
        })?;
        let fault = &mut self.faults[at];
        if fault.skip > 0 {
            fault.skip -= 1;
            return None;
        }
        let fired = fault.clone();
        fault.times = fault.times.saturating_sub(1);
        if fault.times == 0 {
            self.faults.remove(at);
        }
        Some(fired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    fn entry(sequence: u64) -> CheckpointRow {
        CheckpointRow::state_entry(sequence, Cow::Borrowed("s"), 1)
    }

    /// Interleaved runs, finished in every order, with each writer also presenting the
    /// other runs' fences: the log found without hashing (the last written) is never the
    /// wrong one, and a finished run's place taken by another keeps that one reachable.
    #[test]
    fn interleaved_runs_each_reach_only_their_own_log() {
        for finish_order in [
            [0, 1, 2],
            [2, 1, 0],
            [1, 0, 2],
            [1, 2, 0],
            [0, 2, 1],
            [2, 0, 1],
        ] {
            let store = MemoryCheckpointStore::new();
            let runs: Vec<RunId> = (0..3)
                .map(|i| RunId::from(alloc::format!("r{i}")))
                .collect();
            let fences: Vec<Fence> = runs
                .iter()
                .map(|run| block_on(store.start(run, &entry(0))).unwrap())
                .collect();
            for sequence in 1..4 {
                for (i, run) in runs.iter().enumerate() {
                    // A twin id (another allocation, same text) writes as the run itself.
                    let twin = RunId::from(run.as_str());
                    let id = if sequence % 2 == 0 { &twin } else { run };
                    for (j, &fence) in fences.iter().enumerate() {
                        if j != i {
                            assert!(matches!(
                                store.try_append_now(id, fence, &entry(sequence)),
                                Some(Err(CheckpointError::Fenced { .. }))
                            ));
                        }
                    }
                    store
                        .try_append_now(id, fences[i], &entry(sequence))
                        .unwrap()
                        .unwrap();
                }
            }
            for (done, &i) in finish_order.iter().enumerate() {
                block_on(store.finish(&runs[i], fences[i], RunOutcome::Completed)).unwrap();
                for &k in &finish_order[done + 1..] {
                    let rows = store.rows(&runs[k]);
                    assert_eq!(rows.len(), 4 + done, "{finish_order:?}: run {k}");
                    store
                        .try_append_now(&runs[k], fences[k], &entry(4 + done as u64))
                        .unwrap()
                        .unwrap();
                }
            }
            assert!(block_on(store.list_unfinished()).unwrap().is_empty());
        }
    }
}
