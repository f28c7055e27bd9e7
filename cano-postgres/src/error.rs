//! From `tokio_postgres` errors to [`PersistError`].

use cano_core::persist::PersistError;
use tokio_postgres::error::SqlState;

/// Maps a driver error: a lost connection or a server going away is
/// [`PersistError::Unavailable`], a serialization failure or deadlock is
/// [`PersistError::Conflict`], anything else [`PersistError::Backend`].
pub(crate) fn from_pg(e: tokio_postgres::Error) -> PersistError {
    if e.is_closed() {
        return PersistError::unavailable(format!("connection closed: {e}"));
    }
    match e.code() {
        Some(code) if is_unavailable(code) => PersistError::unavailable(db_text(&e)),
        Some(code)
            if *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED =>
        {
            PersistError::conflict(db_text(&e))
        }
        Some(_) => PersistError::backend(db_text(&e)),
        // No SQL state: the socket failed (refused, reset, timed out).
        None => PersistError::unavailable(format!("{e}")),
    }
}

fn is_unavailable(code: &SqlState) -> bool {
    // Class 08 (connection exception), 57P01-57P03 (shutdown, crash, cannot connect now),
    // 53300 (too many connections).
    code.code().starts_with("08")
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::TOO_MANY_CONNECTIONS
}

fn db_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => format!("{e}"),
    }
}
