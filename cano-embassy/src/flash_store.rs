//! [`FlashScheduleStore`]: the schedule store on NOR flash (feature `flash-store`), so a
//! microcontroller with a real-time clock catches up after a reset instead of forgetting.
//!
//! Schedule state only (one [`FlowRecord`] per flow); workflow checkpoints are not kept on
//! flash. The flash is driven by [`sequential-storage`](https://docs.rs/sequential-storage)'s
//! map over an [`embedded-storage-async`](https://docs.rs/embedded-storage-async)
//! [`NorFlash`]: power-fail safe (a write cut off at any byte leaves the old record or the
//! new one, never garbage: checked on the host at every byte offset), CRC-checked, wear
//! levelled across the pages it is given.
//!
//! # Layout
//!
//! Each flow has a small integer key: its index in the list of flow ids given to
//! [`FlashScheduleStore::new`]. Keep the list's order stable across firmware versions (add
//! new flows at the end): a key's stored value also names its flow, and a value written by
//! another flow is never returned under the wrong name (it is overwritten on the next save
//! of the flow that owns the key now). A value is
//! `[format 1][kind: 1 record, 0 deleted][fence: u64 LE][flow id length: u8][flow id][record]`,
//! the record in cano-core's format ([`FlowRecord::encode`]: a format byte, then postcard).
//! A delete writes a "deleted" value (sequential-storage can only remove items on
//! multi-write flash, and slowly).
//!
//! # Write budget
//!
//! NOR flash wears out: typically 10 000 erase cycles per page (check your part). The map
//! appends every save and erases a page only when it fills, so the budget is about
//! `pages × page size × erase cycles / item size`. With 8 pages of 4 KiB, 10 k cycles and a
//! 48-byte item (a short flow id and error text, plus sequential-storage's item header):
//! ≈ 312 MiB, ≈ 6.8 million saves, ≈ 13 years at one save per minute, but ≈ 79 days at one
//! per second. The scheduler saves on a fire, an outcome and a command, never on a poll, so
//! budget by your fastest flows: a flow firing every second wears out such a store in
//! weeks; give it more pages, or do not persist it.
//!
//! # Errors
//!
//! Every call answers with cano-core's [`PersistError`]: [`Invalid`](PersistError::Invalid)
//! for a flow id not in the list, longer than 255 bytes or empty, or a time with a
//! sub-microsecond part; [`Corrupt`](PersistError::Corrupt) when the flash holds a value
//! that does not decode (or sequential-storage finds the map corrupted);
//! [`Backend`](PersistError::Backend) for a flash error, a full map or a record too large
//! even after its error text is shortened; [`Fenced`](PersistError::Fenced) per the contract.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt;
use core::future::poll_fn;
use core::ops::Range;
use core::task::{Poll, Waker};

use cano_core::persist::{
    Fence, FlowRecord, PersistError, PersistResult, ScheduleStore, StoredFlow, check_flow_id,
    check_record,
};
use critical_section::Mutex;
use embedded_storage_async::nor_flash::NorFlash;
use futures::channel::oneshot;
use sequential_storage::cache::{Cache, Uncached};
use sequential_storage::map::{MapConfig, MapConfigError, MapStorage};

/// The largest stored value, in bytes (envelope, flow id and record). A record that does
/// not fit has its `last_error` text shortened until it does.
pub const MAX_VALUE_BYTES: usize = 240;
/// The sequential-storage work buffer: a key (2 bytes) and the largest value, rounded up to
/// any flash word size up to 16 bytes.
const BUFFER_BYTES: usize = (2 + MAX_VALUE_BYTES).next_multiple_of(16);

const ENVELOPE_FORMAT: u8 = 1;
const KIND_DELETED: u8 = 0;
const KIND_RECORD: u8 = 1;
/// Format, kind, fence, flow id length.
const ENVELOPE_HEADER: usize = 1 + 1 + 8 + 1;

type Map<S> = MapStorage<u16, S, Cache<Uncached, Uncached, Uncached, u16>>;

/// Why [`FlashScheduleStore::new`] refused its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlashStoreError {
    /// The flash range does not suit sequential-storage (not page aligned, fewer than two
    /// pages, pages too small).
    Range(MapConfigError),
    /// More than 65 536 flows.
    TooManyFlows(usize),
    /// A flow id is empty, longer than 255 bytes, or listed twice.
    BadFlowId(Arc<str>),
}

impl fmt::Display for FlashStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlashStoreError::Range(e) => write!(f, "the flash range does not suit the map: {e:?}"),
            FlashStoreError::TooManyFlows(n) => {
                write!(f, "{n} flows; a flash store keys at most 65536")
            }
            FlashStoreError::BadFlowId(id) => write!(
                f,
                "flow id `{id}` is empty, longer than 255 bytes or listed twice"
            ),
        }
    }
}

