//! The checkpoint store on redb: cano-core's [`CheckpointStore`] contract, each write a job
//! of the group committer, each read a read transaction on the `blocking` pool.
//!
//! A run's header (`cano_checkpoint_runs`) is `[1][fence: u64]` (little-endian); it
//! exists exactly while the run is unfinished. The next sequence is one past the run's last
//! row, so an append dirties only the rows table (as cano 0.12's single-table store did):
//! the header changes only on start, resume and finish. A tombstone
//! (`cano_checkpoint_tombstones`) is `[1][age: u64][outcome blob]`, the outcome in the
//! core's blob encoding.

use std::borrow::Cow;
use std::sync::Arc;

use cano_core::checkpoint::{
    CheckpointError, CheckpointResult, CheckpointRow, CheckpointStore, Fence, RunId, RunLog,
    RunOutcome, decode_blob, decode_row, encode_blob, encode_row,
};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use crate::RedbStore;
use crate::commit::WriteJob;
use crate::error::{FailureKind, TransactionFailure};
use crate::layout::{
    CheckpointTables, LAST_FENCE_KEY, LAST_FINISH_KEY, META, ROWS, RUNS, TOMBSTONES, WriteTables,
};

const HEADER_FORMAT: u8 = 1;
const TOMBSTONE_FORMAT: u8 = 1;

/// An unfinished run's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    fence: u64,
}

impl Header {
    fn encode(self) -> [u8; 9] {
        let mut bytes = [0u8; 9];
        bytes[0] = HEADER_FORMAT;
        bytes[1..9].copy_from_slice(&self.fence.to_le_bytes());
        bytes
    }

