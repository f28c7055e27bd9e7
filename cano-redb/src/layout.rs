//! The file layout: which tables exist, what their keys and values are, and how a file is
//! recognised as a cano store of a known schema when it is opened.
//!
//! | table | key | value |
//! |---|---|---|
//! | `cano_meta` | `&str` | bytes: `"format"` → `b"cano-redb"`, `"schema"` → u32 little-endian |
//! | `cano_checkpoint_runs` | run id `&str` | an unfinished run's header: its fence (see `checkpoint.rs`) |
//! | `cano_checkpoint_rows` | (run id `&str`, sequence `u64`) | the row, as the core encodes it |
//! | `cano_checkpoint_tombstones` | run id `&str` | a finished run's outcome and age |
//! | `cano_checkpoint_tombstone_ages` | age `u64` | run id (the oldest tombstone is first) |
//! | `cano_schedule_flows` | flow id `&str` | (fence `u64`, the flow's record as the core encodes it) |
//!
//! `cano_meta` also holds the store-wide counters `"last_fence"` (the last fence issued) and
//! `"last_finish"` (the age of the newest tombstone), u64 little-endian.
//!
//! Every table of the store is named `cano_…`. The layout grows by adding tables under new
//! names (the schedule store added `cano_schedule_flows` this way, in schema 1), which an
//! older build ignores; the
//! schema version changes only when the encoding of an existing table changes, and a build
//! refuses a file of a newer schema rather than misreading it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use redb::{
    Database, DatabaseError, Durability, MultimapTableHandle, ReadableDatabase, ReadableTable,
    StorageError, Table, TableDefinition, TableHandle, WriteTransaction,
};

use crate::error::{OpenError, TransactionFailure};

/// The newest schema version this build writes and reads.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// What `cano_meta["format"]` holds in every cano store.
const FORMAT_MARK: &[u8] = b"cano-redb";
const FORMAT_KEY: &str = "format";
const SCHEMA_KEY: &str = "schema";

pub(crate) const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("cano_meta");
pub(crate) const RUNS: TableDefinition<'static, &str, &[u8]> =
    TableDefinition::new("cano_checkpoint_runs");
pub(crate) const ROWS: TableDefinition<'static, (&str, u64), &[u8]> =
    TableDefinition::new("cano_checkpoint_rows");
pub(crate) const TOMBSTONES: TableDefinition<'static, &str, &[u8]> =
    TableDefinition::new("cano_checkpoint_tombstones");
/// Tombstones by age (finish order → run id), so the oldest is forgotten first.
pub(crate) const TOMBSTONE_AGES: TableDefinition<'static, u64, &str> =
    TableDefinition::new("cano_checkpoint_tombstone_ages");

/// Each flow's schedule record: the fence of its last write and the record's bytes
/// ([`FlowRecord::encode`](cano_core::persist::FlowRecord::encode)). The fence is redb's own
/// fixed-width encoding, so it stays readable (and enforced) even if the record is damaged.
pub(crate) const SCHEDULE_FLOWS: TableDefinition<'static, &str, (u64, &[u8])> =
    TableDefinition::new("cano_schedule_flows");

/// `cano_meta` keys of store-wide counters (u64 little-endian).
pub(crate) const LAST_FENCE_KEY: &str = "last_fence";
pub(crate) const LAST_FINISH_KEY: &str = "last_finish";

/// The tables of one write transaction, each opened on first use and kept open for the
/// rest of the transaction (a group commit runs many writes in one transaction).
pub(crate) struct WriteTables<'txn> {
    txn: &'txn WriteTransaction,
    checkpoint: Option<CheckpointTables<'txn>>,
    schedule: Option<Table<'txn, &'static str, (u64, &'static [u8])>>,
}

/// The checkpoint store's tables, open in one write transaction.
pub(crate) struct CheckpointTables<'txn> {
    pub(crate) meta: Table<'txn, &'static str, &'static [u8]>,
    pub(crate) runs: Table<'txn, &'static str, &'static [u8]>,
    pub(crate) rows: Table<'txn, (&'static str, u64), &'static [u8]>,
    pub(crate) tombstones: Table<'txn, &'static str, &'static [u8]>,
    pub(crate) tombstone_ages: Table<'txn, u64, &'static str>,
}

impl<'txn> WriteTables<'txn> {
    pub(crate) fn new(txn: &'txn WriteTransaction) -> Self {
        WriteTables {
            txn,
            checkpoint: None,
            schedule: None,
        }
    }

