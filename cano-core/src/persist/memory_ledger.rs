//! [`MemoryFireLedger`]: the fire ledger in memory, with its own clock.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::Future;
use core::time::Duration;

use hashbrown::HashMap;
use jiff::Timestamp;

use super::schedule_store::check_flow_id;
use super::{
    ClaimOutcome, ClaimState, ExpiredClaim, Fence, FireClaim, FireLedger, FireOutcome, FireRecord,
    FleetCommand, FlowLease, FlowLeaseOutcome, LedgerFlow, NodeId, PersistError, PersistResult,
    Stamped, TakeoverOutcome, lease_micros, to_micros,
};
use crate::scheduler::FireId;
use crate::sync::Lock;

type StoreClock = Box<dyn Fn() -> Timestamp + Send + Sync>;

/// A [`FireLedger`] in memory, for tests and deterministic fleet simulations: many
/// schedulers (each on its own, possibly skewed, clock) share one ledger, which measures
/// leases on *its* clock, as a database would on its own.
///
/// The store's now is `clock() + offset`, truncated to whole microseconds: `clock` is what
/// it was built with ([`new`](Self::new)), or a fixed start ([`new_at`](Self::new_at));
/// [`advance`](Self::advance) moves the offset. Clones share everything; each
/// [`view`](Self::view) shares the claims but has its own
/// `Faults` (feature `testing`), so a simulation gives every node a view.
///
/// With feature `testing`, `restart` simulates the store restarting: for
/// `downtime` (store clock) every call fails with
/// [`Unavailable`](PersistError::Unavailable), and every renewal still in flight fails.
/// Claims, completions, fences and high-water marks are durable: they survive it, as
/// committed rows survive a database restart.
pub struct MemoryFireLedger {
    shared: Arc<Shared>,
    #[cfg(feature = "testing")]
    faults: super::Faults,
}

struct Shared {
    state: Lock<LedgerState>,
    clock: StoreClock,
    /// Added to the clock (µs).
    offset: Lock<i64>,
    #[cfg(feature = "testing")]
    down_until: Lock<Option<i64>>,
    #[cfg(feature = "testing")]
    views: Lock<Vec<super::Faults>>,
}

impl Clone for MemoryFireLedger {
    fn clone(&self) -> Self {
        MemoryFireLedger {
            shared: self.shared.clone(),
            #[cfg(feature = "testing")]
            faults: self.faults.clone(),
        }
    }
}

impl core::fmt::Debug for MemoryFireLedger {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (fires, flows) = self.shared.state.with(|s| (s.fires.len(), s.flows.len()));
        f.debug_struct("MemoryFireLedger")
            .field("fires", &fires)
            .field("flows", &flows)
            .finish()
    }
}

#[derive(Debug, Clone)]
struct Row {
    owner: NodeId,
    fence: Fence,
    state: ClaimState,
    expires: i64,
    takeovers: u32,
    ended: Option<i64>,
}

#[derive(Debug, Clone, Default)]
struct FlowRow {
    fence: Fence,
    high_water: Option<i64>,
    abandoned: u64,
    /// The ownership lease: holder, its fence, its end (µs).
    owner: Option<(NodeId, Fence, i64)>,
}

#[derive(Debug, Default)]
struct LedgerState {
    flows: HashMap<Arc<str>, FlowRow>,
    fires: BTreeMap<(Arc<str>, i64), Row>,
    /// The keys of the fires in state `Claimed` (what `expired` looks through).
    claimed: alloc::collections::BTreeSet<(Arc<str>, i64)>,
    /// Published commands, with their sequence numbers (the last [`COMMANDS_KEPT`]).
    commands: alloc::collections::VecDeque<(u64, super::FleetCommand)>,
    command_seq: u64,
    /// Claims granted, announced to every handle (the last [`ANNOUNCEMENTS_KEPT`]).
    announced: alloc::collections::VecDeque<(u64, super::HeardClaim)>,
    announce_seq: u64,
}

/// Claim announcements a [`MemoryFireLedger`] keeps for nodes that read late.
const ANNOUNCEMENTS_KEPT: usize = 1024;

/// Commands a [`MemoryFireLedger`] keeps for nodes that read late.
const COMMANDS_KEPT: usize = 1024;