    fn decode(run: &str, bytes: &[u8]) -> CheckpointResult<Header> {
        match bytes {
            [HEADER_FORMAT, rest @ ..] if rest.len() == 8 => Ok(Header {
                fence: u64_at(rest, 0),
            }),
            _ => Err(corrupt(format!(
                "the header of run `{run}` is not a cano-redb header ({} bytes)",
                bytes.len()
            ))),
        }
    }
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

fn corrupt(detail: String) -> CheckpointError {
    CheckpointError::Corrupt(Cow::Owned(detail))
}

impl From<TransactionFailure> for CheckpointError {
    fn from(failure: TransactionFailure) -> Self {
        let message = Cow::Owned(failure.message.to_string());
        match failure.kind {
            FailureKind::Unavailable => CheckpointError::Unavailable(message),
            FailureKind::Corrupt => CheckpointError::Corrupt(message),
            FailureKind::Backend => CheckpointError::Backend(message),
        }
    }
}

/// Reads a u64 counter from `cano_meta` (0 when absent).
fn counter(tables: &CheckpointTables<'_>, key: &str) -> Result<u64, TransactionFailure> {
    Ok(match tables.meta.get(key)? {
        Some(v) => match <[u8; 8]>::try_from(v.value()) {
            Ok(word) => u64::from_le_bytes(word),
            Err(_) => {
                return Err(TransactionFailure::new(
                    FailureKind::Corrupt,
                    format!("the store counter `{key}` is not a u64"),
                ));
            }
        },
        None => 0,
    })
}

/// Bumps a `cano_meta` counter and returns its new value.
fn bump(tables: &mut CheckpointTables<'_>, key: &'static str) -> Result<u64, TransactionFailure> {
    let next = counter(tables, key)?.checked_add(1).ok_or_else(|| {
        TransactionFailure::new(FailureKind::Backend, format!("counter `{key}` overflowed"))
    })?;
    tables.meta.insert(key, next.to_le_bytes().as_slice())?;
    Ok(next)
}

fn header(tables: &CheckpointTables<'_>, run: &str) -> Result<Option<Header>, Answer> {
    match tables.runs.get(run).map_err(TransactionFailure::from) {
        Ok(Some(bytes)) => Header::decode(run, bytes.value())
            .map(Some)
            .map_err(Answer::Own),
        Ok(None) => Ok(None),
        Err(failure) => Err(Answer::Failure(failure)),
    }
}

/// A job's outcome before it is split into "answer the caller" and "abort the batch".
enum Answer {
    Own(CheckpointError),
    Failure(TransactionFailure),
}

impl From<TransactionFailure> for Answer {
    fn from(failure: TransactionFailure) -> Self {
        Answer::Failure(failure)
    }
}

/// Runs a job body: its own errors become the caller's answer, transaction failures abort
/// the batch.
fn settle<T>(
    body: impl FnOnce() -> Result<T, Answer>,
) -> Result<CheckpointResult<T>, TransactionFailure> {
    match body() {
        Ok(value) => Ok(Ok(value)),
        Err(Answer::Own(error)) => Ok(Err(error)),
        Err(Answer::Failure(failure)) => Err(failure),
    }
}

/// The current header of `run` if `fence` owns it; `Fenced` otherwise.
fn owned(tables: &CheckpointTables<'_>, run: &str, fence: Fence) -> Result<Header, Answer> {
    match header(tables, run)? {
        Some(header) if header.fence == fence.0 => Ok(header),
        found => Err(Answer::Own(CheckpointError::Fenced {
            run: RunId::new(run),
            presented: fence,
            current: found.map(|h| Fence(h.fence)),
        })),
    }
}

fn forget_tombstone(tables: &mut CheckpointTables<'_>, run: &str) -> Result<(), Answer> {
    let removed = tables
        .tombstones
        .remove(run)
        .map_err(TransactionFailure::from)?;
    if let Some(bytes) = removed {
        let age = tombstone_age(run, bytes.value()).map_err(Answer::Own)?;
        drop(bytes);
        tables
            .tombstone_ages
            .remove(age)
            .map_err(TransactionFailure::from)?;
    }
    Ok(())
}

fn tombstone_age(run: &str, bytes: &[u8]) -> CheckpointResult<u64> {
    match bytes {
        [TOMBSTONE_FORMAT, rest @ ..] if rest.len() > 8 => Ok(u64_at(rest, 0)),
        _ => Err(corrupt(format!(
            "the tombstone of run `{run}` is not a cano-redb tombstone"
        ))),
    }
}

fn decode_tombstone(run: &str, bytes: &[u8]) -> CheckpointResult<RunOutcome> {
    tombstone_age(run, bytes)?;
    decode_blob(&bytes[9..])
}

struct Start {
    run: String,
    row0: Vec<u8>,
}

impl WriteJob for Start {
    type Answer = CheckpointResult<Fence>;

    fn apply(&mut self, tables: &mut WriteTables<'_>) -> Result<Self::Answer, TransactionFailure> {
        let tables = tables.checkpoint()?;
        let run = self.run.as_str();
        settle(|| {
            if header(tables, run)?.is_some() {
                return Err(Answer::Own(CheckpointError::Conflict {
                    run: RunId::new(run),
                    detail: Cow::Borrowed("the run already has an unfinished log"),
                }));
            }
            forget_tombstone(tables, run)?;
            // A finished run's rows were dropped at finish; drop strays all the same, so a
            // new log can never show rows of an old one.
            tables
                .rows
                .retain_in((run, 0)..=(run, u64::MAX), |_, _| false)
                .map_err(TransactionFailure::from)?;
            let fence = bump(tables, LAST_FENCE_KEY)?;
            tables
                .runs
                .insert(run, Header { fence }.encode().as_slice())
                .map_err(TransactionFailure::from)?;
            tables
                .rows
                .insert((run, 0), self.row0.as_slice())
                .map_err(TransactionFailure::from)?;
            Ok(Fence(fence))
        })
    }
}

struct Resume {
    run: String,
}

impl WriteJob for Resume {
    type Answer = CheckpointResult<Fence>;

