//! [`ScheduleStore`]: each flow's [`FlowRecord`], so a restart catches up instead of
//! forgetting.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::Future;

use futures::future::BoxFuture;
use jiff::Timestamp;

use super::{Fence, PersistResult, ScheduleHash};

/// What a scheduler keeps about one flow across restarts. Written on a fire, an outcome and
/// a command, never on a poll.
///
/// Times are wall times with whole microseconds (the unit cano stores keep).
///
/// ```
/// use cano_core::persist::{FlowRecord, ScheduleHash};
/// use cano_core::jiff::Timestamp;
///
/// let mut record = FlowRecord::new(ScheduleHash(42));
/// record.last_fire = Some(Timestamp::from_second(1_700_000_000).unwrap());
/// record.streak = 2;
/// let bytes = record.encode();
/// assert_eq!(bytes[0], cano_core::persist::FORMAT_VERSION);
/// assert_eq!(FlowRecord::decode(&bytes).unwrap(), record);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlowRecord {
    /// The hash of the schedule this record was written under.
    pub schedule_hash: ScheduleHash,
    /// The scheduled time of the last fire that started (its [`FireId`](crate::scheduler::FireId)
    /// time); `None` if the flow never fired.
    pub last_fire: Option<Timestamp>,
    /// Consecutive failures.
    pub streak: u32,
    /// Scheduled fires before this time do not run (the end of a backoff window); `None`
    /// when there is no backoff.
    pub next_eligible: Option<Timestamp>,
    /// Paused by a command.
    pub paused: bool,
    /// Tripped by too many consecutive failures: only a reset lets it run again.
    pub tripped: bool,
    /// A trigger was accepted and held (overlap policy `BufferOne`) but had not started.
    pub buffered_trigger: bool,
    /// The last failure's text, for status after a restart.
    pub last_error: Option<Arc<str>>,
}

impl FlowRecord {
    /// A record for a flow that never fired, under `schedule_hash`.
    pub fn new(schedule_hash: ScheduleHash) -> Self {
        FlowRecord {
            schedule_hash,
            last_fire: None,
            streak: 0,
            next_eligible: None,
            paused: false,
            tripped: false,
            buffered_trigger: false,
            last_error: None,
        }
    }
}

/// One flow's record as loaded, with the fence it was last written with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFlow {
    /// The flow's id.
    pub flow: Arc<str>,
    /// Its record.
    pub record: FlowRecord,
    /// The fence of the last write.
    pub fence: Fence,
}

/// Where a scheduler keeps each flow's [`FlowRecord`].
///
/// Every write carries a [`Fence`]: the store keeps the highest fence written per flow and
/// refuses a lower one with [`PersistError::Fenced`](super::PersistError::Fenced), so a node
/// that lost its claim cannot overwrite its successor's record. An equal fence is accepted
/// (the same holder writing again). A scheduler without a fleet writes with
/// [`Fence::ZERO`].
///
/// Errors of every call: [`Unavailable`](super::PersistError::Unavailable) when the store
/// cannot be reached (retry later), [`Corrupt`](super::PersistError::Corrupt) when a stored
/// record cannot be decoded, [`Invalid`](super::PersistError::Invalid) for a time with a
/// sub-microsecond part or an empty flow id, [`Backend`](super::PersistError::Backend)
/// otherwise.
pub trait ScheduleStore: Send + Sync {
    /// Every stored flow, in no particular order.
    fn load_all(&self) -> impl Future<Output = PersistResult<Vec<StoredFlow>>> + Send;

    /// Writes `flow`'s record with `fence`, replacing what was there.
    ///
    /// # Errors
    ///
    /// [`Fenced`](super::PersistError::Fenced) when a higher fence was written for `flow`.
    fn save(
        &self,
        flow: &str,
        record: &FlowRecord,
        fence: Fence,
    ) -> impl Future<Output = PersistResult<()>> + Send;