fn ts(micros: i64) -> Timestamp {
    Timestamp::from_microsecond(micros).unwrap_or(if micros > 0 {
        Timestamp::MAX
    } else {
        Timestamp::MIN
    })
}

fn lease_end(now: i64, lease: Duration) -> PersistResult<i64> {
    Ok(now
        .saturating_add(lease_micros(lease)?)
        .min(Timestamp::MAX.as_microsecond()))
}

fn key(fire: &FireId) -> PersistResult<(Arc<str>, i64)> {
    check_flow_id(fire.flow())?;
    Ok((Arc::from(fire.flow()), to_micros(fire.scheduled())?))
}

fn claim_of(row: &Row) -> FireClaim {
    FireClaim {
        fence: row.fence,
        expires: ts(row.expires),
        takeovers: row.takeovers,
    }
}

impl LedgerState {
    /// Announces a granted claim to every handle.
    fn announce(&mut self, fire: &FireId, node: &NodeId) {
        self.announce_seq += 1;
        let heard = super::HeardClaim {
            fire: fire.clone(),
            node: node.clone(),
        };
        self.announced.push_back((self.announce_seq, heard));
        if self.announced.len() > ANNOUNCEMENTS_KEPT {
            self.announced.pop_front();
        }
    }

    fn flow_mut(&mut self, flow: &Arc<str>) -> &mut FlowRow {
        self.flows.entry(flow.clone()).or_default()
    }

    fn claim(
        &mut self,
        fire: &FireId,
        node: &NodeId,
        lease: Duration,
        max_live: u32,
        now: i64,
    ) -> PersistResult<ClaimOutcome> {
        let key = key(fire)?;
        let expires = lease_end(now, lease)?;
        if max_live == 0 {
            return Err(PersistError::invalid("max_live must be at least 1"));
        }
        let flow = self.flows.entry(key.0.clone()).or_default();
        if let Some((owner, _, until)) = &flow.owner
            && owner != node
            && now < *until
        {
            return Ok(ClaimOutcome::Taken {
                owner: owner.clone(),
                expires: ts(*until),
            });
        }
        if let Some(row) = self.fires.get_mut(&key) {
            return Ok(match row.state {
                ClaimState::Claimed if row.owner == *node && now < row.expires => {
                    row.expires = expires;
                    ClaimOutcome::Claimed(claim_of(row))
                }
                ClaimState::Claimed => ClaimOutcome::Taken {
                    owner: row.owner.clone(),
                    expires: ts(row.expires),
                },
                ClaimState::Done(outcome) => ClaimOutcome::Done { outcome },
                ClaimState::Abandoned => ClaimOutcome::Abandoned {
                    takeovers: row.takeovers,
                },
            });
        }
        if let Some(high_water) = flow.high_water
            && key.1 <= high_water
        {
            return Ok(ClaimOutcome::Stale {
                high_water: ts(high_water),
            });
        }
        let live = Self::live(&self.fires, &key.0, now);
        if live >= max_live {
            return Ok(ClaimOutcome::AtLimit { live });
        }
        flow.fence = flow.fence.next();
        flow.high_water = Some(key.1);
        let row = Row {
            owner: node.clone(),
            fence: flow.fence,
            state: ClaimState::Claimed,
            expires,
            takeovers: 0,
            ended: None,
        };
        let claim = claim_of(&row);
        self.claimed.insert(key.clone());
        self.fires.insert(key, row);
        self.announce(fire, node);
        Ok(ClaimOutcome::Claimed(claim))
    }

    /// The live claims of `flow` at `now`.
    fn live(fires: &BTreeMap<(Arc<str>, i64), Row>, flow: &Arc<str>, now: i64) -> u32 {
        let live = fires
            .range((flow.clone(), i64::MIN)..=(flow.clone(), i64::MAX))
            .filter(|(_, row)| row.state == ClaimState::Claimed && now < row.expires)
            .count();
        u32::try_from(live).unwrap_or(u32::MAX)
    }

