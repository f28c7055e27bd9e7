//! [`Resources`]: a typed, keyed registry of the things tasks share (stores, clients,
//! breakers), with a lifecycle: set up first-in first-out, torn down last-in first-out.
//!
//! ## One lifecycle, counted
//!
//! Several holders may need the same resources at once: concurrent `orchestrate` calls on
//! one workflow, or a scheduler that keeps them up between runs. [`Resources::setup_all`]
//! and [`Resources::teardown_all`] are therefore reference-counted: the first `setup_all`
//! runs every `setup`, later ones join it (waiting if a setup or teardown is in progress),
//! and only the `teardown_all` that releases the last holder runs the teardowns. Resources
//! are never set up or torn down underneath a run that uses them.

use alloc::borrow::{Borrow, Cow};
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::fmt;
use core::future::Future;
use core::hash::Hash;
use core::task::Poll;

use futures::future::BoxFuture;
use hashbrown::HashMap;

use crate::error::CanoError;
use crate::sync::{Lock, Waiters, wake_all};
use crate::type_name::{short_type_name, strip_paths};

/// The default resource key type: a string, borrowed when static.
pub type DefaultKey = Cow<'static, str>;

/// How healthy a resource says it is. Ordered from best to worst.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum HealthStatus {
    /// Fully working.
    Healthy,
    /// Working with reduced quality; the reason says how.
    Degraded(Cow<'static, str>),
    /// Not working; the reason says why.
    Unhealthy(Cow<'static, str>),
}

impl HealthStatus {
    /// Whether this is [`HealthStatus::Healthy`].
    pub fn is_healthy(&self) -> bool {
        matches!(self, HealthStatus::Healthy)
    }

    fn severity(&self) -> u8 {
        match self {
            HealthStatus::Healthy => 0,
            HealthStatus::Degraded(_) => 1,
            HealthStatus::Unhealthy(_) => 2,
        }
    }
}

/// Something tasks share, with optional lifecycle hooks. Every hook defaults to a no-op.
///
/// ```
/// use cano_core::{CanoError, Resource, Resources};
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// #[derive(Default)]
/// struct Pool { open: AtomicBool }
/// impl Resource for Pool {
///     async fn setup(&self) -> Result<(), CanoError> {
///         self.open.store(true, Ordering::SeqCst);
///         Ok(())
///     }
/// }
///
/// let resources: Resources = Resources::new().insert("pool", Pool::default()).unwrap();
/// futures::executor::block_on(resources.setup_all()).unwrap();
/// assert!(resources.get::<Pool, _>("pool").unwrap().open.load(Ordering::SeqCst));
/// ```
pub trait Resource: Send + Sync + 'static {
    /// Prepares the resource before the first run that needs it.
    fn setup(&self) -> impl Future<Output = Result<(), CanoError>> + Send {
        async { Ok(()) }
    }
    /// Releases the resource after the last run that needed it.
    fn teardown(&self) -> impl Future<Output = Result<(), CanoError>> + Send {
        async { Ok(()) }
    }
    /// Reports health; cano never calls this by itself.
    fn health(&self) -> impl Future<Output = HealthStatus> + Send {
        async { HealthStatus::Healthy }
    }
}

/// The object-safe lifecycle of a resource.
trait Lifecycle: Send + Sync {
    fn setup_dyn(&self) -> BoxFuture<'_, Result<(), CanoError>>;
    fn teardown_dyn(&self) -> BoxFuture<'_, Result<(), CanoError>>;
    fn health_dyn(&self) -> BoxFuture<'_, HealthStatus>;
}

impl<R: Resource> Lifecycle for R {
    fn setup_dyn(&self) -> BoxFuture<'_, Result<(), CanoError>> {
        Box::pin(self.setup())
    }
    fn teardown_dyn(&self) -> BoxFuture<'_, Result<(), CanoError>> {
        Box::pin(self.teardown())
    }
    fn health_dyn(&self) -> BoxFuture<'_, HealthStatus> {
        Box::pin(self.health())
    }
}

