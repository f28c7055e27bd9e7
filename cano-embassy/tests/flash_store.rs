//! The flash schedule store on sequential-storage's mock flash: the contract's rules, and
//! power loss at every byte offset of a write (old record or new one after reopening, never
//! garbage, and the store keeps working).
#![cfg(feature = "flash-store")]

use std::future::Future;
use std::pin::pin;

use cano_core::jiff::Timestamp;
use cano_core::persist::{Fence, FlowRecord, PersistError, ScheduleHash, ScheduleStore};
use cano_embassy::flash_store::{FlashScheduleStore, FlashWorker};
use futures::executor::block_on;
use futures::future::{Either, select};
use sequential_storage::mock_flash::{MockFlashBase, WriteCountCheck};

/// 4 pages of 1 KiB, 4-byte words.
type Flash = MockFlashBase<4, 4, 256>;

const FLOWS: &[&str] = &["blink", "report", "sync"];

fn open(flash: Flash) -> (FlashScheduleStore, FlashWorker<Flash>) {
    FlashScheduleStore::new(flash, Flash::FULL_FLASH_RANGE, FLOWS).expect("a valid store")
}

/// Runs `calls` while the worker serves them.
fn drive<T>(worker: &mut FlashWorker<Flash>, calls: impl Future<Output = T>) -> T {
    block_on(async {
        let calls = pin!(calls);
        let serve = pin!(worker.run());
        match select(calls, serve).await {
            Either::Left((value, _)) => value,
            Either::Right((never, _)) => match never {},
        }
    })
}

fn record(seed: u32) -> FlowRecord {
    let mut r = FlowRecord::new(ScheduleHash(u64::from(seed) + 100));
    r.last_fire = Some(Timestamp::from_second(1_780_000_000 + i64::from(seed)).unwrap());
    r.streak = seed;
    r.paused = seed % 2 == 1;
    r.last_error = Some(format!("error {seed}").into());
    r
}

