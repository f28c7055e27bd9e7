//! One contract, every store: the rules of [`FireLedger`] and [`ScheduleStore`], checked
//! against each implementation through a [`StoreFixture`].
//!
//! Run by `tests/persist_memory.rs` (the in-memory stores) and `tests/persist_postgres.rs`
//! (cano-postgres on a real server). A new store gets the same checks by implementing
//! [`StoreFixture`] and calling [`run_fire_ledger_suite`] and [`run_schedule_store_suite`]
//! (the redb store's hook: a `tests/persist_redb.rs` doing just that).
//!
//! Each case gets a fresh fixture and uses its own flows; cases run concurrently, so a slow
//! real-time store spends its lease waits once, not once per case.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use cano_core::persist::{
    ClaimOutcome, ClaimRequest, ClaimState, Fence, FireLedger, FireOutcome, FlowLeaseOutcome,
    FlowRecord, MAX_LEASE, NodeId, PersistError, PersistResult, ScheduleHash, ScheduleStore,
    Stamped, TakeoverOutcome,
};
use cano_core::scheduler::FireId;
use futures::future::join_all;
use jiff::Timestamp;

/// A boxed future (the fixture's methods are called from generic code).
pub type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A store under test: fresh and empty when made, with a way to let the store's time pass.
pub trait StoreFixture: Send + Sync + 'static {
    /// The ledger.
    type Ledger: FireLedger + 'static;
    /// The schedule store.
    type Schedule: ScheduleStore + 'static;

    /// The ledger, as one node sees it.
    fn ledger(&self) -> &Self::Ledger;
    /// The schedule store, as one node sees it.
    fn schedule(&self) -> &Self::Schedule;
    /// `n` more handles on the same stores (separate connections where the store has them),
    /// for races.
    fn handles(&self, n: usize) -> Boxed<'_, Vec<(Self::Ledger, Self::Schedule)>>;
    /// Lets at least `d` pass on the store's clock.
    fn pass(&self, d: Duration) -> Boxed<'_, ()>;
    /// A lease that [`pass`](Self::pass)ing twice its length surely outlives, yet long
    /// enough that a few calls fit inside it (real-time stores: a few hundred ms).
    fn short_lease(&self) -> Duration;
}

/// A lease no case outlives.
const LONG: Duration = Duration::from_secs(600);

fn t(s: &str) -> Timestamp {
    s.parse().expect("a test time")
}

fn fire(flow: &str, at: &str) -> FireId {
    FireId::new(flow, t(at))
}

fn node(n: &str) -> NodeId {
    NodeId::new(n)
}

type Case<F> = fn(Arc<F>) -> Boxed<'static, ()>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), |f| Box::pin($name(f)))),*]
    };
}

