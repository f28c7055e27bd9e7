//! The byte forms of rows and blobs: postcard, behind a leading format byte so a store can
//! tell a row it understands from a foreign or future one.

use alloc::borrow::Cow;
use alloc::vec::Vec;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{CheckpointError, CheckpointRow};

/// The format byte of an encoded [`CheckpointRow`] (postcard, layout 1).
pub const ROW_FORMAT: u8 = 1;

/// The format byte of an encoded blob (a compensation output or cursor; postcard).
pub const BLOB_FORMAT: u8 = 1;

/// Encodes `row` for a store: [`ROW_FORMAT`], then the row in postcard.
///
/// ```
/// use cano_core::checkpoint::{CheckpointRow, decode_row, encode_row};
///
/// let row = CheckpointRow::state_entry(7, "charge".into(), 2);
/// let bytes = encode_row(&row);
/// assert_eq!(decode_row(&bytes), Ok(row));
/// assert!(decode_row(&[9, 1, 2]).is_err()); // unknown format byte: Corrupt, not a panic
/// ```
pub fn encode_row(row: &CheckpointRow) -> Vec<u8> {
    encode_with(ROW_FORMAT, row)
}

/// Decodes bytes written by [`encode_row`].
///
/// Errors: [`CheckpointError::Corrupt`] for empty input, an unknown format byte or bytes
/// that are not a row.
pub fn decode_row(bytes: &[u8]) -> Result<CheckpointRow, CheckpointError> {
    decode_with(ROW_FORMAT, "checkpoint row", bytes)
}

/// Encodes a value (a compensation output, a cursor) as a blob: [`BLOB_FORMAT`], then the
/// value in postcard.
///
/// Errors: [`CheckpointError::Backend`] if the value's `Serialize` impl fails (postcard
/// cannot encode, for instance, a sequence of unknown length).
pub fn encode_blob<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CheckpointError> {
    postcard::to_extend(value, alloc::vec![BLOB_FORMAT]).map_err(|e| {
        CheckpointError::Backend(Cow::Owned(alloc::format!("blob does not encode: {e}")))
    })
}

/// Decodes a blob written by [`encode_blob`].
///
/// Errors: [`CheckpointError::Corrupt`] for empty input, an unknown format byte, or bytes
/// that do not decode as `T` (a changed output or cursor type).
pub fn decode_blob<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CheckpointError> {
    decode_with(BLOB_FORMAT, "blob", bytes)
}

fn encode_with<T: Serialize>(format: u8, value: &T) -> Vec<u8> {
    // Rows are plain data of known length: postcard cannot fail on them.
    postcard::to_extend(value, alloc::vec![format]).unwrap_or_else(|_| alloc::vec![format])
}

fn decode_with<T: DeserializeOwned>(
    format: u8,
    what: &str,
    bytes: &[u8],
) -> Result<T, CheckpointError> {
    match bytes.split_first() {
        None => Err(CheckpointError::Corrupt(Cow::Owned(alloc::format!(
            "empty {what}"
        )))),
        Some((&found, _)) if found != format => Err(CheckpointError::Corrupt(Cow::Owned(
            alloc::format!("{what} has format byte {found}, this cano reads {format}"),
        ))),
        Some((_, body)) => match postcard::from_bytes::<T>(body) {
            Ok(value) => Ok(value),
            Err(e) => Err(CheckpointError::Corrupt(Cow::Owned(alloc::format!(
                "{what} does not decode: {e}"
            )))),
        },
    }
}
