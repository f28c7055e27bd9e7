//! What the scheduler keeps across restarts and shares across a fleet: the contracts of its
//! two stores, their in-memory implementations, the record format, and the pure decisions
//! the scheduler makes from what a store answers.
//!
//! * [`ScheduleStore`]: per flow, a [`FlowRecord`] (last fire, failure streak, next eligible
//!   time, paused, tripped, a buffered trigger and the [`ScheduleHash`] it was written
//!   under), so a restarted scheduler catches up per its
//!   [`MissedFirePolicy`](crate::schedule::MissedFirePolicy) instead of forgetting.
//! * [`FireLedger`]: fleet claims. A node claims a [`FireId`](crate::scheduler::FireId) with a
//!   lease measured in the *store's* clock, renews it while the run goes on and completes it
//!   at the end; an expired claim is taken over by another node, up to a bounded number of
//!   times, after which the fire is abandoned and counted. Per flow, a high-water mark refuses
//!   fires at or below it, and flows whose fire times differ per node (fixed-delay and
//!   fixed-rate intervals) take a per-flow ownership lease instead.
//! * [`Fence`]: every mutating call carries one. Fences are issued per flow by the ledger and
//!   strictly increase across every claim, takeover and ownership lease of that flow, so a
//!   node whose lease lapsed (a *zombie*) is refused by both stores with
//!   [`PersistError::Fenced`].
//! * Pure decisions, called by the scheduler core: [`plan_catch_up`] (which fires to run
//!   after a restart), [`LeaseTrust`] (when to stop trusting a lease on the local monotonic
//!   clock, before the store stops honouring it) and [`SkewCheck`] (is the store's clock far
//!   from ours; would a fire start early by the store's clock).
//!
//! Both contracts follow [`Task`](crate::Task): `fn … -> impl Future + Send` for static
//! dispatch (no boxing per call, fine on embassy), and an object-safe companion
//! ([`DynScheduleStore`], [`DynFireLedger`]) implemented for every store, for code that holds
//! stores of different types. `Box<dyn Dyn…>` and `Arc<dyn Dyn…>` are stores themselves.
//!
//! Records are encoded as one format byte followed by [postcard](https://docs.rs/postcard)
//! (see [`FlowRecord::encode`]), the same bytes on a microcontroller's flash and on a server.
//!
//! ```
//! use cano_core::persist::{Fence, FireLedger, ClaimOutcome, MemoryFireLedger, NodeId};
//! use cano_core::scheduler::FireId;
//! use cano_core::jiff::Timestamp;
//! use core::time::Duration;
//!
//! let ledger = MemoryFireLedger::new_at(Timestamp::UNIX_EPOCH);
//! let fire = FireId::new("report", Timestamp::UNIX_EPOCH);
//! let lease = Duration::from_secs(30);
//! futures::executor::block_on(async {
//!     let a = ledger.claim(&fire, &NodeId::new("a"), lease).await.unwrap();
//!     let ClaimOutcome::Claimed(claim) = a.value else { panic!("a wins") };
//!     let b = ledger.claim(&fire, &NodeId::new("b"), lease).await.unwrap();
//!     assert!(matches!(b.value, ClaimOutcome::Taken { .. })); // never two live claims
//!     assert!(claim.fence > Fence::ZERO);
//! });
//! ```

mod catch_up;
mod codec;
mod error;
mod fire_ledger;
mod hash;
mod lease;
mod memory_ledger;
mod memory_schedule;
mod schedule_store;
mod skew;

#[cfg(feature = "testing")]
mod faults;

