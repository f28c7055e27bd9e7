//! [`FireLedger`]: fleet claims, one per fire, with leases in the store's clock.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::Future;
use core::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;

use super::{Fence, FleetCommand, NodeId, PersistResult, Stamped};
use crate::scheduler::FireId;

/// A claim (or takeover) the ledger granted, as announced to every node
/// ([`FireLedger::claims_heard_after`]): the fire and the node that won it. A fleet node
/// that hears it drops its own claim of the fire (the claim stagger,
/// [`FleetConfig::stagger`](crate::scheduler::FleetConfig::stagger)) and learns that the
/// winner is alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeardClaim {
    /// The fire claimed.
    pub fire: FireId,
    /// The node that holds the claim.
    pub node: NodeId,
}

/// One claim of a [`FireLedger::claim_batch`]: the fire and its flow's overlap limit
/// across the fleet (as `max_live` of [`FireLedger::claim_limited`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    /// The fire to claim.
    pub fire: FireId,
    /// The most live claims its flow may hold across the fleet, this one included.
    pub max_live: u32,
}

impl ClaimRequest {
    /// A claim of `fire` within `max_live` live claims of its flow.
    pub fn new(fire: FireId, max_live: u32) -> Self {
        ClaimRequest { fire, max_live }
    }
}

/// How a claimed fire's run ended, as recorded by [`FireLedger::complete`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FireOutcome {
    /// The run succeeded.
    Succeeded,
    /// The run failed.
    Failed,
    /// The run was cancelled (a stop, or the node gave up its lease).
    Cancelled,
}

impl FireOutcome {
    /// The outcome's stored code.
    pub const fn code(self) -> u8 {
        match self {
            FireOutcome::Succeeded => 0,
            FireOutcome::Failed => 1,
            FireOutcome::Cancelled => 2,
        }
    }

    /// The outcome with stored code `code`, if any.
    pub const fn from_code(code: u8) -> Option<FireOutcome> {
        match code {
            0 => Some(FireOutcome::Succeeded),
            1 => Some(FireOutcome::Failed),
            2 => Some(FireOutcome::Cancelled),
            _ => None,
        }
    }
}

/// A live claim, as the node that holds it sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FireClaim {
    /// The fence to renew and complete with.
    pub fence: Fence,
    /// When the lease ends in the store's clock, unless renewed.
    pub expires: Timestamp,
    /// How many times this fire was taken over before this claim (0 for a first claim).
    pub takeovers: u32,
}

/// The answer to [`FireLedger::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimOutcome {
    /// This node holds the fire: run it, renew before `expires`, complete at the end.
    Claimed(FireClaim),
    /// Another node holds the fire (or, for a flow under an ownership lease, the flow). If
    /// `expires` has passed in the store's clock, the claim may be taken over
    /// ([`FireLedger::take_over`]).
    Taken {
        /// The holder.
        owner: NodeId,
        /// When its lease ends in the store's clock.
        expires: Timestamp,
    },
    /// The fire already ran to an end.
    Done {
        /// How it ended.
        outcome: FireOutcome,
    },
    /// The fire was taken over too often and given up.
    Abandoned {
        /// Takeovers before it was given up.
        takeovers: u32,
    },
    /// The fire is at or below the flow's high-water mark and has no record (already run
    /// and pruned, or passed over): it never runs.
    Stale {
        /// The flow's high-water mark.
        high_water: Timestamp,
    },
    /// The flow already holds as many live claims as
    /// [`claim_limited`](FireLedger::claim_limited) allows; nothing was recorded.
    AtLimit {
        /// The flow's live claims.
        live: u32,
    },
}

/// The answer to [`FireLedger::take_over`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TakeoverOutcome {
    /// This node now holds the fire (with a new, higher fence): run it again.
    Claimed(FireClaim),
    /// The claim has not expired: its holder is (as far as the store knows) alive.
    Live {
        /// The holder.
        owner: NodeId,
        /// When its lease ends in the store's clock.
        expires: Timestamp,
    },
    /// The fire already ran to an end.
    Done {
        /// How it ended.
        outcome: FireOutcome,
    },
    /// The fire had been taken over `takeovers` times, the most allowed: it is now given up
    /// and counted in the flow's [`LedgerFlow::abandoned`] (or it had been given up before).
    Abandoned {
        /// Takeovers before it was given up.
        takeovers: u32,
    },
    /// The ledger has no claim for this fire.
    Missing,
    /// The fire's flow already holds as many live claims as
    /// [`take_over_limited`](FireLedger::take_over_limited) allows (its overlap limit,
    /// held fleet-wide); nothing changed: try again once one of them ended.
    AtLimit {
        /// The flow's live claims.
        live: u32,
    },
}