async fn run_cases<F, M, Fut>(make: M, cases: &[(&'static str, Case<F>)])
where
    F: StoreFixture,
    M: Fn() -> Fut,
    Fut: Future<Output = F>,
{
    let mut runs = Vec::new();
    for (name, case) in cases {
        let fixture = Arc::new(make().await);
        let name = *name;
        runs.push(async move {
            case(fixture).await;
            name
        });
    }
    let done = join_all(runs).await;
    assert_eq!(done.len(), cases.len());
}

/// Every [`FireLedger`] rule, each case on a fresh fixture from `make`.
pub async fn run_fire_ledger_suite<F, M, Fut>(make: M)
where
    F: StoreFixture,
    M: Fn() -> Fut,
    Fut: Future<Output = F>,
{
    let cases: &[(&'static str, Case<F>)] = cases![
        one_live_claim_per_fire,
        answers_carry_the_store_clock,
        fences_strictly_increase_per_flow,
        renew_needs_the_current_fence,
        completion_is_final_and_retries_are_accepted,
        high_water_mark_refuses_older_fires,
        expired_claims_are_taken_over_and_the_zombie_is_fenced,
        a_lapsed_lease_is_fenced_before_any_takeover,
        abandoned_after_the_most_takeovers,
        retain_forgets_ended_claims_but_not_the_high_water_mark,
        flow_leases_exclude_other_nodes,
        bad_input_is_invalid,
        concurrent_claims_never_give_two_live_claims,
        the_overlap_limit_holds_fleet_wide,
        a_takeover_keeps_the_overlap_limit,
        concurrent_takeovers_have_one_winner,
        a_batch_answers_each_claim_as_one_by_one,
        a_batch_decides_every_ledger_state_as_one_by_one,
        concurrent_batches_in_any_order_never_give_two_live_claims,
    ];
    run_cases(make, cases).await;
}

/// Every [`ScheduleStore`] rule, each case on a fresh fixture from `make`.
pub async fn run_schedule_store_suite<F, M, Fut>(make: M)
where
    F: StoreFixture,
    M: Fn() -> Fut,
    Fut: Future<Output = F>,
{
    let cases: &[(&'static str, Case<F>)] = cases![
        records_round_trip,
        lower_fences_are_refused,
        concurrent_writers_leave_the_highest_fence,
        bad_records_are_invalid,
    ];
    run_cases(make, cases).await;
}

fn claimed(answer: &ClaimOutcome, case: &str) -> cano_core::persist::FireClaim {
    match answer {
        ClaimOutcome::Claimed(c) => *c,
        other => panic!("{case}: expected Claimed, got {other:?}"),
    }
}

async fn one_live_claim_per_fire<F: StoreFixture>(f: Arc<F>) {
    let l = f.ledger();
    let x = fire("once", "2026-01-01T00:00:00Z");
    let a = l.claim(&x, &node("a"), LONG).await.expect("claim");
    let first = claimed(&a.value, "first claim");
    assert!(first.fence > Fence::ZERO);
    assert_eq!(first.takeovers, 0);
    let b = l.claim(&x, &node("b"), LONG).await.expect("claim");
    match b.value {
        ClaimOutcome::Taken { owner, expires } => {
            assert_eq!(owner, node("a"));
            assert_eq!(expires, first.expires);
        }
        other => panic!("a second node's claim: expected Taken, got {other:?}"),
    }
    // The holder asking again (its answer was lost) gets the same claim, with a fresh lease.
    let again = l.claim(&x, &node("a"), LONG).await.expect("claim");
    let again = claimed(&again.value, "the holder's retry");
    assert_eq!(again.fence, first.fence);
    assert!(again.expires >= first.expires);
    let record = l.fire(&x).await.expect("fire").value.expect("a record");
    assert_eq!(record.owner, node("a"));
    assert_eq!(record.state, ClaimState::Claimed);
    assert_eq!(record.fence, first.fence);
    assert!(
        l.fire(&fire("once", "2026-01-01T00:00:01Z"))
            .await
            .expect("fire")
            .value
            .is_none()
    );
}

async fn answers_carry_the_store_clock<F: StoreFixture>(f: Arc<F>) {
    let l = f.ledger();
    let lease = Duration::from_secs(30);
    let a = l
        .claim(&fire("clock", "2026-01-01T00:00:00Z"), &node("a"), lease)
        .await
        .expect("claim");
    let c = claimed(&a.value, "claim");
    assert_eq!(
        c.expires,
        a.store_now + lease,
        "the lease is measured from the store's now"
    );
    f.pass(Duration::from_millis(20)).await;
    let r = l
        .renew(&fire("clock", "2026-01-01T00:00:00Z"), c.fence, lease)
        .await
        .expect("renew");
    assert!(r.store_now > a.store_now, "the store's clock moved on");
    assert_eq!(r.value, r.store_now + lease);
}

async fn fences_strictly_increase_per_flow<F: StoreFixture>(f: Arc<F>) {
    let l = f.ledger();
    let mut last = Fence::ZERO;
    for minute in 0..5 {
        let x = fire("fences", &format!("2026-01-01T00:{minute:02}:00Z"));
        let c = claimed(
            &l.claim(&x, &node("a"), LONG).await.expect("claim").value,
            "claim",
        );
        assert!(c.fence > last, "fence {:?} after {last:?}", c.fence);
        last = c.fence;
    }
    let lease = l
        .acquire_flow("fences", &node("a"), LONG)
        .await
        .expect("acquire")
        .value;
    match lease {
        FlowLeaseOutcome::Owned(owned) => assert!(owned.fence > last),
        other => panic!("acquire: expected Owned, got {other:?}"),
    }
    assert!(l.flow("fences").await.expect("flow").value.fence > last);
}

async fn renew_needs_the_current_fence<F: StoreFixture>(f: Arc<F>) {
    let l = f.ledger();
    let x = fire("renew", "2026-01-01T00:00:00Z");
    let c = claimed(
        &l.claim(&x, &node("a"), LONG).await.expect("claim").value,
        "claim",
    );
    f.pass(Duration::from_millis(5)).await;
    let renewed = l.renew(&x, c.fence, LONG).await.expect("renew");
    assert!(renewed.value > c.expires);
    let wrong = l.renew(&x, Fence(c.fence.0 + 7), LONG).await.unwrap_err();
    assert_eq!(wrong, PersistError::Fenced { current: c.fence });
    let unknown = l
        .renew(&fire("renew", "2026-01-01T01:00:00Z"), c.fence, LONG)
        .await
        .unwrap_err();
    assert!(
        unknown.is_fenced(),
        "renewing a fire nobody claimed: {unknown:?}"
    );
}

async fn completion_is_final_and_retries_are_accepted<F: StoreFixture>(f: Arc<F>) {
    let l = f.ledger();
    let x = fire("complete", "2026-01-01T00:00:00Z");
    let c = claimed(
        &l.claim(&x, &node("a"), LONG).await.expect("claim").value,
        "claim",
    );
    l.complete(&x, c.fence, FireOutcome::Failed)
        .await
        .expect("complete");
    l.complete(&x, c.fence, FireOutcome::Failed)
        .await
        .expect("a retried completion");
    assert!(
        l.complete(&x, c.fence, FireOutcome::Succeeded)
            .await
            .unwrap_err()
            .is_fenced()
    );
    assert!(l.renew(&x, c.fence, LONG).await.unwrap_err().is_fenced());
    for who in ["a", "b"] {
        let again = l.claim(&x, &node(who), LONG).await.expect("claim").value;
        assert_eq!(
            again,
            ClaimOutcome::Done {
                outcome: FireOutcome::Failed
            }
        );
    }
    let taken = l
        .take_over(&x, &node("b"), LONG, 3)
        .await
        .expect("take over")
        .value;
    assert_eq!(
        taken,
        TakeoverOutcome::Done {
            outcome: FireOutcome::Failed
        }
    );
    let record = l.fire(&x).await.expect("fire").value.expect("record");
    assert_eq!(record.state, ClaimState::Done(FireOutcome::Failed));
    assert!(l.expired(100).await.expect("expired").value.is_empty());
}

async fn high_water_mark_refuses_older_fires<F: StoreFixture>(f: Arc<F>) {
    let l = f.ledger();
    let two = fire("hwm", "2026-01-01T00:02:00Z");
    claimed(
        &l.claim(&two, &node("a"), LONG).await.expect("claim").value,
        "claim at 2",
    );
    let one = fire("hwm", "2026-01-01T00:01:00Z");
    let stale = l.claim(&one, &node("b"), LONG).await.expect("claim").value;
    assert_eq!(
        stale,
        ClaimOutcome::Stale {
            high_water: two.scheduled()
        }
    );
    // At the mark itself the fire's record answers.
    assert!(matches!(
        l.claim(&two, &node("b"), LONG).await.expect("claim").value,
        ClaimOutcome::Taken { .. }
    ));
    // Other flows have marks of their own.
    claimed(
        &l.claim(&fire("hwm-other", "2026-01-01T00:00:00Z"), &node("b"), LONG)
            .await
            .expect("claim")
            .value,
        "other flow",
    );
    let three = fire("hwm", "2026-01-01T00:03:00Z");
    claimed(
        &l.claim(&three, &node("b"), LONG)
            .await
            .expect("claim")
            .value,
        "claim at 3",
    );
    let flow = l.flow("hwm").await.expect("flow").value;
    assert_eq!(flow.high_water, Some(three.scheduled()));
    assert_eq!(
        l.flow("never-seen").await.expect("flow").value,
        Default::default()
    );
}

async fn expired_claims_are_taken_over_and_the_zombie_is_fenced<F: StoreFixture>(f: Arc<F>) {
    let l = f.ledger();
    let short = f.short_lease();
    let x = fire("takeover", "2026-01-01T00:00:00Z");
    let a = claimed(
        &l.claim(&x, &node("a"), short).await.expect("claim").value,
        "claim",
    );
    let early = l
        .take_over(&x, &node("b"), LONG, 3)
        .await
        .expect("take over")
        .value;
    assert!(
        matches!(early, TakeoverOutcome::Live { ref owner, .. } if *owner == node("a")),
        "{early:?}"
    );
    assert!(l.expired(10).await.expect("expired").value.is_empty());
    f.pass(short * 2).await;
    let expired = l.expired(10).await.expect("expired");
    assert_eq!(expired.value.len(), 1);
    let e = &expired.value[0];
    assert_eq!(
        (&e.fire, &e.owner, e.fence, e.takeovers),
        (&x, &node("a"), a.fence, 0)
    );
    assert_eq!(e.expired_at, a.expires);
    assert!(e.expired_at <= expired.store_now);
    let b = match l
        .take_over(&x, &node("b"), LONG, 3)
        .await
        .expect("take over")
        .value
    {
        TakeoverOutcome::Claimed(b) => b,
        other => panic!("take over: expected Claimed, got {other:?}"),
    };
    assert!(b.fence > a.fence);
    assert_eq!(b.takeovers, 1);
    // The zombie's late writes are refused.
    assert_eq!(
        l.renew(&x, a.fence, LONG).await.unwrap_err(),
        PersistError::Fenced { current: b.fence }
    );
    assert_eq!(
        l.complete(&x, a.fence, FireOutcome::Succeeded)
            .await
            .unwrap_err(),
        PersistError::Fenced { current: b.fence }
    );
    assert!(matches!(
        l.claim(&x, &node("c"), LONG).await.expect("claim").value,
        ClaimOutcome::Taken { ref owner, .. } if *owner == node("b")
    ));
    l.complete(&x, b.fence, FireOutcome::Succeeded)
        .await
        .expect("the new holder completes");
    assert_eq!(
        l.take_over(
            &fire("takeover", "2030-01-01T00:00:00Z"),
            &node("b"),
            LONG,
            3
        )
        .await
        .expect("take over")
        .value,
        TakeoverOutcome::Missing
    );
}

async fn a_lapsed_lease_is_fenced_before_any_takeover<F: StoreFixture>(f: Arc<F>) {
    let l = f.ledger();
    let short = f.short_lease();
    let x = fire("lapsed", "2026-01-01T00:00:00Z");
    let a = claimed(
        &l.claim(&x, &node("a"), short).await.expect("claim").value,
        "claim",
    );
    f.pass(short * 2).await;
    assert_eq!(
        l.renew(&x, a.fence, LONG).await.unwrap_err(),
        PersistError::Fenced { current: a.fence }
    );
    assert_eq!(
        l.complete(&x, a.fence, FireOutcome::Succeeded)
            .await
            .unwrap_err(),
        PersistError::Fenced { current: a.fence }
    );
    // The lapsed holder asking again is not let back in silently: it sees the lapsed claim.
    match l.claim(&x, &node("a"), LONG).await.expect("claim").value {
        ClaimOutcome::Taken { owner, expires } => {
            assert_eq!(owner, node("a"));
            assert_eq!(expires, a.expires);
        }
        other => panic!("claim after lapse: expected Taken, got {other:?}"),
    }
}

async fn abandoned_after_the_most_takeovers<F: StoreFixture>(f: Arc<F>) {
    let l = f.ledger();
    let short = f.short_lease();
    let x = fire("abandon", "2026-01-01T00:00:00Z");
    claimed(
        &l.claim(&x, &node("a"), short).await.expect("claim").value,
        "claim",
    );
    for (i, who) in ["b", "c"].into_iter().enumerate() {
        f.pass(short * 2).await;
        match l
            .take_over(&x, &node(who), short, 2)
            .await
            .expect("take over")
            .value
        {
            TakeoverOutcome::Claimed(c) => assert_eq!(c.takeovers, i as u32 + 1),
            other => panic!("takeover {}: expected Claimed, got {other:?}", i + 1),
        }
    }
    f.pass(short * 2).await;
    assert_eq!(
        l.take_over(&x, &node("d"), short, 2)
            .await
            .expect("take over")
            .value,
        TakeoverOutcome::Abandoned { takeovers: 2 }
    );
    assert_eq!(
        l.take_over(&x, &node("e"), short, 2)
            .await
            .expect("take over")
            .value,
        TakeoverOutcome::Abandoned { takeovers: 2 }
    );
    assert_eq!(
        l.claim(&x, &node("e"), short).await.expect("claim").value,
        ClaimOutcome::Abandoned { takeovers: 2 }
    );
    assert_eq!(
        l.flow("abandon").await.expect("flow").value.abandoned,
        1,
        "counted once"
    );
    assert!(l.expired(10).await.expect("expired").value.is_empty());
    assert_eq!(
        l.fire(&x).await.expect("fire").value.expect("record").state,
        ClaimState::Abandoned
    );
}

async fn retain_forgets_ended_claims_but_not_the_high_water_mark<F: StoreFixture>(f: Arc<F>) {
    let l = f.ledger();
    let fires: Vec<FireId> = (0..3)
        .map(|m| fire("retain", &format!("2026-01-01T00:0{m}:00Z")))
        .collect();
    for (i, x) in fires.iter().enumerate() {
        let c = claimed(
            &l.claim(x, &node("a"), LONG).await.expect("claim").value,
            "claim",
        );
        if i < 2 {
            l.complete(x, c.fence, FireOutcome::Succeeded)
                .await
                .expect("complete");
        }
    }
    let before = l.retain(Timestamp::UNIX_EPOCH).await.expect("retain");
    assert_eq!(before.value, 0, "nothing ended before 1970");
    f.pass(Duration::from_millis(5)).await;
    let now = l.flow("retain").await.expect("flow").store_now;
    assert_eq!(l.retain(now).await.expect("retain").value, 2);
    assert!(l.fire(&fires[0]).await.expect("fire").value.is_none());
    assert!(
        l.fire(&fires[2]).await.expect("fire").value.is_some(),
        "a live claim is kept"
    );
    assert!(matches!(
        l.claim(&fires[0], &node("b"), LONG)
            .await
            .expect("claim")
            .value,
        ClaimOutcome::Stale { .. }
    ));
}

async fn flow_leases_exclude_other_nodes<F: StoreFixture>(f: Arc<F>) {
    let l = f.ledger();
    let short = f.short_lease();
    let a = match l
        .acquire_flow("owned", &node("a"), LONG)
        .await
        .expect("acquire")
        .value
    {
        FlowLeaseOutcome::Owned(lease) => lease,
        other => panic!("acquire: expected Owned, got {other:?}"),
    };
    assert!(matches!(
        l.acquire_flow("owned", &node("b"), LONG).await.expect("acquire").value,
        FlowLeaseOutcome::HeldBy { ref owner, .. } if *owner == node("a")
    ));
    let x = fire("owned", "2026-01-01T00:00:00Z");
    assert!(matches!(
        l.claim(&x, &node("b"), LONG).await.expect("claim").value,
        ClaimOutcome::Taken { ref owner, .. } if *owner == node("a")
    ));
    claimed(
        &l.claim(&x, &node("a"), LONG).await.expect("claim").value,
        "the owner claims",
    );
    let again = l
        .acquire_flow("owned", &node("a"), LONG)
        .await
        .expect("acquire")
        .value;
    assert!(matches!(again, FlowLeaseOutcome::Owned(l2) if l2.fence == a.fence));
    f.pass(Duration::from_millis(5)).await;
    assert!(
        l.renew_flow("owned", a.fence, LONG)
            .await
            .expect("renew")
            .value
            > a.expires
    );
    assert!(
        l.renew_flow("owned", Fence(a.fence.0 + 9), LONG)
            .await
            .unwrap_err()
            .is_fenced()
    );
    l.release_flow("owned", a.fence).await.expect("release");
    l.release_flow("owned", a.fence)
        .await
        .expect("releasing twice");
    let b = match l
        .acquire_flow("owned", &node("b"), short)
        .await
        .expect("acquire")
        .value
    {
        FlowLeaseOutcome::Owned(lease) => lease,
        other => panic!("acquire after release: expected Owned, got {other:?}"),
    };
    assert!(b.fence > a.fence);
    assert!(
        l.renew_flow("owned", a.fence, LONG)
            .await
            .unwrap_err()
            .is_fenced(),
        "the old owner is fenced"
    );
    let owner = l.flow("owned").await.expect("flow").value.owner;
    assert_eq!(owner.map(|o| o.0), Some(node("b")));
    f.pass(short * 2).await;
    assert!(
        l.renew_flow("owned", b.fence, LONG)
            .await
            .unwrap_err()
            .is_fenced(),
        "a lapsed lease"
    );
    assert!(matches!(
        l.acquire_flow("owned", &node("c"), LONG).await.expect("acquire").value,
        FlowLeaseOutcome::Owned(c) if c.fence > b.fence
    ));
}

async fn bad_input_is_invalid<F: StoreFixture>(f: Arc<F>) {
    let l = f.ledger();
    let invalid = |r: Result<_, PersistError>| matches!(r, Err(PersistError::Invalid(_)));
    assert!(invalid(
        l.claim(&fire("", "2026-01-01T00:00:00Z"), &node("a"), LONG)
            .await
            .map(drop)
    ));
    let sub_micro = FireId::new("bad", Timestamp::new(1_700_000_000, 1).expect("time"));
    assert!(invalid(
        l.claim(&sub_micro, &node("a"), LONG).await.map(drop)
    ));
    let x = fire("bad", "2026-01-01T00:00:00Z");
    assert!(invalid(
        l.claim(&x, &node("a"), Duration::ZERO).await.map(drop)
    ));
    assert!(invalid(
        l.claim(&x, &node("a"), MAX_LEASE + Duration::from_secs(1))
            .await
            .map(drop)
    ));
    assert!(invalid(
        l.acquire_flow("", &node("a"), LONG).await.map(drop)
    ));
    // Nothing was recorded by the refused calls.
    assert!(l.fire(&x).await.expect("fire").value.is_none());
}

async fn concurrent_claims_never_give_two_live_claims<F: StoreFixture>(f: Arc<F>) {
    const NODES: usize = 12;
    const FIRES: usize = 15;
    let handles = f.handles(NODES).await;
    let fires: Vec<FireId> = (0..FIRES)
        .map(|s| fire("race", &format!("2026-01-01T00:00:{s:02}Z")))
        .collect();
    // Every node claims every fire in ascending order, as schedulers do, all at once.
    let runs = handles.iter().enumerate().map(|(i, (ledger, _))| {
        let fires = fires.clone();
        async move {
            let me = node(&format!("n{i}"));
            let mut won = Vec::new();
            for x in &fires {
                let answer = ledger.claim(x, &me, LONG).await.expect("claim");
                if let ClaimOutcome::Claimed(c) = answer.value {
                    won.push((x.clone(), me.clone(), c.fence));
                }
            }
            won
        }
    });
    let won: Vec<_> = join_all(runs).await.into_iter().flatten().collect();
    assert_one_winner_each(&*f, &fires, &won).await;
}

async fn concurrent_takeovers_have_one_winner<F: StoreFixture>(f: Arc<F>) {
    let short = f.short_lease();
    let handles = f.handles(10).await;
    let x = fire("takeover-race", "2026-01-01T00:00:00Z");
    let first = claimed(
        &f.ledger()
            .claim(&x, &node("dead"), short)
            .await
            .expect("claim")
            .value,
        "claim",
    );
    f.pass(short * 2).await;
    let runs = handles.iter().enumerate().map(|(i, (ledger, _))| {
        let x = x.clone();
        async move {
            ledger
                .take_over(&x, &node(&format!("n{i}")), LONG, 5)
                .await
                .expect("take over")
                .value
        }
    });
    let answers = join_all(runs).await;
    let winners: Vec<_> = answers
        .iter()
        .filter_map(|a| match a {
            TakeoverOutcome::Claimed(c) => Some(*c),
            _ => None,
        })
        .collect();
    assert_eq!(winners.len(), 1, "one takeover wins: {answers:?}");
    assert!(winners[0].fence > first.fence);
    assert_eq!(winners[0].takeovers, 1);
    assert!(
        answers.iter().all(|a| matches!(
            a,
            TakeoverOutcome::Claimed(_) | TakeoverOutcome::Live { .. }
        )),
        "the others see the new live claim: {answers:?}"
    );
}

async fn the_overlap_limit_holds_fleet_wide<F: StoreFixture>(f: Arc<F>) {
    let l = f.ledger();
    let short = f.short_lease();
    let at = |m: u32| fire("limited", &format!("2026-01-01T00:{m:02}:00Z"));
    let one = claimed(
        &l.claim_limited(&at(1), &node("a"), LONG, 1)
            .await
            .expect("claim")
            .value,
        "first",
    );
    assert_eq!(
        l.claim_limited(&at(2), &node("b"), short, 1)
            .await
            .expect("claim")
            .value,
        ClaimOutcome::AtLimit { live: 1 },
        "Skip: no second live run anywhere"
    );
    let flow = l.flow("limited").await.expect("flow").value;
    assert_eq!(
        flow.high_water,
        Some(at(1).scheduled()),
        "a refused claim leaves the mark"
    );
    assert_eq!(flow.fence, one.fence, "and takes no fence");
    assert!(l.fire(&at(2)).await.expect("fire").value.is_none());
    // The holder asking again is answered as always.
    claimed(
        &l.claim_limited(&at(1), &node("a"), LONG, 1)
            .await
            .expect("claim")
            .value,
        "the holder's retry",
    );
    l.complete(&at(1), one.fence, FireOutcome::Succeeded)
        .await
        .expect("complete");
    claimed(
        &l.claim_limited(&at(2), &node("b"), short, 1)
            .await
            .expect("claim")
            .value,
        "after the run ended",
    );
    claimed(
        &l.claim_limited(&at(3), &node("c"), short, 2)
            .await
            .expect("claim")
            .value,
        "a second of two",
    );
    assert_eq!(
        l.claim_limited(&at(4), &node("d"), short, 2)
            .await
            .expect("claim")
            .value,
        ClaimOutcome::AtLimit { live: 2 }
    );
    // Lapsed claims are not live.
    f.pass(short * 2).await;
    claimed(
        &l.claim_limited(&at(4), &node("d"), LONG, 1)
            .await
            .expect("claim")
            .value,
        "lapsed claims do not count",
    );
    assert!(matches!(
        l.claim_limited(&at(5), &node("d"), LONG, 0).await,
        Err(PersistError::Invalid(_))
    ));
}

/// A fire whose claim lay expired while a later fire of its flow was claimed is not taken
/// over past the flow's limit (Skip: one run fleet-wide), and is once that run ended.
async fn a_takeover_keeps_the_overlap_limit<F: StoreFixture>(f: Arc<F>) {
    let l = f.ledger();
    let short = f.short_lease();
    let at = |m: u32| fire("limited-takeover", &format!("2026-01-01T00:{m:02}:00Z"));
    let dead = claimed(
        &l.claim_limited(&at(1), &node("a"), short, 1)
            .await
            .expect("claim")
            .value,
        "first",
    );
    f.pass(short * 2).await;
    let later = claimed(
        &l.claim_limited(&at(2), &node("b"), LONG, 1)
            .await
            .expect("claim")
            .value,
        "an expired claim is not live",
    );
    assert_eq!(
        l.take_over_limited(&at(1), &node("c"), LONG, 3, 1)
            .await
            .expect("take over")
            .value,
        TakeoverOutcome::AtLimit { live: 1 }
    );
    let record = l.fire(&at(1)).await.expect("fire").value.expect("record");
    assert_eq!(
        (record.owner, record.fence, record.takeovers),
        (node("a"), dead.fence, 0),
        "a refused takeover changes nothing"
    );
    l.complete(&at(2), later.fence, FireOutcome::Succeeded)
        .await
        .expect("complete");
    match l
        .take_over_limited(&at(1), &node("c"), LONG, 3, 1)
        .await
        .expect("take over")
        .value
    {
        TakeoverOutcome::Claimed(c) => assert!(c.fence > later.fence && c.takeovers == 1),
        other => panic!("expected Claimed after the run ended, got {other:?}"),
    }
    assert!(matches!(
        l.take_over_limited(&at(1), &node("c"), LONG, 3, 0).await,
        Err(PersistError::Invalid(_))
    ));
}

fn sample_record(seed: u32) -> FlowRecord {
    let mut r = FlowRecord::new(ScheduleHash(u64::MAX - u64::from(seed)));
    r.last_fire =
        Some(Timestamp::from_microsecond(1_767_225_600_000_000 + i64::from(seed)).expect("time"));
    r.streak = seed;
    r.next_eligible = Some(Timestamp::from_microsecond(-1_000_001).expect("time"));
    r.paused = seed.is_multiple_of(2);
    r.tripped = seed.is_multiple_of(3);
    r.buffered_trigger = seed.is_multiple_of(5);
    r.last_error = Some(Arc::from(format!("error {seed}: ünïcode")));
    r
}

async fn records_round_trip<F: StoreFixture>(f: Arc<F>) {
    let s = f.schedule();
    assert!(s.load_all().await.expect("load").is_empty());
    for i in 0..4 {
        s.save(&format!("flow-{i}"), &sample_record(i), Fence(u64::from(i)))
            .await
            .expect("save");
    }
    let bare = FlowRecord::new(ScheduleHash(0));
    s.save("bare", &bare, Fence::ZERO).await.expect("save");
    let mut all = s.load_all().await.expect("load");
    all.sort_by(|a, b| a.flow.cmp(&b.flow));
    assert_eq!(all.len(), 5);
    assert_eq!(&*all[0].flow, "bare");
    assert_eq!(all[0].record, bare);
    for i in 0..4u32 {
        let stored = &all[i as usize + 1];
        assert_eq!(&*stored.flow, format!("flow-{i}"));
        assert_eq!(stored.record, sample_record(i));
        assert_eq!(stored.fence, Fence(u64::from(i)));
    }
    // Overwrite with the same fence: the newest record wins.
    s.save("flow-1", &sample_record(9), Fence(1))
        .await
        .expect("save");
    s.delete("flow-2", Fence(2)).await.expect("delete");
    s.delete("never-saved", Fence::ZERO)
        .await
        .expect("deleting a missing record");
    let all = s.load_all().await.expect("load");
    assert_eq!(all.len(), 4);
    assert_eq!(
        all.iter()
            .find(|x| &*x.flow == "flow-1")
            .expect("flow-1")
            .record,
        sample_record(9)
    );
    assert!(all.iter().all(|x| &*x.flow != "flow-2"));
}

async fn lower_fences_are_refused<F: StoreFixture>(f: Arc<F>) {
    let s = f.schedule();
    s.save("fenced", &sample_record(1), Fence(5))
        .await
        .expect("save");
    assert_eq!(
        s.save("fenced", &sample_record(2), Fence(4))
            .await
            .unwrap_err(),
        PersistError::Fenced { current: Fence(5) }
    );
    assert_eq!(
        s.delete("fenced", Fence(4)).await.unwrap_err(),
        PersistError::Fenced { current: Fence(5) }
    );
    s.save("fenced", &sample_record(3), Fence(6))
        .await
        .expect("a higher fence");
    let all = s.load_all().await.expect("load");
    assert_eq!(all[0].record, sample_record(3));
    assert_eq!(all[0].fence, Fence(6));
    s.delete("fenced", Fence(7)).await.expect("delete");
    assert!(s.load_all().await.expect("load").is_empty());
}

async fn concurrent_writers_leave_the_highest_fence<F: StoreFixture>(f: Arc<F>) {
    let handles = f.handles(8).await;
    let writes = handles
        .iter()
        .enumerate()
        .map(|(i, (_, store))| async move {
            for round in 0..5u64 {
                let fence = Fence(round * 8 + i as u64);
                match store
                    .save("contended", &sample_record(fence.0 as u32), fence)
                    .await
                {
                    Ok(()) | Err(PersistError::Fenced { .. }) => {}
                    Err(e) => panic!("save: {e}"),
                }
            }
        });
    join_all(writes).await;
    let all = f.schedule().load_all().await.expect("load");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].fence, Fence(39), "the highest fence's write stands");
    assert_eq!(all[0].record, sample_record(39));
}

async fn bad_records_are_invalid<F: StoreFixture>(f: Arc<F>) {
    let s = f.schedule();
    let mut r = FlowRecord::new(ScheduleHash(1));
    assert!(matches!(
        s.save("", &r, Fence::ZERO).await,
        Err(PersistError::Invalid(_))
    ));
    r.last_fire = Some(Timestamp::new(5, 500).expect("time"));
    assert!(matches!(
        s.save("sub-micro", &r, Fence::ZERO).await,
        Err(PersistError::Invalid(_))
    ));
    assert!(s.load_all().await.expect("load").is_empty());
}

async fn a_batch_answers_each_claim_as_one_by_one<F: StoreFixture>(f: Arc<F>) {
    let l = f.ledger();
    let at = |flow: &str, m: u32| fire(flow, &format!("2026-01-01T00:{m:02}:00Z"));
    // What the batch meets: a fire another node holds, a flow whose mark is past the fire,
    // a flow at its limit, a fire this node already holds.
    l.claim(&at("b-taken", 1), &node("b"), LONG)
        .await
        .expect("claim");
    l.claim(&at("b-stale", 5), &node("b"), LONG)
        .await
        .expect("claim");
    l.claim(&at("b-limit", 1), &node("b"), LONG)
        .await
        .expect("claim");
    let mine = claimed(
        &l.claim(&at("b-mine", 1), &node("a"), LONG)
            .await
            .expect("claim")
            .value,
        "held before the batch",
    );
    let asked = [
        ClaimRequest::new(at("b-fresh", 1), 1),
        ClaimRequest::new(at("b-taken", 1), 1),
        ClaimRequest::new(at("b-stale", 2), 1),
        ClaimRequest::new(at("b-limit", 2), 1),
        ClaimRequest::new(at("b-mine", 1), 1),
        ClaimRequest::new(fire("", "2026-01-01T00:01:00Z"), 1),
        ClaimRequest::new(at("b-zero", 1), 0),
        // Two fires of one flow: the second sees the first (its live claim, its mark).
        ClaimRequest::new(at("b-two", 1), 2),
        ClaimRequest::new(at("b-two", 2), 2),
        ClaimRequest::new(at("b-one", 1), 1),
        ClaimRequest::new(at("b-one", 2), 1),
        ClaimRequest::new(at("b-fresh2", 1), 1),
    ];
    let answers = l.claim_batch(&asked, &node("a"), LONG).await;
    assert_eq!(answers.len(), asked.len(), "one answer per request");
    let outcome = |k: usize| answers[k].as_ref().map(|a| a.value.clone());
    claimed(&outcome(0).expect("fresh"), "a fresh fire");
    assert!(
        matches!(outcome(1), Ok(ClaimOutcome::Taken { ref owner, .. }) if *owner == node("b")),
        "{:?}",
        outcome(1)
    );
    assert!(
        matches!(outcome(2), Ok(ClaimOutcome::Stale { .. })),
        "{:?}",
        outcome(2)
    );
    assert_eq!(outcome(3), Ok(ClaimOutcome::AtLimit { live: 1 }));
    let again = claimed(&outcome(4).expect("mine"), "the holder asking again");
    assert_eq!(again.fence, mine.fence, "the same claim");
    assert!(
        matches!(outcome(5), Err(PersistError::Invalid(_))),
        "{:?}",
        outcome(5)
    );
    assert!(
        matches!(outcome(6), Err(PersistError::Invalid(_))),
        "{:?}",
        outcome(6)
    );
    let first = claimed(&outcome(7).expect("two"), "the first of two");
    let second = claimed(&outcome(8).expect("two"), "the second of two");
    assert!(second.fence > first.fence, "fences increase within a batch");
    claimed(
        &outcome(9).expect("one"),
        "the first of a flow limited to one",
    );
    assert_eq!(
        outcome(10),
        Ok(ClaimOutcome::AtLimit { live: 1 }),
        "the second sees the first's live claim"
    );
    claimed(
        &outcome(11).expect("fresh"),
        "after the refusals, a fresh fire",
    );
    // What the batch granted is in the ledger, as one by one.
    for k in [0, 7, 8, 9, 11] {
        let record = l
            .fire(&asked[k].fire)
            .await
            .expect("fire")
            .value
            .expect("a record of what was granted");
        assert_eq!(record.owner, node("a"));
        assert_eq!(record.state, ClaimState::Claimed);
    }
    for k in [2, 3, 10] {
        assert!(
            l.fire(&asked[k].fire).await.expect("fire").value.is_none(),
            "a refused claim records nothing: {}",
            asked[k].fire
        );
    }
    assert!(l.claim_batch(&[], &node("a"), LONG).await.is_empty());
}

/// The flows of [`a_batch_decides_every_ledger_state_as_one_by_one`], each meeting its
/// claims in a different ledger state: (name, (minute, max_live) of each fire claimed,
/// oldest first).
const LEDGER_STATES: &[(&str, &[(u32, u32)])] = &[
    ("fresh", &[(1, 1)]),
    ("taken", &[(1, 1)]),
    ("mine", &[(1, 1)]),
    ("mine-lapsed", &[(1, 1)]),
    ("other-lapsed", &[(1, 1)]),
    ("done", &[(1, 1)]),
    ("abandoned", &[(1, 1)]),
    ("stale", &[(2, 1)]),
    ("limit", &[(2, 1)]),
    ("below-limit", &[(2, 2)]),
    ("owned-other", &[(1, 1)]),
    ("owned-mine", &[(1, 1)]),
    ("owned-lapsed", &[(1, 1)]),
    ("zero", &[(1, 0)]),
    ("two", &[(1, 2), (2, 2)]),
    ("two-limit", &[(1, 1), (2, 1)]),
    ("two-stale", &[(1, 2), (5, 2)]),
    ("three-mixed", &[(1, 3), (2, 3), (4, 3)]),
];

/// Puts `prefix`'s flows of [`LEDGER_STATES`] into their states; `lapsed` is false before
/// the short leases have run out and true after.
async fn put_in_ledger_states<L: FireLedger>(l: &L, prefix: &str, short: Duration, lapsed: bool) {
    let at = |flow: &str, m: u32| {
        fire(
            &format!("{prefix}{flow}"),
            &format!("2026-01-01T00:{m:02}:00Z"),
        )
    };
    let flow = |name: &str| format!("{prefix}{name}");
    let (a, b) = (node("a"), node("b"));
    if lapsed {
        let gave_up = l
            .take_over(&at("abandoned", 1), &a, LONG, 0)
            .await
            .expect("take over");
        assert!(
            matches!(gave_up.value, TakeoverOutcome::Abandoned { .. }),
            "{:?}",
            gave_up.value
        );
        return;
    }
    for (name, holder, lease) in [
        ("taken", &b, LONG),
        ("mine", &a, LONG),
        ("mine-lapsed", &a, short),
        ("other-lapsed", &b, short),
        ("abandoned", &b, short),
        ("limit", &b, LONG),
        ("below-limit", &b, LONG),
    ] {
        l.claim(&at(name, 1), holder, lease).await.expect("claim");
    }
    let done = claimed(
        &l.claim(&at("done", 1), &a, LONG)
            .await
            .expect("claim")
            .value,
        "done",
    );
    l.complete(&at("done", 1), done.fence, FireOutcome::Succeeded)
        .await
        .expect("complete");
    for (name, m) in [("stale", 5), ("two-stale", 3), ("three-mixed", 2)] {
        l.claim(&at(name, m), &b, LONG).await.expect("claim");
    }
    for (name, holder, lease) in [
        ("owned-other", &b, LONG),
        ("owned-mine", &a, LONG),
        ("owned-lapsed", &b, short),
    ] {
        l.acquire_flow(&flow(name), holder, lease)
            .await
            .expect("acquire");
    }
}

/// What an answer says, without the lease times (the two runs read the clock at
/// different moments).
fn answer_shape(answer: &PersistResult<Stamped<ClaimOutcome>>) -> String {
    match answer.as_ref().map(|a| &a.value) {
        Ok(ClaimOutcome::Claimed(c)) => {
            format!("claimed fence {} takeovers {}", c.fence, c.takeovers)
        }
        Ok(ClaimOutcome::Taken { owner, .. }) => format!("taken by {owner}"),
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("error {e:?}"),
    }
}

/// A differential check of [`FireLedger::claim_batch`] against `claim_limited` one fire at
/// a time, over every state a claim can meet (fresh, held by either node and lapsed, done,
/// abandoned, below the mark, at and below the limit, a flow owned by either node or
/// lapsed, several fires of one flow): the same flows are put in the same states under two
/// prefixes, one claimed one by one and one in a batch, and every answer, fire record and
/// flow record must agree.
async fn a_batch_decides_every_ledger_state_as_one_by_one<F: StoreFixture>(f: Arc<F>) {
    let l = f.ledger();
    let short = f.short_lease();
    for lapsed in [false, true] {
        for prefix in ["single-", "batch-"] {
            put_in_ledger_states(l, prefix, short, lapsed).await;
        }
        if !lapsed {
            f.pass(short * 2).await;
        }
    }
    // The batch's order mixes the flows (each flow's fires stay oldest first).
    let mut order: Vec<(usize, usize)> = LEDGER_STATES
        .iter()
        .enumerate()
        .flat_map(|(k, (_, fires))| (0..fires.len()).map(move |j| (k, j)))
        .collect();
    order.sort_by_key(|&(k, j)| (j, (k * 7) % LEDGER_STATES.len()));
    let request = |prefix: &str, (k, j): (usize, usize)| {
        let (name, fires) = LEDGER_STATES[k];
        let (m, max_live) = fires[j];
        ClaimRequest::new(
            fire(
                &format!("{prefix}{name}"),
                &format!("2026-01-01T00:{m:02}:00Z"),
            ),
            max_live,
        )
    };
    let mut single = Vec::new();
    for &x in &order {
        let asked = request("single-", x);
        single.push(
            l.claim_limited(&asked.fire, &node("a"), LONG, asked.max_live)
                .await,
        );
    }
    let asked: Vec<ClaimRequest> = order.iter().map(|&x| request("batch-", x)).collect();
    let batch = l.claim_batch(&asked, &node("a"), LONG).await;
    assert_eq!(batch.len(), asked.len(), "one answer per request");
    for (k, (one, together)) in single.iter().zip(&batch).enumerate() {
        let (name, _) = LEDGER_STATES[order[k].0];
        assert_eq!(
            answer_shape(one),
            answer_shape(together),
            "{name}, fire {} of its flow: one by one, then in the batch",
            order[k].1
        );
    }
    for &x in &order {
        let (one, together) = (request("single-", x).fire, request("batch-", x).fire);
        let records = (
            l.fire(&one).await.expect("fire").value,
            l.fire(&together).await.expect("fire").value,
        );
        let shape = |r: Option<cano_core::persist::FireRecord>| {
            r.map(|r| (r.owner, r.fence, r.state, r.takeovers))
        };
        assert_eq!(shape(records.0), shape(records.1), "the record of {one}");
    }
    for (name, _) in LEDGER_STATES {
        let flows = (
            l.flow(&format!("single-{name}")).await.expect("flow").value,
            l.flow(&format!("batch-{name}")).await.expect("flow").value,
        );
        let shape = |f: cano_core::persist::LedgerFlow| {
            (f.high_water, f.abandoned, f.fence, f.owner.map(|o| o.0))
        };
        assert_eq!(shape(flows.0), shape(flows.1), "the flow record of {name}");
    }
}

async fn concurrent_batches_in_any_order_never_give_two_live_claims<F: StoreFixture>(f: Arc<F>) {
    const NODES: usize = 6;
    const FLOWS: usize = 24;
    let handles = f.handles(NODES).await;
    let fires: Vec<FireId> = (0..FLOWS)
        .map(|k| fire(&format!("batch-race-{k:02}"), "2026-01-01T00:00:00Z"))
        .collect();
    // Every node claims every fire in one batch, half of them in the opposite order: a
    // store that locked in the order asked would deadlock here.
    let runs = handles.iter().enumerate().map(|(i, (ledger, _))| {
        let mut asked: Vec<ClaimRequest> = fires
            .iter()
            .map(|x| ClaimRequest::new(x.clone(), 1))
            .collect();
        if i % 2 == 1 {
            asked.reverse();
        }
        async move {
            let me = node(&format!("n{i}"));
            let answers = ledger.claim_batch(&asked, &me, LONG).await;
            asked
                .into_iter()
                .zip(answers)
                .filter_map(|(x, answer)| match answer.expect("claim").value {
                    ClaimOutcome::Claimed(c) => Some((x.fire, me.clone(), c.fence)),
                    _ => None,
                })
                .collect::<Vec<_>>()
        }
    });
    let won: Vec<_> = join_all(runs).await.into_iter().flatten().collect();
    assert_one_winner_each(&*f, &fires, &won).await;
}

/// Each of `fires` was won by exactly one of `won` (fire, node, fence), and the ledger's
/// record shows that winner.
async fn assert_one_winner_each<F: StoreFixture>(
    f: &F,
    fires: &[FireId],
    won: &[(FireId, NodeId, Fence)],
) {
    for x in fires {
        let winners: Vec<_> = won.iter().filter(|(w, _, _)| w == x).collect();
        assert_eq!(
            winners.len(),
            1,
            "{x}: exactly one claim wins, got {winners:?}"
        );
        let record = f
            .ledger()
            .fire(x)
            .await
            .expect("fire")
            .value
            .expect("record");
        assert_eq!(record.owner, winners[0].1);
        assert_eq!(record.fence, winners[0].2);
    }
}