impl core::error::Error for FlashStoreError {}

/// A call waiting for the worker.
struct Job {
    op: Op,
    reply: oneshot::Sender<Reply>,
}

enum Op {
    LoadAll,
    /// A save (`record: true`) or a delete, with the value to store.
    Write {
        key: u16,
        flow: Arc<str>,
        fence: Fence,
        value: Vec<u8>,
    },
}

enum Reply {
    Loaded(PersistResult<Vec<StoredFlow>>),
    Written(PersistResult<()>),
}

struct Queue {
    jobs: VecDeque<Job>,
    worker: Option<Waker>,
}

struct Inner {
    flows: Vec<Arc<str>>,
    queue: Mutex<RefCell<Queue>>,
}

/// A [`ScheduleStore`] on NOR flash, for embassy firmware. See the [module](self) docs for
/// the layout, the write budget and the errors.
///
/// The store is a handle (cheap to clone, `Send + Sync`); the flash itself is driven by the
/// [`FlashWorker`] made with it, which the firmware runs as a task of its own (its futures
/// depend on the flash driver's, which need not be `Send`). Calls are queued and served one
/// at a time, in order. A call made while no worker runs waits until one does; a call
/// whose worker is dropped mid-call is [`PersistError::Unavailable`] (the write may or may
/// not have reached the flash; sequential-storage repairs a half-done write on the next
/// call).
///
/// ```
/// # use cano_embassy::flash_store::FlashScheduleStore;
/// # use cano_core::persist::{Fence, FlowRecord, ScheduleHash, ScheduleStore};
/// # use sequential_storage::mock_flash::{MockFlashBase, WriteCountCheck};
/// # use futures::future::{Either, select};
/// # type Flash = MockFlashBase<4, 4, 256>;
/// let flash = Flash::new(WriteCountCheck::Twice, None, false);
/// let (store, mut worker) =
///     FlashScheduleStore::new(flash, Flash::FULL_FLASH_RANGE, &["blink", "report"]).unwrap();
/// futures::executor::block_on(async {
///     let calls = core::pin::pin!(async {
///         store.save("report", &FlowRecord::new(ScheduleHash(1)), Fence::ZERO).await.unwrap();
///         assert_eq!(store.load_all().await.unwrap().len(), 1);
///     });
///     // On embassy: spawn `worker.run()` as a task.
///     let worker = core::pin::pin!(worker.run());
///     assert!(matches!(select(calls, worker).await, Either::Left(_)));
/// });
/// ```
#[derive(Clone)]
pub struct FlashScheduleStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for FlashScheduleStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlashScheduleStore")
            .field("flows", &self.inner.flows)
            .finish_non_exhaustive()
    }
}

/// Drives the flash for a [`FlashScheduleStore`]: run [`run`](FlashWorker::run) as a task.
pub struct FlashWorker<S: NorFlash> {
    inner: Arc<Inner>,
    map: Map<S>,
    buffer: Vec<u8>,
}

impl<S: NorFlash> fmt::Debug for FlashWorker<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlashWorker").finish_non_exhaustive()
    }
}

impl FlashScheduleStore {
    /// A store on `flash`, using the pages in `flash_range` (page aligned, at least two
    /// pages; sequential-storage erases and writes only there), for the flows in `flows`
    /// (each flow's key is its index: keep the order across firmware versions). Returns the
    /// store and the worker that drives the flash.
    ///
    /// # Errors
    ///
    /// [`FlashStoreError`] for a range the map cannot use, more than 65 536 flows, or an
    /// empty, over-long or repeated flow id.
    pub fn new<S: NorFlash>(
        flash: S,
        flash_range: Range<u32>,
        flows: &[&str],
    ) -> Result<(FlashScheduleStore, FlashWorker<S>), FlashStoreError> {
        let config = MapConfig::<S>::try_new(flash_range).map_err(FlashStoreError::Range)?;
        if flows.len() > usize::from(u16::MAX) + 1 {
            return Err(FlashStoreError::TooManyFlows(flows.len()));
        }
        let mut ids: Vec<Arc<str>> = Vec::with_capacity(flows.len());
        for flow in flows {
            if flow.is_empty() || flow.len() > 255 || ids.iter().any(|id| **id == **flow) {
                return Err(FlashStoreError::BadFlowId(Arc::from(*flow)));
            }
            ids.push(Arc::from(*flow));
        }
        let inner = Arc::new(Inner {
            flows: ids,
            queue: Mutex::new(RefCell::new(Queue {
                jobs: VecDeque::new(),
                worker: None,
            })),
        });
        let worker = FlashWorker {
            inner: inner.clone(),
            map: MapStorage::new(flash, config, Cache::new_uncached()),
            buffer: vec![0; BUFFER_BYTES],
        };
        Ok((FlashScheduleStore { inner }, worker))
    }