/// Where one fire's claim is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimState {
    /// Held under a lease (which may have lapsed: compare its expiry with the store's now).
    Claimed,
    /// Ran to an end.
    Done(FireOutcome),
    /// Given up after too many takeovers.
    Abandoned,
}

/// One fire's claim as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FireRecord {
    /// The fire.
    pub fire: FireId,
    /// The node that claimed it last.
    pub owner: NodeId,
    /// The fence of the last claim or takeover.
    pub fence: Fence,
    /// Where the claim is.
    pub state: ClaimState,
    /// When the lease ends (or ended) in the store's clock.
    pub expires: Timestamp,
    /// How many times it was taken over.
    pub takeovers: u32,
}

/// A claim whose lease lapsed without a completion: its fire may be taken over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredClaim {
    /// The fire.
    pub fire: FireId,
    /// The node that held it.
    pub owner: NodeId,
    /// Its fence.
    pub fence: Fence,
    /// When its lease ended in the store's clock.
    pub expired_at: Timestamp,
    /// How many times it was taken over so far.
    pub takeovers: u32,
}

/// What the ledger knows about one flow.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LedgerFlow {
    /// The latest fire ever claimed: fires at or below it that have no claim never run.
    pub high_water: Option<Timestamp>,
    /// Fires given up after too many takeovers.
    pub abandoned: u64,
    /// The highest fence issued for the flow.
    pub fence: Fence,
    /// The holder of the flow's ownership lease and when it ends, if one was ever taken
    /// (it may have lapsed).
    pub owner: Option<(NodeId, Timestamp)>,
}

/// A held per-flow ownership lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowLease {
    /// The fence to renew, release and write the flow's records with.
    pub fence: Fence,
    /// When the lease ends in the store's clock, unless renewed.
    pub expires: Timestamp,
}

/// The answer to [`FireLedger::acquire_flow`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlowLeaseOutcome {
    /// This node owns the flow: it alone runs the flow's timeline until the lease ends.
    Owned(FlowLease),
    /// Another node owns it until `expires` (store clock).
    HeldBy {
        /// The owner.
        owner: NodeId,
        /// When its lease ends.
        expires: Timestamp,
    },
}

/// The fleet's ledger of fires: which node runs each [`FireId`], under a lease measured in
/// the store's clock.
///
/// The rules every implementation keeps (the conformance suite in `cano-tests` checks them
/// against each one):
///
/// * **At most one live claim per fire.** A claim is live while the store's clock is before
///   its expiry. [`claim`](FireLedger::claim) by the node that already holds the fire answers
///   `Claimed` again with the same fence and a fresh lease (so a node whose acknowledgement
///   was lost can retry).
/// * **Fences.** Each claim, takeover and flow lease gets the flow's next fence; fences
///   strictly increase per flow. [`renew`](FireLedger::renew) and
///   [`complete`](FireLedger::complete) need the claim's current fence *and* a lease that has
///   not lapsed; anything else is [`PersistError::Fenced`](super::PersistError::Fenced).
///   Completing again with the same fence and outcome is accepted (a retried ack).
/// * **High-water mark.** A claim raises its flow's mark to the fire's time; a fire at or
///   below the mark without a record is [`ClaimOutcome::Stale`]. Claim a flow's fires in
///   ascending order.
/// * **Takeover, bounded.** An expired claim is taken over by another node with a new fence;
///   once a fire was taken over `max_takeovers` times, the next takeover abandons it and
///   counts it in [`LedgerFlow::abandoned`].
/// * **Fleet-wide overlap.** [`claim_limited`](FireLedger::claim_limited) refuses a new
///   claim while the flow holds `max_live` live claims ([`ClaimOutcome::AtLimit`]), and
///   [`take_over_limited`](FireLedger::take_over_limited) a takeover
///   ([`TakeoverOutcome::AtLimit`]).
/// * **Commands.** [`publish`](FireLedger::publish) keeps a node's command for the others,
///   which read it with [`commands_after`](FireLedger::commands_after) (optional: the
///   defaults keep none).
/// * **Flow leases.** A flow whose fire times differ per node (fixed-delay and fixed-rate
///   intervals) is run by the holder of its ownership lease; while it is live, another
///   node's claim of one of its fires answers `Taken`.
/// * **The store's clock.** Callers pass lease *durations*; the store adds them to its own
///   now, and every answer carries that now ([`Stamped`]).
///
/// Errors of every call: [`Unavailable`](super::PersistError::Unavailable) when the store
/// cannot be reached (the call may or may not have been applied; retrying is safe, every
/// call is idempotent for its caller), [`Corrupt`](super::PersistError::Corrupt),
/// [`Invalid`](super::PersistError::Invalid) (a fire time with a sub-microsecond part, an
/// empty flow id) and [`Backend`](super::PersistError::Backend).
pub trait FireLedger: Send + Sync {
    /// Claims `fire` for `node` with a lease of `lease` from the store's now, whatever
    /// else of its flow is running: [`claim_limited`](FireLedger::claim_limited) with no
    /// limit.
    fn claim(
        &self,
        fire: &FireId,
        node: &NodeId,
        lease: Duration,
    ) -> impl Future<Output = PersistResult<Stamped<ClaimOutcome>>> + Send {
        self.claim_limited(fire, node, lease, u32::MAX)
    }

