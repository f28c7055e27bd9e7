//! The persistence contracts on the in-memory stores, and the faults they inject.

use std::time::Duration;

use cano_core::persist::{
    ClaimOutcome, Fence, FireLedger, FireOutcome, FlowRecord, MemoryFireLedger,
    MemoryScheduleStore, NodeId, PersistError, ScheduleHash, ScheduleStore,
};
use cano_core::scheduler::FireId;
use cano_tests::persist_conformance::{
    Boxed, StoreFixture, run_fire_ledger_suite, run_schedule_store_suite,
};
use futures::executor::block_on;
use jiff::Timestamp;

struct Memory {
    ledger: MemoryFireLedger,
    schedule: MemoryScheduleStore,
}

impl StoreFixture for Memory {
    type Ledger = MemoryFireLedger;
    type Schedule = MemoryScheduleStore;

    fn ledger(&self) -> &MemoryFireLedger {
        &self.ledger
    }
    fn schedule(&self) -> &MemoryScheduleStore {
        &self.schedule
    }
    fn handles(&self, n: usize) -> Boxed<'_, Vec<(MemoryFireLedger, MemoryScheduleStore)>> {
        Box::pin(async move {
            (0..n)
                .map(|_| (self.ledger.view(), self.schedule.view()))
                .collect()
        })
    }
    fn pass(&self, d: Duration) -> Boxed<'_, ()> {
        self.ledger.advance(d);
        Box::pin(async {})
    }
    fn short_lease(&self) -> Duration {
        Duration::from_secs(30)
    }
}

fn memory() -> Memory {
    Memory {
        ledger: MemoryFireLedger::new_at("2026-06-01T00:00:00Z".parse().unwrap()),
        schedule: MemoryScheduleStore::new(),
    }
}

#[test]
fn memory_fire_ledger_conforms() {
    block_on(run_fire_ledger_suite(|| async { memory() }));
}

#[test]
fn memory_schedule_store_conforms() {
    block_on(run_schedule_store_suite(|| async { memory() }));
}

fn fire() -> FireId {
    FireId::new("f", "2026-06-01T00:00:00Z".parse().unwrap())
}

const LEASE: Duration = Duration::from_secs(30);

#[test]
fn a_lost_claim_ack_is_recovered_by_asking_again() {
    let ledger = memory().ledger;
    let node = ledger.view();
    node.faults().lose_acks(1);
    let me = NodeId::new("a");
    let lost = block_on(node.claim(&fire(), &me, LEASE)).unwrap_err();
    assert!(matches!(lost, PersistError::Unavailable(_)));
    // The claim went through: another node is refused, and asking again returns it.
    let other = block_on(ledger.claim(&fire(), &NodeId::new("b"), LEASE)).unwrap();
    assert!(matches!(other.value, ClaimOutcome::Taken { ref owner, .. } if *owner == me));
    let again = block_on(node.claim(&fire(), &me, LEASE)).unwrap();
    assert!(matches!(again.value, ClaimOutcome::Claimed(_)));
}

#[test]
fn a_partitioned_node_reaches_nothing_while_others_go_on() {
    let ledger = memory().ledger;
    let cut = ledger.view();
    cut.faults().partition(true);
    let err = block_on(cut.claim(&fire(), &NodeId::new("a"), LEASE)).unwrap_err();
    assert!(err.is_retryable());
    assert!(
        block_on(ledger.fire(&fire())).unwrap().value.is_none(),
        "nothing was applied"
    );
    assert!(matches!(
        block_on(ledger.claim(&fire(), &NodeId::new("b"), LEASE))
            .unwrap()
            .value,
        ClaimOutcome::Claimed(_)
    ));
    cut.faults().partition(false);
    assert!(block_on(cut.flow("f")).is_ok());
}

#[test]
fn a_renewal_held_past_the_lease_is_fenced_when_it_arrives() {
    let ledger = memory().ledger;
    let slow = ledger.view();
    let me = NodeId::new("a");
    let ClaimOutcome::Claimed(claim) = block_on(slow.claim(&fire(), &me, LEASE)).unwrap().value
    else {
        panic!("claimed")
    };
    slow.faults().hold_renewals(true);
    let x = fire();
    let mut renewal = Box::pin(slow.renew(&x, claim.fence, LEASE));
    assert!(
        futures::FutureExt::now_or_never(&mut renewal).is_none(),
        "held in flight"
    );
    assert_eq!(slow.faults().held_renewals(), 1);
    ledger.advance(LEASE + Duration::from_secs(1));
    slow.faults().hold_renewals(false);
    let late = block_on(renewal).unwrap_err();
    assert_eq!(
        late,
        PersistError::Fenced {
            current: claim.fence
        }
    );
}

#[test]
fn a_store_restart_fails_requests_in_flight_and_keeps_what_was_committed() {
    let ledger = memory().ledger;
    let node = ledger.view();
    let me = NodeId::new("a");
    let ClaimOutcome::Claimed(claim) = block_on(node.claim(&fire(), &me, LEASE)).unwrap().value
    else {
        panic!("claimed")
    };
    node.faults().hold_renewals(true);
    let x = fire();
    let mut renewal = Box::pin(node.renew(&x, claim.fence, LEASE));
    assert!(
        futures::FutureExt::now_or_never(&mut renewal).is_none(),
        "held in flight"
    );
    ledger.restart(Duration::from_secs(5));
    assert!(matches!(
        block_on(renewal),
        Err(PersistError::Unavailable(_))
    ));
    node.faults().hold_renewals(false);
    assert!(matches!(
        block_on(node.flow("f")),
        Err(PersistError::Unavailable(_))
    ));
    ledger.advance(Duration::from_secs(5));
    let record = block_on(node.fire(&fire()))
        .unwrap()
        .value
        .expect("the claim survived");
    assert_eq!(record.fence, claim.fence);
    block_on(node.complete(&fire(), claim.fence, FireOutcome::Succeeded)).unwrap();
}

#[test]
fn the_ledger_clock_can_be_a_simulation_clock() {
    let clock = cano_core::testing::FakeClock::new("2026-06-01T00:00:00Z".parse().unwrap());
    let store_clock = clock.clone();
    let ledger = MemoryFireLedger::new(move || cano_core::Clock::wall_now(&store_clock));
    let a = block_on(ledger.flow("f")).unwrap().store_now;
    clock.advance(Duration::from_secs(90));
    let b = block_on(ledger.flow("f")).unwrap().store_now;
    assert_eq!(b - a, jiff::SignedDuration::from_secs(90));
    let _: Timestamp = b;
}

#[test]
fn schedule_store_faults_and_corrupt_records() {
    let store = MemoryScheduleStore::new();
    let node = store.view();
    node.faults().lose_acks(1);
    let record = FlowRecord::new(ScheduleHash(3));
    assert!(matches!(
        block_on(node.save("f", &record, Fence(1))),
        Err(PersistError::Unavailable(_))
    ));
    assert_eq!(
        block_on(store.load_all()).unwrap()[0].record,
        record,
        "applied, answer lost"
    );
    node.faults().partition(true);
    assert!(block_on(node.load_all()).unwrap_err().is_retryable());
    store.put_raw("bad", vec![9, 9, 9], Fence(1));
    assert!(matches!(
        block_on(store.load_all()),
        Err(PersistError::Corrupt(_))
    ));
}