    /// The flow ids, in key order.
    pub fn flows(&self) -> &[Arc<str>] {
        &self.inner.flows
    }

    fn key_of(&self, flow: &str) -> PersistResult<u16> {
        check_flow_id(flow)?;
        self.inner
            .flows
            .iter()
            .position(|id| **id == *flow)
            .and_then(|i| u16::try_from(i).ok())
            .ok_or_else(|| {
                PersistError::invalid(alloc::format!(
                    "flow `{flow}` is not one of this flash store's flows"
                ))
            })
    }

    async fn call(&self, op: Op) -> PersistResult<Reply> {
        let (reply, answer) = oneshot::channel();
        let worker = critical_section::with(|cs| {
            let mut queue = self.inner.queue.borrow_ref_mut(cs);
            queue.jobs.push_back(Job { op, reply });
            queue.worker.take()
        });
        // Woken outside the critical section.
        if let Some(worker) = worker {
            worker.wake();
        }
        answer
            .await
            .map_err(|_| PersistError::unavailable("the flash worker stopped during the call"))
    }

    async fn write(
        &self,
        flow: &str,
        fence: Fence,
        record: Option<&FlowRecord>,
    ) -> PersistResult<()> {
        let key = self.key_of(flow)?;
        let value = match record {
            Some(record) => encode_value(flow, fence, Some(&fit(flow, record)?)),
            None => encode_value(flow, fence, None),
        };
        let op = Op::Write {
            key,
            flow: self.inner.flows[usize::from(key)].clone(),
            fence,
            value,
        };
        match self.call(op).await? {
            Reply::Written(result) => result,
            Reply::Loaded(_) => Err(PersistError::backend(
                "the flash worker answered another call",
            )),
        }
    }
}

impl<S: NorFlash> FlashWorker<S> {
    /// Serves the store's calls, one at a time, forever (it sleeps while there is none).
    /// Dropping the future stops the worker; [`into_flash`](FlashWorker::into_flash) then
    /// gives the flash back.
    pub async fn run(&mut self) -> core::convert::Infallible {
        loop {
            let job = poll_fn(|cx| {
                critical_section::with(|cs| {
                    let mut queue = self.inner.queue.borrow_ref_mut(cs);
                    match queue.jobs.pop_front() {
                        Some(job) => Poll::Ready(job),
                        None => {
                            queue.worker = Some(cx.waker().clone());
                            Poll::Pending
                        }
                    }
                })
            })
            .await;
            let answer = match job.op {
                Op::LoadAll => Reply::Loaded(self.load_all().await),
                Op::Write {
                    key,
                    flow,
                    fence,
                    value,
                } => Reply::Written(self.write(key, &flow, fence, &value).await),
            };
            // The caller may have given up (dropped its future): nobody to answer then.
            let _ = job.reply.send(answer);
        }
    }

    /// The flash, back (to reopen it, or to hand it to other code).
    pub fn into_flash(self) -> S {
        self.map.destroy().0
    }

    async fn load_all(&mut self) -> PersistResult<Vec<StoredFlow>> {
        let mut flows = Vec::new();
        for (index, id) in self.inner.flows.iter().enumerate() {
            // The flow list was checked to fit u16 keys.
            let key = index as u16;
            let stored = self
                .map
                .fetch_item::<&[u8]>(&mut self.buffer, &key)
                .await
                .map_err(flash_error)?;
            let Some(bytes) = stored else { continue };
            let value = decode_value(key, bytes)?;
            let Some(record) = value.record else { continue };
            if value.flow != &**id {
                // Written by a flow that had this key in an older list: not this flow's.
                continue;
            }
            flows.push(StoredFlow {
                flow: id.clone(),
                record: FlowRecord::decode(record)?,
                fence: value.fence,
            });
        }
        Ok(flows)
    }

    /// Stores `value` under `key` if `fence` is in force for `flow`.
    async fn write(
        &mut self,
        key: u16,
        flow: &str,
        fence: Fence,
        value: &[u8],
    ) -> PersistResult<()> {
        let stored = self
            .map
            .fetch_item::<&[u8]>(&mut self.buffer, &key)
            .await
            .map_err(flash_error)?;
        if let Some(bytes) = stored {
            let current = decode_value(key, bytes)?;
            // A deleted record leaves no fence; a value of another flow id (the list
            // changed) is not this flow's, and its fence does not count either.
            if current.flow == flow && current.record.is_some() && current.fence > fence {
                return Err(PersistError::Fenced {
                    current: current.fence,
                });
            }
        }
        self.map
            .store_item(&mut self.buffer, &key, &value)
            .await
            .map_err(flash_error)
    }
}