struct Item {
    value: Arc<dyn Any + Send + Sync>,
    lifecycle: Arc<dyn Lifecycle>,
    type_name: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readiness {
    Down,
    SettingUp,
    Up,
    TearingDown,
}

struct LifecycleState {
    holders: usize,
    readiness: Readiness,
    /// Bumped at every readiness change, so a caller waiting on a setup knows whether the
    /// change it sees is the end of that setup.
    epoch: u64,
    waiters: Waiters,
}

impl LifecycleState {
    fn enter(&mut self, readiness: Readiness) {
        self.readiness = readiness;
        self.epoch = self.epoch.wrapping_add(1);
    }
}

/// A typed, keyed registry of [`Resource`]s. Share it through an `Arc` (a
/// [`Workflow`](crate::Workflow) does).
///
/// ```
/// use cano_core::{MemoryStore, Resources};
///
/// let resources: Resources = Resources::new().insert("store", MemoryStore::new()).unwrap();
/// let store = resources.get::<MemoryStore, _>("store").unwrap();
/// store.put("answer", 42u32).unwrap();
/// assert!(resources.get::<MemoryStore, _>("missing").is_err());
/// // A duplicate key is an error, not a panic.
/// assert!(Resources::<&str>::new().insert("a", MemoryStore::new()).unwrap()
///     .insert("a", MemoryStore::new()).is_err());
/// ```
pub struct Resources<K = DefaultKey> {
    /// Everything a registry with resources needs, allocated with the first resource: the
    /// empty registry of a workflow without resources (a scheduler may hold thousands of
    /// them) is one pointer, and has no lifecycle (setting it up or tearing it down does
    /// nothing).
    filled: Option<Box<Filled<K>>>,
}

/// The contents of a [`Resources`] with at least one resource.
struct Filled<K> {
    /// Key → position in `items`.
    index: HashMap<K, usize>,
    /// In insertion order.
    items: Vec<Item>,
    lifecycle: Lock<LifecycleState>,
}

impl<K> Default for Resources<K> {
    fn default() -> Self {
        Resources { filled: None }
    }
}

impl<K> Resources<K> {
    /// An empty registry.
    pub fn new() -> Self {
        Resources::default()
    }

    /// How many resources are registered.
    pub fn len(&self) -> usize {
        self.items().len()
    }

    /// Whether no resource is registered.
    pub fn is_empty(&self) -> bool {
        self.filled.is_none()
    }

    /// The resources, in insertion order.
    fn items(&self) -> &[Item] {
        self.filled.as_ref().map_or(&[], |filled| &filled.items)
    }

    /// The lifecycle, when there is a resource.
    fn lifecycle(&self) -> Option<&Lock<LifecycleState>> {
        self.filled.as_ref().map(|filled| &filled.lifecycle)
    }
}

impl<K: Hash + Eq> Resources<K> {
    /// Adds `resource` under `key`.
    ///
    /// Errors with [`CanoError::ResourceDuplicateKey`] when `key` is taken (cano 0.12
    /// panicked).
    pub fn insert<R: Resource>(
        mut self,
        key: impl Into<K>,
        resource: R,
    ) -> Result<Self, CanoError> {
        let key = key.into();
        let filled = self.filled.get_or_insert_with(|| {
            Box::new(Filled {
                index: HashMap::new(),
                items: Vec::new(),
                lifecycle: Lock::new(LifecycleState {
                    holders: 0,
                    readiness: Readiness::Down,
                    epoch: 0,
                    waiters: Waiters::default(),
                }),
            })
        });
        if filled.index.contains_key(&key) {
            return Err(CanoError::resource_duplicate_key(alloc::format!(
                "a resource is already registered under this key (new resource type: {})",
                short_type_name::<R>()
            )));
        }
        let shared = Arc::new(resource);
        filled.index.insert(key, filled.items.len());
        filled.items.push(Item {
            value: shared.clone(),
            lifecycle: shared,
            type_name: core::any::type_name::<R>(),
        });
        Ok(self)
    }

    fn item<R, Q>(&self, key: &Q) -> Result<&Item, CanoError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + fmt::Debug + ?Sized,
    {
        let filled = self.filled.as_ref();
        let at = filled.and_then(|filled| Some(&filled.items[*filled.index.get(key)?]));
        at.ok_or_else(|| {
            CanoError::resource_not_found(alloc::format!(
                "no resource under key {key:?} (requested type: {})",
                short_type_name::<R>()
            ))
        })
    }

    /// The resource under `key`, shared.
    ///
    /// Errors with [`CanoError::ResourceNotFound`] for an unknown key and
    /// [`CanoError::ResourceTypeMismatch`] when the resource there is not an `R`; both
    /// messages name the key (as `Debug` prints it) and the types, without module paths:
    ///
    /// ```
    /// use cano_core::{CircuitBreaker, CircuitPolicy, MemoryStore, Resources};
    ///
    /// let resources: Resources = Resources::new().insert("store", MemoryStore::new()).unwrap();
    /// let missing = resources.get::<MemoryStore, _>("stroe").unwrap_err();
    /// assert_eq!(
    ///     missing.to_string(),
    ///     r#"Resource not found: no resource under key "stroe" (requested type: MemoryStore)"#
    /// );
    /// let wrong = resources.get::<CircuitBreaker, _>("store").unwrap_err();
    /// assert_eq!(
    ///     wrong.to_string(),
    ///     r#"Resource type mismatch: the resource under key "store" is of type MemoryStore, not CircuitBreaker"#
    /// );
    /// ```
    pub fn get<R: Resource, Q>(&self, key: &Q) -> Result<Arc<R>, CanoError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + fmt::Debug + ?Sized,
    {
        let item = self.item::<R, Q>(key)?;
        item.value
            .clone()
            .downcast::<R>()
            .map_err(|_| mismatch::<R, Q>(key, item.type_name))
    }

