//! [`check_store_contract`]: the checks every [`CheckpointStore`] must pass (feature
//! `testing`), so a store crate tests itself against the same rules as the memory store.

use alloc::borrow::Cow;
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::{
    CheckpointError, CheckpointRow, CheckpointStore, RowKind, RunId, RunLog, RunOutcome,
    decode_row, encode_row,
};

fn entry(sequence: u64, state: &'static str) -> CheckpointRow {
    CheckpointRow::state_entry(sequence, Cow::Borrowed(state), 3)
}

/// Runs the contract checks against `store`, which must be empty of runs whose id starts
/// with `cano-contract/`. Panics with a message naming the broken rule.
///
/// Checked: start creates a log at sequence 0 and refuses a second live start; appends only
/// at last + 1 (duplicates, stale and gapped sequences are `Conflict` and change nothing);
/// resume issues a larger fence and fences out the previous holder (append and finish);
/// fences grow across runs and restarts of one id; load returns rows in order with every
/// field intact (blobs, kinds, versions); finish drops the rows (a later append is
/// `Fenced`); resume of an unknown run is `NotFound`; list_unfinished is sorted and lists
/// exactly the unfinished runs; the row codec round-trips.
///
/// ```
/// use cano_core::checkpoint::{MemoryCheckpointStore, check_store_contract};
/// futures::executor::block_on(check_store_contract(&MemoryCheckpointStore::new()));
/// ```
pub async fn check_store_contract<S: CheckpointStore>(store: &S) {
    let a = RunId::new("cano-contract/a");
    let b = RunId::new("cano-contract/b");
    let unknown = RunId::new("cano-contract/never-started");

    assert_eq!(
        store.load(&unknown).await.unwrap(),
        RunLog::Unknown,
        "unknown run loads as Unknown"
    );
    assert!(
        matches!(
            store.resume(&unknown).await,
            Err(CheckpointError::NotFound { .. })
        ),
        "resume of an unknown run is NotFound"
    );
    assert!(
        matches!(
            store.start(&a, &entry(1, "x")).await,
            Err(CheckpointError::Conflict { .. })
        ),
        "a log starts at sequence 0"
    );

    let fence_a = store.start(&a, &entry(0, "first")).await.unwrap();
    assert!(
        matches!(
            store.start(&a, &entry(0, "first")).await,
            Err(CheckpointError::Conflict { .. })
        ),
        "a second live start of one run is a Conflict"
    );
    let fence_b = store.start(&b, &entry(0, "first")).await.unwrap();
    assert!(fence_b > fence_a, "fences grow across runs");

    let completion =
        CheckpointRow::completion(1, "charge".into(), "Charge".into(), 3, vec![1, 2, 3]);
    store.append(&a, fence_a, &completion).await.unwrap();
    for bad in [0, 1, 3] {
        let row = entry(bad, "bad");
        assert!(
            matches!(
                store.append(&a, fence_a, &row).await,
                Err(CheckpointError::Conflict { .. })
            ),
            "append of sequence {bad} after 1 is a Conflict"
        );
    }
    let done = CheckpointRow {
        sequence: 2,
        kind: RowKind::CompensationDone { completion: 1 },
        state: "charge".into(),
        task: "Charge".into(),
        workflow_version: 3,
        blob: None,
    };
    store.append(&a, fence_a, &done).await.unwrap();
    let expected = vec![entry(0, "first"), completion.clone(), done.clone()];
    assert_eq!(
        store.load(&a).await.unwrap(),
        RunLog::Unfinished(expected.clone()),
        "load returns every row, in order, intact; failed appends changed nothing"
    );

    let takeover = store.resume(&a).await.unwrap();
    assert!(
        takeover > fence_b,
        "resume issues a fence larger than every earlier one"
    );
    assert!(
        matches!(
            store.append(&a, fence_a, &entry(3, "zombie")).await,
            Err(CheckpointError::Fenced { current: Some(current), .. }) if current == takeover
        ),
        "the previous holder is fenced out of append, and told the current fence"
    );
    assert!(
        matches!(
            store.finish(&a, fence_a, RunOutcome::Completed).await,
            Err(CheckpointError::Fenced { .. })
        ),
        "the previous holder is fenced out of finish"
    );
    store.append(&a, takeover, &entry(3, "next")).await.unwrap();

    let listed: Vec<RunId> = store
        .list_unfinished()
        .await
        .unwrap()
        .into_iter()
        .filter(|run| run.as_str().starts_with("cano-contract/"))
        .collect();
    assert_eq!(
        listed,
        vec![a.clone(), b.clone()],
        "list_unfinished lists unfinished runs, sorted"
    );

    store
        .finish(&a, takeover, RunOutcome::Completed)
        .await
        .unwrap();
    assert!(
        matches!(
            store.load(&a).await.unwrap(),
            RunLog::Unknown | RunLog::Finished(RunOutcome::Completed)
        ),
        "a finished run has no rows"
    );
    assert!(
        matches!(
            store.append(&a, takeover, &entry(4, "late")).await,
            Err(CheckpointError::Fenced { current: None, .. })
        ),
        "a write to a finished run is Fenced"
    );
    assert!(
        matches!(
            store.resume(&a).await,
            Err(CheckpointError::NotFound { .. })
        ),
        "a finished run cannot be resumed"
    );
    let again = store.start(&a, &entry(0, "again")).await.unwrap();
    assert!(
        again > takeover,
        "restarting a finished id issues a larger fence"
    );
    assert!(
        matches!(
            store.append(&a, takeover, &entry(1, "old")).await,
            Err(CheckpointError::Fenced { .. })
        ),
        "a fence of the finished run does not write the restarted one"
    );

    let listed: Vec<RunId> = store
        .list_unfinished()
        .await
        .unwrap()
        .into_iter()
        .filter(|run| run.as_str().starts_with("cano-contract/"))
        .collect();
    assert_eq!(
        listed,
        vec![a.clone(), b.clone()],
        "a restarted run is unfinished again"
    );
    store
        .finish(&a, again, RunOutcome::Abandoned)
        .await
        .unwrap();
    store
        .finish(&b, fence_b, RunOutcome::RolledBack)
        .await
        .unwrap();

    for row in expected.iter().chain([&entry(9, "")]) {
        assert_eq!(
            decode_row(&encode_row(row)).as_ref(),
            Ok(row),
            "rows round-trip the codec"
        );
    }
    let _ = format!("{:?}", store.list_unfinished().await);
}
