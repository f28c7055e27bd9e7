//! The record format: one format byte, then postcard. Wire structs are private, so the
//! public types can grow without changing the bytes of the fields they have.

use alloc::sync::Arc;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use super::{FlowRecord, NodeId, PersistError, PersistResult, ScheduleHash, from_micros};

/// The format byte that leads every record cano encodes. A record with another first byte
/// is [`PersistError::Corrupt`] (a newer cano's record read by an older one, or garbage).
pub const FORMAT_VERSION: u8 = 1;

const PAUSED: u8 = 1;
const TRIPPED: u8 = 2;
const BUFFERED_TRIGGER: u8 = 4;

#[derive(Serialize, Deserialize)]
struct FlowRecordWire<'a> {
    schedule_hash: u64,
    last_fire: Option<i64>,
    streak: u32,
    next_eligible: Option<i64>,
    flags: u8,
    #[serde(borrow)]
    last_error: Option<&'a str>,
}

fn encode<T: Serialize>(wire: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.push(FORMAT_VERSION);
    // Cannot fail: every field has a fixed encoding and the output grows as needed. Were it
    // ever to, the lone format byte decodes as `Corrupt` rather than as a wrong record.
    postcard::to_extend(wire, out).unwrap_or_else(|_| alloc::vec![FORMAT_VERSION])
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> PersistResult<T> {
    let Some((&format, body)) = bytes.split_first() else {
        return Err(PersistError::corrupt(alloc::format!("an empty {what}")));
    };
    if format != FORMAT_VERSION {
        return Err(PersistError::corrupt(alloc::format!(
            "{what} has format byte {format}; this cano reads {FORMAT_VERSION}"
        )));
    }
    let (value, rest) = postcard::take_from_bytes::<T>(body)
        .map_err(|e| PersistError::corrupt(alloc::format!("{what}: {e}")))?;
    if !rest.is_empty() {
        return Err(PersistError::corrupt(alloc::format!(
            "{what}: {} bytes after the record",
            rest.len()
        )));
    }
    Ok(value)
}

impl FlowRecord {
    /// The record's bytes: [`FORMAT_VERSION`], then postcard. Times are kept in whole
    /// microseconds (a sub-microsecond part is dropped; stores refuse such times earlier
    /// with [`PersistError::Invalid`]).
    pub fn encode(&self) -> Vec<u8> {
        let flag = |on: bool, bit: u8| if on { bit } else { 0 };
        let flags = flag(self.paused, PAUSED)
            | flag(self.tripped, TRIPPED)
            | flag(self.buffered_trigger, BUFFERED_TRIGGER);
        encode(&FlowRecordWire {
            schedule_hash: self.schedule_hash.0,
            last_fire: self.last_fire.map(|t| t.as_microsecond()),
            streak: self.streak,
            next_eligible: self.next_eligible.map(|t| t.as_microsecond()),
            flags,
            last_error: self.last_error.as_deref(),
        })
    }

    /// Decodes [`encode`](FlowRecord::encode)'s bytes.
    ///
    /// # Errors
    ///
    /// [`PersistError::Corrupt`] for another format byte, truncated or trailing bytes,
    /// unknown flags or a time out of range.
    pub fn decode(bytes: &[u8]) -> PersistResult<FlowRecord> {
        let wire: FlowRecordWire<'_> = decode(bytes, "flow record")?;
        if wire.flags & !(PAUSED | TRIPPED | BUFFERED_TRIGGER) != 0 {
            return Err(PersistError::corrupt(alloc::format!(
                "flow record has unknown flags {:#04x}",
                wire.flags
            )));
        }
        Ok(FlowRecord {
            schedule_hash: ScheduleHash(wire.schedule_hash),
            last_fire: wire.last_fire.map(from_micros).transpose()?,
            streak: wire.streak,
            next_eligible: wire.next_eligible.map(from_micros).transpose()?,
            paused: wire.flags & PAUSED != 0,
            tripped: wire.flags & TRIPPED != 0,
            buffered_trigger: wire.flags & BUFFERED_TRIGGER != 0,
            last_error: wire.last_error.map(Arc::from),
        })
    }
}

/// A command one node sends the others of a fleet, so they hear it at once rather than at
/// their next reload (kept by the ledger, see [`FireLedger::publish`](super::FireLedger::publish);
/// `cano-postgres` logs them in a table and wakes the other nodes with `LISTEN/NOTIFY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FleetCommandKind {
    /// Run the flow now.
    Trigger,
    /// Stop scheduling the flow.
    Pause,
    /// Schedule the flow again.
    Resume,
    /// Clear the flow's streak, backoff and trip.
    Reset,
}

