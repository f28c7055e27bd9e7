//! # cano-redb
//!
//! The embedded default store of cano: checkpointed workflow runs in one [redb] file, for
//! a single process that wants its workflows to survive a crash or a restart.
//!
//! [`RedbStore`] implements cano-core's
//! [`CheckpointStore`](cano_core::checkpoint::CheckpointStore) contract (start, resume,
//! append, load, finish, list unfinished runs; fences; conflicts) exactly as the core's
//! memory store does, and passes the same contract check. It is also the schedule store
//! ([`ScheduleStore`](cano_core::persist::ScheduleStore)): each flow's record in the same
//! file, group-committed and fenced, so a restarted scheduler catches up (see the README's
//! "Schedule state").
//!
//! * **Durable by default.** Every commit uses [`Durability::Immediate`]: when a write's
//!   future returns `Ok`, the write is on disk. [`RedbStoreBuilder::durability`] can turn
//!   the fsync off for data you can afford to lose.
//! * **Group commit.** Writes of concurrent runs are batched into one write transaction:
//!   a single committer takes every pending write, validates and applies each on its own,
//!   commits once, then answers each caller. A thousand workflows writing at once cost a
//!   handful of fsyncs, not a thousand. A conflicting or fenced write is rejected alone;
//!   the others in its batch commit.
//! * **Any executor.** Every blocking redb call (open, read and write transactions) runs
//!   on the [`blocking`](https://docs.rs/blocking) crate's thread pool, never on the
//!   caller's executor thread (cano 0.12's redb store blocked it). The same store works
//!   on tokio, smol, or `futures::executor::block_on`.
//! * **Bad files are errors.** Random bytes, a truncated file, another program's redb
//!   database and a file of a newer schema are each an [`OpenError`] at open, never a
//!   panic. Damaged rows found later are
//!   [`CheckpointError::Corrupt`](cano_core::checkpoint::CheckpointError::Corrupt).
//!
//! ```
//! use cano_core::checkpoint::{CheckpointRow, CheckpointStore, RunId, RunLog, RunOutcome};
//! use cano_redb::RedbStore;
//! # let dir = std::env::temp_dir().join(format!("cano-redb-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! # let path = dir.join("lib.redb");
//! # let _ = std::fs::remove_file(&path);
//!
//! futures::executor::block_on(async {
//!     let store = RedbStore::open(&path).await?;
//!     let run = RunId::new("order-42");
//!     let fence = store.start(&run, &CheckpointRow::state_entry(0, "reserve".into(), 1)).await?;
//!     store.append(&run, fence, &CheckpointRow::state_entry(1, "charge".into(), 1)).await?;
//!     drop(store); // the process "crashes" here
//!
//!     let store = RedbStore::open(&path).await?;
//!     assert_eq!(store.list_unfinished().await?, [run.clone()]);
//!     let RunLog::Unfinished(rows) = store.load(&run).await? else { unreachable!() };
//!     assert_eq!(rows.last().unwrap().state, "charge"); // resume re-enters `charge`
//!     let owner = store.resume(&run).await?; // fences out the old writer
//!     store.finish(&run, owner, RunOutcome::Completed).await?;
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! A workflow uses the store through
//! [`Workflow::with_checkpoint_store`](cano_core::Workflow::with_checkpoint_store); see
//! the `crash_resume` example (`cargo run -p cano-redb --example crash_resume`).
//!
//! ## Errors
//!
//! Opening fails with an [`OpenError`] naming the file and the reason (it converts into
//! [`CanoError::External`](cano_core::CanoError::External) for `?`). After that, every
//! store call answers with cano-core's
//! [`CheckpointError`](cano_core::checkpoint::CheckpointError):
//!
//! * the contract's own rejections (`Conflict`, `Fenced`, `NotFound`), for that call only;
//! * `Unavailable` when redb reports an I/O error (a full disk, a failing device): the
//!   call may succeed later;
//! * `Corrupt` when stored bytes do not decode (a damaged row, header or tombstone);
//! * `Backend` for any other redb failure.
//!
//! When a write transaction itself fails, every write in its batch gets that error and
//! none of them is on disk (redb commits atomically). A write whose future is dropped
//! before it completes may still be committed: the next `load` tells.
//!
//! ## File layout
//!
//! Tables `cano_meta` (format mark, schema version, store-wide counters),
//! `cano_checkpoint_runs` (one header per unfinished run: its fence),
//! `cano_checkpoint_rows` (keyed by run id and sequence; rows in the core's
//! [`encode_row`](cano_core::checkpoint::encode_row) form),
//! `cano_checkpoint_tombstones` and `cano_checkpoint_tombstone_ages` (bounded history of
//! finished runs, see [`RedbStoreBuilder::tombstones`]), `cano_schedule_flows` (per flow:
//! the fence of its last write and its record). Every table is named `cano_…`;
//! the layout grows by new tables, and the schema version ([`SCHEMA_VERSION`]) changes
//! only when an existing table's encoding does. redb admits one process per file.
#![forbid(unsafe_code)]

