//! The schedule store of cano-redb: the generic contract suite, state across close and
//! reopen, damaged records, and a file made before the schedule table existed.
//!
//! The fire ledger is not implemented on redb (a single process has no fleet to claim
//! against); the fixture pairs the redb schedule store with the in-memory ledger and only
//! the schedule-store suite runs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cano_core::checkpoint::{CheckpointRow, CheckpointStore, RunId, RunLog};
use cano_core::persist::{
    Fence, FlowRecord, MemoryFireLedger, PersistError, ScheduleHash, ScheduleStore,
};
use cano_redb::RedbStore;
use cano_tests::persist_conformance::{Boxed, StoreFixture, run_schedule_store_suite};
use futures::executor::block_on;
use jiff::Timestamp;
use redb::{ReadableDatabase, TableDefinition};

/// The table the store keeps schedule records in (its documented layout).
const SCHEDULE_FLOWS: TableDefinition<'static, &str, (u64, &[u8])> =
    TableDefinition::new("cano_schedule_flows");

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cano-persist-redb-{}-{name}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
    fn file(&self) -> PathBuf {
        self.0.join("store.redb")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Redb {
    _dir: Scratch,
    ledger: MemoryFireLedger,
    schedule: RedbStore,
}

impl StoreFixture for Redb {
    type Ledger = MemoryFireLedger;
    type Schedule = RedbStore;

    fn ledger(&self) -> &MemoryFireLedger {
        &self.ledger
    }
    fn schedule(&self) -> &RedbStore {
        &self.schedule
    }
    fn handles(&self, n: usize) -> Boxed<'_, Vec<(MemoryFireLedger, RedbStore)>> {
        // redb admits one open per file and process: handles are clones sharing the file
        // and its group committer, which is how concurrent writers of one process meet.
        Box::pin(async move {
            (0..n)
                .map(|_| (self.ledger.view(), self.schedule.clone()))
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

async fn redb() -> Redb {
    let dir = Scratch::new("suite");
    let schedule = RedbStore::open(dir.file()).await.expect("open");
    Redb {
        _dir: dir,
        ledger: MemoryFireLedger::new_at("2026-06-01T00:00:00Z".parse().unwrap()),
        schedule,
    }
}

#[test]
fn redb_schedule_store_conforms() {
    block_on(run_schedule_store_suite(redb));
}

fn record(seed: u32) -> FlowRecord {
    let mut r = FlowRecord::new(ScheduleHash(u64::from(seed) * 31 + 1));
    r.last_fire =
        Some(Timestamp::from_microsecond(1_780_000_000_000_000 + i64::from(seed)).unwrap());
    r.streak = seed;
    r.paused = seed % 2 == 1;
    r.tripped = seed % 3 == 2;
    r.last_error = seed
        .is_multiple_of(2)
        .then(|| format!("failure {seed}").into());
    r
}

fn sorted(mut flows: Vec<cano_core::persist::StoredFlow>) -> Vec<(String, FlowRecord, Fence)> {
    flows.sort_by(|a, b| a.flow.cmp(&b.flow));
    flows
        .into_iter()
        .map(|f| (f.flow.to_string(), f.record, f.fence))
        .collect()
}

#[test]
fn records_and_fences_survive_close_and_reopen() {
    let dir = Scratch::new("reopen");
    block_on(async {
        let store = RedbStore::open(dir.file()).await.unwrap();
        for i in 0..20u32 {
            store
                .save(&format!("flow-{i:02}"), &record(i), Fence(u64::from(i)))
                .await
                .unwrap();
        }
        store.save("flow-03", &record(99), Fence(3)).await.unwrap();
        store.delete("flow-07", Fence(7)).await.unwrap();
        let before = sorted(store.load_all().await.unwrap());
        assert_eq!(before.len(), 19);
        drop(store);

        let store = RedbStore::open(dir.file()).await.unwrap();
        let after = sorted(store.load_all().await.unwrap());
        assert_eq!(after, before);
        let three = after.iter().find(|f| f.0 == "flow-03").unwrap();
        assert_eq!(three.1, record(99));
        assert!(after.iter().all(|f| f.0 != "flow-07"));
        // The fences came back too: a writer below them is still refused.
        assert_eq!(
            store.save("flow-12", &record(0), Fence(11)).await,
            Err(PersistError::Fenced { current: Fence(12) })
        );
        assert_eq!(
            store.delete("flow-12", Fence(11)).await,
            Err(PersistError::Fenced { current: Fence(12) })
        );
        // A deleted flow's fence went with it.
        store
            .save("flow-07", &record(1), Fence::ZERO)
            .await
            .unwrap();
    });
}

#[test]
fn schedule_records_and_checkpoints_share_the_file() {
    let dir = Scratch::new("shared");
    block_on(async {
        let store = RedbStore::open(dir.file()).await.unwrap();
        let run = RunId::new("run-1");
        let fence = store
            .start(&run, &CheckpointRow::state_entry(0, "a".into(), 1))
            .await
            .unwrap();
        store.save("flow", &record(4), Fence(2)).await.unwrap();
        store
            .append(&run, fence, &CheckpointRow::state_entry(1, "b".into(), 1))
            .await
            .unwrap();
        drop(store);
        let store = RedbStore::open(dir.file()).await.unwrap();
        assert_eq!(
            store.list_unfinished().await.unwrap(),
            std::slice::from_ref(&run)
        );
        let RunLog::Unfinished(rows) = store.load(&run).await.unwrap() else {
            panic!("the run is unfinished")
        };
        assert_eq!(rows.len(), 2);
        let flows = store.load_all().await.unwrap();
        assert_eq!(flows.len(), 1);
        assert_eq!(flows[0].record, record(4));
    });
}

#[test]
fn concurrent_saves_share_commits() {
    let dir = Scratch::new("batch");
    block_on(async {
        let store = RedbStore::open(dir.file()).await.unwrap();
        let before = store.commit_stats();
        let saves = (0..64u32).map(|i| {
            let store = store.clone();
            async move {
                store
                    .save(&format!("f{i}"), &record(i), Fence::ZERO)
                    .await
                    .unwrap()
            }
        });
        futures::future::join_all(saves).await;
        let stats = store.commit_stats();
        assert_eq!(stats.writes - before.writes, 64);
        assert!(
            stats.transactions - before.transactions < 64,
            "64 concurrent saves took {} commits",
            stats.transactions - before.transactions
        );
        assert_eq!(store.load_all().await.unwrap().len(), 64);
    });
}

/// Puts `bytes` as `flow`'s record with `fence`, behind the store's back.
fn put_raw(path: &Path, flow: &str, fence: u64, bytes: &[u8]) {
    let db = redb::Database::open(path).expect("open raw");
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(SCHEDULE_FLOWS).unwrap();
        table.insert(flow, (fence, bytes)).unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn a_damaged_record_is_corrupt_and_can_be_overwritten() {
    let dir = Scratch::new("corrupt");
    let good = record(5).encode();
    // Every truncation of a valid record, a wrong format byte and trailing bytes: the
    // class of damage a torn or foreign write leaves.
    let mut damaged: Vec<Vec<u8>> = (0..good.len()).map(|cut| good[..cut].to_vec()).collect();
    let mut wrong_format = good.clone();
    wrong_format[0] = 0xff;
    damaged.push(wrong_format);
    let mut trailing = good.clone();
    trailing.push(0);
    damaged.push(trailing);

    block_on(async {
        drop(RedbStore::open(dir.file()).await.unwrap());
        for bytes in &damaged {
            put_raw(&dir.file(), "hurt", 9, bytes);
            let store = RedbStore::open(dir.file()).await.unwrap();
            match store.load_all().await {
                Err(PersistError::Corrupt(detail)) => {
                    assert!(detail.contains("`hurt`"), "names the flow: {detail}")
                }
                other => panic!("{bytes:?} loaded as {other:?}"),
            }
            // The fence is still enforced over a damaged record ...
            assert_eq!(
                store.save("hurt", &record(1), Fence(8)).await,
                Err(PersistError::Fenced { current: Fence(9) })
            );
            // ... and its holder can replace it.
            store.save("hurt", &record(1), Fence(9)).await.unwrap();
            let flows = store.load_all().await.unwrap();
            assert_eq!(flows.len(), 1);
            assert_eq!(flows[0].record, record(1));
            drop(store);
        }
    });
}

#[test]
fn a_file_made_before_the_schedule_table_gets_it_on_open() {
    let dir = Scratch::new("older");
    block_on(async {
        let store = RedbStore::open(dir.file()).await.unwrap();
        let run = RunId::new("old-run");
        store
            .start(&run, &CheckpointRow::state_entry(0, "a".into(), 1))
            .await
            .unwrap();
        drop(store);
        // What an older build's file looks like: the checkpoint tables, no schedule table.
        {
            let db = redb::Database::open(dir.file()).unwrap();
            let txn = db.begin_write().unwrap();
            assert!(txn.delete_table(SCHEDULE_FLOWS).unwrap());
            txn.commit().unwrap();
            let read = db.begin_read().unwrap();
            assert!(read.open_table(SCHEDULE_FLOWS).is_err());
        }
        let store = RedbStore::open(dir.file()).await.unwrap();
        assert!(store.load_all().await.unwrap().is_empty());
        store.save("new", &record(2), Fence::ZERO).await.unwrap();
        assert_eq!(store.list_unfinished().await.unwrap(), [run]);
        assert_eq!(store.load_all().await.unwrap()[0].record, record(2));
    });
}