    /// Claims `fire` for `node` unless its flow already holds `max_live` live claims across
    /// the fleet ([`ClaimOutcome::AtLimit`]): the flow's overlap limit
    /// ([`OverlapPolicy::limit`](crate::schedule::OverlapPolicy::limit)) held fleet-wide,
    /// so `Skip` means no claim while the flow has a live run anywhere. A refused claim
    /// takes no fence and leaves the high-water mark alone. The holder asking again is
    /// answered as by [`claim`](FireLedger::claim), limit or not.
    ///
    /// # Errors
    ///
    /// [`Invalid`](super::PersistError::Invalid) for `max_live == 0`, besides the errors of
    /// every call.
    fn claim_limited(
        &self,
        fire: &FireId,
        node: &NodeId,
        lease: Duration,
        max_live: u32,
    ) -> impl Future<Output = PersistResult<Stamped<ClaimOutcome>>> + Send;

    /// Claims each of `claims` for `node` with a lease of `lease`, as
    /// [`claim_limited`](FireLedger::claim_limited) would one after another, and answers
    /// each in the order asked (one answer per request, always). A fleet node asks for the
    /// fires that come due together in one call, so a store that can grant them in one
    /// round trip (PostgreSQL: one statement) claims a hundred fires due at the same
    /// second in the time of one claim. The default performs the claims one by one.
    ///
    /// Two requests for one flow are answered as two claims in that order (the second
    /// sees the first: its live count, its high-water mark).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use std::time::Duration;
    /// use cano_core::persist::{ClaimOutcome, ClaimRequest, FireLedger, MemoryFireLedger, NodeId};
    /// use cano_core::scheduler::FireId;
    ///
    /// let at = jiff::Timestamp::from_second(1_767_225_600).unwrap();
    /// let ledger = MemoryFireLedger::new_at(at);
    /// let claims = [
    ///     ClaimRequest::new(FireId::new("report", at), 1),
    ///     ClaimRequest::new(FireId::new("backup", at), 1),
    /// ];
    /// let answers = ledger.claim_batch(&claims, &NodeId::new("a"), Duration::from_secs(30)).await;
    /// assert_eq!(answers.len(), 2);
    /// assert!(matches!(answers[0].as_ref().unwrap().value, ClaimOutcome::Claimed(_)));
    /// # });
    /// ```
    ///
    /// # Errors
    ///
    /// Each answer carries its own error, as from
    /// [`claim_limited`](FireLedger::claim_limited). A store that sends the batch in one
    /// round trip answers every request of it with the same error when the round trip
    /// fails ([`Unavailable`](super::PersistError::Unavailable): none, some or all of the
    /// claims may have been applied; asking again is safe).
    fn claim_batch(
        &self,
        claims: &[ClaimRequest],
        node: &NodeId,
        lease: Duration,
    ) -> impl Future<Output = Vec<PersistResult<Stamped<ClaimOutcome>>>> + Send {
        async move {
            let mut answers = Vec::with_capacity(claims.len());
            for claim in claims {
                answers.push(
                    self.claim_limited(&claim.fire, node, lease, claim.max_live)
                        .await,
                );
            }
            answers
        }
    }