    /// The live claim on `fire` held with `fence`, or why not.
    fn held(&mut self, fire: &FireId, fence: Fence, now: i64) -> PersistResult<&mut Row> {
        let key = key(fire)?;
        let current = self.flows.get(&key.0).map_or(Fence::ZERO, |f| f.fence);
        match self.fires.get_mut(&key) {
            Some(row)
                if row.fence == fence && row.state == ClaimState::Claimed && now < row.expires =>
            {
                Ok(row)
            }
            Some(row) => Err(PersistError::Fenced { current: row.fence }),
            None => Err(PersistError::Fenced { current }),
        }
    }

    fn renew(
        &mut self,
        fire: &FireId,
        fence: Fence,
        lease: Duration,
        now: i64,
    ) -> PersistResult<Timestamp> {
        let expires = lease_end(now, lease)?;
        let row = self.held(fire, fence, now)?;
        row.expires = expires;
        Ok(ts(expires))
    }

    fn complete(
        &mut self,
        fire: &FireId,
        fence: Fence,
        outcome: FireOutcome,
        now: i64,
    ) -> PersistResult<()> {
        let key = key(fire)?;
        if let Some(row) = self.fires.get(&key)
            && row.fence == fence
            && row.state == ClaimState::Done(outcome)
        {
            return Ok(()); // a retried acknowledgement
        }
        let row = self.held(fire, fence, now)?;
        row.state = ClaimState::Done(outcome);
        row.ended = Some(now);
        self.claimed.remove(&key);
        Ok(())
    }

    fn expired(&self, limit: usize, now: i64) -> Vec<ExpiredClaim> {
        let mut expired: Vec<ExpiredClaim> = self
            .claimed
            .iter()
            .filter_map(|key| Some((key, self.fires.get(key)?)))
            .filter(|(_, row)| row.state == ClaimState::Claimed && row.expires <= now)
            .map(|((flow, at), row)| ExpiredClaim {
                fire: FireId::new(flow.clone(), ts(*at)),
                owner: row.owner.clone(),
                fence: row.fence,
                expired_at: ts(row.expires),
                takeovers: row.takeovers,
            })
            .collect();
        expired.sort_by(|a, b| {
            a.expired_at
                .cmp(&b.expired_at)
                .then_with(|| a.fire.cmp(&b.fire))
        });
        expired.truncate(limit);
        expired
    }

    fn take_over(
        &mut self,
        fire: &FireId,
        node: &NodeId,
        lease: Duration,
        max_takeovers: u32,
        max_live: u32,
        now: i64,
    ) -> PersistResult<TakeoverOutcome> {
        let key = key(fire)?;
        let expires = lease_end(now, lease)?;
        if max_live == 0 {
            return Err(PersistError::invalid("max_live must be at least 1"));
        }
        let live = Self::live(&self.fires, &key.0, now);
        let Some(row) = self.fires.get_mut(&key) else {
            return Ok(TakeoverOutcome::Missing);
        };
        match row.state {
            ClaimState::Done(outcome) => return Ok(TakeoverOutcome::Done { outcome }),
            ClaimState::Abandoned => {
                return Ok(TakeoverOutcome::Abandoned {
                    takeovers: row.takeovers,
                });
            }
            ClaimState::Claimed => {}
        }
        if now < row.expires {
            if row.owner == *node {
                row.expires = expires; // a retried takeover of our own
                return Ok(TakeoverOutcome::Claimed(claim_of(row)));
            }
            return Ok(TakeoverOutcome::Live {
                owner: row.owner.clone(),
                expires: ts(row.expires),
            });
        }
        let flow = self.flows.entry(key.0.clone()).or_default();
        if row.takeovers >= max_takeovers {
            row.state = ClaimState::Abandoned;
            row.ended = Some(now);
            self.claimed.remove(&key);
            flow.abandoned = flow.abandoned.saturating_add(1);
            return Ok(TakeoverOutcome::Abandoned {
                takeovers: row.takeovers,
            });
        }
        if live >= max_live {
            return Ok(TakeoverOutcome::AtLimit { live });
        }
        flow.fence = flow.fence.next();
        row.fence = flow.fence;
        row.owner = node.clone();
        row.takeovers += 1;
        row.expires = expires;
        let claim = claim_of(row);
        self.announce(fire, node);
        Ok(TakeoverOutcome::Claimed(claim))
    }

    fn retain(&mut self, ended_before: i64) -> u64 {
        let before = self.fires.len();
        self.fires.retain(|_, row| {
            row.state == ClaimState::Claimed || row.ended.is_none_or(|e| e >= ended_before)
        });
        (before - self.fires.len()) as u64
    }

