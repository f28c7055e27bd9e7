//! [`MemoryScheduleStore`]: the schedule store in memory.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::Future;

use hashbrown::HashMap;

use super::schedule_store::{check_flow_id, check_record};
use super::{Fence, FlowRecord, PersistError, PersistResult, ScheduleStore, StoredFlow};
use crate::sync::Lock;

/// Each flow's encoded record and the fence it was written with.
type Records = HashMap<Arc<str>, (Vec<u8>, Fence)>;

/// A [`ScheduleStore`] in memory: what a test, a simulation or a process that wants no
/// persistence uses. Records are kept encoded ([`FlowRecord::encode`]), so what is loaded
/// went through the same bytes as on a real store. Clones share the records.
///
/// With feature `testing`, each [`view`](MemoryScheduleStore::view) has its own
/// `Faults` (partition, lost acknowledgements).
///
/// ```
/// use cano_core::persist::{Fence, FlowRecord, MemoryScheduleStore, ScheduleHash, ScheduleStore};
///
/// let store = MemoryScheduleStore::new();
/// futures::executor::block_on(async {
///     let mut record = FlowRecord::new(ScheduleHash(1));
///     record.streak = 1;
///     store.save("report", &record, Fence(2)).await.unwrap();
///     // A writer with an older fence is refused.
///     let late = store.save("report", &FlowRecord::new(ScheduleHash(1)), Fence(1)).await;
///     assert!(late.unwrap_err().is_fenced());
///     let all = store.load_all().await.unwrap();
///     assert_eq!(all[0].record, record);
/// });
/// ```
#[derive(Clone, Default)]
pub struct MemoryScheduleStore {
    records: Arc<Lock<Records>>,
    #[cfg(feature = "testing")]
    faults: super::Faults,
}

impl core::fmt::Debug for MemoryScheduleStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemoryScheduleStore")
            .field("flows", &self.records.with(|r| r.len()))
            .finish()
    }
}

impl MemoryScheduleStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryScheduleStore::default()
    }

    /// Another handle on the same records, with its own faults (feature `testing`).
    pub fn view(&self) -> Self {
        MemoryScheduleStore {
            records: self.records.clone(),
            #[cfg(feature = "testing")]
            faults: super::Faults::default(),
        }
    }

    /// This handle's faults.
    #[cfg(feature = "testing")]
    pub fn faults(&self) -> &super::Faults {
        &self.faults
    }

    /// Overwrites `flow`'s stored bytes (to test how a scheduler copes with a corrupt
    /// record).
    #[cfg(feature = "testing")]
    pub fn put_raw(&self, flow: &str, bytes: Vec<u8>, fence: Fence) {
        self.records
            .with(|r| r.insert(Arc::from(flow), (bytes, fence)));
    }

    fn reachable(&self) -> PersistResult<()> {
        #[cfg(feature = "testing")]
        self.faults.check_reachable()?;
        Ok(())
    }

    fn acked(&self) -> PersistResult<()> {
        #[cfg(feature = "testing")]
        if self.faults.take_lost_ack() {
            return Err(PersistError::unavailable("the answer was lost (injected)"));
        }
        Ok(())
    }

    fn write(&self, flow: &str, fence: Fence, bytes: Option<Vec<u8>>) -> PersistResult<()> {
        self.reachable()?;
        let old = self.records.with(|records| {
            if let Some((_, current)) = records.get(flow)
                && *current > fence
            {
                return Err(PersistError::Fenced { current: *current });
            }
            Ok(match bytes {
                Some(bytes) => records.insert(Arc::from(flow), (bytes, fence)),
                None => records.remove(flow),
            })
        })?;
        drop(old);
        self.acked()
    }
}

impl ScheduleStore for MemoryScheduleStore {
    fn load_all(&self) -> impl Future<Output = PersistResult<Vec<StoredFlow>>> + Send {
        let result = self.reachable().and_then(|()| {
            let raw: Vec<(Arc<str>, Vec<u8>, Fence)> = self.records.with(|records| {
                records
                    .iter()
                    .map(|(k, (bytes, fence))| (k.clone(), bytes.clone(), *fence))
                    .collect()
            });
            raw.into_iter()
                .map(|(flow, bytes, fence)| {
                    Ok(StoredFlow {
                        record: FlowRecord::decode(&bytes)?,
                        flow,
                        fence,
                    })
                })
                .collect()
        });
        core::future::ready(result)
    }

    fn save(
        &self,
        flow: &str,
        record: &FlowRecord,
        fence: Fence,
    ) -> impl Future<Output = PersistResult<()>> + Send {
        let result = check_record(flow, record)
            .and_then(|()| self.write(flow, fence, Some(record.encode())));
        core::future::ready(result)
    }

    fn delete(&self, flow: &str, fence: Fence) -> impl Future<Output = PersistResult<()>> + Send {
        let result = check_flow_id(flow).and_then(|()| self.write(flow, fence, None));
        core::future::ready(result)
    }
}