    /// Extends the claim on `fire` held with `fence` to `lease` from the store's now, and
    /// returns the new expiry.
    ///
    /// # Errors
    ///
    /// [`Fenced`](super::PersistError::Fenced) when `fence` is not the claim's, the lease
    /// lapsed, or the fire is no longer claimed.
    fn renew(
        &self,
        fire: &FireId,
        fence: Fence,
        lease: Duration,
    ) -> impl Future<Output = PersistResult<Stamped<Timestamp>>> + Send;

    /// Records that the run of `fire` held with `fence` ended with `outcome`.
    ///
    /// # Errors
    ///
    /// [`Fenced`](super::PersistError::Fenced) as for [`renew`](FireLedger::renew).
    fn complete(
        &self,
        fire: &FireId,
        fence: Fence,
        outcome: FireOutcome,
    ) -> impl Future<Output = PersistResult<Stamped<()>>> + Send;

    /// Up to `limit` claims whose lease lapsed without a completion, the longest-expired
    /// first.
    fn expired(
        &self,
        limit: usize,
    ) -> impl Future<Output = PersistResult<Stamped<Vec<ExpiredClaim>>>> + Send;

    /// Takes over the expired claim on `fire` for `node` (see the rules above), whatever
    /// else of its flow is running: [`take_over_limited`](FireLedger::take_over_limited)
    /// with no limit.
    fn take_over(
        &self,
        fire: &FireId,
        node: &NodeId,
        lease: Duration,
        max_takeovers: u32,
    ) -> impl Future<Output = PersistResult<Stamped<TakeoverOutcome>>> + Send {
        self.take_over_limited(fire, node, lease, max_takeovers, u32::MAX)
    }

    /// Takes over the expired claim on `fire` for `node` unless its flow already holds
    /// `max_live` live claims ([`TakeoverOutcome::AtLimit`]; checked after the give-up
    /// rule): while a fire's claim lay expired its flow may have claimed a later fire, and
    /// the takeover must not take the flow past its overlap limit.
    ///
    /// # Errors
    ///
    /// [`Invalid`](super::PersistError::Invalid) for `max_live == 0`, besides the errors of
    /// every call.
    fn take_over_limited(
        &self,
        fire: &FireId,
        node: &NodeId,
        lease: Duration,
        max_takeovers: u32,
        max_live: u32,
    ) -> impl Future<Output = PersistResult<Stamped<TakeoverOutcome>>> + Send;

    /// Forgets completed and abandoned claims that ended before `ended_before` (store
    /// clock); the high-water marks keep refusing them. Returns how many were forgotten.
    fn retain(
        &self,
        ended_before: Timestamp,
    ) -> impl Future<Output = PersistResult<Stamped<u64>>> + Send;

    /// The ledger's record of `fire`, if any.
    fn fire(
        &self,
        fire: &FireId,
    ) -> impl Future<Output = PersistResult<Stamped<Option<FireRecord>>>> + Send;

    /// What the ledger knows about `flow` (all defaults for a flow it never saw).
    fn flow(&self, flow: &str) -> impl Future<Output = PersistResult<Stamped<LedgerFlow>>> + Send;

    /// Takes `flow`'s ownership lease for `node` if nobody else holds a live one. The
    /// holder asking again gets `Owned` with the same fence and a fresh lease.
    fn acquire_flow(
        &self,
        flow: &str,
        node: &NodeId,
        lease: Duration,
    ) -> impl Future<Output = PersistResult<Stamped<FlowLeaseOutcome>>> + Send;

    /// Extends `flow`'s ownership lease held with `fence`; returns the new expiry.
    ///
    /// # Errors
    ///
    /// [`Fenced`](super::PersistError::Fenced) when `fence` is not the lease's or it lapsed.
    fn renew_flow(
        &self,
        flow: &str,
        fence: Fence,
        lease: Duration,
    ) -> impl Future<Output = PersistResult<Stamped<Timestamp>>> + Send;

