//! cano-redb against cano-core's checkpoint store contract, plus what only a file store has:
//! reopening, group commit, damaged rows, other executors.

mod support;

use cano_core::checkpoint::{
    CheckpointError, CheckpointRow, CheckpointStore, DynCheckpointStore, Fence, RunId, RunLog,
    RunOutcome, check_store_contract,
};
use cano_redb::{Durability, RedbStore};
use futures::executor::block_on;
use futures::future::join_all;
use std::sync::Arc;
use support::TempDir;

fn entry(sequence: u64, state: &'static str) -> CheckpointRow {
    CheckpointRow::state_entry(sequence, state.into(), 1)
}

fn open(path: &std::path::Path) -> RedbStore {
    block_on(RedbStore::open(path)).expect("open the store")
}

#[test]
fn passes_the_store_contract() {
    let dir = TempDir::new("contract");
    let store = open(&dir.file("store.redb"));
    block_on(check_store_contract(&store));
    // And with tombstones kept.
    let kept = block_on(
        RedbStore::builder()
            .tombstones(4)
            .open(dir.file("kept.redb")),
    )
    .unwrap();
    block_on(check_store_contract(&kept));
}

#[test]
fn passes_the_store_contract_without_fsync() {
    let dir = TempDir::new("contract-none");
    let store = block_on(
        RedbStore::builder()
            .durability(Durability::None)
            .open(dir.file("store.redb")),
    )
    .unwrap();
    block_on(check_store_contract(&store));
}

#[test]
fn passes_the_store_contract_as_a_dyn_store() {
    let dir = TempDir::new("contract-dyn");
    let store: Arc<dyn DynCheckpointStore> = Arc::new(open(&dir.file("store.redb")));
    block_on(check_store_contract(&store));
}

#[test]
fn logs_and_fences_survive_reopening() {
    let dir = TempDir::new("reopen");
    let path = dir.file("store.redb");
    let run = RunId::new("order-1");
    let (fence, last) = {
        let store = open(&path);
        let fence = block_on(store.start(&run, &entry(0, "reserve"))).unwrap();
        block_on(store.append(&run, fence, &entry(1, "charge"))).unwrap();
        let last = block_on(store.last_fence()).unwrap();
        (fence, last)
    };
    assert_eq!(last, fence.0);
    let store = open(&path);
    assert_eq!(
        block_on(store.load(&run)).unwrap(),
        RunLog::Unfinished(vec![entry(0, "reserve"), entry(1, "charge")])
    );
    assert_eq!(
        block_on(store.list_unfinished()).unwrap(),
        vec![run.clone()]
    );
    // The old process's fence is still the run's until someone resumes it...
    block_on(store.append(&run, fence, &entry(2, "ship"))).unwrap();
    // ...and a resume after reopening issues a larger fence than any before it.
    let takeover = block_on(store.resume(&run)).unwrap();
    assert!(takeover > fence);
    assert!(matches!(
        block_on(store.append(&run, fence, &entry(3, "late"))),
        Err(CheckpointError::Fenced { current: Some(c), .. }) if c == takeover
    ));
    block_on(store.finish(&run, takeover, RunOutcome::Completed)).unwrap();
    drop(store);
    let store = open(&path);
    assert_eq!(block_on(store.load(&run)).unwrap(), RunLog::Unknown);
    assert!(block_on(store.list_unfinished()).unwrap().is_empty());
    let again = block_on(store.start(&run, &entry(0, "reserve"))).unwrap();
    assert!(again > takeover, "fences keep growing across reopening");
}

