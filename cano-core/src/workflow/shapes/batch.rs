//! [`BatchTask`]: load a list of items, process each (concurrently, with retries), then
//! finish with every item's outcome in input order.
//!
//! Rules (as in cano 0.12, plus a per-item timeout):
//!
//! * [`load`](BatchTask::load) fails → the state fails, [`finish`](BatchTask::finish) is not
//!   called; an empty load calls `finish` with no outputs;
//! * at most [`concurrency`](BatchTask::concurrency) items are processed at once (`0` is a
//!   [`CanoError::Configuration`], not silently 1);
//! * each item is retried by [`item_retry`](BatchTask::item_retry) and each of its attempts is
//!   bounded by [`item_timeout`](BatchTask::item_timeout) (cano 0.12 had none: one hung item
//!   hung the batch); a panicking item is that item's error (with feature `std`);
//! * an item's error does not fail the batch: it is that item's entry in `finish`'s outputs,
//!   which are in **input order** whatever order items finished in. After retries an item's
//!   error is [`CanoError::RetryExhausted`] with the last attempt's error as its source;
//! * `finish` decides the next state; its error fails the state.
//!
//! Retry pauses and timeouts run on the [`BatchRunner`]'s clock.
//!
//! ```
//! use cano_core::{CanoError, Resources, TaskResult, Workflow};
//! use cano_core::shapes::batch::{BatchRunner, BatchTask};
//! use cano_core::testing::Simulation;
//! use std::sync::Mutex;
//!
//! #[derive(Debug, Clone, PartialEq, Eq, Hash)]
//! enum State { Resize, Done }
//!
//! struct Resize { seen: Mutex<Vec<Result<u32, String>>> }
//! impl BatchTask<State> for Resize {
//!     type Item = u32;
//!     type Output = u32;
//!     fn concurrency(&self) -> usize { 4 }
//!     async fn load(&self, _res: &Resources) -> Result<Vec<u32>, CanoError> { Ok(vec![1, 2, 3]) }
//!     async fn process_item(&self, _res: &Resources, item: &u32) -> Result<u32, CanoError> {
//!         if *item == 2 { Err(CanoError::task_execution("corrupt image")) } else { Ok(item * 10) }
//!     }
//!     async fn finish(&self, _res: &Resources, outputs: Vec<Result<u32, CanoError>>)
//!         -> Result<TaskResult<State>, CanoError> {
//!         *self.seen.lock().unwrap() = outputs.into_iter().map(|o| o.map_err(|e| e.to_string())).collect();
//!         Ok(TaskResult::Single(State::Done))
//!     }
//! }
//!
//! let sim = Simulation::new();
//! let task = std::sync::Arc::new(Resize { seen: Mutex::new(vec![]) });
//! let workflow = Workflow::bare()
//!     .register(State::Resize, BatchRunner::new(task.clone(), sim.clock()))
//!     .add_exit_state(State::Done);
//! assert_eq!(sim.block_on(workflow.orchestrate_on(&sim.clock(), State::Resize)), Ok(State::Done));
//! assert_eq!(*task.seen.lock().unwrap(), vec![
//!     Ok(10), Err("Task execution error: corrupt image".to_string()), Ok(30),
//! ]);
//! ```

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::Future;
use core::pin::pin;
use core::time::Duration;

use core::sync::atomic::{AtomicUsize, Ordering};

use futures::future::{BoxFuture, join_all};

use crate::error::CanoError;
use crate::panic::isolate_future_panic;
use crate::random::{RandomSource, SplitMix64, next_default_seed};
use crate::resource::{DefaultKey, Resources};
use crate::runtime::Clock;
use crate::workflow::retry::{Attempts, NoEvents, RetryMode, TaskConfig};
use crate::workflow::task::{Task, TaskResult};

/// A load → process items → finish task. Register it through a [`BatchRunner`].
pub trait BatchTask<S, K = DefaultKey>: Send + Sync {
    /// One unit of work.
    type Item: Send + Sync;
    /// What processing an item gives.
    type Output: Send;

