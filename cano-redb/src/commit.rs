//! Group commit: one committer at a time drains every pending write into one redb write
//! transaction, commits it once (one fsync with `Durability::Immediate`), then answers each
//! caller with its own result.
//!
//! Why a queue and not a lock around `begin_write`: redb admits one writer at a time, so N
//! callers each opening their own transaction pay N serial fsyncs. Here the callers that
//! arrive while a commit is on disk wait in the queue and all ride the next commit together.
//!
//! The committer runs on the `blocking` pool (never on the caller's executor) and exists only
//! while there is work: the first submission into an idle queue starts it, and it stops when
//! it finds the queue empty. No thread waits for work, and nothing polls.
//!
//! Each job validates itself against the transaction's current contents (which include the
//! writes of the jobs before it in the same batch) and writes only if valid, so a conflict
//! of one job never fails the others. Only a failure of the transaction itself (an I/O or
//! storage error, a failed commit) fails every job of the batch, since none of them is on
//! disk then.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::channel::oneshot;
use redb::{Database, Durability};

use crate::error::TransactionFailure;
use crate::layout::WriteTables;

/// A write that joins a group commit.
///
/// `apply` runs inside the shared write transaction, whose tables it reaches through
/// `tables` (each opened once per transaction, on first use). It returns `Ok(answer)` for an
/// outcome of its own (including a rejection such as a conflict, which must then leave the
/// transaction untouched), or `Err` when the transaction itself failed, which aborts the
/// whole batch.
pub(crate) trait WriteJob: Send + 'static {
    /// What the caller is told once the batch is committed.
    type Answer: Send + 'static;
    /// Validate against `txn` and write if valid.
    fn apply(&mut self, tables: &mut WriteTables<'_>) -> Result<Self::Answer, TransactionFailure>;
}

/// What a caller receives: its own answer, or the failure of the batch it was in.
pub(crate) type JobResult<A> = Result<A, TransactionFailure>;

/// The type-erased form a job takes in the queue.
trait QueuedJob: Send {
    /// Runs the job in the batch's transaction; remembers its answer. `Err` aborts the batch.
    fn apply(&mut self, tables: &mut WriteTables<'_>) -> Result<(), TransactionFailure>;
    /// Sends the remembered answer (the batch committed) or `failure` (it did not).
    fn answer(self: Box<Self>, failure: Option<&TransactionFailure>);
}

struct Queued<J: WriteJob> {
    job: J,
    answer: Option<J::Answer>,
    reply: oneshot::Sender<JobResult<J::Answer>>,
}

impl<J: WriteJob> QueuedJob for Queued<J> {
    fn apply(&mut self, tables: &mut WriteTables<'_>) -> Result<(), TransactionFailure> {
        self.answer = Some(self.job.apply(tables)?);
        Ok(())
    }

    fn answer(self: Box<Self>, failure: Option<&TransactionFailure>) {
        let result = match (failure, self.answer) {
            (None, Some(answer)) => Ok(answer),
            (Some(failure), _) => Err(failure.clone()),
            // Not applied because an earlier job of the batch failed the transaction: that
            // failure is passed as `failure`, so this arm is unreachable in practice; answer
            // with a failure rather than panic.
            (None, None) => Err(TransactionFailure::not_applied()),
        };
        // The caller may have stopped waiting (its future was dropped): nothing to do then.
        let _ = self.reply.send(result);
    }
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Box<dyn QueuedJob>>,
    committer_running: bool,
}

/// The group committer of one database.
pub(crate) struct GroupCommitter {
    db: Arc<Database>,
    durability: Durability,
    queue: Mutex<Queue>,
    stats: Mutex<CommitStats>,
}

/// How much group commit has batched so far: see [`RedbStore::commit_stats`].
///
/// [`RedbStore::commit_stats`]: crate::RedbStore::commit_stats
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Write transactions attempted (each one commit, so one fsync with
    /// `Durability::Immediate`).
    pub transactions: u64,
    /// Writes (appends, finishes, …) carried by those transactions.
    pub writes: u64,
    /// The most writes one transaction carried.
    pub largest_batch: u64,
}

impl GroupCommitter {
    pub(crate) fn new(db: Arc<Database>, durability: Durability) -> Arc<Self> {
        Arc::new(GroupCommitter {
            db,
            durability,
            queue: Mutex::new(Queue::default()),
            stats: Mutex::new(CommitStats::default()),
        })
    }

