//! Fleet mode: many schedulers share one [`FireLedger`] and each fire runs on one of them.
//!
//! Everything here is decided by the pure [`SchedulerCore`]: it asks for ledger calls as
//! [`Action::Fleet`] ([`FleetAction`]) and learns their answers from
//! [`SchedulerCore::fleet_done`] ([`FleetReport`]); the async driver only performs them
//! ([`FleetAction::perform`]), outside its lock, concurrently with everything else.
//!
//! What the core does, per kind of flow:
//!
//! * **Cron and [`IntervalMode::EpochAligned`](crate::schedule::IntervalMode::EpochAligned)
//!   flows** fire at the same [`FireId`] on every node, so each fire is *claimed*: when it
//!   comes due the core asks for [`FleetAction::Claim`] instead of starting it. The node
//!   whose claim wins runs the fire, with the claim's [`Fence`] on its
//!   [`Fire`](crate::scheduler::Fire::fence) and on its schedule-store writes; the others
//!   re-plan their next fire without running (counted in
//!   [`FlowInfo::fires_elsewhere`](crate::scheduler::FlowInfo::fires_elsewhere)). The claim
//!   is limited by the flow's overlap limit across the fleet
//!   ([`FireLedger::claim_limited`]): `Skip` claims nothing while the flow runs anywhere.
//! * **Fixed-delay and fixed-rate flows** have fire times of their own on each node: the
//!   node holding the flow's ownership lease ([`FireLedger::acquire_flow`]) fires them,
//!   the others drop their fires (counted as elsewhere) and try to acquire the lease at
//!   each scan.
//! * **Manual flows and triggers** run where they are triggered, with [`Fence::ZERO`].
//!
//! Leases are renewed a third of the way through ([`LeaseTrust::renew_at`]); once a lease is
//! no longer trusted (a renewal failed or came back later than the safety margin allows)
//! the core drops the run at once ([`Action::Abort`], with no cancellation wind-down: it
//! must stop writing now) and writes nothing of its outcome (the
//! store would refuse it, [`PersistError::Fenced`]). Every
//! [`scan_every`](FleetConfig::scan_every) the core looks for expired claims of its flows
//! ([`FleetAction::ScanExpired`]) and takes them over ([`FleetAction::TakeOver`]): the run
//! starts again with a new fence, as a takeover ([`Fire::is_takeover`]: a checkpointed
//! workflow resumes from its log; a plain job runs again). After
//! [`max_takeovers`](FleetConfig::max_takeovers) the ledger gives the fire up (counted in
//! [`FlowInfo::fires_abandoned`](crate::scheduler::FlowInfo::fires_abandoned)).
//!
//! While the ledger is unreachable ([`PersistError::Unavailable`]) nothing new is claimed:
//! the fires that come due wait (up to the flow's missed-fire keep) and are claimed, oldest
//! first, once a retry (backoff from [`retry`](FleetConfig::retry) to
//! [`retry_max`](FleetConfig::retry_max)) gets through; runs already claimed go on as long
//! as their leases are trusted.
//!
//! Every claim's answer carries the store's clock ([`Stamped`]): the core measures its skew
//! ([`SkewCheck`]), counts a warning above [`max_skew`](FleetConfig::max_skew)
//! ([`FleetStatus::skew_warnings`]; a `tracing` WARN event with the `tracing` feature), and
//! never starts a fire before its time by the store's clock: the start waits.
//!
//! **The claim stagger.** Where the ledger announces the claims it grants
//! ([`FireLedger::claims_heard_after`], handed to [`SchedulerCore::fleet_heard_claim`]),
//! the nodes do not all claim every fire: each due fire ranks the live peers this node has
//! heard of by rendezvous hashing ([`claim_weight`], the same on every node), the first
//! claims at once and the `k`-th waits `k` × [`stagger`](FleetConfig::stagger) (at most
//! half the time to the flow's next fire), dropping its claim when it hears the fire
//! claimed meanwhile (counted in `fires_elsewhere`). So a fleet spends about one claim per
//! fire. A peer that lets its turn pass (this node wins a fire the peer outranked it for)
//! is forgotten until it is heard again, so a dead node, or the old id of a restarted one,
//! delays a few fires by a stagger and then none. Claim times are in the store's clock: a
//! node whose clock runs ahead waits its lead first (within the same cap), so the fastest
//! clock does not win every fire of flows whose period is more than twice its lead. A
//! ledger that announces nothing leaves every node claiming every fire at once, as without
//! a stagger.
//!
//! [`Fire::is_takeover`]: crate::scheduler::Fire::is_takeover

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

use jiff::Timestamp;

use super::{Action, Dispatch, FlowIndex, RunOutcome, SchedulerCore, Stage};
use crate::persist::{
    ClaimOutcome, ClaimRequest, DEFAULT_LEASE, DEFAULT_LEASE_SAFETY_MARGIN, DEFAULT_MAX_SKEW,
    DEFAULT_MAX_TAKEOVERS, DynFireLedger, ExpiredClaim, Fence, FireLedger, FireOutcome,
    FleetCommand, FleetCommandKind, FlowLease, FlowLeaseOutcome, HeardClaim, LeaseTrust, NodeId,
    PersistError, PersistResult, SkewCheck, Stamped, TakeoverOutcome,
};
use crate::scheduler::error::SchedulerError;
use crate::scheduler::events::SchedulerEvent;
use crate::scheduler::job::FireId;
use crate::scheduler::runs::RunId;
use crate::scheduler::schedule::{Timeline, keep};
use crate::time::{Instant, timestamp_at};

/// How often a fleet node looks for expired claims to take over (and, for fixed-delay and
/// fixed-rate flows it does not own, tries to acquire their ownership lease).
pub const DEFAULT_SCAN_EVERY: Duration = Duration::from_secs(5);

/// The first delay before a ledger call that failed as unavailable is tried again; it
/// doubles up to [`DEFAULT_LEDGER_RETRY_MAX`].
pub const DEFAULT_LEDGER_RETRY: Duration = Duration::from_secs(1);

/// The longest delay between retries while the ledger stays unavailable.
pub const DEFAULT_LEDGER_RETRY_MAX: Duration = Duration::from_secs(30);

/// The most fires one [`FleetAction::Claim`] asks for: the fires due together beyond it go
/// in the next claim, sent at once after it.
pub const CLAIM_BATCH_MAX: usize = 128;

/// The most expired claims one scan asks for.
const SCAN_LIMIT: usize = 64;

/// The most due fires a flow keeps waiting for their claim while the ledger is down.
const WAITING_CAP: u64 = 64;

/// How long the `k`-th ranked node waits before claiming a fire ([`FleetConfig::stagger`]).
pub const DEFAULT_CLAIM_STAGGER: Duration = Duration::from_millis(250);

/// How long a peer counts as live after its last heard claim ([`FleetConfig::peer_ttl`]).
pub const DEFAULT_PEER_TTL: Duration = Duration::from_secs(300);

/// The most peers a node remembers (the longest unheard is forgotten first).
const PEERS_CAP: usize = 64;

/// The most claims heard before their fire came due here that a node remembers.
const HEARD_EARLY_CAP: usize = 64;

/// The rendezvous weight of `node` for the fire of flow `flow` scheduled at `at` (µs):
/// FNV-1a (64-bit) over the flow id, the time (little-endian) and the node id, each
/// length-prefixed, then a SplitMix64 finalizer (FNV alone mixes its last bytes poorly).
/// Pinned: every node of a fleet must compute the same weights, on every platform.
///
/// ```
/// use cano_core::scheduler::claim_weight;
/// assert_eq!(claim_weight("report", 0, "a"), claim_weight("report", 0, "a"));
/// assert_ne!(claim_weight("report", 0, "a"), claim_weight("report", 0, "b"));
/// ```
pub fn claim_weight(flow: &str, at: i64, node: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut eat = |bytes: &[u8]| {
        for b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            h = (h ^ u64::from(*b)).wrapping_mul(PRIME);
        }
    };
    eat(flow.as_bytes());
    eat(&at.to_le_bytes());
    eat(node.as_bytes());
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A fleet node's settings (defaults from [`crate::persist`]).
///
/// ```
/// use cano_core::scheduler::FleetConfig;
/// use core::time::Duration;
///
/// let mut config = FleetConfig::default();
/// config.lease = Duration::from_secs(10);
/// config.safety_margin = Duration::from_secs(1);
/// assert!(config.validate().is_ok());
/// config.safety_margin = Duration::from_secs(10);
/// assert!(config.validate().is_err()); // such a lease would never be trusted
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetConfig {
    /// The lease of a claim or ownership lease, in the store's clock ([`DEFAULT_LEASE`]):
    /// how long a dead node's fire waits before another node takes it over.
    pub lease: Duration,
    /// How long before its end (on this node's clock) a lease stops being trusted
    /// ([`DEFAULT_LEASE_SAFETY_MARGIN`]; see [`LeaseTrust`]).
    pub safety_margin: Duration,
    /// Takeovers of one fire before the ledger gives it up ([`DEFAULT_MAX_TAKEOVERS`]).
    pub max_takeovers: u32,
    /// Skew to the store's clock above which the node warns ([`DEFAULT_MAX_SKEW`]).
    pub max_skew: Duration,
    /// How often to scan for expired claims ([`DEFAULT_SCAN_EVERY`]).
    pub scan_every: Duration,
    /// First retry delay while the ledger is unavailable ([`DEFAULT_LEDGER_RETRY`]).
    pub retry: Duration,
    /// Longest retry delay ([`DEFAULT_LEDGER_RETRY_MAX`]).
    pub retry_max: Duration,
    /// The claim stagger ([`DEFAULT_CLAIM_STAGGER`]): the node ranked `k` for a fire (see
    /// the [module docs](crate::scheduler::fleet)) claims it `k` × this after it came due,
    /// unless it heard it claimed first; never later than half the time to the flow's next
    /// fire. Zero: every node claims every fire at once. Longer saves claims when
    /// announcements are slow; shorter makes a dead first node's fires less late.
    pub stagger: Duration,
    /// How long a peer counts as live after its last heard claim ([`DEFAULT_PEER_TTL`]).
    /// Erring either way is safe: a live peer forgotten too soon costs one extra claim (it
    /// is no longer ranked, so two nodes may claim at once); a dead peer remembered too
    /// long delays the fires it ranked first by one stagger (the next node claims them).
    pub peer_ttl: Duration,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            lease: DEFAULT_LEASE,
            safety_margin: DEFAULT_LEASE_SAFETY_MARGIN,
            max_takeovers: DEFAULT_MAX_TAKEOVERS,
            max_skew: DEFAULT_MAX_SKEW,
            scan_every: DEFAULT_SCAN_EVERY,
            retry: DEFAULT_LEDGER_RETRY,
            retry_max: DEFAULT_LEDGER_RETRY_MAX,
            stagger: DEFAULT_CLAIM_STAGGER,
            peer_ttl: DEFAULT_PEER_TTL,
        }
    }
}

impl FleetConfig {
    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`SchedulerError::InvalidPolicy`] when the safety margin is not shorter than the
    /// lease (a lease that is never trusted), the lease is longer than
    /// [`MAX_LEASE`](crate::persist::MAX_LEASE), or the scan interval or a retry delay is
    /// zero.
    pub fn validate(&self) -> Result<(), SchedulerError> {
        let invalid = |reason: &'static str| {
            Err(SchedulerError::InvalidPolicy {
                reason: reason.into(),
            })
        };
        if self.lease.is_zero() || self.lease > crate::persist::MAX_LEASE {
            return invalid("a fleet lease must be longer than zero and at most 366 days");
        }
        if self.safety_margin >= self.lease {
            return invalid("the lease safety margin must be shorter than the lease");
        }
        if self.scan_every.is_zero() || self.retry.is_zero() || self.retry_max < self.retry {
            return invalid("the scan interval and retry delays must be longer than zero");
        }
        Ok(())
    }
}

/// A ledger call the core asks its driver for ([`Action::Fleet`]). Perform it with
/// [`perform`](FleetAction::perform) and hand the answer to [`SchedulerCore::fleet_done`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FleetAction {
    /// [`FireLedger::claim_batch`] the fires that came due together (at most
    /// [`CLAIM_BATCH_MAX`]), each up to its flow's overlap limit across the fleet, with
    /// `lease`.
    Claim {
        /// The flow of each fire: `flows[k]` is the flow of `claims[k]`.
        flows: Vec<FlowIndex>,
        /// The fires, oldest first within a flow.
        claims: Vec<ClaimRequest>,
        /// The lease to ask for.
        lease: Duration,
    },
    /// [`FireLedger::renew`] the claim on `fire` held with `fence`.
    Renew {
        /// The fire.
        fire: FireId,
        /// The claim's fence.
        fence: Fence,
        /// The lease to ask for.
        lease: Duration,
    },
    /// [`FireLedger::complete`] the claim on `fire` held with `fence`.
    Complete {
        /// The fire.
        fire: FireId,
        /// The claim's fence.
        fence: Fence,
        /// How its run ended.
        outcome: FireOutcome,
    },
    /// [`FireLedger::expired`]: look for claims to take over.
    ScanExpired {
        /// The most to return.
        limit: usize,
    },
    /// [`FireLedger::take_over_limited`] the expired claim on `fire` of `flow`, within its
    /// overlap limit.
    TakeOver {
        /// The flow.
        flow: FlowIndex,
        /// The fire.
        fire: FireId,
        /// The lease to ask for.
        lease: Duration,
        /// Takeovers allowed before the fire is given up.
        max_takeovers: u32,
        /// The flow's overlap limit.
        max_live: u32,
    },
    /// [`FireLedger::acquire_flow`] the ownership lease of `flow` (id `id`).
    AcquireFlow {
        /// The flow.
        flow: FlowIndex,
        /// Its id.
        id: Arc<str>,
        /// The lease to ask for.
        lease: Duration,
    },
    /// [`FireLedger::renew_flow`] the ownership lease of `flow` held with `fence`.
    RenewFlow {
        /// The flow.
        flow: FlowIndex,
        /// Its id.
        id: Arc<str>,
        /// The lease's fence.
        fence: Fence,
        /// The lease to ask for.
        lease: Duration,
    },
    /// [`FireLedger::release_flow`] (at a stop).
    ReleaseFlow {
        /// The flow.
        flow: FlowIndex,
        /// Its id.
        id: Arc<str>,
        /// The lease's fence.
        fence: Fence,
    },
    /// [`FireLedger::publish`] a command this node applied, for the other nodes.
    Publish(FleetCommand),
    /// [`FireLedger::commands_after`] `cursor`: commands other nodes published.
    ReadCommands {
        /// The last command seen.
        cursor: u64,
    },
}