fn loaded(
    store: &FlashScheduleStore,
    worker: &mut FlashWorker<Flash>,
) -> Vec<(String, FlowRecord, Fence)> {
    let mut all: Vec<_> = drive(worker, store.load_all())
        .expect("load")
        .into_iter()
        .map(|f| (f.flow.to_string(), f.record, f.fence))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

#[test]
fn records_fences_and_deletes_follow_the_contract() {
    let (store, mut worker) = open(Flash::new(WriteCountCheck::Twice, None, false));
    drive(&mut worker, async {
        assert!(store.load_all().await.unwrap().is_empty());
        store.save("blink", &record(1), Fence(5)).await.unwrap();
        store.save("report", &record(2), Fence::ZERO).await.unwrap();
        assert_eq!(
            store.save("blink", &record(3), Fence(4)).await,
            Err(PersistError::Fenced { current: Fence(5) })
        );
        assert_eq!(
            store.delete("blink", Fence(4)).await,
            Err(PersistError::Fenced { current: Fence(5) })
        );
        store.save("blink", &record(3), Fence(5)).await.unwrap();
        store.delete("report", Fence::ZERO).await.unwrap();
        store.delete("sync", Fence::ZERO).await.unwrap();
        assert!(matches!(
            store.save("unknown", &record(1), Fence::ZERO).await,
            Err(PersistError::Invalid(_))
        ));
        assert!(matches!(
            store.save("", &record(1), Fence::ZERO).await,
            Err(PersistError::Invalid(_))
        ));
        let mut sub_micro = record(1);
        sub_micro.last_fire = Some(Timestamp::new(5, 500).unwrap());
        assert!(matches!(
            store.save("sync", &sub_micro, Fence::ZERO).await,
            Err(PersistError::Invalid(_))
        ));
    });
    // Reopen: the state survived.
    let (store, mut worker) = open(worker.into_flash());
    assert_eq!(
        loaded(&store, &mut worker),
        [("blink".to_owned(), record(3), Fence(5))]
    );
    // A deleted flow's fence went with it.
    drive(&mut worker, store.save("report", &record(4), Fence::ZERO)).unwrap();
}

#[test]
fn a_long_error_text_is_shortened_to_fit() {
    let (store, mut worker) = open(Flash::new(WriteCountCheck::Twice, None, false));
    let mut long = record(1);
    long.last_error = Some("é".repeat(400).into());
    drive(&mut worker, store.save("sync", &long, Fence::ZERO)).unwrap();
    let all = loaded(&store, &mut worker);
    let kept = all[0].1.last_error.as_deref().unwrap();
    assert!(!kept.is_empty() && kept.len() < 400 && kept.chars().all(|c| c == 'é'));
}

#[test]
fn many_saves_wrap_the_pages() {
    // Far more writes than the four pages hold: the map erases and migrates as it goes.
    let (store, mut worker) = open(Flash::new(WriteCountCheck::Twice, None, false));
    drive(&mut worker, async {
        for i in 0..500u32 {
            let flow = FLOWS[i as usize % FLOWS.len()];
            store
                .save(flow, &record(i), Fence(u64::from(i)))
                .await
                .unwrap();
        }
    });
    let (store, mut worker) = open(worker.into_flash());
    let all = loaded(&store, &mut worker);
    assert_eq!(all.len(), 3);
    for (flow, rec, fence) in all {
        let last = (0..500u32)
            .rev()
            .find(|i| FLOWS[*i as usize % FLOWS.len()] == flow)
            .unwrap();
        assert_eq!((rec, fence), (record(last), Fence(u64::from(last))));
    }
}

/// Saves `prefill` records (so the cut write lands on a fresh page, mid-page, or on the
/// write that fills a page and makes the map erase and migrate), then cuts the power at
/// every byte of one more save of `report`.
fn power_loss_sweep(prefill: u32) -> u32 {
    let old = record(7);
    let new = record(8);
    let mut cut = 0u32;
    loop {
        let (store, mut worker) = open(Flash::new(WriteCountCheck::Twice, None, false));
        drive(&mut worker, async {
            for i in 0..prefill {
                store.save("blink", &record(i), Fence::ZERO).await.unwrap();
            }
            store.save("report", &old, Fence(1)).await.unwrap();
        });
        let mut flash = worker.into_flash();
        flash.bytes_until_shutoff = Some(cut);
        let (store, mut worker) = open(flash);
        let written = drive(&mut worker, store.save("report", &new, Fence(2)));
        let mut flash = worker.into_flash();
        flash.bytes_until_shutoff = None;

        let (store, mut worker) = open(flash);
        let all = drive(&mut worker, store.load_all())
            .unwrap_or_else(|e| panic!("prefill {prefill}, cut at byte {cut}: load failed: {e}"));
        let report = all
            .iter()
            .find(|f| &*f.flow == "report")
            .unwrap_or_else(|| panic!("prefill {prefill}, cut at byte {cut}: the record is gone"));
        match written {
            Ok(()) => assert_eq!((&report.record, report.fence), (&new, Fence(2))),
            Err(_) => assert!(
                (report.record == old && report.fence == Fence(1))
                    || (report.record == new && report.fence == Fence(2)),
                "prefill {prefill}, cut at byte {cut}: neither old nor new: {report:?}"
            ),
        }
        if prefill > 0 {
            let blink = all
                .iter()
                .find(|f| &*f.flow == "blink")
                .expect("blink kept");
            assert_eq!(blink.record, record(prefill - 1), "cut at {cut}");
        }
        // The store keeps working.
        drive(&mut worker, async {
            store.save("report", &record(9), Fence(3)).await.unwrap();
            store.save("sync", &record(10), Fence::ZERO).await.unwrap();
        });
        let after = loaded(&store, &mut worker);
        assert!(
            after.contains(&("report".to_owned(), record(9), Fence(3))),
            "cut at {cut}"
        );
        assert!(
            after.contains(&("sync".to_owned(), record(10), Fence::ZERO)),
            "cut at {cut}"
        );
        if written.is_ok() {
            // This cut came after the last byte: every earlier byte offset was swept.
            return cut;
        }
        cut += 1;
    }
}

#[test]
fn power_loss_at_every_byte_of_a_write_leaves_old_or_new() {
    // One item is about 60 bytes: prefill 14 fills most of a 1 KiB page, so one of the
    // sweeps below cuts the write that closes a page and opens the next.
    for prefill in [0, 1, 13, 14, 15, 16, 30, 45] {
        let bytes = power_loss_sweep(prefill);
        assert!(
            bytes > 16,
            "prefill {prefill}: the write took only {bytes} bytes"
        );
    }
}
