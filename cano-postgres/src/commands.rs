//! Fleet commands over `LISTEN/NOTIFY`.

use cano_core::persist::{FleetCommand, PersistError, PersistResult};
use tokio::sync::broadcast;

/// What a [`CommandStream`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandEvent {
    /// A command another node (or this one) published.
    Command(FleetCommand),
    /// Commands may have been missed (the connection dropped and came back, or this
    /// subscriber fell more than 1024 commands behind): reload the flows' state from the
    /// store.
    Resync,
}

/// The commands published on this store's schema by every node, in the order the database
/// delivered them. A node sees its own commands too (compare [`FleetCommand::from`]).
///
/// Delivery is prompt but not durable: a command published while this node is disconnected
/// is lost, and the stream says [`CommandEvent::Resync`] when it reconnects. So commands
/// belong in the store first (the schedule store's record), with the notification only as
/// the nudge to reload.
#[derive(Debug)]
pub struct CommandStream {
    pub(crate) rx: broadcast::Receiver<CommandEvent>,
}

impl CommandStream {
    /// The next event; `None` once the store is gone.
    pub async fn next(&mut self) -> Option<CommandEvent> {
        match self.rx.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(CommandEvent::Resync),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

/// A notification's payload: the command's bytes in hex (payloads are text).
pub(crate) fn encode_payload(command: &FleetCommand) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = command.encode();
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}

/// Decodes [`encode_payload`].
pub(crate) fn decode_payload(payload: &str) -> PersistResult<FleetCommand> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let raw = payload.as_bytes();
    if !raw.len().is_multiple_of(2) {
        return Err(PersistError::corrupt("a command payload of odd length"));
    }
    let bytes = raw
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| PersistError::corrupt("a command payload that is not hex"))?;
    FleetCommand::decode(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cano_core::persist::{FleetCommandKind, NodeId};

    #[test]
    fn payloads_round_trip_and_garbage_is_corrupt() {
        let cmd = FleetCommand::new("report", FleetCommandKind::Trigger, NodeId::new("n1"));
        assert_eq!(decode_payload(&encode_payload(&cmd)).unwrap(), cmd);
        for bad in ["0", "zz", "02ff", ""] {
            assert!(
                matches!(decode_payload(bad), Err(PersistError::Corrupt(_))),
                "{bad}"
            );
        }
    }
}