    /// The schedule store's table.
    pub(crate) fn schedule(
        &mut self,
    ) -> Result<&mut Table<'txn, &'static str, (u64, &'static [u8])>, TransactionFailure> {
        if self.schedule.is_none() {
            self.schedule = Some(self.txn.open_table(SCHEDULE_FLOWS)?);
        }
        match self.schedule.as_mut() {
            Some(table) => Ok(table),
            None => Err(TransactionFailure::not_applied()),
        }
    }

    pub(crate) fn checkpoint(&mut self) -> Result<&mut CheckpointTables<'txn>, TransactionFailure> {
        if self.checkpoint.is_none() {
            let txn = self.txn;
            self.checkpoint = Some(CheckpointTables {
                meta: txn.open_table(META)?,
                runs: txn.open_table(RUNS)?,
                rows: txn.open_table(ROWS)?,
                tombstones: txn.open_table(TOMBSTONES)?,
                tombstone_ages: txn.open_table(TOMBSTONE_AGES)?,
            });
        }
        match self.checkpoint.as_mut() {
            Some(tables) => Ok(tables),
            None => Err(TransactionFailure::not_applied()),
        }
    }
}

/// Opens (creating if absent or empty) the database at `path` and checks that it is a cano
/// store of a schema this build reads; initialises a new file. Blocking: call it on the
/// `blocking` pool.
pub(crate) fn open(path: &Path, cache_size: Option<usize>) -> Result<Database, OpenError> {
    if is_absent_or_empty(path)? {
        create_atomically(path, cache_size)?;
    }
    open_existing(path, cache_size)
}

fn is_absent_or_empty(path: &Path) -> Result<bool, OpenError> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(meta.is_file() && meta.len() == 0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(source) => Err(OpenError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Creates a new store beside `path` and moves it into place only once it is complete, so
/// a process killed while creating the file leaves no half-written store behind (redb
/// writes a new file's header in steps; a file cut in between would be unreadable for
/// good). Another process creating the same store at the same time is not overwritten:
/// the first complete file wins.
fn create_atomically(path: &Path, cache_size: Option<usize>) -> Result<(), OpenError> {
    let io = |source| OpenError::Io {
        path: path.to_owned(),
        source,
    };
    let name = path.file_name().map_or_else(
        || std::ffi::OsString::from("store"),
        std::ffi::OsStr::to_os_string,
    );
    let mut staging_name = name;
    staging_name.push(format!(".{}.creating", std::process::id()));
    let staging = path.with_file_name(staging_name);
    // A leftover of a process killed while creating (with this pid, long ago) is garbage.
    let _ = std::fs::remove_file(&staging);
    drop(open_existing(&staging, cache_size)?);
    let placed = match std::fs::hard_link(&staging, path) {
        Ok(()) => Ok(()),
        // Another process placed its store first, or the user made an empty file.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if is_absent_or_empty(path)? {
                std::fs::rename(&staging, path).map_err(io)
            } else {
                Ok(())
            }
        }
        // A file system without hard links.
        Err(_) => std::fs::rename(&staging, path).map_err(io),
    };
    let _ = std::fs::remove_file(&staging);
    placed?;
    // Make the new name durable too.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn open_existing(path: &Path, cache_size: Option<usize>) -> Result<Database, OpenError> {
    // redb reports bad files as errors; the catch is a second line of defence so that a
    // damaged file can never take the caller's process down.
    let opened = catch_unwind(AssertUnwindSafe(|| {
        let mut builder = Database::builder();
        if let Some(bytes) = cache_size {
            builder.set_cache_size(bytes);
        }
        builder.create(path)
    }));
    let db = match opened {
        Ok(Ok(db)) => db,
        Ok(Err(e)) => return Err(open_error(path, e)),
        Err(panic) => {
            return Err(OpenError::Corrupt {
                path: path.to_owned(),
                detail: format!("redb panicked reading the file: {}", panic_message(&panic)),
            });
        }
    };
    match catch_unwind(AssertUnwindSafe(|| check_or_initialise(path, &db))) {
        Ok(result) => result.map(|()| db),
        Err(panic) => Err(OpenError::Corrupt {
            path: path.to_owned(),
            detail: format!("redb panicked reading the file: {}", panic_message(&panic)),
        }),
    }
}

