//! # cano-redb
//!
//! The embedded default store of cano: workflow checkpoints in one [redb] file.
#![forbid(unsafe_code)]

mod checkpoint;
mod commit;
mod error;
mod layout;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use commit::CommitStats;
pub use error::OpenError;
pub use redb::Durability;

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