    /// Items processed at once. Default 1. `0` fails the state with
    /// [`CanoError::Configuration`].
    fn concurrency(&self) -> usize {
        1
    }

    /// How each item is retried. Default: [`RetryMode::None`].
    fn item_retry(&self) -> RetryMode {
        RetryMode::None
    }

    /// A deadline for each attempt at an item; an attempt that exceeds it fails with
    /// [`CanoError::Timeout`] (and is retried like any failure). Default: none.
    fn item_timeout(&self) -> Option<Duration> {
        None
    }

    /// The whole batch's settings (load → process → finish is one attempt). Default:
    /// [`TaskConfig::default`], as in cano 0.12.
    fn config(&self) -> TaskConfig {
        TaskConfig::default()
    }

    /// The name observers see. Default: the type's name.
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(core::any::type_name::<Self>())
    }

    /// Loads the items. An error fails the state.
    fn load(
        &self,
        res: &Resources<K>,
    ) -> impl Future<Output = Result<Vec<Self::Item>, CanoError>> + Send;

    /// Processes one item (borrowed, so a retry reuses it). Unlike cano 0.12 it gets the
    /// resources too.
    fn process_item(
        &self,
        res: &Resources<K>,
        item: &Self::Item,
    ) -> impl Future<Output = Result<Self::Output, CanoError>> + Send;

    /// Receives every item's outcome in input order and names the next state.
    fn finish(
        &self,
        res: &Resources<K>,
        outputs: Vec<Result<Self::Output, CanoError>>,
    ) -> impl Future<Output = Result<TaskResult<S>, CanoError>> + Send;
}

/// The object-safe form of [`BatchTask`] for items `I` and outputs `O`, implemented for
/// every batch task; `Box<dyn DynBatchTask<S, K, I, O>>` is a batch task.
pub trait DynBatchTask<S, I, O, K = DefaultKey>: Send + Sync {
    /// [`BatchTask::concurrency`].
    fn concurrency_dyn(&self) -> usize;
    /// [`BatchTask::item_retry`].
    fn item_retry_dyn(&self) -> RetryMode;
    /// [`BatchTask::item_timeout`].
    fn item_timeout_dyn(&self) -> Option<Duration>;
    /// [`BatchTask::config`].
    fn config_dyn(&self) -> TaskConfig;
    /// [`BatchTask::name`].
    fn name_dyn(&self) -> Cow<'static, str>;
    /// [`BatchTask::load`], boxed.
    fn load_dyn<'a>(&'a self, res: &'a Resources<K>) -> BoxFuture<'a, Result<Vec<I>, CanoError>>;
    /// [`BatchTask::process_item`], boxed.
    fn process_item_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
        item: &'a I,
    ) -> BoxFuture<'a, Result<O, CanoError>>;
    /// [`BatchTask::finish`], boxed.
    fn finish_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
        outputs: Vec<Result<O, CanoError>>,
    ) -> BoxFuture<'a, Result<TaskResult<S>, CanoError>>;
}

impl<S: 'static, K: 'static, T: BatchTask<S, K>> DynBatchTask<S, T::Item, T::Output, K> for T {
    fn concurrency_dyn(&self) -> usize {
        self.concurrency()
    }
    fn item_retry_dyn(&self) -> RetryMode {
        self.item_retry()
    }
    fn item_timeout_dyn(&self) -> Option<Duration> {
        self.item_timeout()
    }
    fn config_dyn(&self) -> TaskConfig {
        self.config()
    }
    fn name_dyn(&self) -> Cow<'static, str> {
        self.name()
    }
    fn load_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
    ) -> BoxFuture<'a, Result<Vec<T::Item>, CanoError>> {
        Box::pin(self.load(res))
    }
    fn process_item_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
        item: &'a T::Item,
    ) -> BoxFuture<'a, Result<T::Output, CanoError>> {
        Box::pin(self.process_item(res, item))
    }
    fn finish_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
        outputs: Vec<Result<T::Output, CanoError>>,
    ) -> BoxFuture<'a, Result<TaskResult<S>, CanoError>> {
        Box::pin(self.finish(res, outputs))
    }
}