pub use catch_up::{CatchUp, CatchUpReason, plan_catch_up};
pub use codec::{FORMAT_VERSION, FleetCommand, FleetCommandKind};
pub use error::{PersistError, PersistResult};
pub use fire_ledger::{
    ClaimOutcome, ClaimRequest, ClaimState, DynFireLedger, ExpiredClaim, FireClaim, FireLedger,
    FireOutcome, FireRecord, FlowLease, FlowLeaseOutcome, HeardClaim, LedgerFlow, TakeoverOutcome,
};
pub use hash::ScheduleHash;
pub use lease::{DEFAULT_LEASE, DEFAULT_LEASE_SAFETY_MARGIN, DEFAULT_MAX_TAKEOVERS, LeaseTrust};
pub use memory_ledger::MemoryFireLedger;
pub use memory_schedule::MemoryScheduleStore;
pub use schedule_store::{
    DynScheduleStore, FlowRecord, ScheduleStore, StoredFlow, check_flow_id, check_record,
};
pub use skew::{DEFAULT_MAX_SKEW, SkewCheck, early_by_store};

#[cfg(feature = "testing")]
pub use faults::Faults;

use alloc::sync::Arc;
use core::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A fencing token: a store refuses a write whose fence is lower than the one in force for
/// the same key ([`PersistError::Fenced`]).
///
/// The ledger issues fences per flow, strictly increasing across every claim, takeover and
/// ownership lease of that flow, so the latest holder always carries the highest one. A
/// single process without a fleet may write with [`Fence::ZERO`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Fence(pub u64);

impl Fence {
    /// The lowest fence: what a scheduler without a fleet writes with.
    pub const ZERO: Fence = Fence(0);

    /// The fence after this one (saturating).
    pub const fn next(self) -> Fence {
        Fence(self.0.saturating_add(1))
    }
}

impl fmt::Display for Fence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fence {}", self.0)
    }
}

/// The longest lease a store grants: a longer one is [`PersistError::Invalid`] (it would
/// outlive any failover a fleet could wait for, and overflow some stores' time types).
pub const MAX_LEASE: core::time::Duration = core::time::Duration::from_secs(366 * 24 * 3600);

/// Checks a lease duration: longer than zero, at most [`MAX_LEASE`]; returns it in µs.
///
/// # Errors
///
/// [`PersistError::Invalid`] otherwise.
pub fn lease_micros(lease: core::time::Duration) -> PersistResult<i64> {
    if lease.is_zero() || lease > MAX_LEASE {
        return Err(PersistError::invalid(alloc::format!(
            "a lease must be longer than zero and at most 366 days, not {}",
            crate::time::DurationText(lease)
        )));
    }
    Ok(lease.as_micros() as i64)
}

/// The name of one scheduler process in a fleet (unique per running process: a host name
/// plus a process id, or a random id chosen at start).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(Arc<str>);

impl NodeId {
    /// A node id.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        NodeId(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A store's answer together with the store's clock when it answered, so a node can measure
/// its skew against the store ([`SkewCheck`]) on every call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped<T> {
    /// The answer.
    pub value: T,
    /// The store's wall clock when it handled the call.
    pub store_now: Timestamp,
}

impl<T> Stamped<T> {
    /// `value` stamped with `store_now`.
    pub fn new(value: T, store_now: Timestamp) -> Self {
        Stamped { value, store_now }
    }

    /// The same stamp on another value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Stamped<U> {
        Stamped {
            value: f(self.value),
            store_now: self.store_now,
        }
    }
}

/// Wall time as whole microseconds since the Unix epoch, the unit every cano store keeps.
///
/// # Errors
///
/// [`PersistError::Invalid`] when `t` has a sub-microsecond part (it would not round-trip).
pub fn to_micros(t: Timestamp) -> PersistResult<i64> {
    if t.subsec_nanosecond() % 1_000 != 0 {
        return Err(PersistError::invalid(alloc::format!(
            "{t} has a sub-microsecond part; stores keep whole microseconds"
        )));
    }
    Ok(t.as_microsecond())
}

/// The wall time `micros` microseconds after the Unix epoch.
///
/// # Errors
///
/// [`PersistError::Corrupt`] when `micros` is outside the range of [`Timestamp`].
pub fn from_micros(micros: i64) -> PersistResult<Timestamp> {
    Timestamp::from_microsecond(micros)
        .map_err(|_| PersistError::corrupt(alloc::format!("{micros} µs is not a valid time")))
}