    /// The resource under `key`, borrowed (no reference count touched). Errors as
    /// [`get`](Self::get).
    pub fn get_ref<R: Resource, Q>(&self, key: &Q) -> Result<&R, CanoError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + fmt::Debug + ?Sized,
    {
        let item = self.item::<R, Q>(key)?;
        item.value
            .downcast_ref::<R>()
            .ok_or_else(|| mismatch::<R, Q>(key, item.type_name))
    }

    /// Every resource's health, in insertion order.
    pub async fn check_all_health(&self) -> Vec<(K, HealthStatus)>
    where
        K: Clone,
    {
        let mut keys: Vec<(&K, usize)> = self
            .filled
            .iter()
            .flat_map(|filled| filled.index.iter())
            .map(|(k, &i)| (k, i))
            .collect();
        keys.sort_by_key(|&(_, i)| i);
        let mut out = Vec::with_capacity(keys.len());
        for (key, i) in keys {
            out.push((key.clone(), self.items()[i].lifecycle.health_dyn().await));
        }
        out
    }

    /// The worst health of any resource ([`HealthStatus::Healthy`] when there are none).
    pub async fn aggregate_health(&self) -> HealthStatus {
        let mut worst = HealthStatus::Healthy;
        for item in self.items() {
            let status = item.lifecycle.health_dyn().await;
            if status.severity() > worst.severity() {
                worst = status;
            }
        }
        worst
    }
}

fn mismatch<R, Q: fmt::Debug + ?Sized>(key: &Q, stored: &str) -> CanoError {
    CanoError::resource_type_mismatch(alloc::format!(
        "the resource under key {key:?} is of type {}, not {}",
        strip_paths(stored),
        short_type_name::<R>()
    ))
}

impl<K> Resources<K> {
    /// Takes one hold on the resources, setting them up if nobody holds them.
    ///
    /// The first holder runs every `setup` in insertion order. If one fails, the ones
    /// already set up are torn down in reverse order and the error is returned (as
    /// [`CanoError::CompensationFailed`] with the setup error first if a rollback teardown
    /// failed too); nobody holds the resources then. A caller arriving during a setup joins
    /// it (and holds the resources as soon as it succeeds); one arriving during a teardown
    /// waits for it and then sets up again. Pair every `Ok` with one
    /// [`teardown_all`](Self::teardown_all).
    ///
    /// If this future is dropped during setup, the resources are marked down without a
    /// teardown (a setup cannot be rolled back from `Drop`), and waiting callers retry.
    pub async fn setup_all(&self) -> Result<(), CanoError> {
        let Some(lifecycle) = self.lifecycle() else {
            return Ok(()); // no resources
        };
        let lead = JoinLifecycle {
            lifecycle,
            joined: None,
            waiter: None,
            settled: false,
        }
        .await;
        if !lead {
            return Ok(());
        }
        let mut guard = ReadinessGuard {
            lifecycle,
            on_drop: Readiness::Down,
        };
        for (done, item) in self.items().iter().enumerate() {
            if let Err(error) = item.lifecycle.setup_dyn().await {
                let mut errors = Vec::new();
                for earlier in self.items()[..done].iter().rev() {
                    if let Err(e) = earlier.lifecycle.teardown_dyn().await {
                        errors.push(e);
                    }
                }
                // The guard marks the resources down.
                return Err(if errors.is_empty() {
                    error
                } else {
                    errors.insert(0, error);
                    CanoError::compensation_failed(errors)
                });
            }
        }
        guard.on_drop = Readiness::Up;
        Ok(())
    }