fn check_or_initialise(path: &Path, db: &Database) -> Result<(), OpenError> {
    let fail = |e: &dyn std::fmt::Display| backend(path, e);
    let read = db.begin_read().map_err(|e| fail(&e))?;
    let mut tables: Vec<String> = read
        .list_tables()
        .map_err(|e| storage(path, e))?
        .map(|t| t.name().to_owned())
        .collect();
    tables.extend(
        read.list_multimap_tables()
            .map_err(|e| storage(path, e))?
            .map(|t| t.name().to_owned()),
    );
    if tables.iter().any(|t| t == META.name()) {
        let meta = read.open_table(META).map_err(|_| foreign(path, &tables))?;
        let format = meta.get(FORMAT_KEY).map_err(|e| storage(path, e))?;
        if format.as_ref().map(|v| v.value()) != Some(FORMAT_MARK) {
            return Err(foreign(path, &tables));
        }
        let schema = meta.get(SCHEMA_KEY).map_err(|e| storage(path, e))?;
        let schema = schema
            .and_then(|v| <[u8; 4]>::try_from(v.value()).ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| OpenError::Corrupt {
                path: path.to_owned(),
                detail: "the cano_meta table has no valid schema version".to_owned(),
            })?;
        if schema > SCHEMA_VERSION {
            return Err(OpenError::UnsupportedSchema {
                path: path.to_owned(),
                found: schema,
                supported: SCHEMA_VERSION,
            });
        }
        // Schema 1 is the first; an older schema would be migrated here.
    } else if !tables.is_empty() {
        return Err(foreign(path, &tables));
    }
    drop(read);
    // Create any table of this schema that is missing (all of them in a new file), so that
    // reads never meet a missing table.
    let mut write = db.begin_write().map_err(|e| fail(&e))?;
    write
        .set_durability(Durability::Immediate)
        .map_err(|e| fail(&e))?;
    {
        let mut meta = write.open_table(META).map_err(|e| fail(&e))?;
        if meta
            .get(FORMAT_KEY)
            .map_err(|e| storage(path, e))?
            .is_none()
        {
            meta.insert(FORMAT_KEY, FORMAT_MARK)
                .map_err(|e| storage(path, e))?;
            meta.insert(SCHEMA_KEY, SCHEMA_VERSION.to_le_bytes().as_slice())
                .map_err(|e| storage(path, e))?;
        }
        write.open_table(RUNS).map_err(|e| fail(&e))?;
        write.open_table(ROWS).map_err(|e| fail(&e))?;
        write.open_table(TOMBSTONES).map_err(|e| fail(&e))?;
        write.open_table(TOMBSTONE_AGES).map_err(|e| fail(&e))?;
        // Added after the checkpoint tables: a file made by an older build gets it here.
        write.open_table(SCHEDULE_FLOWS).map_err(|e| fail(&e))?;
    }
    write.commit().map_err(|e| fail(&e))?;
    Ok(())
}

fn foreign(path: &Path, tables: &[String]) -> OpenError {
    const SHOWN: usize = 8;
    let mut shown: Vec<String> = tables.iter().take(SHOWN).cloned().collect();
    if tables.len() > SHOWN {
        shown.push(format!("… {} more", tables.len() - SHOWN));
    }
    OpenError::Foreign {
        path: path.to_owned(),
        tables: shown,
    }
}

fn backend(path: &Path, e: &dyn std::fmt::Display) -> OpenError {
    OpenError::Backend {
        path: path.to_owned(),
        detail: e.to_string(),
    }
}

fn storage(path: &Path, e: StorageError) -> OpenError {
    match e {
        StorageError::Io(source) => OpenError::Io {
            path: path.to_owned(),
            source,
        },
        StorageError::Corrupted(detail) => OpenError::Corrupt {
            path: path.to_owned(),
            detail,
        },
        other => backend(path, &other),
    }
}

fn open_error(path: &Path, e: DatabaseError) -> OpenError {
    let path_buf: PathBuf = path.to_owned();
    match e {
        DatabaseError::DatabaseAlreadyOpen => OpenError::AlreadyOpen { path: path_buf },
        DatabaseError::UpgradeRequired(format) => OpenError::UpgradeRequired {
            path: path_buf,
            format,
        },
        DatabaseError::Storage(StorageError::Io(source))
            if source.kind() == std::io::ErrorKind::InvalidData
                || source.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            OpenError::Corrupt {
                path: path_buf,
                detail: source.to_string(),
            }
        }
        DatabaseError::Storage(s) => storage(path, s),
        other => backend(path, &other),
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}