    /// Gives up `flow`'s ownership lease held with `fence` (a clean stop), so another node
    /// may take it at once. Releasing a lease that is no longer held with `fence` is not an
    /// error.
    fn release_flow(
        &self,
        flow: &str,
        fence: Fence,
    ) -> impl Future<Output = PersistResult<Stamped<()>>> + Send;

    /// Records `command` (applied by the node that sends it) for the other nodes, which
    /// read it with [`commands_after`](FireLedger::commands_after). The default keeps
    /// nothing: a ledger without commands leaves each node's commands its own.
    fn publish(&self, command: &FleetCommand) -> impl Future<Output = PersistResult<()>> + Send {
        let _ = command;
        core::future::ready(Ok(()))
    }

    /// The commands published after sequence number `cursor`, oldest first, each with its
    /// sequence number (strictly increasing). Cursor 0 (where a node starts) means "from the
    /// start of what this ledger handle offers": the memory ledger offers every command it
    /// keeps; a durable ledger may start at the end of its log as it was when the handle
    /// connected, so a new node does not replay last week's pauses (`cano-postgres` does).
    /// The default has none.
    fn commands_after(
        &self,
        cursor: u64,
    ) -> impl Future<Output = PersistResult<Vec<(u64, FleetCommand)>>> + Send {
        let _ = cursor;
        core::future::ready(Ok(Vec::new()))
    }

    /// Completes when commands may have been published since the last call (a
    /// notification, e.g. PostgreSQL `NOTIFY`), so they are read at once rather than at
    /// the next scan; `None` (the default) for a ledger that cannot notify. The future
    /// owns what it needs.
    fn command_signal(&self) -> Option<BoxFuture<'static, ()>> {
        None
    }

    /// The claims this handle has heard announced after sequence number `cursor`, oldest
    /// first, each with its sequence number (strictly increasing); `None` (the default)
    /// for a ledger that does not announce its claims. Local and cheap (no round trip):
    /// what the handle received, e.g. PostgreSQL notifications sent by the claim statement
    /// itself. Announcements are hints: a lost one costs one extra claim.
    fn claims_heard_after(&self, cursor: u64) -> Option<Vec<(u64, HeardClaim)>> {
        let _ = cursor;
        None
    }
}

type Answer<'a, T> = BoxFuture<'a, PersistResult<Stamped<T>>>;

/// The object-safe form of [`FireLedger`], implemented for every ledger.
/// `Box<dyn DynFireLedger>` and `Arc<dyn DynFireLedger>` are ledgers themselves.
#[allow(missing_docs)] // each method is the `FireLedger` method of the same name, boxed
pub trait DynFireLedger: Send + Sync {
    fn claim_limited_dyn<'a>(
        &'a self,
        fire: &'a FireId,
        node: &'a NodeId,
        lease: Duration,
        max_live: u32,
    ) -> Answer<'a, ClaimOutcome>;
    fn claim_batch_dyn<'a>(
        &'a self,
        claims: &'a [ClaimRequest],
        node: &'a NodeId,
        lease: Duration,
    ) -> BoxFuture<'a, Vec<PersistResult<Stamped<ClaimOutcome>>>>;
    fn renew_dyn<'a>(
        &'a self,
        fire: &'a FireId,
        fence: Fence,
        lease: Duration,
    ) -> Answer<'a, Timestamp>;
    fn complete_dyn<'a>(
        &'a self,
        fire: &'a FireId,
        fence: Fence,
        outcome: FireOutcome,
    ) -> Answer<'a, ()>;
    fn expired_dyn(&self, limit: usize) -> Answer<'_, Vec<ExpiredClaim>>;
    fn take_over_limited_dyn<'a>(
        &'a self,
        fire: &'a FireId,
        node: &'a NodeId,
        lease: Duration,
        max_takeovers: u32,
        max_live: u32,
    ) -> Answer<'a, TakeoverOutcome>;
    fn retain_dyn(&self, ended_before: Timestamp) -> Answer<'_, u64>;
    fn fire_dyn<'a>(&'a self, fire: &'a FireId) -> Answer<'a, Option<FireRecord>>;
    fn flow_dyn<'a>(&'a self, flow: &'a str) -> Answer<'a, LedgerFlow>;
    fn acquire_flow_dyn<'a>(
        &'a self,
        flow: &'a str,
        node: &'a NodeId,
        lease: Duration,
    ) -> Answer<'a, FlowLeaseOutcome>;
    fn renew_flow_dyn<'a>(
        &'a self,
        flow: &'a str,
        fence: Fence,
        lease: Duration,
    ) -> Answer<'a, Timestamp>;
    fn release_flow_dyn<'a>(&'a self, flow: &'a str, fence: Fence) -> Answer<'a, ()>;
    fn publish_dyn<'a>(&'a self, command: &'a FleetCommand) -> BoxFuture<'a, PersistResult<()>>;
    fn commands_after_dyn(
        &self,
        cursor: u64,
    ) -> BoxFuture<'_, PersistResult<Vec<(u64, FleetCommand)>>>;
    fn command_signal_dyn(&self) -> Option<BoxFuture<'static, ()>>;
    fn claims_heard_after_dyn(&self, cursor: u64) -> Option<Vec<(u64, HeardClaim)>>;
}