/// The answer to a [`FleetAction`], for [`SchedulerCore::fleet_done`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FleetReport {
    /// The answers to [`FleetAction::Claim`]: per fire asked, its flow, the fire and the
    /// ledger's answer. [`perform`](FleetAction::perform) answers every fire asked: those a
    /// ledger left unanswered are [`PersistError::Unavailable`] (claimed again after the
    /// retry delay).
    Claim {
        /// `(flow, fire, answer)` for each fire asked for.
        answers: Vec<(FlowIndex, FireId, PersistResult<Stamped<ClaimOutcome>>)>,
    },
    /// The answer to [`FleetAction::Renew`].
    Renew {
        /// The fire.
        fire: FireId,
        /// The fence renewed with.
        fence: Fence,
        /// The new expiry.
        result: PersistResult<Stamped<Timestamp>>,
    },
    /// The answer to [`FleetAction::Complete`].
    Complete {
        /// The fire.
        fire: FireId,
        /// The fence completed with.
        fence: Fence,
        /// The ledger's answer.
        result: PersistResult<Stamped<()>>,
    },
    /// The answer to [`FleetAction::ScanExpired`].
    ScanExpired {
        /// The expired claims.
        result: PersistResult<Stamped<Vec<ExpiredClaim>>>,
    },
    /// The answer to [`FleetAction::TakeOver`].
    TakeOver {
        /// The flow.
        flow: FlowIndex,
        /// The fire.
        fire: FireId,
        /// The ledger's answer.
        result: PersistResult<Stamped<TakeoverOutcome>>,
    },
    /// The answer to [`FleetAction::AcquireFlow`].
    AcquireFlow {
        /// The flow.
        flow: FlowIndex,
        /// The ledger's answer.
        result: PersistResult<Stamped<FlowLeaseOutcome>>,
    },
    /// The answer to [`FleetAction::RenewFlow`].
    RenewFlow {
        /// The flow.
        flow: FlowIndex,
        /// The fence renewed with.
        fence: Fence,
        /// The new expiry.
        result: PersistResult<Stamped<Timestamp>>,
    },
    /// The answer to [`FleetAction::ReleaseFlow`].
    ReleaseFlow {
        /// The flow.
        flow: FlowIndex,
        /// The ledger's answer.
        result: PersistResult<Stamped<()>>,
    },
    /// The answer to [`FleetAction::Publish`].
    Publish {
        /// The ledger's answer.
        result: PersistResult<()>,
    },
    /// The answer to [`FleetAction::ReadCommands`].
    ReadCommands {
        /// The commands after the cursor, with their sequence numbers.
        result: PersistResult<Vec<(u64, FleetCommand)>>,
    },
}

impl FleetAction {
    /// Performs this call on `ledger` as node `node` and returns its answer: all a driver
    /// does with a fleet action.
    pub async fn perform<L: FireLedger + ?Sized>(self, ledger: &L, node: &NodeId) -> FleetReport {
        match self {
            FleetAction::Claim {
                flows,
                claims,
                lease,
            } => {
                let results = ledger.claim_batch(&claims, node, lease).await;
                FleetReport::Claim {
                    answers: claim_answers(flows, claims, results),
                }
            }
            FleetAction::Renew { fire, fence, lease } => {
                let result = ledger.renew(&fire, fence, lease).await;
                FleetReport::Renew {
                    fire,
                    fence,
                    result,
                }
            }
            FleetAction::Complete {
                fire,
                fence,
                outcome,
            } => {
                let result = ledger.complete(&fire, fence, outcome).await;
                FleetReport::Complete {
                    fire,
                    fence,
                    result,
                }
            }
            FleetAction::ScanExpired { limit } => FleetReport::ScanExpired {
                result: ledger.expired(limit).await,
            },
            FleetAction::TakeOver {
                flow,
                fire,
                lease,
                max_takeovers,
                max_live,
            } => {
                let result = ledger
                    .take_over_limited(&fire, node, lease, max_takeovers, max_live)
                    .await;
                FleetReport::TakeOver { flow, fire, result }
            }
            FleetAction::AcquireFlow { flow, id, lease } => FleetReport::AcquireFlow {
                flow,
                result: ledger.acquire_flow(&id, node, lease).await,
            },
            FleetAction::RenewFlow {
                flow,
                id,
                fence,
                lease,
            } => FleetReport::RenewFlow {
                flow,
                fence,
                result: ledger.renew_flow(&id, fence, lease).await,
            },
            FleetAction::ReleaseFlow { flow, id, fence } => FleetReport::ReleaseFlow {
                flow,
                result: ledger.release_flow(&id, fence).await,
            },
            FleetAction::Publish(command) => FleetReport::Publish {
                result: ledger.publish(&command).await,
            },
            FleetAction::ReadCommands { cursor } => FleetReport::ReadCommands {
                result: ledger.commands_after(cursor).await,
            },
        }
    }
}

/// Pairs each fire of a [`FleetAction::Claim`] with its answer; a fire the ledger left
/// unanswered gets [`PersistError::Unavailable`], so it is claimed again.
fn claim_answers(
    flows: Vec<FlowIndex>,
    claims: Vec<ClaimRequest>,
    results: Vec<PersistResult<Stamped<ClaimOutcome>>>,
) -> Vec<(FlowIndex, FireId, PersistResult<Stamped<ClaimOutcome>>)> {
    let mut results = results.into_iter();
    flows
        .into_iter()
        .zip(claims)
        .map(|(flow, claim)| {
            let result = results.next().unwrap_or_else(|| {
                Err(PersistError::unavailable(
                    "the ledger answered fewer claims than were asked",
                ))
            });
            (flow, claim.fire, result)
        })
        .collect()
}

impl FleetAction {
    /// [`perform`](Self::perform) on a ledger behind `Arc<dyn DynFireLedger>`, as an owned
    /// future (what the scheduler's driver runs).
    pub fn perform_owned(
        self,
        ledger: Arc<dyn DynFireLedger>,
        node: NodeId,
    ) -> futures::future::BoxFuture<'static, FleetReport> {
        // `Arc<dyn DynFireLedger>` is a `FireLedger` itself: one `perform` serves both.
        alloc::boxed::Box::pin(async move { self.perform(&ledger, &node).await })
    }
}

/// A fleet node's view of the fleet as a whole ([`SchedulerCore::fleet_status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetStatus {
    /// This node's id.
    pub node: NodeId,
    /// Whether the ledger answered the last call (false while retrying after
    /// [`PersistError::Unavailable`]).
    pub ledger_available: bool,
    /// The store's clock minus this node's, as last measured from a claim.
    pub skew: Option<jiff::SignedDuration>,
    /// Claims whose answer showed a skew above [`FleetConfig::max_skew`].
    pub skew_warnings: u64,
    /// Fires whose start waited because they would have started early by the store's
    /// clock.
    pub held_early: u64,
    /// Claims held right now (running, waiting to start, or completing).
    pub claims_held: usize,
}

/// How a flow takes part in a fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Each fire is claimed (cron, epoch-aligned intervals).
    Claims,
    /// The owner of the flow's lease fires it (fixed delay, fixed rate).
    Owned,
    /// Runs where triggered (manual).
    Local,
}

/// A flow's ownership lease as its holder sees it.
#[derive(Debug, Clone, Copy)]
struct OwnLease {
    lease: FlowLease,
    trust: LeaseTrust,
    /// A renewal in flight, sent at.
    renewing: Option<Instant>,
    /// After a failed renewal: retry from then.
    retry_at: Option<Instant>,
}

#[derive(Debug, Default, Clone, Copy)]
pub(super) struct FleetCounters {
    pub(super) fires_elsewhere: u64,
    pub(super) fires_abandoned: u64,
    pub(super) takeovers: u64,
    pub(super) lease_losses: u64,
}

#[derive(Debug)]
struct FleetFlow {
    mode: Mode,
    counters: FleetCounters,
    /// The highest fence this node holds or held for the flow: its schedule-store writes
    /// carry it.
    fence: Fence,
    owned: Option<OwnLease>,
    /// An acquire in flight, sent at.
    acquiring: Option<Instant>,
    /// The next acquire attempt.
    acquire_at: Instant,
    /// Whether an acquire was ever answered: until then a due fire waits for the answer
    /// (a fleet that just started must not drop every fixed-delay flow's first fire).
    acquire_answered: bool,
    /// A fire came due before the first answer: fire at once if the lease is ours.
    deferred: bool,
    /// The ownership lease was lost: its runs are being cancelled.
    losing: bool,
}

impl FleetFlow {
    fn new(timeline: &Timeline, now: Instant) -> Self {
        FleetFlow {
            mode: match timeline {
                Timeline::Wall(_) => Mode::Claims,
                Timeline::FixedDelay { .. } | Timeline::FixedRate { .. } => Mode::Owned,
                Timeline::Manual => Mode::Local,
            },
            counters: FleetCounters::default(),
            fence: Fence::ZERO,
            owned: None,
            acquiring: None,
            acquire_at: now,
            acquire_answered: false,
            deferred: false,
            losing: false,
        }
    }
}

/// Where a held claim is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeldState {
    /// Claimed; starts at `start_at` (later than now when early by the store's clock).
    Waiting { start_at: Instant },
    /// Its run is in flight.
    Running(RunId),
    /// Its run ended: the completion is to be sent (or is in flight).
    Completing {
        outcome: FireOutcome,
        sending: bool,
        retry_at: Instant,
    },
}

#[derive(Debug, Clone)]
struct Held {
    flow: u32,
    fire: FireId,
    fence: Fence,
    takeover: bool,
    trust: LeaseTrust,
    renewing: Option<Instant>,
    renew_retry: Option<Instant>,
    state: HeldState,
}

impl Held {
    fn renew_due(&self) -> Option<Instant> {
        if self.renewing.is_some() {
            return None;
        }
        Some(self.renew_retry.unwrap_or_else(|| self.trust.renew_at()))
    }
}

/// A due fire waiting out its claim stagger.
#[derive(Debug, Clone, Copy)]
struct Staggered {
    flow: u32,
    at: i64,
    claim_at: Instant,
}

/// A claim sent and not answered yet.
#[derive(Debug, Clone, Copy)]
struct Sent {
    flow: u32,
    at: i64,
    wall: Timestamp,
    mono: Instant,
}

/// What a fleet core keeps beside its flows. Boxed in an `Option`: a core without a ledger
/// pays one pointer and one branch per poll, fire and outcome.
#[derive(Debug)]
pub(super) struct Fleet {
    config: FleetConfig,
    node: NodeId,
    flows: Vec<FleetFlow>,
    /// Due fires (flow, wall µs) waiting to be claimed, oldest first.
    to_claim: VecDeque<(u32, i64)>,
    /// Due fires waiting out their stagger before they join `to_claim`.
    staggered: Vec<Staggered>,
    /// Peers heard of (a claim they won), with when they were last heard.
    peers: Vec<(NodeId, Instant)>,
    /// Claims heard before their fire came due here (flow, wall µs), oldest first.
    heard_early: VecDeque<(Arc<str>, i64)>,
    claiming: Vec<Sent>,
    claims: Vec<Held>,
    /// Runs whose lease was lost: their outcome is not written.
    lost_runs: Vec<RunId>,
    takeovers: VecDeque<(u32, FireId)>,
    /// Takeovers sent and not answered, with when they were sent.
    taking_over: Vec<(FireId, Instant)>,
    scan_at: Instant,
    scanning: bool,
    /// While the ledger is unavailable: the next retry.
    down_until: Option<Instant>,
    probing: bool,
    retry_delay: Duration,
    skew: Option<SkewCheck>,
    skew_warnings: u64,
    held_early: u64,
    publish: VecDeque<FleetCommand>,
    publishing: bool,
    /// Applying a command from another node: do not publish it again.
    applying_remote: bool,
    command_cursor: u64,
    reading_commands: bool,
    /// Commands are to be read (at each scan, and when a notification nudged).
    commands_due: bool,
    released: bool,
    /// Wall minus monotonic (µs) at the last poll: a forward jump means this node was
    /// suspended (its monotonic clock stood still while the store's leases ran on).
    wall_offset: Option<i64>,
}

impl Fleet {
    pub(super) fn new(node: NodeId, config: FleetConfig) -> Self {
        Fleet {
            config,
            node,
            flows: Vec::new(),
            to_claim: VecDeque::new(),
            staggered: Vec::new(),
            peers: Vec::new(),
            heard_early: VecDeque::new(),
            claiming: Vec::new(),
            claims: Vec::new(),
            lost_runs: Vec::new(),
            takeovers: VecDeque::new(),
            taking_over: Vec::new(),
            scan_at: Instant::ZERO,
            scanning: false,
            down_until: None,
            probing: false,
            retry_delay: Duration::ZERO,
            skew: None,
            skew_warnings: 0,
            held_early: 0,
            publish: VecDeque::new(),
            publishing: false,
            applying_remote: false,
            command_cursor: 0,
            reading_commands: false,
            commands_due: false,
            released: false,
            wall_offset: None,
        }
    }

    fn lease(&self) -> Duration {
        self.config.lease
    }

    fn trust(&self, sent: Instant) -> LeaseTrust {
        LeaseTrust::new(sent, self.config.lease, self.config.safety_margin)
    }

    /// Whether a new call (claim, scan, takeover, acquire) may go to the ledger now.
    fn may_call(&self, now: Instant) -> bool {
        match self.down_until {
            None => true,
            Some(retry) => !self.probing && now >= retry,
        }
    }

    /// A new call goes out (the probe, while the ledger is down).
    fn calling(&mut self) {
        if self.down_until.is_some() {
            self.probing = true;
        }
    }

    fn ledger_up(&mut self) {
        self.down_until = None;
        self.probing = false;
        self.retry_delay = Duration::ZERO;
    }

    fn ledger_down(&mut self, now: Instant) {
        self.probing = false;
        self.retry_delay = (self.retry_delay * 2).clamp(self.config.retry, self.config.retry_max);
        self.down_until = Some(now.saturating_add(self.retry_delay));
    }

    /// Notes how a call went, for the ledger's availability.
    fn answered<T>(&mut self, result: &PersistResult<T>, now: Instant) {
        match result {
            Err(e) if retryable(e) => self.ledger_down(now),
            _ => self.ledger_up(),
        }
    }