macro_rules! forward_batch {
    ($ty:ty) => {
        impl<S: 'static, I: Send + Sync + 'static, O: Send + 'static, K: Sync + 'static>
            BatchTask<S, K> for $ty
        {
            type Item = I;
            type Output = O;
            fn concurrency(&self) -> usize {
                (**self).concurrency_dyn()
            }
            fn item_retry(&self) -> RetryMode {
                (**self).item_retry_dyn()
            }
            fn item_timeout(&self) -> Option<Duration> {
                (**self).item_timeout_dyn()
            }
            fn config(&self) -> TaskConfig {
                (**self).config_dyn()
            }
            fn name(&self) -> Cow<'static, str> {
                (**self).name_dyn()
            }
            fn load(
                &self,
                res: &Resources<K>,
            ) -> impl Future<Output = Result<Vec<I>, CanoError>> + Send {
                async move { (**self).load_dyn(res).await }
            }
            fn process_item(
                &self,
                res: &Resources<K>,
                item: &I,
            ) -> impl Future<Output = Result<O, CanoError>> + Send {
                async move { (**self).process_item_dyn(res, item).await }
            }
            fn finish(
                &self,
                res: &Resources<K>,
                outputs: Vec<Result<O, CanoError>>,
            ) -> impl Future<Output = Result<TaskResult<S>, CanoError>> + Send {
                async move { (**self).finish_dyn(res, outputs).await }
            }
        }
    };
}

forward_batch!(Box<dyn DynBatchTask<S, I, O, K>>);
forward_batch!(Arc<dyn DynBatchTask<S, I, O, K>>);

impl<S, K: Sync, T: BatchTask<S, K>> BatchTask<S, K> for Arc<T> {
    type Item = T::Item;
    type Output = T::Output;
    fn concurrency(&self) -> usize {
        T::concurrency(self)
    }
    fn item_retry(&self) -> RetryMode {
        T::item_retry(self)
    }
    fn item_timeout(&self) -> Option<Duration> {
        T::item_timeout(self)
    }
    fn config(&self) -> TaskConfig {
        T::config(self)
    }
    fn name(&self) -> Cow<'static, str> {
        T::name(self)
    }
    fn load(
        &self,
        res: &Resources<K>,
    ) -> impl Future<Output = Result<Vec<T::Item>, CanoError>> + Send {
        T::load(self, res)
    }
    fn process_item(
        &self,
        res: &Resources<K>,
        item: &T::Item,
    ) -> impl Future<Output = Result<T::Output, CanoError>> + Send {
        T::process_item(self, res, item)
    }
    fn finish(
        &self,
        res: &Resources<K>,
        outputs: Vec<Result<T::Output, CanoError>>,
    ) -> impl Future<Output = Result<TaskResult<S>, CanoError>> + Send {
        T::finish(self, res, outputs)
    }
}

/// Runs a [`BatchTask`] on `clock` (item retry pauses and timeouts); register it like any
/// [`Task`].
pub struct BatchRunner<T, C> {
    task: T,
    clock: C,
    random: Arc<dyn RandomSource>,
}

impl<T, C: Clock> BatchRunner<T, C> {
    /// `task`, with its item retries and timeouts on `clock`.
    pub fn new(task: T, clock: C) -> Self {
        BatchRunner {
            task,
            clock,
            random: Arc::new(SplitMix64::new(next_default_seed())),
        }
    }

    /// Draws item retry jitter from `random`.
    pub fn with_random_source(mut self, random: Arc<dyn RandomSource>) -> Self {
        self.random = random;
        self
    }

    /// The batch task.
    pub fn task(&self) -> &T {
        &self.task
    }
}

