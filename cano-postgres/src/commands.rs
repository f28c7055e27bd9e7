//! Fleet commands: a durable log in the `cano_fleet_commands` table, with `LISTEN/NOTIFY`
//! only as the wake-up.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Weak};

use cano_core::persist::{FleetCommand, FleetCommandKind, NodeId, PersistError, PersistResult};
use tokio::sync::broadcast;

use crate::conn::{Link, get};

/// What a [`CommandStream`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandEvent {
    /// A command another node (or this one) published.
    Command(FleetCommand),
    /// Commands may have been missed: reload the flows' state from the store. Since
    /// schema version 4 the commands are a durable log read from the stream's cursor, so
    /// a reconnect loses none and this is not emitted; kept so that matches on it build.
    Resync,
}

/// The commands published on this store's schema by every node after the stream was
/// made, in the order of the log (each exactly once). A node sees its own commands too
/// (compare [`FleetCommand::from`]).
///
/// The stream reads the `cano_fleet_commands` log after its own cursor each time a
/// notification (or a reconnect) wakes it, so a command published while this node was
/// disconnected arrives once the connection is back. A stream that falls more than
/// the log's bound ([`PgConfig::commands_kept`](crate::PgConfig::commands_kept)) behind misses the oldest.
pub struct CommandStream {
    pub(crate) link: Weak<Link>,
    pub(crate) wake: broadcast::Receiver<()>,
    pub(crate) cursor: u64,
    pub(crate) ready: VecDeque<(u64, FleetCommand)>,
}

impl std::fmt::Debug for CommandStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandStream")
            .field("cursor", &self.cursor)
            .field("ready", &self.ready.len())
            .finish()
    }
}

impl CommandStream {
    /// The next command; `None` once the store is gone. Cancel-safe: a command is
    /// consumed only when it is returned.
    pub async fn next(&mut self) -> Option<CommandEvent> {
        loop {
            if let Some((seq, command)) = self.ready.pop_front() {
                self.cursor = seq;
                return Some(CommandEvent::Command(command));
            }
            {
                let link = self.link.upgrade()?;
                // A failed read (disconnected) is retried at the wake-up of the reconnect.
                if let Ok(read) = read_after(&link, self.cursor).await {
                    if read.commands.is_empty() {
                        // Only unknown kinds (or nothing): move past them.
                        self.cursor = self.cursor.max(read.last);
                    } else {
                        self.ready.extend(read.commands);
                        continue;
                    }
                }
            }
            match self.wake.recv().await {
                Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// How many commands one read returns at most (the rest come at the next read).
pub(crate) const COMMANDS_READ: i64 = 1024;

/// How many commands the log keeps by default ([`PgConfig::commands_kept`](crate::PgConfig::commands_kept)).
pub(crate) const COMMANDS_KEPT: u32 = 10_000;

/// The log rows this store skipped because their kind is unknown to it (a newer
/// cano-postgres published them), shared by its [`FireLedger`](cano_core::persist::FireLedger)
/// reads and its [`CommandStream`]s.
#[derive(Debug, Default)]
pub(crate) struct UnknownKinds {
    /// How many distinct rows were skipped (each counted once, however often re-read).
    pub(crate) skipped: AtomicU64,
    /// The seqs of the newest skipped rows, at most [`SKIPPED_REMEMBERED`]: every reader
    /// reads the log in order from its own cursor, and a reader behind another (a stream
    /// started before a read from the start) meets rows the other did not, so a single
    /// high mark would miss them.
    seen: Mutex<BTreeSet<u64>>,
}

/// How many skipped rows' seqs a store remembers to count each once: the log's default
/// size, so a row is counted twice only when more unknown rows than the log keeps lie
/// between two readers.
const SKIPPED_REMEMBERED: usize = COMMANDS_KEPT as usize;

impl UnknownKinds {
    /// Records a skipped row; counts and reports it the first time it is seen.
    fn skip(&self, seq: u64, code: i16) {
        let first_time = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            let first_time = seen.insert(seq);
            if seen.len() > SKIPPED_REMEMBERED {
                seen.pop_first();
            }
            first_time
        };
        if first_time {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            #[cfg(feature = "tracing")]
            tracing::warn!(
                seq,
                code,
                "skipping a fleet command of a kind this cano-postgres does not know \
                 (published by a newer node)"
            );
            #[cfg(not(feature = "tracing"))]
            let _ = code;
        }
    }
}

/// What one read of the log found.
pub(crate) struct Read {
    /// The commands of known kinds, oldest first.
    pub(crate) commands: Vec<(u64, FleetCommand)>,
    /// The highest seq read, known kind or not (the cursor for the next read).
    pub(crate) last: u64,
}

/// The commands after `cursor` in the log, oldest first (at most [`COMMANDS_READ`]).
/// A row whose kind this crate does not know (a newer node's) is skipped, counted in
/// [`Link::unknown`] and reported at WARN with the `tracing` feature, so it does not block
/// the reader: the read goes on past it until it finds known commands or the end of the log.
pub(crate) async fn read_after(link: &Link, cursor: u64) -> PersistResult<Read> {
    let live = link.live()?;
    let mut last = cursor;
    loop {
        let after = i64::try_from(last).unwrap_or(i64::MAX);
        let rows = live
            .client
            .query(&live.sql.commands_after, &[&after, &COMMANDS_READ])
            .await
            .map_err(crate::error::from_pg)?;
        let mut commands = Vec::with_capacity(rows.len());
        for row in &rows {
            let seq = get::<i64>(row, "seq")?;
            let seq = u64::try_from(seq)
                .map_err(|_| PersistError::corrupt(format!("a negative command seq {seq}")))?;
            last = last.max(seq);
            let code = get::<i16>(row, "kind")?;
            let Some(kind) = kind_from_code(code) else {
                link.unknown.skip(seq, code);
                continue;
            };
            let command = FleetCommand::new(
                get::<String>(row, "flow")?,
                kind,
                NodeId::new(get::<String>(row, "origin")?),
            );
            commands.push((seq, command));
        }
        // A full batch of unknown kinds: read on, or a reader would re-read it forever.
        let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= COMMANDS_READ;
        if !commands.is_empty() || !full {
            return Ok(Read { commands, last });
        }
    }
}

/// The stored code of a command's kind.
pub(crate) fn kind_code(kind: FleetCommandKind) -> PersistResult<i16> {
    match kind {
        FleetCommandKind::Trigger => Ok(0),
        FleetCommandKind::Pause => Ok(1),
        FleetCommandKind::Resume => Ok(2),
        FleetCommandKind::Reset => Ok(3),
        other => Err(PersistError::invalid(format!(
            "the command {other:?} is not known to this cano-postgres"
        ))),
    }
}

/// The kind a stored code names; `None` for a code this crate does not know (a newer
/// cano-postgres's kind: the reader skips it).
fn kind_from_code(code: i16) -> Option<FleetCommandKind> {
    match code {
        0 => Some(FleetCommandKind::Trigger),
        1 => Some(FleetCommandKind::Pause),
        2 => Some(FleetCommandKind::Resume),
        3 => Some(FleetCommandKind::Reset),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_and_unknown_codes_are_none() {
        for kind in [
            FleetCommandKind::Trigger,
            FleetCommandKind::Pause,
            FleetCommandKind::Resume,
            FleetCommandKind::Reset,
        ] {
            assert_eq!(kind_from_code(kind_code(kind).unwrap()), Some(kind));
        }
        for bad in [-1, 4, i16::MAX] {
            assert_eq!(kind_from_code(bad), None, "{bad}");
        }
    }
}
