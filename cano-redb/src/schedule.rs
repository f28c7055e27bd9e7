//! The schedule store on redb: cano-core's [`ScheduleStore`] contract in the same file as
//! the checkpoints. Each save and delete is a job of the group committer (so the writes of
//! many flows firing at once share one commit), each load a read transaction on the
//! `blocking` pool.
//!
//! A flow's row in `cano_schedule_flows` is `(fence, record bytes)`: the fence in redb's
//! fixed-width `u64` encoding, the record as [`FlowRecord::encode`] makes it. The fence is
//! checked inside the write transaction, so a lower fence is refused even when writers
//! race.

use std::sync::Arc;

use cano_core::persist::{
    Fence, FlowRecord, PersistError, PersistResult, ScheduleStore, StoredFlow, check_flow_id,
    check_record,
};
use redb::{Database, ReadableDatabase, ReadableTable};

use crate::RedbStore;
use crate::commit::WriteJob;
use crate::error::{FailureKind, TransactionFailure};
use crate::layout::{SCHEDULE_FLOWS, WriteTables};

impl From<TransactionFailure> for PersistError {
    fn from(failure: TransactionFailure) -> Self {
        let message = failure.message.to_string();
        match failure.kind {
            FailureKind::Unavailable => PersistError::unavailable(message),
            FailureKind::Corrupt => PersistError::corrupt(message),
            FailureKind::Backend => PersistError::backend(message),
        }
    }
}

/// A save (`Some(record bytes)`) or a delete (`None`) of one flow's record.
struct WriteFlow {
    flow: String,
    fence: Fence,
    record: Option<Vec<u8>>,
}

impl WriteJob for WriteFlow {
    type Answer = PersistResult<()>;

    fn apply(&mut self, tables: &mut WriteTables<'_>) -> Result<Self::Answer, TransactionFailure> {
        let table = tables.schedule()?;
        let flow = self.flow.as_str();
        let current = table.get(flow)?.map(|stored| stored.value().0);
        if let Some(current) = current
            && current > self.fence.0
        {
            return Ok(Err(PersistError::Fenced {
                current: Fence(current),
            }));
        }
        match &self.record {
            Some(bytes) => {
                table.insert(flow, (self.fence.0, bytes.as_slice()))?;
            }
            None => {
                table.remove(flow)?;
            }
        }
        Ok(Ok(()))
    }
}

fn load_all_blocking(db: &Database) -> PersistResult<Vec<StoredFlow>> {
    let txn = db.begin_read().map_err(TransactionFailure::from)?;
    let table = txn
        .open_table(SCHEDULE_FLOWS)
        .map_err(TransactionFailure::from)?;
    let mut flows = Vec::new();
    for entry in table.iter().map_err(TransactionFailure::from)? {
        let (key, value) = entry.map_err(TransactionFailure::from)?;
        let flow = key.value();
        let (fence, bytes) = value.value();
        let record = FlowRecord::decode(bytes).map_err(|e| match e {
            PersistError::Corrupt(detail) => {
                PersistError::corrupt(format!("the record of flow `{flow}`: {detail}"))
            }
            other => other,
        })?;
        flows.push(StoredFlow {
            flow: Arc::from(flow),
            record,
            fence: Fence(fence),
        });
    }
    Ok(flows)
}

/// The schedule store: each flow's [`FlowRecord`] in the table `cano_schedule_flows` of
/// the same file as the checkpoints.
///
/// * **Fences** are enforced in the write transaction: a save or delete with a fence lower
///   than the flow's stored one is [`PersistError::Fenced`] with the stored fence; an equal
///   or higher fence is accepted. A delete removes the fence with the record.
/// * **Durable and batched**: saves and deletes join the group commit, so with
///   [`Durability::Immediate`](crate::Durability::Immediate) a save is on disk when it
///   returns `Ok`, and the saves of flows firing together share one fsync.
/// * **Errors**: [`PersistError::Invalid`] for an empty flow id or a time with a
///   sub-microsecond part (nothing is written); [`PersistError::Corrupt`] from
///   [`load_all`](ScheduleStore::load_all) when a stored record does not decode (naming
///   the flow; the damaged record can still be overwritten or deleted by a save or delete
///   with its fence or higher); [`PersistError::Unavailable`] for an I/O error;
///   [`PersistError::Backend`] for any other redb failure.
///
/// ```
/// use cano_core::persist::{Fence, FlowRecord, ScheduleHash, ScheduleStore};
/// use cano_redb::RedbStore;
/// # let dir = std::env::temp_dir().join(format!("cano-redb-sched-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # let path = dir.join("schedule.redb");
/// # let _ = std::fs::remove_file(&path);
///
/// futures::executor::block_on(async {
///     let store = RedbStore::open(&path).await?;
///     let mut record = FlowRecord::new(ScheduleHash(7));
///     record.streak = 2;
///     store.save("report", &record, Fence::ZERO).await?;
///     drop(store); // restart
///
///     let store = RedbStore::open(&path).await?;
///     let flows = store.load_all().await?;
///     assert_eq!(flows[0].record, record);
///     Ok::<_, Box<dyn std::error::Error>>(())
/// })?;
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
impl ScheduleStore for RedbStore {
    async fn load_all(&self) -> PersistResult<Vec<StoredFlow>> {
        let db = Arc::clone(self.inner.committer.database());
        blocking::unblock(move || load_all_blocking(&db)).await
    }

    async fn save(&self, flow: &str, record: &FlowRecord, fence: Fence) -> PersistResult<()> {
        check_record(flow, record)?;
        let job = WriteFlow {
            flow: flow.to_owned(),
            fence,
            record: Some(record.encode()),
        };
        self.inner.committer.submit(job).await?
    }

    async fn delete(&self, flow: &str, fence: Fence) -> PersistResult<()> {
        check_flow_id(flow)?;
        let job = WriteFlow {
            flow: flow.to_owned(),
            fence,
            record: None,
        };
        self.inner.committer.submit(job).await?
    }
}