    /// Claims of `flow` asked for, waiting to start, or running.
    fn busy(&self, flow: u32, running: u32) -> u32 {
        let sent = self.claiming.iter().filter(|s| s.flow == flow).count();
        let waiting = self
            .claims
            .iter()
            .filter(|h| h.flow == flow && matches!(h.state, HeldState::Waiting { .. }))
            .count();
        running.saturating_add((sent + waiting) as u32)
    }

    /// How long after it came due (at `now`) this node claims the fire of `flow` at `at`:
    /// its rank among the live peers times the stagger, plus its clock's lead on the
    /// store's (claim times are in the store's clock), at most half the time to the flow's
    /// next fire (`next`, wall µs): a ledger refuses a fire older than one it granted, so
    /// a fire must be claimed before its successor is.
    fn claim_delay(&self, flow: &str, at: i64, next: Option<i64>, now: Instant) -> Duration {
        if self.config.stagger.is_zero() {
            return Duration::ZERO;
        }
        let me = (
            claim_weight(flow, at, self.node.as_str()),
            self.node.as_str(),
        );
        let rank = self
            .peers
            .iter()
            .filter(|(peer, heard)| {
                *peer != self.node
                    && now < heard.saturating_add(self.config.peer_ttl)
                    && (claim_weight(flow, at, peer.as_str()), peer.as_str()) > me
            })
            .count() as u32;
        // Ahead of the store (a negative offset) by at least this much.
        let lead = self.skew.map_or(Duration::ZERO, |skew| {
            let ahead = skew.offset().as_micros().saturating_neg();
            let uncertainty = i128::try_from(skew.uncertainty().as_micros()).unwrap_or(i128::MAX);
            let certain = ahead.saturating_sub(uncertainty);
            Duration::from_micros(u64::try_from(certain.max(0)).unwrap_or(u64::MAX))
        });
        let delay = self
            .config
            .stagger
            .saturating_mul(rank)
            .saturating_add(lead);
        match next.map(|next| next.saturating_sub(at) / 2) {
            Some(half_gap) => {
                delay.min(Duration::from_micros(u64::try_from(half_gap).unwrap_or(0)))
            }
            None => delay,
        }
    }

    /// This node won the fire of `flow` at `at`: the peers ranked above it for that fire
    /// did not claim it in their turn, so they are most likely gone (a node restarted
    /// under a new id, or died) and no longer delay this node's claims. A live one is
    /// heard again at its next claim.
    fn forget_outranking_peers(&mut self, flow: &str, at: i64) {
        let me = (
            claim_weight(flow, at, self.node.as_str()),
            self.node.as_str(),
        );
        self.peers
            .retain(|(peer, _)| (claim_weight(flow, at, peer.as_str()), peer.as_str()) <= me);
    }

    /// Queues the fire of `flow` at `at` for its claim, before any newer fire of the same
    /// flow: a ledger refuses a fire older than one it already granted (`Stale`), so a
    /// flow's fires are claimed oldest first.
    fn queue_claim(&mut self, flow: u32, at: i64) {
        match self.to_claim.iter().position(|&(f, a)| f == flow && a > at) {
            Some(p) => self.to_claim.insert(p, (flow, at)),
            None => self.to_claim.push_back((flow, at)),
        }
    }

    fn measure_skew(&mut self, sent: Timestamp, store_now: Timestamp, received: Timestamp) {
        let skew = SkewCheck::measure(sent, store_now, received);
        if skew.exceeds(self.config.max_skew) {
            self.skew_warnings += 1;
            #[cfg(feature = "tracing")]
            tracing::warn!(
                target: "cano::fleet",
                node = %self.node,
                skew_us = skew.offset().as_micros() as i64,
                "clock skew to the fire ledger above the limit"
            );
        }
        self.skew = Some(skew);
    }
}

impl Fleet {
    /// Trust is measured on the monotonic clock, which stands still while the machine is
    /// suspended; the store's leases do not. So a forward jump of the wall clock against
    /// the monotonic one beyond the safety margin ends trust in every lease held (a
    /// forward NTP step that large does too: a lease is given up rather than risked).
    fn check_suspend(&mut self, now: Instant, wall: Timestamp) {
        let offset = wall
            .as_microsecond()
            .saturating_sub(crate::time::mono_micros(now));
        let previous = self.wall_offset.replace(offset);
        let margin = i64::try_from(self.config.safety_margin.as_micros()).unwrap_or(i64::MAX);
        if previous.is_some_and(|p| offset.saturating_sub(p) > margin) {
            let lapsed = LeaseTrust::new(now, Duration::ZERO, Duration::ZERO);
            for held in &mut self.claims {
                held.trust = lapsed;
            }
            for flow in &mut self.flows {
                if let Some(owned) = &mut flow.owned {
                    owned.trust = lapsed;
                }
            }
        }
    }
}

fn retryable(e: &PersistError) -> bool {
    matches!(e, PersistError::Unavailable(_) | PersistError::Backend(_))
}

fn fire_outcome(outcome: &RunOutcome) -> Option<FireOutcome> {
    match outcome {
        RunOutcome::Succeeded => Some(FireOutcome::Succeeded),
        RunOutcome::Failed(failure) if !failure.is_cancellation() => Some(FireOutcome::Failed),
        // A cancelled run (a stop, a dropped future) leaves its claim to expire: another
        // node takes it over and runs it (at least once).
        RunOutcome::Failed(_) | RunOutcome::Cancelled => None,
    }
}

/// What a due fire of a fleet core turns into.
pub(super) enum FleetDue {
    /// Not a fleet matter: start it here as usual, with this fence.
    Local(Fence),
    /// The fleet took it (a claim is asked for or queued, or it was dropped); this action
    /// first, if any.
    Handled(Option<Action>),
}