    fn apply(&mut self, tables: &mut WriteTables<'_>) -> Result<Self::Answer, TransactionFailure> {
        let tables = tables.checkpoint()?;
        let run = self.run.as_str();
        settle(|| {
            if header(tables, run)?.is_none() {
                return Err(Answer::Own(CheckpointError::NotFound {
                    run: RunId::new(run),
                }));
            }
            let fence = bump(tables, LAST_FENCE_KEY)?;
            tables
                .runs
                .insert(run, Header { fence }.encode().as_slice())
                .map_err(TransactionFailure::from)?;
            Ok(Fence(fence))
        })
    }
}

struct Append {
    run: String,
    fence: Fence,
    sequence: u64,
    row: Vec<u8>,
}

impl WriteJob for Append {
    type Answer = CheckpointResult<()>;

    fn apply(&mut self, tables: &mut WriteTables<'_>) -> Result<Self::Answer, TransactionFailure> {
        let tables = tables.checkpoint()?;
        let run = self.run.as_str();
        settle(|| {
            owned(tables, run, self.fence)?;
            let last = tables
                .rows
                .range((run, 0)..=(run, u64::MAX))
                .map_err(TransactionFailure::from)?
                .next_back()
                .transpose()
                .map_err(TransactionFailure::from)?
                .map(|(key, _)| key.value().1);
            let Some(last) = last else {
                return Err(Answer::Own(corrupt(format!(
                    "run `{run}` has a header but no rows"
                ))));
            };
            let next = last + 1;
            if self.sequence != next {
                return Err(Answer::Own(CheckpointError::Conflict {
                    run: RunId::new(run),
                    detail: Cow::Owned(format!(
                        "sequence {} offered, {next} expected",
                        self.sequence
                    )),
                }));
            }
            tables
                .rows
                .insert((run, self.sequence), self.row.as_slice())
                .map_err(TransactionFailure::from)?;
            Ok(())
        })
    }
}

struct Finish {
    run: String,
    fence: Fence,
    outcome: Vec<u8>,
    tombstones: usize,
}

impl WriteJob for Finish {
    type Answer = CheckpointResult<()>;

    fn apply(&mut self, tables: &mut WriteTables<'_>) -> Result<Self::Answer, TransactionFailure> {
        let tables = tables.checkpoint()?;
        let run = self.run.as_str();
        settle(|| {
            owned(tables, run, self.fence)?;
            tables
                .rows
                .retain_in((run, 0)..=(run, u64::MAX), |_, _| false)
                .map_err(TransactionFailure::from)?;
            tables.runs.remove(run).map_err(TransactionFailure::from)?;
            forget_tombstone(tables, run)?;
            if self.tombstones > 0 {
                let age = bump(tables, LAST_FINISH_KEY)?;
                let mut value = Vec::with_capacity(9 + self.outcome.len());
                value.push(TOMBSTONE_FORMAT);
                value.extend_from_slice(&age.to_le_bytes());
                value.extend_from_slice(&self.outcome);
                tables
                    .tombstones
                    .insert(run, value.as_slice())
                    .map_err(TransactionFailure::from)?;
                tables
                    .tombstone_ages
                    .insert(age, run)
                    .map_err(TransactionFailure::from)?;
            }
            // Forget the oldest tombstones beyond the capacity (also after the capacity was
            // lowered between two opens).
            while tables
                .tombstone_ages
                .len()
                .map_err(TransactionFailure::from)?
                > self.tombstones as u64
            {
                let Some((_, oldest)) = tables
                    .tombstone_ages
                    .pop_first()
                    .map_err(TransactionFailure::from)?
                else {
                    break;
                };
                let oldest = oldest.value().to_owned();
                tables
                    .tombstones
                    .remove(oldest.as_str())
                    .map_err(TransactionFailure::from)?;
            }
            Ok(())
        })
    }
}

fn load_blocking(db: &Database, run: &str) -> CheckpointResult<RunLog> {
    let txn = db.begin_read().map_err(TransactionFailure::from)?;
    let runs = txn.open_table(RUNS).map_err(TransactionFailure::from)?;
    let Some(header) = runs.get(run).map_err(TransactionFailure::from)? else {
        let tombstones = txn
            .open_table(TOMBSTONES)
            .map_err(TransactionFailure::from)?;
        return match tombstones.get(run).map_err(TransactionFailure::from)? {
            Some(bytes) => decode_tombstone(run, bytes.value()).map(RunLog::Finished),
            None => Ok(RunLog::Unknown),
        };
    };
    Header::decode(run, header.value())?;
    let table = txn.open_table(ROWS).map_err(TransactionFailure::from)?;
    let mut rows = Vec::new();
    for entry in table
        .range((run, 0)..=(run, u64::MAX))
        .map_err(TransactionFailure::from)?
    {
        let (key, value) = entry.map_err(TransactionFailure::from)?;
        let (_, sequence) = key.value();
        let row = decode_row(value.value())?;
        if sequence != rows.len() as u64 || row.sequence != sequence {
            return Err(corrupt(format!(
                "run `{run}` has row {} stored at sequence {sequence}, after {} rows",
                row.sequence,
                rows.len()
            )));
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(corrupt(format!("run `{run}` has a header but no rows")));
    }
    Ok(RunLog::Unfinished(rows))
}

fn list_unfinished_blocking(db: &Database) -> CheckpointResult<Vec<RunId>> {
    let txn = db.begin_read().map_err(TransactionFailure::from)?;
    let runs = txn.open_table(RUNS).map_err(TransactionFailure::from)?;
    let mut ids = Vec::new();
    for entry in runs.iter().map_err(TransactionFailure::from)? {
        let (key, _) = entry.map_err(TransactionFailure::from)?;
        ids.push(RunId::new(key.value()));
    }
    // redb orders `&str` keys bytewise, which is `str`'s (and so `RunId`'s) order.
    Ok(ids)
}

fn meta_counter_blocking(db: &Database, key: &str) -> Result<u64, TransactionFailure> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(META)?;
    Ok(match meta.get(key)? {
        Some(v) => <[u8; 8]>::try_from(v.value())
            .map(u64::from_le_bytes)
            .unwrap_or(0),
        None => 0,
    })
}

impl RedbStore {
    fn db(&self) -> Arc<Database> {
        Arc::clone(self.inner.committer.database())
    }