#[test]
fn tombstones_are_bounded_oldest_first_and_survive_reopening() {
    let dir = TempDir::new("tombstones");
    let path = dir.file("store.redb");
    let ids: Vec<RunId> = (0..5).map(|i| RunId::new(format!("run-{i}"))).collect();
    {
        let store = block_on(RedbStore::builder().tombstones(3).open(&path)).unwrap();
        for (i, run) in ids.iter().enumerate() {
            let fence = block_on(store.start(run, &entry(0, "a"))).unwrap();
            let outcome = if i % 2 == 0 {
                RunOutcome::Completed
            } else {
                RunOutcome::RolledBack
            };
            block_on(store.finish(run, fence, outcome)).unwrap();
        }
        let logs: Vec<RunLog> = ids
            .iter()
            .map(|r| block_on(store.load(r)).unwrap())
            .collect();
        assert_eq!(
            logs,
            [
                RunLog::Unknown,
                RunLog::Unknown,
                RunLog::Finished(RunOutcome::Completed),
                RunLog::Finished(RunOutcome::RolledBack),
                RunLog::Finished(RunOutcome::Completed),
            ]
        );
        // Restarting a tombstoned run forgets its tombstone.
        let fence = block_on(store.start(&ids[2], &entry(0, "a"))).unwrap();
        assert!(matches!(
            block_on(store.load(&ids[2])).unwrap(),
            RunLog::Unfinished(_)
        ));
        block_on(store.finish(&ids[2], fence, RunOutcome::Abandoned)).unwrap();
        assert_eq!(
            block_on(store.load(&ids[2])).unwrap(),
            RunLog::Finished(RunOutcome::Abandoned)
        );
    }
    // Reopened with a smaller capacity: the next finish forgets down to it.
    let store = block_on(RedbStore::builder().tombstones(1).open(&path)).unwrap();
    assert_eq!(
        block_on(store.load(&ids[3])).unwrap(),
        RunLog::Finished(RunOutcome::RolledBack)
    );
    let extra = RunId::new("extra");
    let fence = block_on(store.start(&extra, &entry(0, "a"))).unwrap();
    block_on(store.finish(&extra, fence, RunOutcome::Completed)).unwrap();
    let finished: Vec<&RunId> = ids
        .iter()
        .chain([&extra])
        .filter(|r| matches!(block_on(store.load(r)).unwrap(), RunLog::Finished(_)))
        .collect();
    assert_eq!(finished, [&extra]);
}

/// Many concurrent writers share few transactions, and each gets its own answer: a
/// conflicting or fenced write in a batch does not fail the valid ones beside it.
#[test]
fn group_commit_answers_each_write_on_its_own() {
    let dir = TempDir::new("group");
    let store = open(&dir.file("store.redb"));
    const RUNS: usize = 300;
    let ids: Vec<RunId> = (0..RUNS)
        .map(|i| RunId::new(format!("run-{i:04}")))
        .collect();
    let row0 = entry(0, "a");
    let fences: Vec<Fence> = block_on(join_all(ids.iter().map(|r| store.start(r, &row0))))
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("every start succeeds");
    let before = store.commit_stats();

    // Per run, in one burst: a valid append, a duplicate of it, a zombie's write, a gap.
    let one = entry(1, "b");
    let gap = entry(5, "z");
    let zombie = Fence(0);
    let writes = ids.iter().zip(&fences).flat_map(|(run, &fence)| {
        [
            store.append(run, fence, &one),
            store.append(run, fence, &one),
            store.append(run, zombie, &one),
            store.append(run, fence, &gap),
        ]
    });
    let answers = block_on(join_all(writes));
    for (i, chunk) in answers.chunks(4).enumerate() {
        assert_eq!(chunk[0], Ok(()), "run {i}: the valid append commits");
        assert!(
            matches!(chunk[1], Err(CheckpointError::Conflict { .. })),
            "run {i}: the duplicate conflicts: {:?}",
            chunk[1]
        );
        assert!(
            matches!(chunk[2], Err(CheckpointError::Fenced { current: Some(c), .. }) if c == fences[i]),
            "run {i}: the zombie is fenced: {:?}",
            chunk[2]
        );
        assert!(
            matches!(chunk[3], Err(CheckpointError::Conflict { .. })),
            "run {i}: the gap conflicts: {:?}",
            chunk[3]
        );
    }
    for run in &ids {
        assert_eq!(
            block_on(store.load(run)).unwrap(),
            RunLog::Unfinished(vec![entry(0, "a"), entry(1, "b")])
        );
    }
    let after = store.commit_stats();
    let transactions = after.transactions - before.transactions;
    let writes = after.writes - before.writes;
    assert_eq!(writes, 4 * RUNS as u64);
    assert!(
        transactions * 10 < writes,
        "{writes} concurrent writes took {transactions} transactions: not batched"
    );
    assert!(after.largest_batch > 10);
}