impl<T: core::fmt::Debug, C: core::fmt::Debug> core::fmt::Debug for BatchRunner<T, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BatchRunner")
            .field("task", &self.task)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// One item, with its retries and timeout when it has any (the plain case awaits the item's
/// own future, nothing boxed).
async fn process_one<S, K, T, C>(
    task: &T,
    res: &Resources<K>,
    item: &T::Item,
    guarded: Option<(&TaskConfig, &C, &dyn RandomSource)>,
) -> Result<T::Output, CanoError>
where
    T: BatchTask<S, K>,
    C: Clock,
{
    match guarded {
        None => isolate_future_panic(pin!(task.process_item(res, item))).await,
        Some((config, clock, random)) => {
            let make = || -> BoxFuture<'_, Result<T::Output, CanoError>> {
                Box::pin(task.process_item(res, item))
            };
            Attempts::new(config, clock, random, make, NoEvents, None).await
        }
    }
}

/// Loads, processes and finishes `task`'s batch on `clock`, drawing retry jitter from
/// `random`. See the [module docs](self) for the rules.
pub async fn run_batch<S, K, T, C>(
    task: &T,
    res: &Resources<K>,
    clock: &C,
    random: &dyn RandomSource,
) -> Result<TaskResult<S>, CanoError>
where
    T: BatchTask<S, K>,
    C: Clock,
{
    let concurrency = task.concurrency();
    if concurrency == 0 {
        return Err(CanoError::configuration(alloc::format!(
            "batch task {}: concurrency must be at least 1",
            task.name()
        )));
    }
    let items = task.load(res).await?;
    let retry = task.item_retry();
    let timeout = task.item_timeout();
    let config = TaskConfig {
        retry_mode: retry,
        attempt_timeout: timeout,
        ..TaskConfig::minimal()
    };
    let guarded = (config.retry_mode != RetryMode::None || timeout.is_some())
        .then_some((&config, clock, random));
    let outputs = if concurrency == 1 || items.len() <= 1 {
        let mut outputs = Vec::with_capacity(items.len());
        for item in &items {
            outputs.push(process_one::<S, K, T, C>(task, res, item, guarded).await);
        }
        outputs
    } else {
        // `concurrency` lanes, each taking the next unstarted item when its last one is done:
        // at most `concurrency` items in flight, items started in input order, and no
        // allocation per item (an item that finishes at its first poll costs what it costs
        // sequentially).
        let next = AtomicUsize::new(0);
        let lane = |_| async {
            let mut done = Vec::new();
            loop {
                let at = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(at) else {
                    return done;
                };
                done.push((
                    at,
                    process_one::<S, K, T, C>(task, res, item, guarded).await,
                ));
            }
        };
        let lanes = join_all((0..concurrency.min(items.len())).map(lane)).await;
        // Each lane's outcomes are in input order: merge them by index.
        let mut lanes: Vec<_> = lanes
            .into_iter()
            .map(|l| l.into_iter().peekable())
            .collect();
        (0..items.len())
            .map(|at| {
                let outcome = lanes
                    .iter_mut()
                    .find_map(|lane| lane.next_if(|(i, _)| *i == at));
                match outcome {
                    Some((_, outcome)) => outcome,
                    None => Err(CanoError::workflow("batch item was not processed")),
                }
            })
            .collect()
    };
    drop(items);
    task.finish(res, outputs).await
}

impl<S, K, T, C> Task<S, K> for BatchRunner<T, C>
where
    S: Send,
    K: Sync,
    T: BatchTask<S, K>,
    C: Clock,
{
    fn run(
        &self,
        res: &Resources<K>,
    ) -> impl Future<Output = Result<TaskResult<S>, CanoError>> + Send {
        run_batch(&self.task, res, &self.clock, &*self.random)
    }
    fn config(&self) -> TaskConfig {
        self.task.config()
    }
    fn name(&self) -> Cow<'static, str> {
        self.task.name()
    }
}