impl<T: FireLedger> DynFireLedger for T {
    fn claim_limited_dyn<'a>(
        &'a self,
        fire: &'a FireId,
        node: &'a NodeId,
        lease: Duration,
        max_live: u32,
    ) -> Answer<'a, ClaimOutcome> {
        Box::pin(self.claim_limited(fire, node, lease, max_live))
    }
    fn claim_batch_dyn<'a>(
        &'a self,
        claims: &'a [ClaimRequest],
        node: &'a NodeId,
        lease: Duration,
    ) -> BoxFuture<'a, Vec<PersistResult<Stamped<ClaimOutcome>>>> {
        Box::pin(self.claim_batch(claims, node, lease))
    }
    fn renew_dyn<'a>(
        &'a self,
        fire: &'a FireId,
        fence: Fence,
        lease: Duration,
    ) -> Answer<'a, Timestamp> {
        Box::pin(self.renew(fire, fence, lease))
    }
    fn complete_dyn<'a>(
        &'a self,
        fire: &'a FireId,
        fence: Fence,
        outcome: FireOutcome,
    ) -> Answer<'a, ()> {
        Box::pin(self.complete(fire, fence, outcome))
    }
    fn expired_dyn(&self, limit: usize) -> Answer<'_, Vec<ExpiredClaim>> {
        Box::pin(self.expired(limit))
    }
    fn take_over_limited_dyn<'a>(
        &'a self,
        fire: &'a FireId,
        node: &'a NodeId,
        lease: Duration,
        max_takeovers: u32,
        max_live: u32,
    ) -> Answer<'a, TakeoverOutcome> {
        Box::pin(self.take_over_limited(fire, node, lease, max_takeovers, max_live))
    }
    fn retain_dyn(&self, ended_before: Timestamp) -> Answer<'_, u64> {
        Box::pin(self.retain(ended_before))
    }
    fn fire_dyn<'a>(&'a self, fire: &'a FireId) -> Answer<'a, Option<FireRecord>> {
        Box::pin(self.fire(fire))
    }
    fn flow_dyn<'a>(&'a self, flow: &'a str) -> Answer<'a, LedgerFlow> {
        Box::pin(self.flow(flow))
    }
    fn acquire_flow_dyn<'a>(
        &'a self,
        flow: &'a str,
        node: &'a NodeId,
        lease: Duration,
    ) -> Answer<'a, FlowLeaseOutcome> {
        Box::pin(self.acquire_flow(flow, node, lease))
    }
    fn renew_flow_dyn<'a>(
        &'a self,
        flow: &'a str,
        fence: Fence,
        lease: Duration,
    ) -> Answer<'a, Timestamp> {
        Box::pin(self.renew_flow(flow, fence, lease))
    }
    fn release_flow_dyn<'a>(&'a self, flow: &'a str, fence: Fence) -> Answer<'a, ()> {
        Box::pin(self.release_flow(flow, fence))
    }
    fn publish_dyn<'a>(&'a self, command: &'a FleetCommand) -> BoxFuture<'a, PersistResult<()>> {
        Box::pin(self.publish(command))
    }
    fn commands_after_dyn(
        &self,
        cursor: u64,
    ) -> BoxFuture<'_, PersistResult<Vec<(u64, FleetCommand)>>> {
        Box::pin(self.commands_after(cursor))
    }
    fn command_signal_dyn(&self) -> Option<BoxFuture<'static, ()>> {
        self.command_signal()
    }
    fn claims_heard_after_dyn(&self, cursor: u64) -> Option<Vec<(u64, HeardClaim)>> {
        self.claims_heard_after(cursor)
    }
}