    fn record(&self, fire: &FireId) -> PersistResult<Option<FireRecord>> {
        let key = key(fire)?;
        Ok(self.fires.get(&key).map(|row| FireRecord {
            fire: fire.clone(),
            owner: row.owner.clone(),
            fence: row.fence,
            state: row.state,
            expires: ts(row.expires),
            takeovers: row.takeovers,
        }))
    }

    fn flow(&self, flow: &str) -> PersistResult<LedgerFlow> {
        check_flow_id(flow)?;
        Ok(self
            .flows
            .get(flow)
            .map_or_else(LedgerFlow::default, |f| LedgerFlow {
                high_water: f.high_water.map(ts),
                abandoned: f.abandoned,
                fence: f.fence,
                owner: f
                    .owner
                    .as_ref()
                    .map(|(n, _, until)| (n.clone(), ts(*until))),
            }))
    }

    fn acquire_flow(
        &mut self,
        flow: &str,
        node: &NodeId,
        lease: Duration,
        now: i64,
    ) -> PersistResult<FlowLeaseOutcome> {
        check_flow_id(flow)?;
        let expires = lease_end(now, lease)?;
        let flow = self.flow_mut(&Arc::from(flow));
        if let Some((owner, fence, until)) = &mut flow.owner
            && now < *until
        {
            if owner == node {
                *until = expires;
                return Ok(FlowLeaseOutcome::Owned(FlowLease {
                    fence: *fence,
                    expires: ts(expires),
                }));
            }
            return Ok(FlowLeaseOutcome::HeldBy {
                owner: owner.clone(),
                expires: ts(*until),
            });
        }
        flow.fence = flow.fence.next();
        flow.owner = Some((node.clone(), flow.fence, expires));
        Ok(FlowLeaseOutcome::Owned(FlowLease {
            fence: flow.fence,
            expires: ts(expires),
        }))
    }

    fn renew_flow(
        &mut self,
        flow: &str,
        fence: Fence,
        lease: Duration,
        now: i64,
    ) -> PersistResult<Timestamp> {
        check_flow_id(flow)?;
        let expires = lease_end(now, lease)?;
        let Some(row) = self.flows.get_mut(flow) else {
            return Err(PersistError::Fenced {
                current: Fence::ZERO,
            });
        };
        match &mut row.owner {
            Some((_, f, until)) if *f == fence && now < *until => {
                *until = expires;
                Ok(ts(expires))
            }
            _ => Err(PersistError::Fenced { current: row.fence }),
        }
    }

    fn release_flow(&mut self, flow: &str, fence: Fence, now: i64) -> PersistResult<()> {
        check_flow_id(flow)?;
        if let Some(row) = self.flows.get_mut(flow)
            && let Some((_, f, until)) = &mut row.owner
            && *f == fence
        {
            *until = (*until).min(now);
        }
        Ok(())
    }
}

impl MemoryFireLedger {
    /// A ledger whose clock is `clock` (a simulation's store clock, e.g. a `FakeClock`'s
    /// wall time).
    pub fn new(clock: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        MemoryFireLedger {
            shared: Arc::new(Shared {
                state: Lock::new(LedgerState::default()),
                clock: Box::new(clock),
                offset: Lock::new(0),
                #[cfg(feature = "testing")]
                down_until: Lock::new(None),
                #[cfg(feature = "testing")]
                views: Lock::new(Vec::new()),
            }),
            #[cfg(feature = "testing")]
            faults: super::Faults::default(),
        }
    }

    /// A ledger whose clock stands at `start` until [`advance`](Self::advance)d.
    pub fn new_at(start: Timestamp) -> Self {
        MemoryFireLedger::new(move || start)
    }

    /// Moves the store's clock forward by `by` (on top of its clock).
    pub fn advance(&self, by: Duration) {
        let micros = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.shared.offset.with(|o| *o = o.saturating_add(micros));
    }

    /// The store's now.
    pub fn now(&self) -> Timestamp {
        let clock = (self.shared.clock)(); // user code: outside the lock
        let offset = self.shared.offset.with(|o| *o);
        ts(clock.as_microsecond().saturating_add(offset))
    }