    /// Deletes `flow`'s record (a flow removed from the scheduler). Deleting a missing
    /// record is not an error.
    ///
    /// # Errors
    ///
    /// [`Fenced`](super::PersistError::Fenced) when a higher fence was written for `flow`.
    fn delete(&self, flow: &str, fence: Fence) -> impl Future<Output = PersistResult<()>> + Send;
}

/// The object-safe form of [`ScheduleStore`], implemented for every store.
/// `Box<dyn DynScheduleStore>` and `Arc<dyn DynScheduleStore>` are stores themselves.
pub trait DynScheduleStore: Send + Sync {
    /// [`ScheduleStore::load_all`], boxed.
    fn load_all_dyn(&self) -> BoxFuture<'_, PersistResult<Vec<StoredFlow>>>;
    /// [`ScheduleStore::save`], boxed.
    fn save_dyn<'a>(
        &'a self,
        flow: &'a str,
        record: &'a FlowRecord,
        fence: Fence,
    ) -> BoxFuture<'a, PersistResult<()>>;
    /// [`ScheduleStore::delete`], boxed.
    fn delete_dyn<'a>(&'a self, flow: &'a str, fence: Fence) -> BoxFuture<'a, PersistResult<()>>;
}

impl<T: ScheduleStore> DynScheduleStore for T {
    fn load_all_dyn(&self) -> BoxFuture<'_, PersistResult<Vec<StoredFlow>>> {
        Box::pin(self.load_all())
    }
    fn save_dyn<'a>(
        &'a self,
        flow: &'a str,
        record: &'a FlowRecord,
        fence: Fence,
    ) -> BoxFuture<'a, PersistResult<()>> {
        Box::pin(self.save(flow, record, fence))
    }
    fn delete_dyn<'a>(&'a self, flow: &'a str, fence: Fence) -> BoxFuture<'a, PersistResult<()>> {
        Box::pin(self.delete(flow, fence))
    }
}

macro_rules! forward_schedule_store {
    ($ty:ty) => {
        impl ScheduleStore for $ty {
            fn load_all(&self) -> impl Future<Output = PersistResult<Vec<StoredFlow>>> + Send {
                async move { (**self).load_all_dyn().await }
            }
            fn save(
                &self,
                flow: &str,
                record: &FlowRecord,
                fence: Fence,
            ) -> impl Future<Output = PersistResult<()>> + Send {
                async move { (**self).save_dyn(flow, record, fence).await }
            }
            fn delete(
                &self,
                flow: &str,
                fence: Fence,
            ) -> impl Future<Output = PersistResult<()>> + Send {
                async move { (**self).delete_dyn(flow, fence).await }
            }
        }
    };
}

forward_schedule_store!(Box<dyn DynScheduleStore>);
forward_schedule_store!(Arc<dyn DynScheduleStore>);

impl<T: ScheduleStore> ScheduleStore for Arc<T> {
    fn load_all(&self) -> impl Future<Output = PersistResult<Vec<StoredFlow>>> + Send {
        T::load_all(self)
    }
    fn save(
        &self,
        flow: &str,
        record: &FlowRecord,
        fence: Fence,
    ) -> impl Future<Output = PersistResult<()>> + Send {
        T::save(self, flow, record, fence)
    }
    fn delete(&self, flow: &str, fence: Fence) -> impl Future<Output = PersistResult<()>> + Send {
        T::delete(self, flow, fence)
    }
}

/// Refuses what no store can keep: an empty flow id, a time with a sub-microsecond part.
///
/// # Errors
///
/// [`PersistError::Invalid`](super::PersistError::Invalid) for either.
pub fn check_record(flow: &str, record: &FlowRecord) -> PersistResult<()> {
    check_flow_id(flow)?;
    for t in [record.last_fire, record.next_eligible]
        .into_iter()
        .flatten()
    {
        super::to_micros(t)?;
    }
    Ok(())
}

/// Refuses an empty flow id.
///
/// # Errors
///
/// [`PersistError::Invalid`](super::PersistError::Invalid) for an empty id.
pub fn check_flow_id(flow: &str) -> PersistResult<()> {
    if flow.is_empty() {
        return Err(super::PersistError::invalid("an empty flow id"));
    }
    Ok(())
}