macro_rules! forward_fire_ledger {
    ($ty:ty) => {
        impl FireLedger for $ty {
            fn claim_limited(
                &self,
                fire: &FireId,
                node: &NodeId,
                lease: Duration,
                max_live: u32,
            ) -> impl Future<Output = PersistResult<Stamped<ClaimOutcome>>> + Send {
                async move {
                    (**self)
                        .claim_limited_dyn(fire, node, lease, max_live)
                        .await
                }
            }
            fn claim_batch(
                &self,
                claims: &[ClaimRequest],
                node: &NodeId,
                lease: Duration,
            ) -> impl Future<Output = Vec<PersistResult<Stamped<ClaimOutcome>>>> + Send {
                async move { (**self).claim_batch_dyn(claims, node, lease).await }
            }
            fn renew(
                &self,
                fire: &FireId,
                fence: Fence,
                lease: Duration,
            ) -> impl Future<Output = PersistResult<Stamped<Timestamp>>> + Send {
                async move { (**self).renew_dyn(fire, fence, lease).await }
            }
            fn complete(
                &self,
                fire: &FireId,
                fence: Fence,
                outcome: FireOutcome,
            ) -> impl Future<Output = PersistResult<Stamped<()>>> + Send {
                async move { (**self).complete_dyn(fire, fence, outcome).await }
            }
            fn expired(
                &self,
                limit: usize,
            ) -> impl Future<Output = PersistResult<Stamped<Vec<ExpiredClaim>>>> + Send {
                async move { (**self).expired_dyn(limit).await }
            }
            fn take_over_limited(
                &self,
                fire: &FireId,
                node: &NodeId,
                lease: Duration,
                max_takeovers: u32,
                max_live: u32,
            ) -> impl Future<Output = PersistResult<Stamped<TakeoverOutcome>>> + Send {
                async move {
                    (**self)
                        .take_over_limited_dyn(fire, node, lease, max_takeovers, max_live)
                        .await
                }
            }
            fn retain(
                &self,
                ended_before: Timestamp,
            ) -> impl Future<Output = PersistResult<Stamped<u64>>> + Send {
                async move { (**self).retain_dyn(ended_before).await }
            }
            fn fire(
                &self,
                fire: &FireId,
            ) -> impl Future<Output = PersistResult<Stamped<Option<FireRecord>>>> + Send {
                async move { (**self).fire_dyn(fire).await }
            }
            fn flow(
                &self,
                flow: &str,
            ) -> impl Future<Output = PersistResult<Stamped<LedgerFlow>>> + Send {
                async move { (**self).flow_dyn(flow).await }
            }
            fn acquire_flow(
                &self,
                flow: &str,
                node: &NodeId,
                lease: Duration,
            ) -> impl Future<Output = PersistResult<Stamped<FlowLeaseOutcome>>> + Send {
                async move { (**self).acquire_flow_dyn(flow, node, lease).await }
            }
            fn renew_flow(
                &self,
                flow: &str,
                fence: Fence,
                lease: Duration,
            ) -> impl Future<Output = PersistResult<Stamped<Timestamp>>> + Send {
                async move { (**self).renew_flow_dyn(flow, fence, lease).await }
            }
            fn release_flow(
                &self,
                flow: &str,
                fence: Fence,
            ) -> impl Future<Output = PersistResult<Stamped<()>>> + Send {
                async move { (**self).release_flow_dyn(flow, fence).await }
            }
            fn publish(
                &self,
                command: &FleetCommand,
            ) -> impl Future<Output = PersistResult<()>> + Send {
                async move { (**self).publish_dyn(command).await }
            }
            fn commands_after(
                &self,
                cursor: u64,
            ) -> impl Future<Output = PersistResult<Vec<(u64, FleetCommand)>>> + Send {
                async move { (**self).commands_after_dyn(cursor).await }
            }
            fn command_signal(&self) -> Option<BoxFuture<'static, ()>> {
                (**self).command_signal_dyn()
            }
            fn claims_heard_after(&self, cursor: u64) -> Option<Vec<(u64, HeardClaim)>> {
                (**self).claims_heard_after_dyn(cursor)
            }
        }
    };
}