    pub(crate) fn database(&self) -> &Arc<Database> {
        &self.db
    }

    pub(crate) fn stats(&self) -> CommitStats {
        *lock(&self.stats)
    }

    /// Queues `job` for the next commit and waits for its answer.
    ///
    /// If the returned future is dropped before it completes, the job still runs (it may
    /// already be in a transaction on disk); only its answer is lost.
    pub(crate) async fn submit<J: WriteJob>(self: &Arc<Self>, job: J) -> JobResult<J::Answer> {
        let (reply, answer) = oneshot::channel();
        let start_committer = {
            let mut queue = lock(&self.queue);
            queue.jobs.push(Box::new(Queued {
                job,
                answer: None,
                reply,
            }));
            !std::mem::replace(&mut queue.committer_running, true)
        };
        if start_committer {
            let committer = Arc::clone(self);
            blocking::unblock(move || committer.run()).detach();
        }
        match answer.await {
            Ok(result) => result,
            // The committer dropped the job without answering: it panicked inside redb.
            Err(oneshot::Canceled) => Err(TransactionFailure::committer_panicked()),
        }
    }

    /// The committer loop: drain, commit, answer, until the queue is empty.
    ///
    /// The committer lets go of the database *before* it answers its last batch, so a
    /// caller that drops the store after its answer can reopen the file at once (redb
    /// refuses a second open while any handle lives).
    fn run(self: Arc<Self>) {
        // If a batch panics outside the catch below, the guard still marks the committer
        // stopped, so the next submission starts a fresh one instead of waiting forever.
        struct StopGuard(Arc<GroupCommitter>);
        impl Drop for StopGuard {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    lock(&self.0.queue).committer_running = false;
                }
            }
        }
        let guard = StopGuard(self);
        let mut batch = match guard.0.next_batch() {
            Some(batch) => batch,
            None => return,
        };
        loop {
            let failure = guard.0.commit_batch(&mut batch);
            let more = guard.0.next_batch();
            if more.is_none() {
                drop(guard);
                answer(batch, failure.as_ref());
                return;
            }
            answer(std::mem::take(&mut batch), failure.as_ref());
            batch = more.unwrap_or_default();
        }
    }

    /// Takes every queued job, or marks the committer stopped if there is none.
    fn next_batch(&self) -> Option<Vec<Box<dyn QueuedJob>>> {
        let mut queue = lock(&self.queue);
        if queue.jobs.is_empty() {
            queue.committer_running = false;
            None
        } else {
            Some(std::mem::take(&mut queue.jobs))
        }
    }

    /// Writes and commits `batch`; `Some(failure)` if the transaction failed.
    fn commit_batch(&self, batch: &mut [Box<dyn QueuedJob>]) -> Option<TransactionFailure> {
        {
            let mut stats = lock(&self.stats);
            let len = batch.len() as u64;
            stats.transactions += 1;
            stats.writes += len;
            stats.largest_batch = stats.largest_batch.max(len);
        }
        // A panic inside redb is turned into a failure of this batch.
        catch_unwind(AssertUnwindSafe(|| self.write(batch)))
            .unwrap_or_else(|_| Err(TransactionFailure::committer_panicked()))
            .err()
    }

    fn write(&self, batch: &mut [Box<dyn QueuedJob>]) -> Result<(), TransactionFailure> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(self.durability)?;
        {
            let mut tables = WriteTables::new(&txn);
            for job in batch.iter_mut() {
                job.apply(&mut tables)?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

/// Sends each job its answer. Runs with no lock held, so waking a caller never happens
/// under one of our locks.
fn answer(batch: Vec<Box<dyn QueuedJob>>, failure: Option<&TransactionFailure>) {
    for job in batch {
        job.answer(failure);
    }
}

/// Locks `mutex`, ignoring poisoning: the data behind our locks is a queue and a counter,
/// each left consistent by every critical section, so a panic elsewhere cannot corrupt it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