/// A record that fits [`MAX_VALUE_BYTES`], its error text shortened if needed.
fn fit(flow: &str, record: &FlowRecord) -> PersistResult<Vec<u8>> {
    let room = MAX_VALUE_BYTES - ENVELOPE_HEADER - flow.len();
    let mut bytes = record.encode();
    let mut record = record.clone();
    while bytes.len() > room {
        let Some(error) = record.last_error.take() else {
            return Err(PersistError::backend(alloc::format!(
                "flow `{flow}`'s record needs {} bytes; a flash store keeps {room} for it",
                bytes.len()
            )));
        };
        let mut keep = error.len().saturating_sub(bytes.len() - room);
        while !error.is_char_boundary(keep) {
            keep -= 1;
        }
        record.last_error = (keep > 0).then(|| Arc::from(&error[..keep]));
        bytes = record.encode();
    }
    Ok(bytes)
}

fn encode_value(flow: &str, fence: Fence, record: Option<&[u8]>) -> Vec<u8> {
    let mut value =
        Vec::with_capacity(ENVELOPE_HEADER + flow.len() + record.map_or(0, <[u8]>::len));
    value.push(ENVELOPE_FORMAT);
    value.push(if record.is_some() {
        KIND_RECORD
    } else {
        KIND_DELETED
    });
    value.extend_from_slice(&fence.0.to_le_bytes());
    // The flow id was checked: at most 255 bytes.
    value.push(flow.len() as u8);
    value.extend_from_slice(flow.as_bytes());
    if let Some(record) = record {
        value.extend_from_slice(record);
    }
    value
}

struct Value<'a> {
    flow: &'a str,
    fence: Fence,
    record: Option<&'a [u8]>,
}

fn decode_value(key: u16, bytes: &[u8]) -> PersistResult<Value<'_>> {
    let corrupt =
        |what: &str| PersistError::corrupt(alloc::format!("flash store key {key}: {what}"));
    let [format, kind, rest @ ..] = bytes else {
        return Err(corrupt("a truncated value"));
    };
    if *format != ENVELOPE_FORMAT {
        return Err(corrupt("an unknown value format"));
    }
    let (fence, rest) = rest
        .split_at_checked(8)
        .ok_or_else(|| corrupt("no fence"))?;
    let mut word = [0u8; 8];
    word.copy_from_slice(fence);
    let (&len, rest) = rest.split_first().ok_or_else(|| corrupt("no flow id"))?;
    let (flow, record) = rest
        .split_at_checked(usize::from(len))
        .ok_or_else(|| corrupt("a truncated flow id"))?;
    let flow = core::str::from_utf8(flow).map_err(|_| corrupt("a flow id that is not UTF-8"))?;
    let record = match *kind {
        KIND_RECORD => Some(record),
        KIND_DELETED if record.is_empty() => None,
        _ => return Err(corrupt("an unknown value kind")),
    };
    Ok(Value {
        flow,
        fence: Fence(u64::from_le_bytes(word)),
        record,
    })
}

fn flash_error<E: fmt::Debug>(e: sequential_storage::Error<E>) -> PersistError {
    use sequential_storage::Error;
    match e {
        Error::Corrupted { .. } => {
            PersistError::corrupt("sequential-storage found the map corrupted")
        }
        Error::SerializationError(e) => {
            PersistError::corrupt(alloc::format!("a stored value does not decode: {e:?}"))
        }
        Error::FullStorage => PersistError::backend("the flash store is full"),
        Error::Storage { value, .. } => PersistError::backend(alloc::format!("flash: {value:?}")),
        other => PersistError::backend(alloc::format!("sequential-storage: {other:?}")),
    }
}

impl ScheduleStore for FlashScheduleStore {
    async fn load_all(&self) -> PersistResult<Vec<StoredFlow>> {
        match self.call(Op::LoadAll).await? {
            Reply::Loaded(result) => result,
            Reply::Written(_) => Err(PersistError::backend(
                "the flash worker answered another call",
            )),
        }
    }

    async fn save(&self, flow: &str, record: &FlowRecord, fence: Fence) -> PersistResult<()> {
        check_record(flow, record)?;
        self.write(flow, fence, Some(record)).await
    }

    async fn delete(&self, flow: &str, fence: Fence) -> PersistResult<()> {
        self.write(flow, fence, None).await
    }
}