    /// The last fence this store issued (0 for a new store). Fences survive reopening: a
    /// reopened store continues from here.
    pub async fn last_fence(&self) -> CheckpointResult<u64> {
        let db = self.db();
        Ok(blocking::unblock(move || meta_counter_blocking(&db, LAST_FENCE_KEY)).await?)
    }
}

impl CheckpointStore for RedbStore {
    async fn start(&self, run: &RunId, first: &CheckpointRow) -> CheckpointResult<Fence> {
        if first.sequence != 0 {
            return Err(CheckpointError::Conflict {
                run: run.clone(),
                detail: Cow::Owned(format!(
                    "a log starts at sequence 0, not {}",
                    first.sequence
                )),
            });
        }
        let job = Start {
            run: run.as_str().to_owned(),
            row0: encode_row(first),
        };
        self.inner.committer.submit(job).await?
    }

    async fn resume(&self, run: &RunId) -> CheckpointResult<Fence> {
        let job = Resume {
            run: run.as_str().to_owned(),
        };
        self.inner.committer.submit(job).await?
    }

    async fn append(&self, run: &RunId, fence: Fence, row: &CheckpointRow) -> CheckpointResult<()> {
        let job = Append {
            run: run.as_str().to_owned(),
            fence,
            sequence: row.sequence,
            row: encode_row(row),
        };
        self.inner.committer.submit(job).await?
    }

    async fn load(&self, run: &RunId) -> CheckpointResult<RunLog> {
        let db = self.db();
        let run = run.as_str().to_owned();
        blocking::unblock(move || load_blocking(&db, &run)).await
    }

    async fn finish(&self, run: &RunId, fence: Fence, outcome: RunOutcome) -> CheckpointResult<()> {
        let job = Finish {
            run: run.as_str().to_owned(),
            fence,
            outcome: encode_blob(&outcome)?,
            tombstones: self.inner.tombstones,
        };
        self.inner.committer.submit(job).await?
    }

    async fn list_unfinished(&self) -> CheckpointResult<Vec<RunId>> {
        let db = self.db();
        blocking::unblock(move || list_unfinished_blocking(&db)).await
    }
}
