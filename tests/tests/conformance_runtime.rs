//! The runtime contract itself, run on every harness: sleeping to deadlines in order and
//! spawning concurrent work behave the same everywhere.

use std::sync::{Arc, Mutex};

use cano_core::{Clock, Spawner};
use cano_tests::conformance;
use cano_tests::harness::Harness;
use futures::channel::oneshot;

/// Three spawned sleepers with deadlines out of order wake in deadline order, each at or
/// after its deadline (exactly at it on virtual time).
fn sleepers_wake_in_deadline_order<H: Harness>() {
    let woke = H::run(|clock, spawner| async move {
        let log = Arc::new(Mutex::new(Vec::new()));
        let start = clock.now();
        let mut done = Vec::new();
        for units in [5u32, 1, 3] {
            let (clock, log) = (clock.clone(), log.clone());
            let (tx, rx) = oneshot::channel();
            done.push(rx);
            spawner
                .spawn(Box::pin(async move {
                    let deadline = start + H::UNIT * units;
                    clock.sleep_until(deadline).await;
                    let late = clock.now() - deadline;
                    assert!(clock.now() >= deadline);
                    log.lock().unwrap().push((units, late));
                    tx.send(()).unwrap();
                }))
                .unwrap();
        }
        for rx in done {
            rx.await.unwrap();
        }
        log.lock().unwrap().clone()
    });
    let order: Vec<u32> = woke.iter().map(|w| w.0).collect();
    assert_eq!(order, [1, 3, 5], "{}", H::NAME);
    if H::VIRTUAL_TIME {
        assert!(woke.iter().all(|w| w.1.is_zero()), "{}: {woke:?}", H::NAME);
    }
}

conformance!(sleepers_wake_in_deadline_order);