    /// Another handle on the same ledger, with its own faults (feature `testing`).
    pub fn view(&self) -> Self {
        #[cfg(feature = "testing")]
        let faults = {
            let faults = super::Faults::default();
            self.shared.views.with(|v| v.push(faults.clone()));
            faults
        };
        MemoryFireLedger {
            shared: self.shared.clone(),
            #[cfg(feature = "testing")]
            faults,
        }
    }

    /// This handle's faults.
    #[cfg(feature = "testing")]
    pub fn faults(&self) -> &super::Faults {
        &self.faults
    }

    /// Simulates a store restart: unavailable to every handle for `downtime` of the store's
    /// clock; renewals in flight fail. Committed state survives.
    #[cfg(feature = "testing")]
    pub fn restart(&self, downtime: Duration) {
        let now = self.now().as_microsecond();
        let until = now.saturating_add(i64::try_from(downtime.as_micros()).unwrap_or(i64::MAX));
        self.shared.down_until.with(|d| *d = Some(until));
        let mut views = self.shared.views.with(|v| v.clone());
        views.push(self.faults.clone());
        for faults in views {
            faults.drop_held();
        }
    }

    /// What the ledger knows about `flow`, read past any fault (for invariant checks in
    /// tests).
    pub fn flow_of(&self, flow: &str) -> LedgerFlow {
        self.shared.state.with(|s| s.flow(flow)).unwrap_or_default()
    }

    /// The record of `fire`, read past any fault (for invariant checks in tests).
    pub fn record_of(&self, fire: &FireId) -> Option<FireRecord> {
        let key = key(fire).ok()?;
        self.shared.state.with(|s| {
            s.fires.get(&key).map(|row| FireRecord {
                fire: fire.clone(),
                owner: row.owner.clone(),
                fence: row.fence,
                state: row.state,
                expires: ts(row.expires),
                takeovers: row.takeovers,
            })
        })
    }

    /// Every fire's record, in `FireId` order (for invariant checks in tests).
    pub fn records(&self) -> Vec<FireRecord> {
        self.shared.state.with(|s| {
            s.fires
                .iter()
                .map(|((flow, at), row)| FireRecord {
                    fire: FireId::new(flow.clone(), ts(*at)),
                    owner: row.owner.clone(),
                    fence: row.fence,
                    state: row.state,
                    expires: ts(row.expires),
                    takeovers: row.takeovers,
                })
                .collect()
        })
    }

    /// Runs `f` on the state at the store's now, with the faults of this handle.
    fn apply<T>(
        &self,
        mutating: bool,
        f: impl FnOnce(&mut LedgerState, i64) -> PersistResult<T>,
    ) -> PersistResult<Stamped<T>> {
        let now = self.now();
        #[cfg(feature = "testing")]
        {
            self.faults.check_reachable()?;
            if self
                .shared
                .down_until
                .with(|d| d.is_some_and(|until| now.as_microsecond() < until))
            {
                return Err(PersistError::unavailable(
                    "the store is restarting (injected)",
                ));
            }
        }
        let value = self.shared.state.with(|s| f(s, now.as_microsecond()))?;
        #[cfg(feature = "testing")]
        if mutating && self.faults.take_lost_ack() {
            return Err(PersistError::unavailable("the answer was lost (injected)"));
        }
        let _ = mutating;
        Ok(Stamped::new(value, now))
    }

    /// Waits while this handle's renewals are held (feature `testing`).
    async fn in_flight(&self) -> PersistResult<()> {
        #[cfg(feature = "testing")]
        if let Some(released) = self.faults.hold() {
            return released.await.map_err(|_| {
                PersistError::unavailable("the store restarted under the request (injected)")
            });
        }
        Ok(())
    }
}

impl FireLedger for MemoryFireLedger {
    fn claim_limited(
        &self,
        fire: &FireId,
        node: &NodeId,
        lease: Duration,
        max_live: u32,
    ) -> impl Future<Output = PersistResult<Stamped<ClaimOutcome>>> + Send {
        core::future::ready(self.apply(true, |s, now| s.claim(fire, node, lease, max_live, now)))
    }

