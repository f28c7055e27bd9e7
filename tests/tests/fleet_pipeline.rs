//! A fleet node whose ledger and schedule store answer in order on one connection, as
//! cano-postgres does (tokio-postgres pipelines its requests: an answer nobody reads holds
//! every later one). The scheduler's driver must keep reading the answers of the ledger
//! calls it has sent while it waits for a schedule save; before it did, a save behind an
//! unread claim answer stalled the node for good (found by the PostgreSQL whole-fleet
//! restart test with the claim stagger on).

use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use cano_core::jiff::Timestamp;
use cano_core::persist::{
    ClaimOutcome, ExpiredClaim, Fence, FireLedger, FireOutcome, FireRecord, FleetCommand,
    FlowLeaseOutcome, FlowRecord, LedgerFlow, MemoryFireLedger, MemoryScheduleStore, NodeId,
    PersistResult, ScheduleStore, Stamped, StoredFlow, TakeoverOutcome,
};
use cano_core::runtime::Clock;
use cano_core::scheduler::{FireId, Scheduler, job_fn};
use cano_core::testing::{FakeClock, Simulation};

/// The answers sent and not read yet, shared by a node's ledger and its store.
#[derive(Default)]
struct Pipeline {
    unread: AtomicUsize,
    waiting: Mutex<Vec<Waker>>,
}

impl Pipeline {
    /// A ledger call: sent at its first poll, its answer arrives a millisecond later and
    /// is read only when the call is polled again.
    async fn call<T>(&self, clock: &FakeClock, op: impl Future<Output = T>) -> T {
        self.unread.fetch_add(1, Ordering::SeqCst);
        clock
            .sleep_until(clock.now().saturating_add(Duration::from_millis(1)))
            .await;
        let answer = op.await;
        self.unread.fetch_sub(1, Ordering::SeqCst);
        self.waiting.lock().unwrap().drain(..).for_each(Waker::wake);
        answer
    }

    /// A store call: its answer comes after every answer sent before it was read.
    async fn behind<T>(&self, op: impl Future<Output = T>) -> T {
        std::future::poll_fn(|cx| {
            if self.unread.load(Ordering::SeqCst) == 0 {
                return Poll::Ready(());
            }
            self.waiting.lock().unwrap().push(cx.waker().clone());
            Poll::Pending
        })
        .await;
        op.await
    }
}

struct PipelinedLedger {
    inner: MemoryFireLedger,
    pipe: Arc<Pipeline>,
    clock: FakeClock,
}

impl FireLedger for PipelinedLedger {
    async fn claim_limited(
        &self,
        fire: &FireId,
        node: &NodeId,
        lease: Duration,
        max_live: u32,
    ) -> PersistResult<Stamped<ClaimOutcome>> {
        let claim = self.inner.claim_limited(fire, node, lease, max_live);
        self.pipe.call(&self.clock, claim).await
    }
    async fn renew(
        &self,
        fire: &FireId,
        fence: Fence,
        lease: Duration,
    ) -> PersistResult<Stamped<Timestamp>> {
        let renew = self.inner.renew(fire, fence, lease);
        self.pipe.call(&self.clock, renew).await
    }
    async fn complete(
        &self,
        fire: &FireId,
        fence: Fence,
        outcome: FireOutcome,
    ) -> PersistResult<Stamped<()>> {
        let complete = self.inner.complete(fire, fence, outcome);
        self.pipe.call(&self.clock, complete).await
    }
    async fn expired(&self, limit: usize) -> PersistResult<Stamped<Vec<ExpiredClaim>>> {
        self.inner.expired(limit).await
    }
    async fn take_over_limited(
        &self,
        fire: &FireId,
        node: &NodeId,
        lease: Duration,
        max_takeovers: u32,
        max_live: u32,
    ) -> PersistResult<Stamped<TakeoverOutcome>> {
        let take = self
            .inner
            .take_over_limited(fire, node, lease, max_takeovers, max_live);
        self.pipe.call(&self.clock, take).await
    }
    async fn retain(&self, ended_before: Timestamp) -> PersistResult<Stamped<u64>> {
        self.inner.retain(ended_before).await
    }
    async fn fire(&self, fire: &FireId) -> PersistResult<Stamped<Option<FireRecord>>> {
        self.inner.fire(fire).await
    }
    async fn flow(&self, flow: &str) -> PersistResult<Stamped<LedgerFlow>> {
        self.inner.flow(flow).await
    }
    async fn acquire_flow(
        &self,
        flow: &str,
        node: &NodeId,
        lease: Duration,
    ) -> PersistResult<Stamped<FlowLeaseOutcome>> {
        self.inner.acquire_flow(flow, node, lease).await
    }
    async fn renew_flow(
        &self,
        flow: &str,
        fence: Fence,
        lease: Duration,
    ) -> PersistResult<Stamped<Timestamp>> {
        self.inner.renew_flow(flow, fence, lease).await
    }
    async fn release_flow(&self, flow: &str, fence: Fence) -> PersistResult<Stamped<()>> {
        self.inner.release_flow(flow, fence).await
    }
    async fn publish(&self, command: &FleetCommand) -> PersistResult<()> {
        self.inner.publish(command).await
    }
    async fn commands_after(&self, cursor: u64) -> PersistResult<Vec<(u64, FleetCommand)>> {
        self.inner.commands_after(cursor).await
    }
}

struct PipelinedStore {
    inner: MemoryScheduleStore,
    pipe: Arc<Pipeline>,
}

impl ScheduleStore for PipelinedStore {
    async fn load_all(&self) -> PersistResult<Vec<StoredFlow>> {
        self.inner.load_all().await
    }
    async fn save(&self, flow: &str, record: &FlowRecord, fence: Fence) -> PersistResult<()> {
        self.pipe.behind(self.inner.save(flow, record, fence)).await
    }
    async fn delete(&self, flow: &str, fence: Fence) -> PersistResult<()> {
        self.pipe.behind(self.inner.delete(flow, fence)).await
    }
}

#[test]
fn a_schedule_save_waits_for_no_unread_ledger_answer() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let wall = clock.clone();
    let ledger = MemoryFireLedger::new(move || wall.wall_now());
    let pipe = Arc::new(Pipeline::default());
    let runs = Arc::new(AtomicU32::new(0));
    let mut scheduler = Scheduler::new()
        .with_schedule_store(PipelinedStore {
            inner: MemoryScheduleStore::new(),
            pipe: pipe.clone(),
        })
        .with_fleet(
            PipelinedLedger {
                inner: ledger,
                pipe,
                clock: clock.clone(),
            },
            NodeId::new("a"),
        );
    // Flows whose fires come due together: while one fire's outcome is saved, the claims
    // of the others are in flight.
    for n in 0..8 {
        let runs = runs.clone();
        scheduler
            .cron(
                &format!("tick-{n}"),
                job_fn(move |(), _| {
                    let runs = runs.clone();
                    async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    }
                }),
                (),
                "* * * * *",
            )
            .unwrap();
    }
    let running = sim
        .block_on(scheduler.start(sim.clock(), sim.spawner()))
        .unwrap();
    sim.run_for(Duration::from_secs(630));
    let ran = runs.load(Ordering::SeqCst);
    assert_eq!(ran, 80, "8 flows × 10 minutes");
    sim.block_on(running.stop()).unwrap();
}