forward_fire_ledger!(Box<dyn DynFireLedger + '_>);
forward_fire_ledger!(Arc<dyn DynFireLedger + '_>);

impl<T: FireLedger> FireLedger for Arc<T> {
    fn claim_limited(
        &self,
        fire: &FireId,
        node: &NodeId,
        lease: Duration,
        max_live: u32,
    ) -> impl Future<Output = PersistResult<Stamped<ClaimOutcome>>> + Send {
        T::claim_limited(self, fire, node, lease, max_live)
    }
    fn claim_batch(
        &self,
        claims: &[ClaimRequest],
        node: &NodeId,
        lease: Duration,
    ) -> impl Future<Output = Vec<PersistResult<Stamped<ClaimOutcome>>>> + Send {
        T::claim_batch(self, claims, node, lease)
    }
    fn renew(
        &self,
        fire: &FireId,
        fence: Fence,
        lease: Duration,
    ) -> impl Future<Output = PersistResult<Stamped<Timestamp>>> + Send {
        T::renew(self, fire, fence, lease)
    }
    fn complete(
        &self,
        fire: &FireId,
        fence: Fence,
        outcome: FireOutcome,
    ) -> impl Future<Output = PersistResult<Stamped<()>>> + Send {
        T::complete(self, fire, fence, outcome)
    }
    fn expired(
        &self,
        limit: usize,
    ) -> impl Future<Output = PersistResult<Stamped<Vec<ExpiredClaim>>>> + Send {
        T::expired(self, limit)
    }
    fn take_over_limited(
        &self,
        fire: &FireId,
        node: &NodeId,
        lease: Duration,
        max_takeovers: u32,
        max_live: u32,
    ) -> impl Future<Output = PersistResult<Stamped<TakeoverOutcome>>> + Send {
        T::take_over_limited(self, fire, node, lease, max_takeovers, max_live)
    }
    fn retain(
        &self,
        ended_before: Timestamp,
    ) -> impl Future<Output = PersistResult<Stamped<u64>>> + Send {
        T::retain(self, ended_before)
    }
    fn fire(
        &self,
        fire: &FireId,
    ) -> impl Future<Output = PersistResult<Stamped<Option<FireRecord>>>> + Send {
        T::fire(self, fire)
    }
    fn flow(&self, flow: &str) -> impl Future<Output = PersistResult<Stamped<LedgerFlow>>> + Send {
        T::flow(self, flow)
    }
    fn acquire_flow(
        &self,
        flow: &str,
        node: &NodeId,
        lease: Duration,
    ) -> impl Future<Output = PersistResult<Stamped<FlowLeaseOutcome>>> + Send {
        T::acquire_flow(self, flow, node, lease)
    }
    fn renew_flow(
        &self,
        flow: &str,
        fence: Fence,
        lease: Duration,
    ) -> impl Future<Output = PersistResult<Stamped<Timestamp>>> + Send {
        T::renew_flow(self, flow, fence, lease)
    }
    fn release_flow(
        &self,
        flow: &str,
        fence: Fence,
    ) -> impl Future<Output = PersistResult<Stamped<()>>> + Send {
        T::release_flow(self, flow, fence)
    }
    fn publish(&self, command: &FleetCommand) -> impl Future<Output = PersistResult<()>> + Send {
        T::publish(self, command)
    }
    fn commands_after(
        &self,
        cursor: u64,
    ) -> impl Future<Output = PersistResult<Vec<(u64, FleetCommand)>>> + Send {
        T::commands_after(self, cursor)
    }
    fn command_signal(&self) -> Option<BoxFuture<'static, ()>> {
        T::command_signal(self)
    }
    fn claims_heard_after(&self, cursor: u64) -> Option<Vec<(u64, HeardClaim)>> {
        T::claims_heard_after(self, cursor)
    }
}