    /// Releases one hold; the last holder tears every resource down in reverse insertion
    /// order.
    ///
    /// A teardown error never stops the others: every error is collected and returned, and
    /// an empty vector means a clean teardown (or that other holders remain). Calling it
    /// with no hold outstanding returns one [`CanoError::Configuration`] and does nothing.
    pub async fn teardown_all(&self) -> Vec<CanoError> {
        let Some(lifecycle) = self.lifecycle() else {
            return Vec::new(); // no resources
        };
        let lead = lifecycle.with(|l| {
            if l.holders == 0 || l.readiness != Readiness::Up {
                return Err(());
            }
            l.holders -= 1;
            if l.holders == 0 {
                l.enter(Readiness::TearingDown);
                Ok(true)
            } else {
                Ok(false)
            }
        });
        match lead {
            Err(()) => {
                return alloc::vec![CanoError::configuration(
                    "teardown_all called without a matching setup_all"
                )];
            }
            Ok(false) => return Vec::new(),
            Ok(true) => {}
        }
        let _guard = ReadinessGuard {
            lifecycle,
            on_drop: Readiness::Down,
        };
        let mut errors = Vec::new();
        for item in self.items().iter().rev() {
            if let Err(e) = item.lifecycle.teardown_dyn().await {
                errors.push(e);
            }
        }
        errors
    }

    /// Releases one hold without tearing down (for a run dropped mid-flight: teardown is
    /// async and cannot run in `Drop`). If it was the last hold the resources stay up; the
    /// next holder reuses them and the last `teardown_all` tears them down.
    pub(crate) fn release_without_teardown(&self) {
        if let Some(lifecycle) = self.lifecycle() {
            lifecycle.with(|l| l.holders = l.holders.saturating_sub(1));
        }
    }

    /// How many holders the resources have (for tests and diagnostics).
    pub fn holders(&self) -> usize {
        self.lifecycle()
            .map_or(0, |lifecycle| lifecycle.with(|l| l.holders))
    }
}

/// Waits for a turn at the lifecycle: `true` when this caller must run the setup, `false`
/// when it now holds resources that are up.
struct JoinLifecycle<'a> {
    lifecycle: &'a Lock<LifecycleState>,
    /// The epoch of the setup this caller joined (and is counted as a holder of).
    joined: Option<u64>,
    waiter: Option<u64>,
    settled: bool,
}

impl Future for JoinLifecycle<'_> {
    type Output = bool;

    fn poll(self: core::pin::Pin<&mut Self>, cx: &mut core::task::Context<'_>) -> Poll<bool> {
        let this = self.get_mut();
        let (joined, waiter) = (&mut this.joined, &mut this.waiter);
        let outcome = this.lifecycle.with(|l| {
            if let Some(epoch) = *joined {
                if l.epoch == epoch {
                    l.waiters.park(waiter, cx.waker());
                    return Poll::Pending;
                }
                // The setup it joined ended. Success keeps the resources up while this
                // caller holds them, so the very next epoch being Up means success.
                if l.epoch == epoch.wrapping_add(1) && l.readiness == Readiness::Up {
                    return Poll::Ready(false);
                }
                *joined = None; // it failed: not a holder; start over
            }
            match l.readiness {
                Readiness::Up => {
                    l.holders += 1;
                    Poll::Ready(false)
                }
                Readiness::Down => {
                    l.enter(Readiness::SettingUp);
                    l.holders = 1;
                    Poll::Ready(true)
                }
                Readiness::SettingUp => {
                    l.holders += 1;
                    *joined = Some(l.epoch);
                    l.waiters.park(waiter, cx.waker());
                    Poll::Pending
                }
                Readiness::TearingDown => {
                    l.waiters.park(waiter, cx.waker());
                    Poll::Pending
                }
            }
        });
        this.settled = outcome.is_ready();
        outcome
    }
}

impl Drop for JoinLifecycle<'_> {
    fn drop(&mut self) {
        let (Some(epoch), false) = (self.joined, self.settled) else {
            return;
        };
        // Dropped while counted as a holder of a setup that is running or just succeeded.
        self.lifecycle.with(|l| {
            let still_counted = l.epoch == epoch
                || (l.epoch == epoch.wrapping_add(1) && l.readiness == Readiness::Up);
            if still_counted {
                l.holders = l.holders.saturating_sub(1);
            }
        });
    }
}

/// Ends a setup or teardown: sets the final readiness and wakes waiting callers, also when the
/// future running it is dropped.
struct ReadinessGuard<'a> {
    lifecycle: &'a Lock<LifecycleState>,
    on_drop: Readiness,
}

impl Drop for ReadinessGuard<'_> {
    fn drop(&mut self) {
        let readiness = self.on_drop;
        let wakers = self.lifecycle.with(|l| {
            l.enter(readiness);
            if readiness == Readiness::Down {
                l.holders = 0;
            }
            l.waiters.take_all()
        });
        wake_all(wakers);
    }
}

impl<K> fmt::Debug for Resources<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.items().iter().map(|i| i.type_name).collect();
        f.debug_struct("Resources")
            .field("count", &self.len())
            .field("types", &names)
            .field("holders", &self.holders())
            .finish()
    }
}