impl FleetCommandKind {
    fn code(self) -> u8 {
        match self {
            FleetCommandKind::Trigger => 0,
            FleetCommandKind::Pause => 1,
            FleetCommandKind::Resume => 2,
            FleetCommandKind::Reset => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => FleetCommandKind::Trigger,
            1 => FleetCommandKind::Pause,
            2 => FleetCommandKind::Resume,
            3 => FleetCommandKind::Reset,
            _ => return None,
        })
    }
}

/// A command for one flow, from one node.
///
/// ```
/// use cano_core::persist::{FleetCommand, FleetCommandKind, NodeId};
///
/// let cmd = FleetCommand::new("report", FleetCommandKind::Pause, NodeId::new("node-1"));
/// assert_eq!(FleetCommand::decode(&cmd.encode()).unwrap(), cmd);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetCommand {
    /// The flow's id.
    pub flow: Arc<str>,
    /// What to do.
    pub kind: FleetCommandKind,
    /// The node that received it from a user (it has applied it already).
    pub from: NodeId,
}

#[derive(Serialize, Deserialize)]
struct FleetCommandWire<'a> {
    kind: u8,
    #[serde(borrow)]
    flow: &'a str,
    #[serde(borrow)]
    from: &'a str,
}

impl FleetCommand {
    /// A command.
    pub fn new(flow: impl Into<Arc<str>>, kind: FleetCommandKind, from: NodeId) -> Self {
        FleetCommand {
            flow: flow.into(),
            kind,
            from,
        }
    }

    /// Its bytes: [`FORMAT_VERSION`], then postcard.
    pub fn encode(&self) -> Vec<u8> {
        encode(&FleetCommandWire {
            kind: self.kind.code(),
            flow: &self.flow,
            from: self.from.as_str(),
        })
    }

    /// Decodes [`encode`](FleetCommand::encode)'s bytes.
    ///
    /// # Errors
    ///
    /// [`PersistError::Corrupt`] for another format byte, bad bytes or an unknown kind.
    pub fn decode(bytes: &[u8]) -> PersistResult<FleetCommand> {
        let wire: FleetCommandWire<'_> = decode(bytes, "fleet command")?;
        let kind = FleetCommandKind::from_code(wire.kind).ok_or_else(|| {
            PersistError::corrupt(alloc::format!("unknown fleet command kind {}", wire.kind))
        })?;
        Ok(FleetCommand::new(wire.flow, kind, NodeId::new(wire.from)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn sample() -> FlowRecord {
        let mut r = FlowRecord::new(ScheduleHash(0xdead_beef));
        r.last_fire = Some(Timestamp::from_microsecond(1_700_000_000_123_456).unwrap());
        r.streak = 3;
        r.next_eligible = Some(Timestamp::from_microsecond(-5).unwrap());
        r.paused = true;
        r.buffered_trigger = true;
        r.last_error = Some(Arc::from("boom"));
        r
    }

    #[test]
    fn round_trips_every_field() {
        let r = sample();
        assert_eq!(FlowRecord::decode(&r.encode()).unwrap(), r);
        let empty = FlowRecord::new(ScheduleHash(0));
        assert_eq!(FlowRecord::decode(&empty.encode()).unwrap(), empty);
    }

    /// The bytes of a record are a contract: pinned, so an accidental change shows here.
    #[test]
    fn bytes_are_pinned() {
        let mut r = FlowRecord::new(ScheduleHash(1));
        r.streak = 2;
        r.tripped = true;
        assert_eq!(r.encode(), [1, 1, 0, 2, 0, 2, 0]);
    }

    #[test]
    fn every_truncation_and_a_wrong_format_byte_is_corrupt() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            let err = FlowRecord::decode(&bytes[..cut]).unwrap_err();
            assert!(
                matches!(err, PersistError::Corrupt(_)),
                "cut at {cut}: {err:?}"
            );
        }
        let mut wrong = bytes.clone();
        wrong[0] = 2;
        assert!(matches!(
            FlowRecord::decode(&wrong),
            Err(PersistError::Corrupt(_))
        ));
        let mut trailing = bytes;
        trailing.push(0);
        assert!(matches!(
            FlowRecord::decode(&trailing),
            Err(PersistError::Corrupt(_))
        ));
    }

    #[test]
    fn unknown_flags_and_kinds_are_corrupt() {
        let mut r = FlowRecord::new(ScheduleHash(1));
        r.paused = true;
        let mut bytes = r.encode();
        // flags is the byte after hash(1), None, streak(0), None.
        assert_eq!(bytes[5], PAUSED);
        bytes[5] = 0x80;
        assert!(matches!(
            FlowRecord::decode(&bytes),
            Err(PersistError::Corrupt(_))
        ));
        let cmd = FleetCommand::new("f", FleetCommandKind::Reset, NodeId::new("n"));
        let mut bytes = cmd.encode();
        bytes[1] = 9;
        assert!(matches!(
            FleetCommand::decode(&bytes),
            Err(PersistError::Corrupt(_))
        ));
    }
}
