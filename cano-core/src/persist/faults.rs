//! [`Faults`]: what a test makes go wrong between one node and an in-memory store
//! (feature `testing`).

use alloc::sync::Arc;
use alloc::vec::Vec;

use futures::channel::oneshot;

use super::{PersistError, PersistResult};
use crate::sync::Lock;

/// The faults one handle of an in-memory store suffers, set by a test: each
/// [`MemoryFireLedger::view`](super::MemoryFireLedger::view) or
/// [`MemoryScheduleStore::view`](super::MemoryScheduleStore::view) has its own, so one node
/// can be partitioned while the others go on. Clones share the switches.
///
/// * [`partition`](Faults::partition): every call fails with
///   [`PersistError::Unavailable`] before reaching the store.
/// * [`lose_acks`](Faults::lose_acks): the next `n` mutating calls are applied, but their
///   answer is lost: the caller gets `Unavailable` (did my claim go through?).
/// * [`hold_renewals`](Faults::hold_renewals): lease renewals stay in flight and reach the
///   store only when released, at the store's then-current time (a slow network).
///
/// A store restart (`restart` on the store) fails every renewal still in flight.
#[derive(Clone, Default)]
pub struct Faults {
    inner: Arc<Lock<FaultState>>,
}

#[derive(Default)]
struct FaultState {
    partitioned: bool,
    lost_acks: u32,
    holding: bool,
    held: Vec<oneshot::Sender<()>>,
}

impl core::fmt::Debug for Faults {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (partitioned, lost_acks, holding, held) = self
            .inner
            .with(|s| (s.partitioned, s.lost_acks, s.holding, s.held.len()));
        f.debug_struct("Faults")
            .field("partitioned", &partitioned)
            .field("lost_acks", &lost_acks)
            .field("holding_renewals", &holding)
            .field("held", &held)
            .finish()
    }
}

impl Faults {
    /// Cuts this handle off from the store (`true`) or reconnects it (`false`).
    pub fn partition(&self, on: bool) {
        self.inner.with(|s| s.partitioned = on);
    }

    /// Loses the answers of the next `n` mutating calls (which are still applied).
    pub fn lose_acks(&self, n: u32) {
        self.inner.with(|s| s.lost_acks = n);
    }

    /// Holds renewals in flight (`true`); `false` releases the held ones, which then reach
    /// the store.
    pub fn hold_renewals(&self, on: bool) {
        let released = self.inner.with(|s| {
            s.holding = on;
            if on {
                Vec::new()
            } else {
                core::mem::take(&mut s.held)
            }
        });
        for sender in released {
            let _ = sender.send(());
        }
    }

    /// Renewals held in flight right now.
    pub fn held_renewals(&self) -> usize {
        self.inner.with(|s| s.held.len())
    }

    pub(crate) fn check_reachable(&self) -> PersistResult<()> {
        if self.inner.with(|s| s.partitioned) {
            return Err(PersistError::unavailable(
                "partitioned from the store (injected)",
            ));
        }
        Ok(())
    }

    /// Whether the answer of a call that was just applied is lost.
    pub(crate) fn take_lost_ack(&self) -> bool {
        self.inner.with(|s| {
            let lost = s.lost_acks > 0;
            s.lost_acks = s.lost_acks.saturating_sub(1);
            lost
        })
    }

    /// A receiver to wait on when renewals are held.
    pub(crate) fn hold(&self) -> Option<oneshot::Receiver<()>> {
        self.inner.with(|s| {
            s.holding.then(|| {
                let (tx, rx) = oneshot::channel();
                s.held.push(tx);
                rx
            })
        })
    }

    /// Fails every held renewal (the store restarted under them).
    pub(crate) fn drop_held(&self) {
        let held = self.inner.with(|s| core::mem::take(&mut s.held));
        drop(held);
    }
}
