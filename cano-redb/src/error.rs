//! Errors of opening a store file, and the internal failure of a write transaction.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Why [`RedbStore::open`](crate::RedbStore::open) refused a file.
///
/// Opening never panics on a bad file: a file that is not a redb database, a truncated or
/// damaged one, a redb database written by another program, or one written by a newer
/// cano-redb all come back as one of these variants, naming the path.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// The file could not be read or created (permissions, a missing directory, a full
    /// disk, …). Retrying may help once the cause is fixed.
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Another process (or another `RedbStore` in this process) has the file open. redb
    /// admits one writer process per file.
    AlreadyOpen {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a redb database, or it is damaged or truncated beyond repair.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What redb reported.
        detail: String,
    },
    /// The file is a redb database, but not a cano store: it has tables and no cano-redb
    /// header. cano-redb refuses to write into another program's data.
    Foreign {
        /// The file.
        path: PathBuf,
        /// The tables found in it (at most a few, for the message).
        tables: Vec<String>,
    },
    /// The file is a cano store of a schema version this build does not know (written by a
    /// newer cano-redb). Upgrade cano-redb, or use another file.
    UnsupportedSchema {
        /// The file.
        path: PathBuf,
        /// The schema version recorded in the file.
        found: u32,
        /// The newest schema version this build reads.
        supported: u32,
    },
    /// The file was written in an older redb file format that must be upgraded first
    /// (redb's own upgrade path).
    UpgradeRequired {
        /// The file.
        path: PathBuf,
        /// The redb file format version found.
        format: u8,
    },
    /// Any other failure reported by redb.
    Backend {
        /// The file.
        path: PathBuf,
        /// What redb reported.
        detail: String,
    },
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Io { path, source } => {
                write!(f, "cannot open store file {}: {source}", path.display())
            }
            OpenError::AlreadyOpen { path } => write!(
                f,
                "store file {} is already open (by another process or another store)",
                path.display()
            ),
            OpenError::Corrupt { path, detail } => write!(
                f,
                "store file {} is not a readable redb database (corrupt or truncated): {detail}",
                path.display()
            ),
            OpenError::Foreign { path, tables } => write!(
                f,
                "store file {} is a redb database of another program (tables: {}); \
                 cano-redb will not write into it",
                path.display(),
                tables.join(", ")
            ),
            OpenError::UnsupportedSchema {
                path,
                found,
                supported,
            } => write!(
                f,
                "store file {} has schema version {found}, newer than {supported}, the newest \
                 this cano-redb reads",
                path.display()
            ),
            OpenError::UpgradeRequired { path, format } => write!(
                f,
                "store file {} uses redb file format {format}, which must be upgraded first",
                path.display()
            ),
            OpenError::Backend { path, detail } => {
                write!(f, "cannot open store file {}: {detail}", path.display())
            }
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// An [`OpenError`] as a [`CanoError::External`](cano_core::CanoError::External), kept whole
/// as the source, so `?` works in functions returning `CanoError`.
impl From<OpenError> for cano_core::CanoError {
    fn from(e: OpenError) -> Self {
        cano_core::CanoError::external("opening the redb store", e)
    }
}

/// How a redb transaction failed, sorted the way a store error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// I/O: the disk or file is (perhaps temporarily) unusable; a retry may succeed.
    Unavailable,
    /// The file's contents are damaged.
    Corrupt,
    /// Anything else.
    Backend,
}

/// A failed read or write transaction (not a rejection of one row: those are answers).
#[derive(Debug, Clone)]
pub(crate) struct TransactionFailure {
    pub(crate) kind: FailureKind,
    pub(crate) message: Arc<str>,
}

impl TransactionFailure {
    pub(crate) fn new(kind: FailureKind, message: impl fmt::Display) -> Self {
        TransactionFailure {
            kind,
            message: Arc::from(format!("redb: {message}")),
        }
    }

    pub(crate) fn committer_panicked() -> Self {
        TransactionFailure::new(
            FailureKind::Backend,
            "the write transaction panicked; nothing of its batch was committed",
        )
    }

    pub(crate) fn not_applied() -> Self {
        TransactionFailure::new(
            FailureKind::Backend,
            "the write was not applied because its transaction failed",
        )
    }
}

impl fmt::Display for TransactionFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn storage_kind(e: &redb::StorageError) -> FailureKind {
    match e {
        redb::StorageError::Io(_) | redb::StorageError::PreviousIo => FailureKind::Unavailable,
        redb::StorageError::Corrupted(_) => FailureKind::Corrupt,
        _ => FailureKind::Backend,
    }
}

impl From<redb::StorageError> for TransactionFailure {
    fn from(e: redb::StorageError) -> Self {
        TransactionFailure::new(storage_kind(&e), e)
    }
}

impl From<redb::TransactionError> for TransactionFailure {
    fn from(e: redb::TransactionError) -> Self {
        match e {
            redb::TransactionError::Storage(s) => s.into(),
            other => TransactionFailure::new(FailureKind::Backend, other),
        }
    }
}

impl From<redb::CommitError> for TransactionFailure {
    fn from(e: redb::CommitError) -> Self {
        match e {
            redb::CommitError::Storage(s) => s.into(),
            other => TransactionFailure::new(FailureKind::Backend, other),
        }
    }
}

impl From<redb::TableError> for TransactionFailure {
    fn from(e: redb::TableError) -> Self {
        match e {
            redb::TableError::Storage(s) => s.into(),
            // A table of our name with another key or value type: not our layout.
            redb::TableError::TableTypeMismatch { .. }
            | redb::TableError::TypeDefinitionChanged { .. }
            | redb::TableError::TableIsMultimap(_)
            | redb::TableError::TableIsNotMultimap(_) => {
                TransactionFailure::new(FailureKind::Corrupt, e)
            }
            other => TransactionFailure::new(FailureKind::Backend, other),
        }
    }
}

impl From<redb::SetDurabilityError> for TransactionFailure {
    fn from(e: redb::SetDurabilityError) -> Self {
        TransactionFailure::new(FailureKind::Backend, e)
    }
}