/// The crate README's examples, run as doctests so they cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

mod checkpoint;
mod commit;
mod error;
mod layout;
mod schedule;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use commit::CommitStats;
pub use error::OpenError;
pub use redb::Durability;

/// The schema version this build writes, and the newest it opens.
pub const SCHEMA_VERSION: u32 = layout::SCHEMA_VERSION;

use commit::GroupCommitter;

/// How to open a [`RedbStore`]: durability and cache size. Start with
/// [`RedbStore::builder`].
#[derive(Debug, Clone)]
pub struct RedbStoreBuilder {
    durability: Durability,
    cache_size: Option<usize>,
    tombstones: usize,
}

impl RedbStoreBuilder {
    /// How each commit reaches the disk. The default, [`Durability::Immediate`], makes a
    /// write durable before the call that made it returns. [`Durability::None`] skips the
    /// fsync: a crash may lose the last writes (never corrupt the file); use it only for
    /// data you can afford to lose.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Keeps the outcome of the newest `capacity` finished runs, so
    /// [`load`](cano_core::checkpoint::CheckpointStore::load) answers
    /// [`RunLog::Finished`](cano_core::checkpoint::RunLog::Finished) for them; older ones
    /// are forgotten ([`RunLog::Unknown`](cano_core::checkpoint::RunLog::Unknown)). The
    /// default is 0: a finished run leaves nothing behind.
    pub fn tombstones(mut self, capacity: usize) -> Self {
        self.tombstones = capacity;
        self
    }

    /// redb's page cache, in bytes (redb's default is 1 GiB, allocated as needed).
    pub fn cache_size(mut self, bytes: usize) -> Self {
        self.cache_size = Some(bytes);
        self
    }

    /// Opens the store file at `path`, creating it if it does not exist (or is empty).
    ///
    /// A new store is built under a temporary name beside `path`
    /// (`<name>.<pid>.creating`) and linked into place only once complete, so a process
    /// killed while creating it leaves either no store or a whole one, never a file that
    /// cannot be opened.
    ///
    /// The file is opened on the `blocking` thread pool, so this can be awaited on any
    /// executor.
    ///
    /// # Errors
    ///
    /// An [`OpenError`] when the file cannot be read or created, is open elsewhere, is not
    /// a redb database (random bytes, a truncated file), is a redb database of another
    /// program, or has a schema version newer than this build reads. A bad file is never
    /// a panic.
    pub async fn open(self, path: impl AsRef<Path>) -> Result<RedbStore, OpenError> {
        let path: PathBuf = path.as_ref().to_owned();
        let cache_size = self.cache_size;
        let (path, db) = blocking::unblock(move || {
            let db = layout::open(&path, cache_size);
            (path, db)
        })
        .await;
        let db = Arc::new(db?);
        Ok(RedbStore {
            inner: Arc::new(Inner {
                committer: GroupCommitter::new(db, self.durability),
                path,
                tombstones: self.tombstones,
            }),
        })
    }
}

struct Inner {
    committer: Arc<GroupCommitter>,
    path: PathBuf,
    tombstones: usize,
}

/// A cano store in one redb file. Cheap to clone: clones share the file and its committer.
#[derive(Clone)]
pub struct RedbStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// A builder with the defaults: [`Durability::Immediate`], redb's default cache.
    pub fn builder() -> RedbStoreBuilder {
        RedbStoreBuilder {
            durability: Durability::Immediate,
            cache_size: None,
            tombstones: 0,
        }
    }

    /// Opens the store at `path` with the defaults; see [`RedbStoreBuilder::open`].
    ///
    /// # Errors
    ///
    /// See [`RedbStoreBuilder::open`].
    pub async fn open(path: impl AsRef<Path>) -> Result<RedbStore, OpenError> {
        RedbStore::builder().open(path).await
    }

    /// The file this store was opened on.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// How many write transactions were committed and how many writes they carried.
    pub fn commit_stats(&self) -> CommitStats {
        self.inner.committer.stats()
    }
}
