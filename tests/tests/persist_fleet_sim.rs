//! The store-side pieces of a fleet, composed on a deterministic clock: three nodes with
//! wall clocks 2 s fast, exact and 2 s slow claim the fires of a per-second schedule from
//! one in-memory ledger for a simulated hour, measuring their skew from every answer and
//! holding fires that would start early by the store's clock. One node loses some
//! acknowledgements (it wins most claims, so those are lost *claims*), one is partitioned for
//! five minutes, and the first is also suspended for ten.
//! (This pins the store-side pieces; `fleet_sim.rs` runs the full scheduler core over them.)
//!
//! Invariants: every fire is claimed exactly once; no claim starts before its fire by the
//! store's clock; a lost acknowledgement, retried, never makes a second claim.

use std::collections::BTreeMap;
use std::time::Duration;

use cano_core::persist::{
    ClaimOutcome, FireLedger, FireOutcome, MemoryFireLedger, NodeId, PersistError, SkewCheck,
};
use cano_core::scheduler::FireId;
use futures::executor::block_on;
use jiff::Timestamp;

const START: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z, µs
const HOUR: i64 = 3_600_000_000;
const STEP: i64 = 100_000; // the simulation advances 100 ms at a time
const LEASE: Duration = Duration::from_secs(30);

struct Node {
    id: NodeId,
    ledger: MemoryFireLedger,
    skew: i64,
    next_fire: i64,
    estimate: Option<SkewCheck>,
    suspended: Option<(i64, i64)>,
}

fn ts(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap()
}

#[test]
fn three_skewed_nodes_claim_every_fire_once_and_never_early() {
    let store = MemoryFireLedger::new_at(ts(START));
    let mut nodes: Vec<Node> = [("fast", 2_000_000), ("exact", 0), ("slow", -2_000_000)]
        .into_iter()
        .map(|(name, skew)| Node {
            id: NodeId::new(name),
            ledger: store.view(),
            skew,
            next_fire: START + 1_000_000,
            estimate: None,
            suspended: None,
        })
        .collect();
    nodes[0].suspended = Some((START + 20 * 60_000_000, START + 30 * 60_000_000));
    let mut claims: BTreeMap<i64, Vec<(NodeId, u64)>> = BTreeMap::new();
    let mut lost_acks = 0;
    let mut held_early = 0u32;
    let mut now = START;
    while now < START + HOUR {
        // Node "exact" is partitioned from minute 40 to 45; "fast", which wins most claims,
        // loses an acknowledgement every 97 s.
        nodes[1]
            .ledger
            .faults()
            .partition((START + 40 * 60_000_000..START + 45 * 60_000_000).contains(&now));
        if (now - START) % 97_000_000 == 0 {
            nodes[0].ledger.faults().lose_acks(1);
        }
        for node in &mut nodes {
            if node
                .suspended
                .is_some_and(|(from, to)| (from..to).contains(&now))
            {
                continue;
            }
            let local = now + node.skew;
            // A node that never measured its skew asks once (any call answers with the
            // store's time).
            if node.estimate.is_none() {
                let reply = block_on(node.ledger.flow("tick")).unwrap();
                node.estimate = Some(SkewCheck::measure(ts(local), reply.store_now, ts(local)));
            }
            while node.next_fire <= local && node.next_fire < START + HOUR {
                let fire = node.next_fire;
                if node
                    .estimate
                    .unwrap()
                    .early_by(ts(fire), ts(local))
                    .is_some()
                {
                    held_early += 1;
                    break; // due by our clock, early by the store's: wait
                }
                let id = FireId::new("tick", ts(fire));
                match block_on(node.ledger.claim(&id, &node.id, LEASE)) {
                    Ok(answer) => {
                        node.estimate =
                            Some(SkewCheck::measure(ts(local), answer.store_now, ts(local)));
                        if let ClaimOutcome::Claimed(claim) = answer.value {
                            assert!(
                                answer.store_now >= ts(fire),
                                "{} claimed {id} early by the store's clock",
                                node.id
                            );
                            let holders = claims.entry(fire).or_default();
                            if !holders.contains(&(node.id.clone(), claim.fence.0)) {
                                holders.push((node.id.clone(), claim.fence.0));
                            }
                            block_on(node.ledger.complete(
                                &id,
                                claim.fence,
                                FireOutcome::Succeeded,
                            ))
                            .unwrap();
                        }
                        node.next_fire += 1_000_000;
                    }
                    Err(PersistError::Unavailable(_)) => {
                        lost_acks += 1;
                        break; // retry this fire at the next step
                    }
                    Err(e) => panic!("{}: {e}", node.id),
                }
            }
        }
        store.advance(Duration::from_micros(STEP as u64));
        now += STEP;
    }
    let fires = (START + 1_000_000..START + HOUR).step_by(1_000_000).count();
    assert_eq!(claims.len(), fires, "every fire of the hour was claimed");
    for (fire, holders) in &claims {
        assert_eq!(holders.len(), 1, "{}: claimed by {holders:?}", ts(*fire));
    }
    // The fast node's fires were all held until the store's clock reached them, the
    // partitioned and the suspended node were covered by the others, and the faults bit.
    assert!(held_early > 1000, "the fast node held fires: {held_early}");
    assert!(lost_acks > 10, "faults were injected: {lost_acks}");
    let by_node = |name: &str| claims.values().filter(|h| h[0].0.as_str() == name).count();
    assert!(
        by_node("fast") > 0 && by_node("exact") > 0,
        "{:?}",
        (by_node("fast"), by_node("exact"), by_node("slow"))
    );
    let ledger_rows = store.records();
    assert_eq!(ledger_rows.len(), fires);
}
