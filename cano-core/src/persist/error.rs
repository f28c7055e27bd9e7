//! [`PersistError`]: why a schedule store or fire ledger call failed.

use alloc::string::String;
use alloc::sync::Arc;
use core::fmt;

use super::Fence;
use crate::error::CanoError;

/// Why a [`ScheduleStore`](super::ScheduleStore) or [`FireLedger`](super::FireLedger) call
/// failed. Outcomes a caller expects in normal operation (a fire claimed by another node, a
/// fire below the high-water mark) are *answers*, not errors; these are the failures.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PersistError {
    /// A condition of the write did not hold (a concurrent writer changed what the call
    /// depended on). Retrying after re-reading may succeed.
    Conflict(Arc<str>),
    /// The caller's fence is no longer in force: another node has since taken the fire or
    /// the flow (with a higher fence), or the caller's lease lapsed in the store's clock.
    /// `current` is the fence in force now (equal to the caller's when its lease lapsed and
    /// nobody took over yet). Never retry with the same fence: stop, the work belongs to
    /// someone else.
    Fenced {
        /// The fence the store holds now.
        current: Fence,
    },
    /// The store cannot be reached right now (connection lost, partition, restart). The
    /// call may or may not have been applied: retry later, and read before assuming either.
    Unavailable(Arc<str>),
    /// What the store holds cannot be decoded (unknown format byte, truncated record, a
    /// value out of range). Not retryable.
    Corrupt(Arc<str>),
    /// The caller passed something the store cannot keep (a time with a sub-microsecond
    /// part, an empty flow id). Not retryable.
    Invalid(Arc<str>),
    /// Any other failure of the backend, with its message. Not retryable.
    Backend(Arc<str>),
}

/// `Result<T, PersistError>`.
pub type PersistResult<T> = Result<T, PersistError>;

impl PersistError {
    /// A [`Conflict`](PersistError::Conflict).
    pub fn conflict(reason: impl Into<String>) -> Self {
        PersistError::Conflict(Arc::from(reason.into()))
    }
    /// An [`Unavailable`](PersistError::Unavailable).
    pub fn unavailable(reason: impl Into<String>) -> Self {
        PersistError::Unavailable(Arc::from(reason.into()))
    }
    /// A [`Corrupt`](PersistError::Corrupt).
    pub fn corrupt(reason: impl Into<String>) -> Self {
        PersistError::Corrupt(Arc::from(reason.into()))
    }
    /// An [`Invalid`](PersistError::Invalid).
    pub fn invalid(reason: impl Into<String>) -> Self {
        PersistError::Invalid(Arc::from(reason.into()))
    }
    /// A [`Backend`](PersistError::Backend).
    pub fn backend(reason: impl Into<String>) -> Self {
        PersistError::Backend(Arc::from(reason.into()))
    }

    /// Whether trying again later may succeed: [`Unavailable`](PersistError::Unavailable)
    /// and [`Conflict`](PersistError::Conflict).
    ///
    /// ```
    /// use cano_core::persist::{Fence, PersistError};
    ///
    /// assert!(PersistError::unavailable("connection refused").is_retryable());
    /// assert!(!PersistError::Fenced { current: Fence(7) }.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            PersistError::Unavailable(_) | PersistError::Conflict(_)
        )
    }

    /// Whether this is [`Fenced`](PersistError::Fenced).
    pub fn is_fenced(&self) -> bool {
        matches!(self, PersistError::Fenced { .. })
    }
}

impl fmt::Display for PersistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PersistError::Conflict(m) => write!(f, "store conflict: {m}"),
            PersistError::Fenced { current } => {
                write!(
                    f,
                    "fenced: the store now holds {current}; this node's lease is gone"
                )
            }
            PersistError::Unavailable(m) => write!(f, "store unavailable: {m}"),
            PersistError::Corrupt(m) => write!(f, "corrupt store record: {m}"),
            PersistError::Invalid(m) => write!(f, "invalid store input: {m}"),
            PersistError::Backend(m) => write!(f, "store backend error: {m}"),
        }
    }
}

impl core::error::Error for PersistError {}

impl From<PersistError> for CanoError {
    fn from(e: PersistError) -> Self {
        CanoError::store(alloc::format!("{e}"))
    }
}