/// A row whose bytes are damaged is a `Corrupt` error on load, not a panic.
#[test]
fn damaged_rows_load_as_corrupt() {
    use redb::TableDefinition;
    let dir = TempDir::new("damaged");
    let path = dir.file("store.redb");
    let run = RunId::new("r");
    let gap = RunId::new("gap");
    {
        let store = open(&path);
        let fence = block_on(store.start(&run, &entry(0, "a"))).unwrap();
        block_on(store.append(&run, fence, &entry(1, "b"))).unwrap();
        let fence = block_on(store.start(&gap, &entry(0, "a"))).unwrap();
        block_on(store.append(&gap, fence, &entry(1, "b"))).unwrap();
    }
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut rows = txn
                .open_table(TableDefinition::<(&str, u64), &[u8]>::new(
                    "cano_checkpoint_rows",
                ))
                .unwrap();
            rows.insert(("r", 1), [200u8, 1, 2].as_slice()).unwrap();
            rows.remove(("gap", 0)).unwrap();
        }
        txn.commit().unwrap();
    }
    let store = open(&path);
    for id in [&run, &gap] {
        match block_on(store.load(id)) {
            Err(CheckpointError::Corrupt(detail)) => assert!(!detail.is_empty()),
            other => panic!("{id}: expected Corrupt, got {other:?}"),
        }
    }
}

#[test]
fn works_on_tokio_and_smol() {
    let dir = TempDir::new("runtimes");
    let run = RunId::new("r");
    let tokio_path = dir.file("tokio.redb");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = RedbStore::open(&tokio_path).await.unwrap();
        let fence = store.start(&run, &entry(0, "a")).await.unwrap();
        store.append(&run, fence, &entry(1, "b")).await.unwrap();
        assert!(
            matches!(store.load(&run).await.unwrap(), RunLog::Unfinished(rows) if rows.len() == 2)
        );
    });
    let smol_path = dir.file("smol.redb");
    let executor = async_executor::Executor::new();
    futures_lite::future::block_on(executor.run(async {
        let store = RedbStore::open(&smol_path).await.unwrap();
        let fence = store.start(&run, &entry(0, "a")).await.unwrap();
        store
            .finish(&run, fence, RunOutcome::Completed)
            .await
            .unwrap();
        assert_eq!(store.load(&run).await.unwrap(), RunLog::Unknown);
    }));
}

/// A caller that stops waiting (its future dropped mid-write) harms nobody: the others in
/// its batch get their answers, and its own write, once queued, is committed anyway.
#[test]
fn a_dropped_write_does_not_disturb_its_batch() {
    let dir = TempDir::new("dropped");
    let store = open(&dir.file("store.redb"));
    let ids: Vec<RunId> = (0..40).map(|i| RunId::new(format!("run-{i:02}"))).collect();
    let row0 = entry(0, "a");
    let fences: Vec<Fence> = block_on(join_all(ids.iter().map(|r| store.start(r, &row0))))
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    let one = entry(1, "b");
    block_on(async {
        let mut writes: Vec<_> = ids
            .iter()
            .zip(&fences)
            .map(|(run, &fence)| Box::pin(store.append(run, fence, &one)))
            .collect();
        // Every write is queued by its first poll; then half the callers give up.
        for write in &mut writes {
            let _ = futures::FutureExt::now_or_never(write.as_mut());
        }
        let kept: Vec<_> = writes
            .into_iter()
            .enumerate()
            .filter_map(|(i, w)| (i % 2 == 1).then_some(w))
            .collect();
        for answer in join_all(kept).await {
            assert_eq!(answer, Ok(()));
        }
    });
    for (i, run) in ids.iter().enumerate() {
        let RunLog::Unfinished(rows) = block_on(store.load(run)).unwrap() else {
            panic!("{run} is unfinished");
        };
        // A dropped write was already queued by its first poll, so it commits too.
        let awaited = i % 2 == 1;
        assert_eq!(
            rows.len(),
            2,
            "{run} (awaited: {awaited}): the write committed"
        );
    }
}