/// What the core does with the end of a run.
pub(super) enum FleetEnd {
    /// Write its outcome as usual.
    Write,
    /// Its lease was lost: write nothing.
    Lost,
}

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl SchedulerCore {
    /// Makes this core a fleet node named `node` (before `start`): from then on it asks
    /// for ledger calls ([`Action::Fleet`]) as the [module docs](crate::scheduler::fleet)
    /// describe. Without this call (the default) the core asks for none and costs nothing
    /// more.
    ///
    /// # Errors
    ///
    /// [`SchedulerError::InvalidPolicy`] from [`FleetConfig::validate`], or
    /// [`SchedulerError::SetAfterStart`].
    pub fn join_fleet(&mut self, node: NodeId, config: FleetConfig) -> Result<(), SchedulerError> {
        if self.stage != Stage::Registering {
            return Err(SchedulerError::SetAfterStart { setting: "fleet" });
        }
        config.validate()?;
        self.fleet = Some(alloc::boxed::Box::new(Fleet::new(node, config)));
        self.fleet_hooks = Some(&super::fleet_hooks::FLEET_HOOKS);
        Ok(())
    }

    /// The lease of a fleet node's claims (zero without a fleet).
    pub(crate) fn fleet_lease(&self) -> Duration {
        self.fleet
            .as_deref()
            .map_or(Duration::ZERO, |f| f.config.lease)
    }

    /// Whether this core is a fleet node ([`join_fleet`](Self::join_fleet)).
    pub fn is_fleet_node(&self) -> bool {
        self.fleet.is_some()
    }

    /// The fleet as this node sees it; `None` without a fleet.
    pub fn fleet_status(&self) -> Option<FleetStatus> {
        let fleet = self.fleet.as_deref()?;
        Some(FleetStatus {
            node: fleet.node.clone(),
            ledger_available: fleet.down_until.is_none(),
            skew: fleet.skew.map(|s| s.offset()),
            skew_warnings: fleet.skew_warnings,
            held_early: fleet.held_early,
            claims_held: fleet.claims.len(),
        })
    }

    /// At start: each flow's part in the fleet.
    pub(super) fn fleet_start(&mut self, now: Instant) {
        self.fleet_sync_flows(now);
        if let Some(fleet) = self.fleet.as_deref_mut() {
            fleet.scan_at = now.saturating_add(fleet.config.scan_every);
        }
    }

    /// Gives every flow registered since (a flow added while running) its part in the
    /// fleet. O(1) when nothing was added.
    pub(super) fn fleet_sync_flows(&mut self, now: Instant) {
        let Some(fleet) = self.fleet.as_deref_mut() else {
            return;
        };
        for i in fleet.flows.len()..self.flows.len() {
            fleet
                .flows
                .push(FleetFlow::new(&self.flows[i].timeline, now));
        }
    }

    /// Flow `i` was added in a reused slot or replaced: its fleet part starts afresh (a new
    /// schedule may claim where the old one held a flow lease, or the other way round), and
    /// its fires still queued for a claim are dropped.
    pub(super) fn fleet_reset_flow(&mut self, i: usize, now: Instant) {
        let Some(fleet) = self.fleet.as_deref_mut() else {
            return;
        };
        if let Some(flow) = fleet.flows.get_mut(i) {
            *flow = FleetFlow::new(&self.flows[i].timeline, now);
        }
        fleet.to_claim.retain(|&(flow, _)| flow as usize != i);
        fleet.staggered.retain(|s| s.flow as usize != i);
    }

    /// What [`fleet_heard_claim`](Self::fleet_heard_claim) does on a fleet node.
    pub(super) fn fleet_hear_claim(&mut self, heard: &HeardClaim, now: Instant) {
        let Some(fleet) = self.fleet.as_deref_mut() else {
            return;
        };
        if heard.node == fleet.node {
            return;
        }
        match fleet.peers.iter_mut().find(|(peer, _)| *peer == heard.node) {
            Some(peer) => peer.1 = now,
            None => {
                if fleet.peers.len() >= PEERS_CAP
                    && let Some(oldest) = (0..fleet.peers.len()).min_by_key(|&p| fleet.peers[p].1)
                {
                    fleet.peers.swap_remove(oldest);
                }
                fleet.peers.push((heard.node.clone(), now));
            }
        }
        if fleet.config.stagger.is_zero() {
            return; // no stagger: every fire is claimed, as without announcements
        }
        let Some(flow) = self.index_of(heard.fire.flow()) else {
            return;
        };
        let (i, at) = (flow.get(), heard.fire.scheduled().as_microsecond());
        let Some(fleet) = self.fleet.as_deref_mut() else {
            return;
        };
        if fleet.flows.get(i).is_none_or(|f| f.mode != Mode::Claims) {
            return;
        }
        let waiting = if let Some(p) = fleet
            .staggered
            .iter()
            .position(|s| s.flow as usize == i && s.at == at)
        {
            fleet.staggered.swap_remove(p);
            true
        } else if let Some(p) = fleet
            .to_claim
            .iter()
            .position(|&(f, a)| f as usize == i && a == at)
        {
            fleet.to_claim.remove(p);
            true
        } else {
            false
        };
        if waiting {
            fleet.flows[i].counters.fires_elsewhere += 1;
            return;
        }
        let known = fleet
            .claiming
            .iter()
            .any(|s| s.flow as usize == i && s.at == at)
            || fleet.claims.iter().any(|h| h.fire == heard.fire);
        let id = &self.flows[i].id;
        let past = self.flows[i]
            .last_fire_id
            .get()
            .is_some_and(|last| at <= last);
        if !known && !past && !fleet.heard_early.iter().any(|(f, a)| f == id && *a == at) {
            if fleet.heard_early.len() >= HEARD_EARLY_CAP {
                fleet.heard_early.pop_front();
            }
            fleet.heard_early.push_back((id.clone(), at));
        }
    }

    pub(super) fn fleet_counters(&self, i: usize) -> FleetCounters {
        self.fleet
            .as_deref()
            .and_then(|f| f.flows.get(i))
            .map_or_else(FleetCounters::default, |f| f.counters)
    }

    /// The fence of flow `i`'s schedule-store writes.
    pub(super) fn fleet_fence(&self, i: usize) -> Fence {
        self.fleet
            .as_deref()
            .and_then(|f| f.flows.get(i))
            .map_or(Fence::ZERO, |f| f.fence)
    }

    /// Notes that this node holds `fence` for flow `i`: a higher fence lets its
    /// schedule-store writes through again.
    fn fleet_holds(&mut self, i: usize, fence: Fence) {
        let Some(fleet) = self.fleet.as_deref_mut() else {
            return;
        };
        let flow = &mut fleet.flows[i];
        if fence > flow.fence {
            flow.fence = fence;
            if let Some(persist) = self.persist.as_deref_mut()
                && let Some(fenced) = persist.fenced.get_mut(i)
            {
                *fenced = false;
            }
        }
    }

    /// A scheduled fire of flow `i` at wall µs `at` came due.
    pub(super) fn fleet_due(&mut self, i: usize, at: i64, now: Instant) -> FleetDue {
        self.fleet_sync_flows(now);
        let Some(fleet) = self.fleet.as_deref_mut() else {
            return FleetDue::Local(Fence::ZERO);
        };
        let flow = &mut fleet.flows[i];
        match flow.mode {
            Mode::Local => FleetDue::Local(Fence::ZERO),
            Mode::Owned => match flow.owned {
                Some(owned) if owned.trust.is_trusted(now) => FleetDue::Local(owned.lease.fence),
                None if !flow.acquire_answered => {
                    flow.deferred = true;
                    FleetDue::Handled(None)
                }
                _ => {
                    flow.counters.fires_elsewhere += 1;
                    FleetDue::Handled(None)
                }
            },
            Mode::Claims => {
                let slot = &mut self.flows[i];
                // A scheduled fire's id is its time on every node (claims are keyed by it),
                // never moved past the last one: a fire older than the last (a catch-up
                // fire that waited behind a run) is claimed as it is; one at the last, or
                // one this node is already claiming or holding, is the same fire again.
                let known = fleet.to_claim.contains(&(i as u32, at))
                    || fleet
                        .staggered
                        .iter()
                        .any(|s| s.flow == i as u32 && s.at == at)
                    || fleet
                        .claiming
                        .iter()
                        .any(|s| s.flow == i as u32 && s.at == at)
                    || fleet
                        .claims
                        .iter()
                        .any(|h| h.flow == i as u32 && h.fire.scheduled().as_microsecond() == at);
                if known || slot.last_fire_id.get().is_some_and(|last| at == last) {
                    return FleetDue::Handled(None);
                }
                slot.last_fire_id.raise_to(at);
                let cap = keep(slot.config.missed).min(WAITING_CAP) as usize;
                let waiting = fleet
                    .to_claim
                    .iter()
                    .filter(|(f, _)| *f == i as u32)
                    .count();
                // Over the cap the oldest waiting fire is missed (the flow's fires wait
                // oldest first), which is this one when it is older than all of them.
                if waiting >= cap
                    && let Some(oldest) = fleet.to_claim.iter().position(|(f, _)| *f == i as u32)
                {
                    slot.missed_fires = slot.missed_fires.saturating_add(1);
                    if fleet.to_claim[oldest].1 > at {
                        return FleetDue::Handled(None);
                    }
                    fleet.to_claim.remove(oldest);
                }
                if let Some(p) = fleet
                    .heard_early
                    .iter()
                    .position(|(f, a)| *f == slot.id && *a == at)
                {
                    // Another node claimed it before it came due here.
                    fleet.heard_early.remove(p);
                    flow.counters.fires_elsewhere += 1;
                    return FleetDue::Handled(None);
                }
                // The flow's older fires still staggered are claimed now, before this one:
                // a ledger refuses a fire older than one already claimed (`Stale`), so a
                // stagger must never let a newer fire of the flow be claimed first.
                let mut older: Vec<Staggered> = Vec::new();
                fleet.staggered.retain(|s| {
                    let keep = s.flow as usize != i;
                    if !keep {
                        older.push(*s);
                    }
                    keep
                });
                for due in older {
                    fleet.queue_claim(due.flow, due.at);
                }
                let delay = fleet.claim_delay(&slot.id, at, slot.timeline.next_after(at), now);
                if delay.is_zero() {
                    fleet.queue_claim(i as u32, at);
                } else {
                    fleet.staggered.push(Staggered {
                        flow: i as u32,
                        at,
                        claim_at: now.saturating_add(delay),
                    });
                }
                FleetDue::Handled(None)
            }
        }
    }

    /// A run ended: complete its claim (an action to come), or refuse its writes when its
    /// lease was lost.
    ///
    /// `requested`: the run was cancelled on request while running (`cancel_flow`, a removal
    /// or replacement with a grace): its fire is completed as cancelled, so no other node
    /// takes it over and runs it again.
    pub(super) fn fleet_run_ended(
        &mut self,
        run: RunId,
        outcome: &RunOutcome,
        requested: bool,
        now: Instant,
    ) -> FleetEnd {
        let Some(fleet) = self.fleet.as_deref_mut() else {
            return FleetEnd::Write;
        };
        if let Some(p) = fleet.lost_runs.iter().position(|r| *r == run) {
            fleet.lost_runs.swap_remove(p);
            return FleetEnd::Lost;
        }
        if let Some(p) = fleet
            .claims
            .iter()
            .position(|h| h.state == HeldState::Running(run))
        {
            let ended = fire_outcome(outcome).or(requested.then_some(FireOutcome::Cancelled));
            match ended {
                Some(outcome) => {
                    fleet.claims[p].state = HeldState::Completing {
                        outcome,
                        sending: false,
                        retry_at: now,
                    };
                }
                None => {
                    fleet.claims.swap_remove(p);
                }
            }
        }
        FleetEnd::Write
    }

    /// A command applied on this node, for the others.
    pub(super) fn fleet_publish(&mut self, i: usize, kind: FleetCommandKind) {
        let Some(fleet) = self.fleet.as_deref_mut() else {
            return;
        };
        if !fleet.applying_remote {
            let command = FleetCommand::new(self.flows[i].id.clone(), kind, fleet.node.clone());
            fleet.publish.push_back(command);
        }
    }

    /// A notification said other nodes published commands: read them at the next poll.
    pub fn fleet_nudge(&mut self) {
        if let Some(fleet) = self.fleet.as_deref_mut() {
            fleet.commands_due = true;
        }
    }

    /// Applies a command another node published (pause, resume and reset; a trigger runs
    /// where it was received, so other nodes only see it). Commands this node sent are
    /// ignored, as are commands for flows it does not have.
    pub fn fleet_command(&mut self, command: &FleetCommand, now: Instant, wall: Timestamp) {
        let Some(fleet) = self.fleet.as_deref_mut() else {
            return;
        };
        if command.from == fleet.node || self.stage != Stage::Running {
            return;
        }
        let Some(flow) = self.index_of(&command.flow) else {
            return;
        };
        if let Some(fleet) = self.fleet.as_deref_mut() {
            fleet.applying_remote = true;
        }
        let _ = match command.kind {
            FleetCommandKind::Pause => self.pause(flow),
            FleetCommandKind::Resume => self.resume(flow, now, wall),
            FleetCommandKind::Reset => self.reset_flow(flow, now, wall),
            _ => Ok(()),
        };
        if let Some(fleet) = self.fleet.as_deref_mut() {
            fleet.applying_remote = false;
        }
    }

    /// The next fleet action at `now` / `wall`, if any (called first by `poll`).
    pub(super) fn fleet_poll(&mut self, now: Instant, wall: Timestamp) -> Option<Action> {
        let running = self.stage == Stage::Running;
        self.fleet_sync_flows(now);
        let fleet = self.fleet.as_deref_mut()?;
        fleet.check_suspend(now, wall);
        // Leases no longer trusted: cancel their runs; drop claims not started.
        while let Some(p) = fleet.claims.iter().position(|h| !h.trust.is_trusted(now)) {
            let held = fleet.claims.swap_remove(p);
            if !matches!(held.state, HeldState::Completing { .. }) {
                fleet.flows[held.flow as usize].counters.lease_losses += 1;
            }
            #[cfg(feature = "tracing")]
            tracing::warn!(target: "cano::fleet", fire = %held.fire, "lease no longer trusted");
            if let HeldState::Running(run) = held.state {
                fleet.lost_runs.push(run);
                // Dropped at once, with no wind-down: it must stop writing now.
                self.runs.mark_dropped(run);
                return Some(Action::Abort(run));
            }
        }
        for (i, flow) in fleet.flows.iter_mut().enumerate() {
            if let Some(owned) = flow.owned
                && !owned.trust.is_trusted(now)
            {
                flow.owned = None;
                flow.counters.lease_losses += 1;
                flow.acquire_at = now;
                flow.losing = true;
            }
            if flow.losing {
                // The flow is no longer ours: its runs stop (their writes would be fenced
                // once another node owns it).
                match self.runs.next_of(i as u32, &fleet.lost_runs) {
                    Some(run) => {
                        fleet.lost_runs.push(run);
                        self.runs.mark_dropped(run);
                        return Some(Action::Abort(run));
                    }
                    None => flow.losing = false,
                }
            }
        }
        let lease = fleet.lease();
        // Renewals.
        if let Some(held) = fleet
            .claims
            .iter_mut()
            .find(|h| h.renew_due().is_some_and(|t| t <= now))
        {
            held.renewing = Some(now);
            held.renew_retry = None;
            return Some(Action::Fleet(FleetAction::Renew {
                fire: held.fire.clone(),
                fence: held.fence,
                lease,
            }));
        }
        for (i, flow) in fleet.flows.iter_mut().enumerate() {
            if let Some(owned) = &mut flow.owned
                && owned.renewing.is_none()
                && owned.retry_at.unwrap_or_else(|| owned.trust.renew_at()) <= now
            {
                owned.renewing = Some(now);
                owned.retry_at = None;
                return Some(Action::Fleet(FleetAction::RenewFlow {
                    flow: FlowIndex(i as u32),
                    id: self.flows[i].id.clone(),
                    fence: owned.lease.fence,
                    lease,
                }));
            }
        }
        // Completions.
        if let Some(held) = fleet.claims.iter_mut().find(|h| {
            matches!(h.state, HeldState::Completing { sending: false, retry_at, .. } if retry_at <= now)
        }) && let HeldState::Completing { outcome, sending, .. } = &mut held.state
        {
            *sending = true;
            return Some(Action::Fleet(FleetAction::Complete {
                fire: held.fire.clone(),
                fence: held.fence,
                outcome: *outcome,
            }));
        }
        if !fleet.publishing
            && let Some(command) = fleet.publish.pop_front()
        {
            fleet.publishing = true;
            return Some(Action::Fleet(FleetAction::Publish(command)));
        }
        if !running {
            // Claimed but not started: left to expire (another node takes them over).
            fleet
                .claims
                .retain(|h| !matches!(h.state, HeldState::Waiting { .. }));
            if matches!(self.stage, Stage::Stopped) && !fleet.released {
                if let Some((i, flow)) = fleet
                    .flows
                    .iter_mut()
                    .enumerate()
                    .find(|(_, f)| f.owned.is_some())
                {
                    let owned = flow.owned.take()?;
                    return Some(Action::Fleet(FleetAction::ReleaseFlow {
                        flow: FlowIndex(i as u32),
                        id: self.flows[i].id.clone(),
                        fence: owned.lease.fence,
                    }));
                }
                fleet.released = true;
            }
            return None;
        }
        // Claimed fires whose time has come (by the store's clock too): start them.
        if let Some(p) = fleet
            .claims
            .iter()
            .position(|h| matches!(h.state, HeldState::Waiting { start_at } if start_at <= now))
        {
            let (i, fire, fence, takeover) = {
                let h = &fleet.claims[p];
                (h.flow as usize, h.fire.clone(), h.fence, h.takeover)
            };
            let slot = &mut self.flows[i];
            if slot.state.is_tripped() {
                // A tripped flow runs nothing; the claim expires and is given up.
                fleet.claims.swap_remove(p);
                return None;
            }
            slot.state.start(wall);
            let at = fire.scheduled().as_microsecond();
            let run = self.runs.insert(i as u32, at, now);
            fleet.claims[p].state = HeldState::Running(run);
            self.events.push(|| SchedulerEvent::FireStarted {
                fire: fire.clone(),
                run,
            });
            self.mark_dirty(i);
            self.rearm(i, now, wall, false);
            return Some(Action::Start(Dispatch {
                run,
                flow: FlowIndex(i as u32),
                fire,
                fence,
                takeover,
                inline: self.flows[i].starts_inline(),
            }));
        }
        // Staggered fires whose turn has come: claim them (nobody was heard claiming).
        while let Some(p) = fleet.staggered.iter().position(|s| s.claim_at <= now) {
            let due = fleet.staggered.swap_remove(p);
            fleet.queue_claim(due.flow, due.at);
        }
        if !fleet.may_call(now) {
            return None;
        }
        // Due fires to claim, oldest first, within the flow's overlap limit: all that
        // came due together in one call (one while the ledger is down: the probe).
        let flows = &self.flows;
        let (mut claim_flows, mut claims) = (Vec::new(), Vec::new());
        while claims.len() < CLAIM_BATCH_MAX
            && (claims.is_empty() || fleet.down_until.is_none())
            && let Some(p) = fleet.to_claim.iter().position(|&(f, _)| {
                let slot = &flows[f as usize];
                fleet.busy(f, slot.state.running()) < slot.config.overlap.limit()
            })
            && let Some((f, at)) = fleet.to_claim.remove(p)
        {
            let slot = &flows[f as usize];
            if slot.state.is_paused() || slot.state.is_tripped() {
                continue;
            }
            fleet.claiming.push(Sent {
                flow: f,
                at,
                wall,
                mono: now,
            });
            claim_flows.push(FlowIndex(f));
            claims.push(ClaimRequest::new(
                FireId::new(slot.id.clone(), timestamp_at(at)),
                slot.config.overlap.limit(),
            ));
        }
        if !claims.is_empty() {
            fleet.calling();
            return Some(Action::Fleet(FleetAction::Claim {
                flows: claim_flows,
                claims,
                lease,
            }));
        }
        if let Some((f, fire)) = fleet.takeovers.pop_front() {
            fleet.calling();
            fleet.taking_over.push((fire.clone(), now));
            return Some(Action::Fleet(FleetAction::TakeOver {
                flow: FlowIndex(f),
                fire,
                lease,
                max_takeovers: fleet.config.max_takeovers,
                max_live: flows[f as usize].config.overlap.limit(),
            }));
        }
        if let Some((i, flow)) = fleet.flows.iter_mut().enumerate().find(|(i, f)| {
            f.mode == Mode::Owned
                && f.owned.is_none()
                && f.acquiring.is_none()
                && f.acquire_at <= now
                && !flows[*i].state.is_paused()
        }) {
            flow.acquiring = Some(now);
            flow.acquire_at = now.saturating_add(fleet.config.scan_every);
            fleet.calling();
            return Some(Action::Fleet(FleetAction::AcquireFlow {
                flow: FlowIndex(i as u32),
                id: flows[i].id.clone(),
                lease,
            }));
        }
        if fleet.scan_at <= now && !fleet.scanning {
            fleet.scanning = true;
            fleet.commands_due = true;
            fleet.scan_at = now.saturating_add(fleet.config.scan_every);
            fleet.calling();
            return Some(Action::Fleet(FleetAction::ScanExpired {
                limit: SCAN_LIMIT,
            }));
        }
        if fleet.commands_due && !fleet.reading_commands {
            // Commands are re-read along with each scan (the nudge of a notification,
            // where the ledger has one, only makes them prompt).
            fleet.commands_due = false;
            fleet.reading_commands = true;
            return Some(Action::Fleet(FleetAction::ReadCommands {
                cursor: fleet.command_cursor,
            }));
        }
        None
    }

    /// When [`fleet_poll`](Self::fleet_poll) next has something to do.
    pub(super) fn fleet_wake(&self) -> Option<Instant> {
        let fleet = self.fleet.as_deref()?;
        let running = self.stage == Stage::Running;
        let mut wake: Option<Instant> = None;
        for held in &fleet.claims {
            wake = min_opt(wake, Some(held.trust.trusted_until()));
            wake = min_opt(wake, held.renew_due());
            match held.state {
                HeldState::Waiting { start_at } if running => wake = min_opt(wake, Some(start_at)),
                HeldState::Completing {
                    sending: false,
                    retry_at,
                    ..
                } => wake = min_opt(wake, Some(retry_at)),
                _ => {}
            }
        }
        for flow in &fleet.flows {
            if let Some(owned) = &flow.owned {
                wake = min_opt(wake, Some(owned.trust.trusted_until()));
                if owned.renewing.is_none() {
                    wake = min_opt(
                        wake,
                        Some(owned.retry_at.unwrap_or_else(|| owned.trust.renew_at())),
                    );
                }
            }
        }
        if !fleet.publishing && !fleet.publish.is_empty() {
            wake = min_opt(wake, Some(Instant::ZERO));
        }
        if self.stage == Stage::Stopped && !fleet.released {
            wake = min_opt(wake, Some(Instant::ZERO));
        }
        if !running {
            return wake;
        }
        for due in &fleet.staggered {
            wake = min_opt(wake, Some(due.claim_at));
        }
        let calls_from = match fleet.down_until {
            None => Instant::ZERO,
            Some(_) if fleet.probing => return wake,
            Some(retry) => retry,
        };
        let claimable = fleet.to_claim.iter().any(|&(f, _)| {
            let slot = &self.flows[f as usize];
            fleet.busy(f, slot.state.running()) < slot.config.overlap.limit()
        });
        if claimable || !fleet.takeovers.is_empty() {
            wake = min_opt(wake, Some(calls_from));
        }
        for (i, flow) in fleet.flows.iter().enumerate() {
            if flow.mode == Mode::Owned
                && flow.owned.is_none()
                && flow.acquiring.is_none()
                && !self.flows[i].state.is_paused()
            {
                wake = min_opt(wake, Some(flow.acquire_at.max(calls_from)));
            }
        }
        if !fleet.scanning {
            wake = min_opt(wake, Some(fleet.scan_at.max(calls_from)));
        }
        if fleet.commands_due && !fleet.reading_commands {
            wake = min_opt(wake, Some(calls_from));
        }
        wake
    }

    /// Records the answer to a [`FleetAction`] at `now` / `wall` (this node's clocks when
    /// it came back). What it changes comes out of the next [`poll`](Self::poll).
    pub fn fleet_done(&mut self, report: FleetReport, now: Instant, wall: Timestamp) {
        if self.fleet.is_none() {
            return;
        }
        self.fleet_sync_flows(now);
        match report {
            FleetReport::Claim { answers } => {
                // One call, so one note of the ledger's availability (a batch of refused
                // claims is one failure for the retry backoff, not one per fire).
                if let Some(fleet) = self.fleet.as_deref_mut() {
                    match answers
                        .iter()
                        .find(|(_, _, r)| matches!(r, Err(e) if retryable(e)))
                    {
                        Some((_, _, failed)) => fleet.answered(failed, now),
                        None => fleet.answered(&Ok(()), now),
                    }
                }
                let mut retries = Vec::new();
                for (flow, fire, result) in answers {
                    retries.extend(self.claim_answered(flow, fire, result, now, wall));
                }
                if let Some(fleet) = self.fleet.as_deref_mut() {
                    // In the order asked, ahead of the fires that came due since.
                    for retry in retries.into_iter().rev() {
                        fleet.to_claim.push_front(retry);
                    }
                }
            }
            FleetReport::Renew {
                fire,
                fence,
                result,
            } => {
                let Some(fleet) = self.fleet.as_deref_mut() else {
                    return;
                };
                fleet.answered(&result, now);
                let retry = fleet.config.retry;
                let (lease, margin) = (fleet.config.lease, fleet.config.safety_margin);
                let Some(held) = fleet
                    .claims
                    .iter_mut()
                    .find(|h| h.fire == fire && h.fence == fence)
                else {
                    return;
                };
                let sent = held.renewing.take().unwrap_or(now);
                match result {
                    Ok(_) => held.trust = LeaseTrust::new(sent, lease, margin),
                    Err(PersistError::Fenced { .. }) => {
                        // Another node holds it now: trust ends at once.
                        held.trust = LeaseTrust::new(now, Duration::ZERO, Duration::ZERO);
                    }
                    Err(_) => held.renew_retry = Some(now.saturating_add(retry)),
                }
            }
            FleetReport::Complete {
                fire,
                fence,
                result,
            } => {
                let Some(fleet) = self.fleet.as_deref_mut() else {
                    return;
                };
                fleet.answered(&result, now);
                let retry_delay = fleet.retry_delay.max(fleet.config.retry);
                let Some(p) = fleet
                    .claims
                    .iter()
                    .position(|h| h.fire == fire && h.fence == fence)
                else {
                    return;
                };
                match result {
                    Err(e) if retryable(&e) => {
                        if let HeldState::Completing {
                            sending, retry_at, ..
                        } = &mut fleet.claims[p].state
                        {
                            *sending = false;
                            *retry_at = now.saturating_add(retry_delay);
                        }
                    }
                    _ => {
                        fleet.claims.swap_remove(p);
                    }
                }
            }
            FleetReport::ScanExpired { result } => {
                let Some(fleet) = self.fleet.as_deref_mut() else {
                    return;
                };
                fleet.scanning = false;
                fleet.answered(&result, now);
                let Ok(expired) = result else {
                    return;
                };
                for claim in expired.value {
                    let Some(flow) = self.index_of(claim.fire.flow()) else {
                        continue;
                    };
                    let i = flow.get();
                    let slot = &self.flows[i];
                    let Some(fleet) = self.fleet.as_deref_mut() else {
                        return;
                    };
                    let known = fleet.claims.iter().any(|h| h.fire == claim.fire)
                        || fleet.taking_over.iter().any(|(f, _)| *f == claim.fire)
                        || fleet.takeovers.iter().any(|(_, f)| *f == claim.fire);
                    if fleet.flows[i].mode == Mode::Claims
                        && !known
                        && !slot.state.is_paused()
                        && !slot.state.is_tripped()
                    {
                        fleet.takeovers.push_back((i as u32, claim.fire));
                    }
                }
            }
            FleetReport::TakeOver { flow, fire, result } => {
                let Some(fleet) = self.fleet.as_deref_mut() else {
                    return;
                };
                fleet.probing = false;
                fleet.answered(&result, now);
                let sent = fleet
                    .taking_over
                    .iter()
                    .find(|(f, _)| *f == fire)
                    .map_or(now, |(_, at)| *at);
                fleet.taking_over.retain(|(f, _)| *f != fire);
                let i = flow.get();
                match result {
                    Ok(Stamped {
                        value: TakeoverOutcome::Claimed(claim),
                        ..
                    }) => {
                        fleet.flows[i].counters.takeovers += 1;
                        let trust = fleet.trust(sent);
                        fleet.claims.push(Held {
                            flow: i as u32,
                            fire,
                            fence: claim.fence,
                            takeover: true,
                            trust,
                            renewing: None,
                            renew_retry: None,
                            state: HeldState::Waiting { start_at: now },
                        });
                        self.fleet_holds(i, claim.fence);
                    }
                    Ok(Stamped {
                        value: TakeoverOutcome::Abandoned { .. },
                        ..
                    }) => fleet.flows[i].counters.fires_abandoned += 1,
                    _ => {}
                }
            }
            FleetReport::AcquireFlow { flow, result } => {
                let Some(fleet) = self.fleet.as_deref_mut() else {
                    return;
                };
                fleet.answered(&result, now);
                let i = flow.get();
                let sent = fleet.flows[i].acquiring.take().unwrap_or(now);
                let trust = fleet.trust(sent);
                let f = &mut fleet.flows[i];
                f.acquire_answered |= result.is_ok();
                let deferred = core::mem::take(&mut f.deferred) && result.is_ok();
                if let Ok(Stamped {
                    value: FlowLeaseOutcome::Owned(lease),
                    ..
                }) = result
                {
                    f.owned = Some(OwnLease {
                        lease,
                        trust,
                        renewing: None,
                        retry_at: None,
                    });
                    self.fleet_holds(i, lease.fence);
                    let slot = &mut self.flows[i];
                    if deferred
                        && self.stage == Stage::Running
                        && slot.state.running() == 0
                        && let Timeline::FixedDelay { .. } = slot.timeline
                    {
                        // Its first fire came due before the lease was known: now.
                        slot.set_next_fire(Some(super::FireTime::Monotonic(now)));
                        self.queue.arm(i as u32, now);
                    }
                } else if let Some(f) = self.fleet.as_deref_mut()
                    && deferred
                {
                    f.flows[i].counters.fires_elsewhere += 1;
                }
            }
            FleetReport::RenewFlow {
                flow,
                fence,
                result,
            } => {
                let Some(fleet) = self.fleet.as_deref_mut() else {
                    return;
                };
                fleet.answered(&result, now);
                let retry = fleet.config.retry;
                let config = (fleet.config.lease, fleet.config.safety_margin);
                let Some(owned) = fleet.flows[flow.get()]
                    .owned
                    .as_mut()
                    .filter(|o| o.lease.fence == fence)
                else {
                    return;
                };
                let sent = owned.renewing.take().unwrap_or(now);
                match result {
                    Ok(_) => owned.trust = LeaseTrust::new(sent, config.0, config.1),
                    Err(PersistError::Fenced { .. }) => {
                        owned.trust = LeaseTrust::new(now, Duration::ZERO, Duration::ZERO);
                    }
                    Err(_) => owned.retry_at = Some(now.saturating_add(retry)),
                }
            }
            FleetReport::ReleaseFlow { .. } => {}
            FleetReport::Publish { result } => {
                if let Some(fleet) = self.fleet.as_deref_mut() {
                    fleet.publishing = false;
                    let _ = result; // a lost command reaches the others at their next read
                }
            }
            FleetReport::ReadCommands { result } => {
                let Some(fleet) = self.fleet.as_deref_mut() else {
                    return;
                };
                fleet.reading_commands = false;
                let Ok(commands) = result else {
                    return;
                };
                for (seq, command) in commands {
                    if let Some(fleet) = self.fleet.as_deref_mut() {
                        if seq <= fleet.command_cursor {
                            continue;
                        }
                        fleet.command_cursor = seq;
                    }
                    self.fleet_command(&command, now, wall);
                }
            }
        }
    }

    /// The answer to a claim of `fire` (flow `flow`) at `now` / `wall`.
    pub fn claim_done(
        &mut self,
        flow: FlowIndex,
        fire: FireId,
        result: PersistResult<Stamped<ClaimOutcome>>,
        now: Instant,
        wall: Timestamp,
    ) {
        if let Some(fleet) = self.fleet.as_deref_mut() {
            fleet.answered(&result, now);
        }
        if let Some(retry) = self.claim_answered(flow, fire, result, now, wall)
            && let Some(fleet) = self.fleet.as_deref_mut()
        {
            fleet.to_claim.push_front(retry);
        }
    }

    /// [`claim_done`](Self::claim_done) but for the ledger's availability; returns the fire
    /// to claim again (first) when the answer says the ledger could not be reached.
    fn claim_answered(
        &mut self,
        flow: FlowIndex,
        fire: FireId,
        result: PersistResult<Stamped<ClaimOutcome>>,
        now: Instant,
        wall: Timestamp,
    ) -> Option<(u32, i64)> {
        self.fleet_sync_flows(now);
        let fleet = self.fleet.as_deref_mut()?;
        let i = flow.get();
        let at = fire.scheduled().as_microsecond();
        let p = fleet
            .claiming
            .iter()
            .position(|s| s.flow == i as u32 && s.at == at)?;
        let sent = fleet.claiming.swap_remove(p);
        match result {
            Ok(Stamped {
                value: ClaimOutcome::Claimed(claim),
                store_now,
            }) => {
                fleet.measure_skew(sent.wall, store_now, wall);
                if !fleet.config.stagger.is_zero() {
                    fleet.forget_outranking_peers(fire.flow(), at);
                }
                let early = fleet
                    .skew
                    .and_then(|skew| skew.early_by(fire.scheduled(), wall));
                if early.is_some() {
                    fleet.held_early += 1;
                }
                let start_at = now.saturating_add(early.unwrap_or(Duration::ZERO));
                let trust = fleet.trust(sent.mono);
                fleet.claims.push(Held {
                    flow: i as u32,
                    fire,
                    fence: claim.fence,
                    takeover: claim.takeovers > 0,
                    trust,
                    renewing: None,
                    renew_retry: None,
                    state: HeldState::Waiting { start_at },
                });
                self.fleet_holds(i, claim.fence);
            }
            Ok(Stamped { value, store_now }) => {
                fleet.measure_skew(sent.wall, store_now, wall);
                let counters = &mut fleet.flows[i].counters;
                match value {
                    ClaimOutcome::Abandoned { .. } => counters.fires_abandoned += 1,
                    _ => counters.fires_elsewhere += 1,
                }
            }
            Err(e) if retryable(&e) => {
                // Not known to be claimed: ask again once the ledger answers (a lost
                // acknowledgement of a claim that went through answers `Claimed` again).
                return Some((i as u32, at));
            }
            Err(_) => {
                let slot = &mut self.flows[i];
                slot.missed_fires = slot.missed_fires.saturating_add(1);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cron::Cron;
    use crate::persist::FireClaim;
    use crate::scheduler::schedule::{
        IntervalMode, MissedFirePolicy, OverlapPolicy, Schedule, SchedulePolicy,
    };
    use alloc::vec;

    const START: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    fn wall(secs: u64) -> Timestamp {
        Timestamp::from_second(START + secs as i64).unwrap()
    }

    fn at(secs: u64) -> Instant {
        Instant::from_secs(secs)
    }

    fn node() -> NodeId {
        NodeId::new("me")
    }

    fn fleet_core(flows: &[(&str, Schedule)]) -> SchedulerCore {
        let mut core = SchedulerCore::new();
        for (id, schedule) in flows {
            core.add_flow(id, schedule.clone()).unwrap();
        }
        core.join_fleet(node(), FleetConfig::default()).unwrap();
        core
    }

    fn every_minute() -> Schedule {
        Schedule::Cron(Cron::parse("* * * * *").unwrap())
    }

    fn claimed(fence: u64, store_now: Timestamp) -> PersistResult<Stamped<ClaimOutcome>> {
        Ok(Stamped::new(
            ClaimOutcome::Claimed(FireClaim {
                fence: Fence(fence),
                expires: store_now + Duration::from_secs(30),
                takeovers: 0,
            }),
            store_now,
        ))
    }

    /// Polls until the core waits; returns every action before the wait, and the wait.
    fn drain(core: &mut SchedulerCore, now: Instant, wall: Timestamp) -> (Vec<Action>, Action) {
        let mut out = Vec::new();
        loop {
            match core.poll(now, wall) {
                a @ (Action::WakeAt(_) | Action::Idle | Action::Stopped) => return (out, a),
                a => out.push(a),
            }
        }
    }

    fn claims_of(actions: &[Action]) -> Vec<FireId> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Fleet(FleetAction::Claim { claims, .. }) => Some(claims),
                _ => None,
            })
            .flatten()
            .map(|c| c.fire.clone())
            .collect()
    }

    fn starts_of(actions: &[Action]) -> Vec<Dispatch> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Start(d) => Some(d.clone()),
                _ => None,
            })
            .collect()
    }

    /// Starts the core at 0 s and polls the first minute's fire: its claim.
    fn due_claim(core: &mut SchedulerCore) -> FireId {
        core.start(at(0), wall(0));
        let (actions, _) = drain(core, at(0), wall(0));
        assert!(claims_of(&actions).is_empty(), "nothing is due yet");
        let (actions, _) = drain(core, at(60), wall(60));
        assert!(
            starts_of(&actions).is_empty(),
            "a claimed flow never starts unclaimed"
        );
        let claims = claims_of(&actions);
        assert_eq!(claims.len(), 1, "{actions:?}");
        assert_eq!(claims[0], FireId::new("tick", wall(60)));
        claims[0].clone()
    }

    #[test]
    fn a_won_claim_starts_the_run_with_its_fence_and_completes_it() {
        let mut core = fleet_core(&[("tick", every_minute())]);
        let fire = due_claim(&mut core);
        let flow = core.flow("tick").unwrap();
        core.claim_done(flow, fire.clone(), claimed(7, wall(60)), at(60), wall(60));
        let (actions, _) = drain(&mut core, at(60), wall(60));
        let starts = starts_of(&actions);
        assert_eq!(starts.len(), 1);
        assert_eq!((starts[0].fence, starts[0].takeover), (Fence(7), false));
        assert_eq!(starts[0].fire, fire);
        core.finish(starts[0].run, at(65), wall(65), Ok(()))
            .unwrap();
        let (actions, _) = drain(&mut core, at(65), wall(65));
        assert!(actions.contains(&Action::Fleet(FleetAction::Complete {
            fire,
            fence: Fence(7),
            outcome: FireOutcome::Succeeded,
        })));
    }

    #[test]
    fn a_fire_taken_or_done_elsewhere_is_not_run_and_the_next_is_planned() {
        for outcome in [
            ClaimOutcome::Taken {
                owner: NodeId::new("other"),
                expires: wall(90),
            },
            ClaimOutcome::Done {
                outcome: FireOutcome::Succeeded,
            },
            ClaimOutcome::Stale {
                high_water: wall(120),
            },
            ClaimOutcome::AtLimit { live: 1 },
        ] {
            let mut core = fleet_core(&[("tick", every_minute())]);
            let fire = due_claim(&mut core);
            let flow = core.flow("tick").unwrap();
            let answer = Ok(Stamped::new(outcome.clone(), wall(60)));
            core.claim_done(flow, fire, answer, at(60), wall(60));
            let (actions, wait) = drain(&mut core, at(60), wall(60));
            assert!(starts_of(&actions).is_empty(), "{outcome:?}");
            assert!(
                matches!(wait, Action::WakeAt(t) if t <= at(120)),
                "{wait:?}"
            );
            let info = core.info(flow, at(60), wall(60));
            assert_eq!(
                (info.fires_elsewhere, info.run_count),
                (1, 0),
                "{outcome:?}"
            );
            let (actions, _) = drain(&mut core, at(120), wall(120));
            assert_eq!(claims_of(&actions), vec![FireId::new("tick", wall(120))]);
        }
    }

    #[test]
    fn an_unavailable_ledger_runs_nothing_and_the_claim_is_retried_with_backoff() {
        let mut core = fleet_core(&[("tick", every_minute())]);
        let fire = due_claim(&mut core);
        let flow = core.flow("tick").unwrap();
        let down = Err(PersistError::unavailable("down"));
        core.claim_done(flow, fire.clone(), down.clone(), at(60), wall(60));
        let (actions, wait) = drain(&mut core, at(60), wall(60));
        assert!(actions.is_empty(), "{actions:?}");
        assert_eq!(wait, Action::WakeAt(at(61)), "the first retry after 1 s");
        assert!(!core.fleet_status().unwrap().ledger_available);
        let (actions, _) = drain(&mut core, at(61), wall(61));
        assert_eq!(claims_of(&actions), vec![fire.clone()]);
        core.claim_done(flow, fire.clone(), down, at(61), wall(61));
        let (_, wait) = drain(&mut core, at(61), wall(61));
        assert_eq!(wait, Action::WakeAt(at(63)), "then 2 s");
        // The next minute comes due while the ledger is down: it waits its turn.
        let (actions, _) = drain(&mut core, at(63), wall(63));
        assert_eq!(claims_of(&actions), vec![fire.clone()]);
        core.claim_done(flow, fire, claimed(3, wall(63)), at(63), wall(63));
        let (actions, _) = drain(&mut core, at(63), wall(63));
        assert_eq!(starts_of(&actions).len(), 1);
        assert!(core.fleet_status().unwrap().ledger_available);
    }

    #[test]
    fn renewals_keep_the_run_and_a_lapsed_lease_cancels_it_and_writes_nothing() {
        let mut core = fleet_core(&[("tick", every_minute())]);
        core.persist_schedules();
        let fire = due_claim(&mut core);
        let flow = core.flow("tick").unwrap();
        core.claim_done(flow, fire.clone(), claimed(4, wall(60)), at(60), wall(60));
        let (actions, wait) = drain(&mut core, at(60), wall(60));
        let run = starts_of(&actions)[0].run;
        // Take the write of the start, so only later writes show.
        while core.take_save(at(60), wall(60)).is_some() {}
        assert_eq!(wait, Action::WakeAt(at(70)), "renew a third into the lease");
        let (actions, _) = drain(&mut core, at(70), wall(70));
        let renew = Action::Fleet(FleetAction::Renew {
            fire: fire.clone(),
            fence: Fence(4),
            lease: DEFAULT_LEASE,
        });
        assert_eq!(actions, vec![renew.clone()]);
        core.fleet_done(
            FleetReport::Renew {
                fire: fire.clone(),
                fence: Fence(4),
                result: Ok(Stamped::new(wall(100), wall(70))),
            },
            at(71),
            wall(71),
        );
        // Trusted from the renewal's sending: renew again at 80, trust until 98.
        let (_, wait) = drain(&mut core, at(71), wall(71));
        assert_eq!(wait, Action::WakeAt(at(80)));
        let (actions, _) = drain(&mut core, at(80), wall(80));
        assert_eq!(actions, vec![renew]);
        // That renewal never comes back; a retry cannot go out while one is in flight.
        let (actions, wait) = drain(&mut core, at(97), wall(97));
        assert!(actions.is_empty());
        assert_eq!(wait, Action::WakeAt(at(98)));
        let (actions, _) = drain(&mut core, at(98), wall(98));
        assert_eq!(actions, vec![Action::Abort(run)]);
        core.finish(run, at(98), wall(98), RunOutcome::Cancelled)
            .unwrap();
        let (actions, _) = drain(&mut core, at(98), wall(98));
        assert!(
            actions.is_empty(),
            "no completion, no schedule write: {actions:?}"
        );
        assert_eq!(core.info(flow, at(98), wall(98)).lease_losses, 1);
    }

    #[test]
    fn a_fenced_renewal_ends_trust_at_once() {
        let mut core = fleet_core(&[("tick", every_minute())]);
        let fire = due_claim(&mut core);
        let flow = core.flow("tick").unwrap();
        core.claim_done(flow, fire.clone(), claimed(4, wall(60)), at(60), wall(60));
        let (actions, _) = drain(&mut core, at(60), wall(60));
        let run = starts_of(&actions)[0].run;
        let _ = drain(&mut core, at(70), wall(70));
        core.fleet_done(
            FleetReport::Renew {
                fire,
                fence: Fence(4),
                result: Err(PersistError::Fenced { current: Fence(5) }),
            },
            at(71),
            wall(71),
        );
        let (actions, _) = drain(&mut core, at(71), wall(71));
        assert_eq!(actions, vec![Action::Abort(run)]);
    }

    #[test]
    fn expired_claims_are_taken_over_and_run_as_takeovers() {
        let mut core = fleet_core(&[("tick", every_minute())]);
        core.start(at(0), wall(0));
        let (actions, _) = drain(&mut core, at(5), wall(5));
        assert_eq!(
            actions,
            vec![
                Action::Fleet(FleetAction::ScanExpired { limit: SCAN_LIMIT }),
                Action::Fleet(FleetAction::ReadCommands { cursor: 0 }),
            ]
        );
        let fire = FireId::new("tick", wall(0));
        let flow = core.flow("tick").unwrap();
        let expired = |fire: &FireId| ExpiredClaim {
            fire: fire.clone(),
            owner: NodeId::new("dead"),
            fence: Fence(2),
            expired_at: wall(3),
            takeovers: 0,
        };
        let unknown = FireId::new("not-mine", wall(0));
        core.fleet_done(
            FleetReport::ScanExpired {
                result: Ok(Stamped::new(
                    vec![expired(&fire), expired(&unknown)],
                    wall(5),
                )),
            },
            at(5),
            wall(5),
        );
        let (actions, _) = drain(&mut core, at(5), wall(5));
        let takeover = FleetAction::TakeOver {
            flow,
            fire: fire.clone(),
            lease: DEFAULT_LEASE,
            max_takeovers: DEFAULT_MAX_TAKEOVERS,
            max_live: 1,
        };
        assert_eq!(actions, vec![Action::Fleet(takeover)]);
        let answer = TakeoverOutcome::Claimed(FireClaim {
            fence: Fence(3),
            expires: wall(35),
            takeovers: 1,
        });
        core.fleet_done(
            FleetReport::TakeOver {
                flow,
                fire: fire.clone(),
                result: Ok(Stamped::new(answer, wall(5))),
            },
            at(5),
            wall(5),
        );
        let (actions, _) = drain(&mut core, at(5), wall(5));
        let starts = starts_of(&actions);
        assert_eq!(starts.len(), 1);
        assert_eq!(
            (&starts[0].fire, starts[0].fence, starts[0].takeover),
            (&fire, Fence(3), true)
        );
        assert_eq!(core.info(flow, at(5), wall(5)).takeovers, 1);
        // An abandoned fire is counted.
        let _ = drain(&mut core, at(10), wall(10));
        let other = FireId::new("tick", wall(1));
        core.fleet_done(
            FleetReport::ScanExpired {
                result: Ok(Stamped::new(vec![expired(&other)], wall(10))),
            },
            at(10),
            wall(10),
        );
        let _ = drain(&mut core, at(10), wall(10));
        core.fleet_done(
            FleetReport::TakeOver {
                flow,
                fire: other,
                result: Ok(Stamped::new(
                    TakeoverOutcome::Abandoned { takeovers: 3 },
                    wall(10),
                )),
            },
            at(10),
            wall(10),
        );
        assert_eq!(core.info(flow, at(10), wall(10)).fires_abandoned, 1);
    }

    #[test]
    fn the_claim_limit_is_the_overlap_limit_fleet_wide() {
        for (overlap, limit) in [
            (OverlapPolicy::Skip, 1),
            (OverlapPolicy::BufferOne, 1),
            (OverlapPolicy::AllowConcurrent(3), 3),
        ] {
            let mut core = SchedulerCore::new();
            let flow = core.add_flow("tick", every_minute()).unwrap();
            let policy = SchedulePolicy {
                overlap,
                ..SchedulePolicy::default()
            };
            core.set_policy(flow, policy).unwrap();
            core.join_fleet(node(), FleetConfig::default()).unwrap();
            core.start(at(0), wall(0));
            let (actions, _) = drain(&mut core, at(60), wall(60));
            let max = actions.iter().find_map(|a| match a {
                Action::Fleet(FleetAction::Claim { claims, .. }) => Some(claims[0].max_live),
                _ => None,
            });
            assert_eq!(max, Some(limit), "{overlap:?}");
        }
    }

    #[test]
    fn a_fire_early_by_the_store_clock_waits_and_large_skew_warns() {
        let mut core = fleet_core(&[("tick", every_minute())]);
        let fire = due_claim(&mut core);
        let flow = core.flow("tick").unwrap();
        // The store's clock is 3 s behind ours: the fire is 3 s early there.
        core.claim_done(flow, fire, claimed(1, wall(57)), at(60), wall(60));
        let (actions, wait) = drain(&mut core, at(60), wall(60));
        assert!(starts_of(&actions).is_empty());
        assert_eq!(wait, Action::WakeAt(at(63)));
        let (actions, _) = drain(&mut core, at(63), wall(63));
        assert_eq!(starts_of(&actions).len(), 1);
        let status = core.fleet_status().unwrap();
        assert_eq!((status.skew_warnings, status.held_early), (1, 1));
        assert_eq!(status.skew.unwrap().as_secs(), -3);
    }

    #[test]
    fn fixed_delay_flows_fire_only_on_the_owner_of_their_lease() {
        let schedule = Schedule::Every(Duration::from_secs(10));
        for owned in [true, false] {
            let mut core = fleet_core(&[("poll", schedule.clone())]);
            let flow = core.flow("poll").unwrap();
            core.start(at(0), wall(0));
            let (actions, _) = drain(&mut core, at(0), wall(0));
            assert!(
                starts_of(&actions).is_empty(),
                "its first fire waits for the lease"
            );
            assert!(actions.contains(&Action::Fleet(FleetAction::AcquireFlow {
                flow,
                id: "poll".into(),
                lease: DEFAULT_LEASE,
            })));
            let answer = if owned {
                FlowLeaseOutcome::Owned(FlowLease {
                    fence: Fence(9),
                    expires: wall(30),
                })
            } else {
                FlowLeaseOutcome::HeldBy {
                    owner: NodeId::new("other"),
                    expires: wall(30),
                }
            };
            core.fleet_done(
                FleetReport::AcquireFlow {
                    flow,
                    result: Ok(Stamped::new(answer, wall(0))),
                },
                at(0),
                wall(0),
            );
            let (actions, _) = drain(&mut core, at(0), wall(0));
            let starts = starts_of(&actions);
            if owned {
                assert_eq!(starts.len(), 1);
                assert_eq!(starts[0].fence, Fence(9));
            } else {
                assert!(starts.is_empty());
                assert_eq!(core.info(flow, at(0), wall(0)).fires_elsewhere, 1);
                // It asks again at each scan.
                let (actions, _) = drain(&mut core, at(5), wall(5));
                assert!(
                    actions
                        .iter()
                        .any(|a| matches!(a, Action::Fleet(FleetAction::AcquireFlow { .. })))
                );
            }
        }
    }

    #[test]
    fn commands_go_to_the_fleet_and_come_back_from_it() {
        let mut core = fleet_core(&[("tick", every_minute())]);
        core.start(at(0), wall(0));
        let flow = core.flow("tick").unwrap();
        core.pause(flow).unwrap();
        let (actions, _) = drain(&mut core, at(0), wall(0));
        let sent = FleetCommand::new("tick", FleetCommandKind::Pause, node());
        assert!(actions.contains(&Action::Fleet(FleetAction::Publish(sent.clone()))));
        // Our own command comes back: ignored. Another node's resume: applied, not re-sent.
        let resume = FleetCommand::new("tick", FleetCommandKind::Resume, NodeId::new("b"));
        core.fleet_done(
            FleetReport::ReadCommands {
                result: Ok(vec![(1, sent), (2, resume)]),
            },
            at(1),
            wall(1),
        );
        assert!(
            core.info(flow, at(1), wall(1)).next_fire.is_some(),
            "resumed"
        );
        let (actions, _) = drain(&mut core, at(1), wall(1));
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, Action::Fleet(FleetAction::Publish(_)))),
            "{actions:?}"
        );
        let pause = FleetCommand::new("tick", FleetCommandKind::Pause, NodeId::new("b"));
        core.fleet_done(
            FleetReport::ReadCommands {
                result: Ok(vec![(2, pause.clone()), (3, pause)]),
            },
            at(2),
            wall(2),
        );
        assert!(
            core.info(flow, at(2), wall(2)).next_fire.is_none(),
            "seq 3 applied"
        );
    }

    #[test]
    fn a_suspend_ends_trust_in_every_lease() {
        let mut core = fleet_core(&[("tick", every_minute())]);
        let fire = due_claim(&mut core);
        let flow = core.flow("tick").unwrap();
        core.claim_done(flow, fire, claimed(4, wall(60)), at(60), wall(60));
        let (actions, _) = drain(&mut core, at(60), wall(60));
        let run = starts_of(&actions)[0].run;
        // A wall step within the margin changes nothing.
        let (actions, _) = drain(&mut core, at(61), wall(62));
        assert!(!actions.contains(&Action::Abort(run)), "{actions:?}");
        // Eight hours suspended: the monotonic clock stood still, the store's did not.
        let (actions, _) = drain(&mut core, at(62), wall(62 + 8 * 3600));
        assert!(actions.contains(&Action::Abort(run)), "{actions:?}");
        assert_eq!(core.info(flow, at(62), wall(62)).lease_losses, 1);
    }

    #[test]
    fn losing_a_flow_lease_cancels_the_flow_runs() {
        let mut core = fleet_core(&[("poll", Schedule::Every(Duration::from_secs(10)))]);
        let flow = core.flow("poll").unwrap();
        core.start(at(0), wall(0));
        let _ = drain(&mut core, at(0), wall(0));
        let owned = FlowLeaseOutcome::Owned(FlowLease {
            fence: Fence(2),
            expires: wall(30),
        });
        core.fleet_done(
            FleetReport::AcquireFlow {
                flow,
                result: Ok(Stamped::new(owned, wall(0))),
            },
            at(0),
            wall(0),
        );
        let (actions, _) = drain(&mut core, at(0), wall(0));
        let run = starts_of(&actions)[0].run;
        let (actions, _) = drain(&mut core, at(10), wall(10));
        assert!(actions.contains(&Action::Fleet(FleetAction::RenewFlow {
            flow,
            id: "poll".into(),
            fence: Fence(2),
            lease: DEFAULT_LEASE,
        })));
        core.fleet_done(
            FleetReport::RenewFlow {
                flow,
                fence: Fence(2),
                result: Err(PersistError::Fenced { current: Fence(3) }),
            },
            at(11),
            wall(11),
        );
        let (actions, _) = drain(&mut core, at(11), wall(11));
        assert!(actions.contains(&Action::Abort(run)), "{actions:?}");
        core.finish(run, at(11), wall(11), RunOutcome::Cancelled)
            .unwrap();
        assert_eq!(core.info(flow, at(11), wall(11)).lease_losses, 1);
    }

    /// A driver's whole part: perform the action, hand back the report. Both ways of
    /// performing give the same answers.
    #[test]
    fn performing_an_action_answers_with_the_ledger_s_report() {
        use crate::persist::MemoryFireLedger;
        let ledger = MemoryFireLedger::new_at(wall(60));
        let mut core = fleet_core(&[("tick", every_minute())]);
        let fire = due_claim(&mut core);
        let flow = core.flow("tick").unwrap();
        let claim = FleetAction::Claim {
            flows: vec![flow],
            claims: vec![ClaimRequest::new(fire.clone(), 1)],
            lease: DEFAULT_LEASE,
        };
        let report = futures::executor::block_on(claim.clone().perform(&ledger, &node()));
        let FleetReport::Claim { answers } = &report else {
            panic!("{report:?}")
        };
        let [(_, _, result)] = answers.as_slice() else {
            panic!("{answers:?}")
        };
        let Ok(Stamped {
            value: ClaimOutcome::Claimed(won),
            ..
        }) = result
        else {
            panic!("{result:?}")
        };
        let won = won.fence;
        let shared: Arc<dyn DynFireLedger> = Arc::new(ledger.clone());
        let again = futures::executor::block_on(claim.perform_owned(shared, node()));
        assert_eq!(again, report, "the holder asking again gets the same claim");
        core.fleet_done(report, at(60), wall(60));
        let (actions, _) = drain(&mut core, at(60), wall(60));
        assert_eq!(starts_of(&actions)[0].fence, won);
    }

    /// A core without a fleet asks for no ledger call and wakes only for its fires.
    #[test]
    fn without_a_fleet_nothing_changes() {
        let mut core = SchedulerCore::new();
        core.add_flow("tick", every_minute()).unwrap();
        let aligned = core
            .add_flow("aligned", Schedule::Every(Duration::from_secs(300)))
            .unwrap();
        let policy = SchedulePolicy {
            interval_mode: IntervalMode::EpochAligned {
                phase: Duration::ZERO,
            },
            ..SchedulePolicy::default()
        };
        core.set_policy(aligned, policy).unwrap();
        core.start(at(0), wall(0));
        assert!(core.fleet_status().is_none());
        assert_eq!(core.next_wake(), Some(at(60)));
        for minute in 1..=10 {
            let (actions, _) = drain(&mut core, at(minute * 60), wall(minute * 60));
            for action in &actions {
                match action {
                    Action::Start(d) => {
                        assert_eq!(d.fence, Fence::ZERO);
                        core.finish(d.run, at(minute * 60), wall(minute * 60), Ok(()))
                            .unwrap();
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
    }

    /// The default settings with the claim stagger on.
    fn stagger_config() -> FleetConfig {
        FleetConfig {
            stagger: DEFAULT_CLAIM_STAGGER,
            ..FleetConfig::default()
        }
    }

    fn fleet_core_with(config: FleetConfig) -> SchedulerCore {
        let mut core = SchedulerCore::new();
        core.add_flow("tick", every_minute()).unwrap();
        core.join_fleet(node(), config).unwrap();
        core
    }

    fn ms(millis: u64) -> Instant {
        Instant::from_millis(millis)
    }

    fn wall_ms(millis: u64) -> Timestamp {
        wall(0) + Duration::from_millis(millis)
    }

    /// A peer whose weight for `tick`'s fire at `secs` beats this node's (`wins`) or not.
    fn peer(secs: u64, wins: bool) -> NodeId {
        let at = wall(secs).as_microsecond();
        let me = (claim_weight("tick", at, "me"), "me");
        (0..1000)
            .map(|n| alloc::format!("peer-{n}"))
            .find(|p| ((claim_weight("tick", at, p), p.as_str()) > me) == wins)
            .map(NodeId::new)
            .unwrap()
    }

    /// Lets this node hear of `peer` (a claim of some other flow's fire) at `now`.
    fn hear_of(core: &mut SchedulerCore, peer: &NodeId, now: Instant) {
        let heard = HeardClaim {
            fire: FireId::new("elsewhere", wall(0)),
            node: peer.clone(),
        };
        core.fleet_heard_claim(&heard, now);
    }

    #[test]
    fn claim_weights_are_pinned() {
        // The same on every node and platform: a change here splits a fleet's ranks.
        assert_eq!(claim_weight("", 0, ""), claim_weight("", 0, ""));
        assert_eq!(claim_weight("tick", 60, "a"), 0x8ca5_1f4d_74c8_f9f5);
    }

    #[test]
    fn the_first_ranked_node_claims_at_once_and_the_second_after_the_stagger() {
        for wins in [false, true] {
            let mut core = fleet_core_with(stagger_config());
            core.start(at(0), wall(0));
            hear_of(&mut core, &peer(60, wins), at(0));
            let (actions, wait) = drain(&mut core, at(60), wall(60));
            let tick = FireId::new("tick", wall(60));
            if !wins {
                assert_eq!(claims_of(&actions), vec![tick], "rank 0: at once");
                continue;
            }
            assert!(claims_of(&actions).is_empty(), "rank 1 waits: {actions:?}");
            assert_eq!(wait, Action::WakeAt(ms(60_250)), "one stagger later");
            let (actions, _) = drain(&mut core, ms(60_249), wall_ms(60_249));
            assert!(claims_of(&actions).is_empty());
            // Nobody was heard claiming it (a dead first node): this one claims it.
            let (actions, _) = drain(&mut core, ms(60_250), wall_ms(60_250));
            assert_eq!(claims_of(&actions), vec![tick]);
        }
    }

    #[test]
    fn a_claim_heard_during_the_stagger_drops_this_nodes_claim() {
        let mut core = fleet_core_with(stagger_config());
        core.start(at(0), wall(0));
        let first = peer(60, true);
        hear_of(&mut core, &first, at(0));
        let (actions, _) = drain(&mut core, at(60), wall(60));
        assert!(claims_of(&actions).is_empty());
        let tick = FireId::new("tick", wall(60));
        let heard = HeardClaim {
            fire: tick,
            node: first,
        };
        core.fleet_heard_claim(&heard, ms(60_100));
        let (actions, wait) = drain(&mut core, ms(60_250), wall_ms(60_250));
        assert!(claims_of(&actions).is_empty(), "{actions:?}");
        assert!(
            matches!(wait, Action::WakeAt(t) if t > ms(60_250)),
            "{wait:?}"
        );
        let flow = core.flow("tick").unwrap();
        let info = core.info(flow, ms(60_250), wall_ms(60_250));
        assert_eq!((info.fires_elsewhere, info.run_count), (1, 0));
        // The next fire is planned as usual.
        let (actions, _) = drain(&mut core, at(121), wall(121));
        assert_eq!(claims_of(&actions), vec![FireId::new("tick", wall(120))]);
    }

    #[test]
    fn a_claim_heard_before_the_fire_comes_due_here_is_not_claimed() {
        let mut core = fleet_core_with(stagger_config());
        core.start(at(0), wall(0));
        let heard = HeardClaim {
            fire: FireId::new("tick", wall(60)),
            node: NodeId::new("fast"),
        };
        core.fleet_heard_claim(&heard, at(59));
        let (actions, _) = drain(&mut core, at(60), wall(60));
        assert!(claims_of(&actions).is_empty(), "{actions:?}");
        let flow = core.flow("tick").unwrap();
        assert_eq!(core.info(flow, at(60), wall(60)).fires_elsewhere, 1);
        // Its own claims are not heard as another node's.
        let mine = HeardClaim {
            fire: FireId::new("tick", wall(120)),
            node: node(),
        };
        core.fleet_heard_claim(&mine, at(61));
        let (actions, _) = drain(&mut core, at(120), wall(120));
        assert_eq!(claims_of(&actions), vec![FireId::new("tick", wall(120))]);
    }

    #[test]
    fn a_node_whose_clock_is_ahead_claims_its_lead_later() {
        for stagger in [DEFAULT_CLAIM_STAGGER, Duration::ZERO] {
            let mut config = stagger_config();
            config.stagger = stagger;
            let mut core = fleet_core_with(config);
            let fire = due_claim(&mut core);
            let flow = core.flow("tick").unwrap();
            // The store's clock reads 2 s behind this node's.
            let taken = Ok(Stamped::new(
                ClaimOutcome::Taken {
                    owner: NodeId::new("other"),
                    expires: wall(90),
                },
                wall(58),
            ));
            core.claim_done(flow, fire, taken, at(60), wall(60));
            let (actions, wait) = drain(&mut core, at(120), wall(120));
            let next = FireId::new("tick", wall(120));
            if stagger.is_zero() {
                assert_eq!(claims_of(&actions), vec![next], "no stagger: as before");
                continue;
            }
            assert!(claims_of(&actions).is_empty(), "{actions:?}");
            assert_eq!(
                wait,
                Action::WakeAt(at(122)),
                "at 120 s by the store's clock"
            );
            let (actions, _) = drain(&mut core, at(122), wall(122));
            assert_eq!(claims_of(&actions), vec![next]);
        }
    }

    #[test]
    fn a_zero_stagger_claims_at_once_whatever_the_rank() {
        let mut config = stagger_config();
        config.stagger = Duration::ZERO;
        let mut core = fleet_core_with(config);
        core.start(at(0), wall(0));
        hear_of(&mut core, &peer(60, true), at(0));
        let (actions, _) = drain(&mut core, at(60), wall(60));
        assert_eq!(claims_of(&actions), vec![FireId::new("tick", wall(60))]);
    }

    #[test]
    fn a_peer_unheard_for_its_ttl_is_no_longer_ranked() {
        let mut config = stagger_config();
        config.peer_ttl = Duration::from_secs(30);
        let mut core = fleet_core_with(config);
        core.start(at(0), wall(0));
        let first = peer(60, true);
        hear_of(&mut core, &first, at(0));
        // Heard at 0 s, forgotten from 30 s: at 60 s this node ranks first again.
        let (actions, _) = drain(&mut core, at(60), wall(60));
        assert_eq!(claims_of(&actions), vec![FireId::new("tick", wall(60))]);
        // Heard again: live once more.
        let first = peer(120, true);
        hear_of(&mut core, &first, at(100));
        let (actions, _) = drain(&mut core, at(120), wall(120));
        assert!(claims_of(&actions).is_empty(), "{actions:?}");
    }

    #[test]
    fn cancelling_a_claimed_run_completes_its_claim_as_cancelled() {
        let mut core = fleet_core(&[("tick", every_minute())]);
        let fire = due_claim(&mut core);
        let flow = core.flow("tick").unwrap();
        core.claim_done(flow, fire.clone(), claimed(5, wall(60)), at(60), wall(60));
        let (actions, _) = drain(&mut core, at(60), wall(60));
        let run = starts_of(&actions)[0].run;
        assert_eq!(core.cancel_flow(flow, at(61)), Ok(1));
        let (actions, _) = drain(&mut core, at(61), wall(61));
        assert!(actions.contains(&Action::Cancel(run)), "{actions:?}");
        core.finish(run, at(62), wall(62), RunOutcome::Cancelled)
            .unwrap();
        let (actions, _) = drain(&mut core, at(62), wall(62));
        assert!(
            actions.contains(&Action::Fleet(FleetAction::Complete {
                fire,
                fence: Fence(5),
                outcome: FireOutcome::Cancelled,
            })),
            "{actions:?}"
        );
    }

    #[test]
    fn a_flow_added_in_a_removed_flows_slot_starts_with_fresh_fleet_state() {
        let mut core = fleet_core(&[("tick", every_minute())]);
        let fire = due_claim(&mut core);
        let old = core.flow("tick").unwrap();
        // The ledger is down: the claim waits in the queue.
        let down = Err(PersistError::unavailable("down"));
        core.claim_done(old, fire, down, at(60), wall(60));
        let (actions, _) = drain(&mut core, at(60), wall(60));
        assert!(claims_of(&actions).is_empty());
        core.remove_flow(old, crate::scheduler::InFlight::Wait, at(60))
            .unwrap();
        let new = core
            .add_running_flow(
                "rate",
                Schedule::Every(Duration::from_secs(10)),
                SchedulePolicy::default(),
                crate::BackoffPolicy::default(),
                at(60),
                wall(60),
            )
            .unwrap();
        assert_eq!(new, old, "the slot is reused");
        let (actions, _) = drain(&mut core, at(61), wall(61));
        assert!(
            claims_of(&actions).is_empty(),
            "no leftover claim: {actions:?}"
        );
        assert!(
            actions.iter().any(|a| matches!(
                a,
                Action::Fleet(FleetAction::AcquireFlow { flow, .. }) if *flow == new
            )),
            "a fixed-rate flow acquires its ownership lease: {actions:?}"
        );
        assert_eq!(core.fleet_fence(new.get()), Fence::ZERO);
    }

    #[test]
    fn a_staggered_fire_is_claimed_before_the_flows_next_fire() {
        let mut config = stagger_config();
        // Longer than the flow's period: the next fire comes due during the stagger.
        config.stagger = Duration::from_secs(90);
        let mut core = fleet_core_with(config);
        core.start(at(0), wall(0));
        hear_of(&mut core, &peer(60, true), at(0));
        let (actions, _) = drain(&mut core, at(60), wall(60));
        assert!(claims_of(&actions).is_empty());
        let (actions, _) = drain(&mut core, at(120), wall(120));
        let claims = claims_of(&actions);
        assert_eq!(
            claims.first(),
            Some(&FireId::new("tick", wall(60))),
            "the older fire first (a newer claim would make it stale): {claims:?}"
        );
    }

    #[test]
    fn a_stagger_waits_at_most_half_the_flows_period() {
        let mut config = stagger_config();
        config.stagger = Duration::from_secs(90);
        let mut core = fleet_core_with(config);
        core.start(at(0), wall(0));
        hear_of(&mut core, &peer(60, true), at(0));
        let (actions, _) = drain(&mut core, at(60), wall(60));
        assert!(claims_of(&actions).is_empty(), "ranked second: {actions:?}");
        let (actions, _) = drain(&mut core, at(89), wall(89));
        assert!(
            claims_of(&actions).is_empty(),
            "before half the period: {actions:?}"
        );
        let (actions, _) = drain(&mut core, at(90), wall(90));
        assert_eq!(claims_of(&actions), vec![FireId::new("tick", wall(60))]);
    }

    /// Hands flow 0's fires at `times` (wall µs) to the fleet in that order, each handled
    /// there (queued or dropped); the fires then waiting for their claim.
    fn due_in_turn(core: &mut SchedulerCore, times: &[i64], now: Instant) -> Vec<(u32, i64)> {
        for &t in times {
            assert!(matches!(core.fleet_due(0, t, now), FleetDue::Handled(None)));
        }
        core.fleet
            .as_deref()
            .unwrap()
            .to_claim
            .iter()
            .copied()
            .collect()
    }

    /// Every order of `items` (duplicates give repeated orders, which is harmless here).
    fn orders(items: &[i64]) -> Vec<Vec<i64>> {
        if items.len() <= 1 {
            return vec![items.to_vec()];
        }
        let mut all = Vec::new();
        for i in 0..items.len() {
            let mut rest = items.to_vec();
            let first = rest.remove(i);
            for mut tail in orders(&rest) {
                tail.insert(0, first);
                all.push(tail);
            }
        }
        all
    }

    #[test]
    fn in_every_order_a_flows_fires_wait_oldest_first_once_each_at_their_own_time() {
        // The class of the off-schedule fire ids: whatever order a flow's fires reach the
        // fleet in (catch-up behind newer fires, a fire twice), each waits once, under its
        // scheduled time, oldest first.
        let times: Vec<i64> = [60, 120, 180, 240]
            .iter()
            .map(|&s| wall(s).as_microsecond())
            .collect();
        let mut items = times.clone();
        items.push(times[1]);
        for order in orders(&items) {
            let mut core = SchedulerCore::new();
            let tick = core.add_flow("tick", every_minute()).unwrap();
            let policy = SchedulePolicy {
                missed: MissedFirePolicy::RunAll { max: 8 },
                ..SchedulePolicy::default()
            };
            core.set_policy(tick, policy).unwrap();
            core.join_fleet(node(), FleetConfig::default()).unwrap();
            core.start(at(0), wall(0));
            let queued = due_in_turn(&mut core, &order, at(240));
            let waiting: Vec<i64> = queued.iter().map(|&(_, t)| t).collect();
            // Each distinct fire once, oldest first (the policy keeps all of them waiting).
            let mut want: Vec<i64> = order.clone();
            want.sort_unstable();
            want.dedup();
            assert_eq!(waiting, want, "{order:?}: oldest first, each once");
            assert!(
                waiting.iter().all(|t| times.contains(t)),
                "{order:?}: {waiting:?}"
            );
            assert_eq!(
                core.flows[0].last_fire_id.get(),
                times.iter().max().copied(),
                "{order:?}"
            );
        }
    }

    #[test]
    fn a_fire_older_than_the_last_keeps_its_time_and_is_claimed_first() {
        let mut core = SchedulerCore::new();
        let tick = core.add_flow("tick", every_minute()).unwrap();
        let policy = SchedulePolicy {
            missed: MissedFirePolicy::RunAll { max: 2 },
            ..SchedulePolicy::default()
        };
        core.set_policy(tick, policy).unwrap();
        core.join_fleet(node(), FleetConfig::default()).unwrap();
        core.start(at(0), wall(0));
        let (t60, t120) = (wall(60).as_microsecond(), wall(120).as_microsecond());
        // A newer fire first, then an older one (a catch-up fire that waited), then the
        // newer one again.
        let queued = due_in_turn(&mut core, &[t120, t60, t120], at(120));
        assert_eq!(queued, vec![(0, t60), (0, t120)], "oldest first, each once");
        assert_eq!(
            core.flows[0].last_fire_id.get(),
            Some(t120),
            "no fire id moved past"
        );
        let (actions, _) = drain(&mut core, at(120), wall(120));
        // One claim at a time for a flow that may run once at a time: the older first.
        assert_eq!(claims_of(&actions), vec![FireId::new("tick", wall(60))]);
    }

    #[test]
    fn over_the_waiting_cap_an_older_fire_is_the_one_missed() {
        // The default policy keeps one waiting fire: the newer stays, the older is missed.
        let mut core = fleet_core_with(FleetConfig::default());
        core.start(at(0), wall(0));
        let (t60, t120) = (wall(60).as_microsecond(), wall(120).as_microsecond());
        let queued = due_in_turn(&mut core, &[t120, t60], at(120));
        assert_eq!(queued, vec![(0, t120)]);
        assert_eq!(core.flows[0].missed_fires, 1);
    }

    #[test]
    fn a_peer_that_let_its_turn_pass_is_no_longer_ranked() {
        let mut core = fleet_core_with(stagger_config());
        core.start(at(0), wall(0));
        let (silent, below) = (peer(60, true), peer(60, false));
        hear_of(&mut core, &silent, at(0));
        hear_of(&mut core, &below, at(0));
        let (actions, _) = drain(&mut core, at(60), wall(60));
        assert!(claims_of(&actions).is_empty(), "ranked second: {actions:?}");
        let (actions, _) = drain(&mut core, ms(60_250), wall_ms(60_250));
        let tick = FireId::new("tick", wall(60));
        assert_eq!(claims_of(&actions), vec![tick.clone()]);
        let flow = core.flow("tick").unwrap();
        let won = claimed(1, wall_ms(60_250));
        core.claim_done(flow, tick, won, ms(60_260), wall_ms(60_260));
        let peers: Vec<_> = core
            .fleet
            .as_deref()
            .unwrap()
            .peers
            .iter()
            .map(|(p, _)| p.clone())
            .collect();
        assert_eq!(
            peers,
            vec![below],
            "the silent peer is forgotten, the other kept"
        );
    }

    fn claim_actions(actions: &[Action]) -> Vec<(Vec<FlowIndex>, Vec<ClaimRequest>)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Fleet(FleetAction::Claim { flows, claims, .. }) => {
                    Some((flows.clone(), claims.clone()))
                }
                _ => None,
            })
            .collect()
    }

    fn minutely_fleet(n: usize) -> SchedulerCore {
        let ids: Vec<alloc::string::String> = (0..n).map(|k| alloc::format!("f{k:03}")).collect();
        let flows: Vec<(&str, Schedule)> = ids.iter().map(|id| (&**id, every_minute())).collect();
        fleet_core(&flows)
    }

    #[test]
    fn fires_due_together_are_claimed_in_one_call_up_to_the_batch_limit() {
        let n = CLAIM_BATCH_MAX + 2;
        let mut core = minutely_fleet(n);
        core.start(at(0), wall(0));
        let (actions, _) = drain(&mut core, at(60), wall(60));
        let batches = claim_actions(&actions);
        let sizes: Vec<usize> = batches.iter().map(|(_, c)| c.len()).collect();
        assert_eq!(sizes, vec![CLAIM_BATCH_MAX, 2], "{sizes:?}");
        for (flows, claims) in &batches {
            assert_eq!(flows.len(), claims.len());
            for (flow, claim) in flows.iter().zip(claims) {
                assert_eq!(claim.fire.flow(), core.flow_id(*flow));
                assert_eq!(claim.fire.scheduled(), wall(60));
            }
        }
        // Every fire answered in one report each batch: every flow starts once.
        for (flows, claims) in batches {
            let answers = flows
                .into_iter()
                .zip(claims)
                .enumerate()
                .map(|(k, (flow, c))| (flow, c.fire, claimed(k as u64 + 1, wall(60))))
                .collect();
            core.fleet_done(FleetReport::Claim { answers }, at(60), wall(60));
        }
        let (actions, _) = drain(&mut core, at(60), wall(60));
        assert_eq!(starts_of(&actions).len(), n);
    }

    #[test]
    fn a_batch_refused_as_unavailable_is_one_failure_and_is_asked_again_in_order() {
        let mut core = minutely_fleet(5);
        core.start(at(0), wall(0));
        let (actions, _) = drain(&mut core, at(60), wall(60));
        let [(flows, claims)] = claim_actions(&actions).try_into().unwrap();
        let asked: Vec<FireId> = claims.iter().map(|c| c.fire.clone()).collect();
        let answers = flows
            .into_iter()
            .zip(claims)
            .map(|(flow, c)| (flow, c.fire, Err(PersistError::unavailable("down"))))
            .collect();
        core.fleet_done(FleetReport::Claim { answers }, at(60), wall(60));
        let retry = FleetConfig::default().retry;
        let fleet = core.fleet.as_deref().unwrap();
        assert_eq!(fleet.retry_delay, retry, "one call failed, not five");
        let (actions, _) = drain(&mut core, at(60), wall(60));
        assert!(
            claim_actions(&actions).is_empty(),
            "nothing before the retry"
        );
        // The retry is a probe of one fire, the oldest asked; the rest follow it at once.
        let (actions, _) = drain(&mut core, at(60) + retry, wall(60) + retry);
        let [(flows, probe)] = claim_actions(&actions).try_into().unwrap();
        assert_eq!(probe.len(), 1);
        assert_eq!(probe[0].fire, asked[0]);
        let answers = vec![(flows[0], probe[0].fire.clone(), claimed(1, wall(61)))];
        core.fleet_done(FleetReport::Claim { answers }, at(61), wall(61));
        let (actions, _) = drain(&mut core, at(61), wall(61));
        let [(_, rest)] = claim_actions(&actions).try_into().unwrap();
        let rest: Vec<FireId> = rest.into_iter().map(|c| c.fire).collect();
        assert_eq!(rest, asked[1..], "the others, in the order first asked");
    }

    #[test]
    fn a_report_missing_answers_leaves_those_fires_to_be_claimed_again() {
        let mut core = minutely_fleet(3);
        core.start(at(0), wall(0));
        let (actions, _) = drain(&mut core, at(60), wall(60));
        let [(flows, claims)] = claim_actions(&actions).try_into().unwrap();
        // A ledger that answered only the first of the batch.
        let ledger = crate::persist::MemoryFireLedger::new_at(wall(60));
        let first =
            futures::executor::block_on(ledger.claim_batch(&claims[..1], &node(), DEFAULT_LEASE));
        let report = FleetReport::Claim {
            answers: claim_answers(flows, claims.clone(), first),
        };
        let FleetReport::Claim { answers } = &report else {
            panic!("{report:?}")
        };
        assert_eq!(answers.len(), 3, "every fire asked is in the report");
        assert!(answers[0].2.is_ok());
        assert!(matches!(answers[1].2, Err(PersistError::Unavailable(_))));
        core.fleet_done(report, at(60), wall(60));
        let retry = FleetConfig::default().retry;
        let mut asked_again = Vec::new();
        for t in [at(60) + retry, at(60) + retry * 2] {
            let (actions, _) = drain(&mut core, t, wall(60));
            for (flows, claims) in claim_actions(&actions) {
                let answers = flows
                    .into_iter()
                    .zip(claims)
                    .map(|(flow, c)| {
                        asked_again.push(c.fire.clone());
                        (flow, c.fire, claimed(9, wall(61)))
                    })
                    .collect();
                core.fleet_done(FleetReport::Claim { answers }, t, wall(61));
            }
        }
        assert_eq!(
            asked_again,
            claims[1..]
                .iter()
                .map(|c| c.fire.clone())
                .collect::<Vec<_>>()
        );
    }
}