    fn renew(
        &self,
        fire: &FireId,
        fence: Fence,
        lease: Duration,
    ) -> impl Future<Output = PersistResult<Stamped<Timestamp>>> + Send {
        let fire = fire.clone();
        async move {
            self.in_flight().await?;
            self.apply(true, |s, now| s.renew(&fire, fence, lease, now))
        }
    }

    fn complete(
        &self,
        fire: &FireId,
        fence: Fence,
        outcome: FireOutcome,
    ) -> impl Future<Output = PersistResult<Stamped<()>>> + Send {
        core::future::ready(self.apply(true, |s, now| s.complete(fire, fence, outcome, now)))
    }

    fn expired(
        &self,
        limit: usize,
    ) -> impl Future<Output = PersistResult<Stamped<Vec<ExpiredClaim>>>> + Send {
        core::future::ready(self.apply(false, |s, now| Ok(s.expired(limit, now))))
    }

    fn take_over_limited(
        &self,
        fire: &FireId,
        node: &NodeId,
        lease: Duration,
        max_takeovers: u32,
        max_live: u32,
    ) -> impl Future<Output = PersistResult<Stamped<TakeoverOutcome>>> + Send {
        core::future::ready(self.apply(true, |s, now| {
            s.take_over(fire, node, lease, max_takeovers, max_live, now)
        }))
    }

    fn retain(
        &self,
        ended_before: Timestamp,
    ) -> impl Future<Output = PersistResult<Stamped<u64>>> + Send {
        let cutoff = ended_before.as_microsecond();
        core::future::ready(self.apply(true, |s, _| Ok(s.retain(cutoff))))
    }

    fn fire(
        &self,
        fire: &FireId,
    ) -> impl Future<Output = PersistResult<Stamped<Option<FireRecord>>>> + Send {
        core::future::ready(self.apply(false, |s, _| s.record(fire)))
    }

    fn flow(&self, flow: &str) -> impl Future<Output = PersistResult<Stamped<LedgerFlow>>> + Send {
        core::future::ready(self.apply(false, |s, _| s.flow(flow)))
    }

    fn acquire_flow(
        &self,
        flow: &str,
        node: &NodeId,
        lease: Duration,
    ) -> impl Future<Output = PersistResult<Stamped<FlowLeaseOutcome>>> + Send {
        core::future::ready(self.apply(true, |s, now| s.acquire_flow(flow, node, lease, now)))
    }

    fn renew_flow(
        &self,
        flow: &str,
        fence: Fence,
        lease: Duration,
    ) -> impl Future<Output = PersistResult<Stamped<Timestamp>>> + Send {
        let flow: Arc<str> = Arc::from(flow);
        async move {
            self.in_flight().await?;
            self.apply(true, |s, now| s.renew_flow(&flow, fence, lease, now))
        }
    }

    fn release_flow(
        &self,
        flow: &str,
        fence: Fence,
    ) -> impl Future<Output = PersistResult<Stamped<()>>> + Send {
        core::future::ready(self.apply(true, |s, now| s.release_flow(flow, fence, now)))
    }

    /// Keeps the last 1 024 commands.
    fn publish(&self, command: &FleetCommand) -> impl Future<Output = PersistResult<()>> + Send {
        let command = command.clone();
        core::future::ready(
            self.apply(true, |s, _| {
                s.command_seq += 1;
                s.commands.push_back((s.command_seq, command));
                if s.commands.len() > COMMANDS_KEPT {
                    s.commands.pop_front();
                }
                Ok(())
            })
            .map(|stamped| stamped.value),
        )
    }

    fn commands_after(
        &self,
        cursor: u64,
    ) -> impl Future<Output = PersistResult<Vec<(u64, FleetCommand)>>> + Send {
        core::future::ready(
            self.apply(false, |s, _| {
                Ok(s.commands
                    .iter()
                    .filter(|(seq, _)| *seq > cursor)
                    .cloned()
                    .collect())
            })
            .map(|stamped| stamped.value),
        )
    }

    /// Every claim and takeover granted is announced (the last 1 024 are kept), so the
    /// claim stagger works across the handles of one ledger.
    fn claims_heard_after(&self, cursor: u64) -> Option<Vec<(u64, super::HeardClaim)>> {
        Some(self.shared.state.with(|s| {
            s.announced
                .iter()
                .filter(|(seq, _)| *seq > cursor)
                .cloned()
                .collect()
        }))
    }
}
