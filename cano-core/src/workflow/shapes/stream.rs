//! [`StreamTask`]: consume a [`futures::Stream`] in windows (cano 0.15's `StreamTask`).
//!
//! [`open`](StreamTask::open) opens the stream, from a cursor when resuming. Each item is
//! [`process`](StreamTask::process_item)ed into an output and the cursor just after it; a
//! window of outputs (a [count](StreamWindow::Count), or a [duration](StreamWindow::Duration)
//! from the window's first item) is handed to [`flush_window`](StreamTask::flush_window),
//! and once that succeeds the window's cursor (the last processed item's) is **committed**:
//! given to the runner's cursor sink ([`StreamRunner::with_cursor_sink`]), the point a
//! resumed run opens from. Delivery is at least once: items after the last committed cursor
//! are seen again after a crash.
//!
//! Two registrations:
//!
//! * [`Workflow::register`](crate::Workflow::register): the stream is opened once and
//!   consumed to its end; committed cursors go to the cursor sink (keep them yourself and
//!   resume with [`StreamRunner::with_start_cursor`]);
//! * [`Workflow::register_stepped`](crate::Workflow::register_stepped) in a checkpointed
//!   workflow: each window is a step of a [`SteppedTask`], so the engine writes each window's
//!   cursor into the run's checkpoint log and a resumed run reopens after it (the stream is
//!   then opened once per window; see the `SteppedTask` impl of [`StreamRunner`]).
//!
//! * Item errors (from the stream or from `process_item`) follow
//!   [`on_item_error`](StreamTask::on_item_error): fail fast (the state fails, the in-flight
//!   window is not flushed, its cursor not committed), skip, or tolerate up to N in a run.
//! * `flush_window` may [stop](WindowSignal::Stop) the stream early with a next state.
//! * When the stream ends, [`on_close`](StreamTask::on_close) with
//!   [`CloseReason::Exhausted`] names the next state.
//! * The runner's own cancellation token ([`StreamRunner::with_cancellation`]) and time limit
//!   ([`StreamRunner::with_time_limit`]) **drain** the stream: no further item is pulled, the
//!   item being processed finishes, the in-flight window is flushed and committed, `on_close`
//!   is told why, and the state fails with [`CanoError::Cancelled`] or
//!   [`CanoError::Timeout`]. (The *workflow's* cancellation and total timeout drop the run at
//!   its next `.await`, as for any task: that is a stop without a drain. Give the runner the
//!   token you want drained.)
//!
//! ```
//! use cano_core::{CanoError, Resources, TaskResult, Workflow};
//! use cano_core::shapes::stream::{CloseReason, StreamRunner, StreamTask, StreamWindow, WindowSignal};
//! use cano_core::testing::Simulation;
//! use futures::stream::{self, BoxStream, StreamExt};
//! use std::sync::{Arc, Mutex};
//!
//! #[derive(Debug, Clone, PartialEq, Eq, Hash)]
//! enum State { Ingest, Done }
//!
//! struct Ingest { windows: Mutex<Vec<Vec<u32>>> }
//! impl StreamTask<State> for Ingest {
//!     type Item = u32;
//!     type Output = u32;
//!     type Cursor = u64;
//!     fn window(&self) -> StreamWindow { StreamWindow::Count(2) }
//!     async fn open<'a>(&'a self, _res: &'a Resources, from: Option<u64>)
//!         -> Result<BoxStream<'a, Result<u32, CanoError>>, CanoError> {
//!         let start = from.unwrap_or(0) as u32;
//!         Ok(stream::iter((start..5).map(Ok)).boxed())
//!     }
//!     async fn process_item(&self, _res: &Resources, item: u32) -> Result<(u32, u64), CanoError> {
//!         Ok((item * 10, u64::from(item) + 1))
//!     }
//!     async fn flush_window(&self, _res: &Resources, outputs: Vec<u32>) -> Result<WindowSignal<State>, CanoError> {
//!         self.windows.lock().unwrap().push(outputs);
//!         Ok(WindowSignal::Continue)
//!     }
//!     async fn on_close(&self, _res: &Resources, _why: CloseReason) -> Result<TaskResult<State>, CanoError> {
//!         Ok(TaskResult::Single(State::Done))
//!     }
//! }
//!
//! let sim = Simulation::new();
//! let task = Arc::new(Ingest { windows: Mutex::new(vec![]) });
//! let committed = Arc::new(Mutex::new(vec![]));
//! let sink = committed.clone();
//! let runner = StreamRunner::new(task.clone(), sim.clock())
//!     .with_cursor_sink(Arc::new(move |c: &u64| sink.lock().unwrap().push(*c)));
//! let workflow = Workflow::bare().register(State::Ingest, runner).add_exit_state(State::Done);
//! assert_eq!(sim.block_on(workflow.orchestrate_on(&sim.clock(), State::Ingest)), Ok(State::Done));
//! assert_eq!(*task.windows.lock().unwrap(), vec![vec![0, 10], vec![20, 30], vec![40]]);
//! assert_eq!(*committed.lock().unwrap(), vec![2, 4, 5]);
//! ```

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::task::Poll;
use core::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cancel::CancellationToken;
use crate::error::CanoError;
use crate::resource::{DefaultKey, Resources};
use crate::runtime::Clock;
use crate::workflow::retry::TaskConfig;
use crate::workflow::stepped::{StepOutcome, SteppedTask};
use crate::workflow::task::{Task, TaskContext, TaskResult};

/// How a stream is cut into windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamWindow {
    /// This many items per window (at least 1).
    Count(usize),
    /// Items arriving within this long of the window's first item (at least 1 µs). An idle
    /// stream arms no timer.
    Duration(Duration),
}

impl Default for StreamWindow {
    /// One item per window.
    fn default() -> Self {
        StreamWindow::Count(1)
    }
}

/// What an item error does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamErrorPolicy {
    /// The first error fails the state; the in-flight window is neither flushed nor
    /// committed.
    #[default]
    FailFast,
    /// Errors are skipped.
    Skip,
    /// Up to `max_errors` errors in a run are skipped; the next one fails the state.
    Tolerate {
        /// Errors skipped per run.
        max_errors: u32,
    },
}

/// What a flushed window says about the rest of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowSignal<S> {
    /// Keep consuming.
    Continue,
    /// Stop here and continue in this state (`on_close` is not called).
    Stop(TaskResult<S>),
}

/// Why a stream closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The stream ended.
    Exhausted,
    /// The runner's cancellation token was cancelled; the in-flight window was flushed.
    Cancelled,
    /// The runner's time limit passed; the in-flight window was flushed.
    TimedOut,
}

/// A windowed stream consumer. Register it through a [`StreamRunner`].
pub trait StreamTask<S, K = DefaultKey>: Send + Sync {
    /// What the stream yields.
    type Item: Send;
    /// What processing an item gives.
    type Output: Send;
    /// A position in the stream, committed per window; serialisable so it can be
    /// checkpointed.
    type Cursor: Clone + Send + Sync + Serialize + DeserializeOwned + 'static;

    /// How the stream is cut into windows. Default: one item per window.
    fn window(&self) -> StreamWindow {
        StreamWindow::Count(1)
    }

    /// What an item error does. Default: [`StreamErrorPolicy::FailFast`].
    fn on_item_error(&self) -> StreamErrorPolicy {
        StreamErrorPolicy::FailFast
    }

    /// The state's settings. Default: [`TaskConfig::minimal`]. An attempt timeout bounds
    /// the whole stream *without* a drain; prefer [`StreamRunner::with_time_limit`].
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }

    /// The name observers see. Default: the type's name.
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(core::any::type_name::<Self>())
    }

    /// Opens the stream after `cursor` (`None`: from the start).
    fn open<'a>(
        &'a self,
        res: &'a Resources<K>,
        cursor: Option<Self::Cursor>,
    ) -> impl Future<Output = Result<BoxStream<'a, Result<Self::Item, CanoError>>, CanoError>> + Send;

    /// Processes one item into its output and the cursor just after it.
    fn process_item(
        &self,
        res: &Resources<K>,
        item: Self::Item,
    ) -> impl Future<Output = Result<(Self::Output, Self::Cursor), CanoError>> + Send;

    /// Receives a window's outputs (never empty). An error fails the state without
    /// committing the window's cursor.
    fn flush_window(
        &self,
        res: &Resources<K>,
        outputs: Vec<Self::Output>,
    ) -> impl Future<Output = Result<WindowSignal<S>, CanoError>> + Send;

    /// Told why the stream closed. For [`CloseReason::Exhausted`] its result is the state's;
    /// after a drain the state fails with [`CanoError::Cancelled`] or [`CanoError::Timeout`]
    /// (or with `on_close`'s own error).
    fn on_close(
        &self,
        res: &Resources<K>,
        reason: CloseReason,
    ) -> impl Future<Output = Result<TaskResult<S>, CanoError>> + Send;
}

/// The object-safe form of [`StreamTask`] for items `I`, outputs `O` and cursors `Cur`,
/// implemented for every stream task; `Box<dyn DynStreamTask<…>>` is a stream task.
pub trait DynStreamTask<S, I, O, Cur, K = DefaultKey>: Send + Sync {
    /// [`StreamTask::window`].
    fn window_dyn(&self) -> StreamWindow;
    /// [`StreamTask::on_item_error`].
    fn on_item_error_dyn(&self) -> StreamErrorPolicy;
    /// [`StreamTask::config`].
    fn config_dyn(&self) -> TaskConfig;
    /// [`StreamTask::name`].
    fn name_dyn(&self) -> Cow<'static, str>;
    /// [`StreamTask::open`], boxed.
    fn open_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
        cursor: Option<Cur>,
    ) -> BoxFuture<'a, Result<BoxStream<'a, Result<I, CanoError>>, CanoError>>;
    /// [`StreamTask::process_item`], boxed.
    fn process_item_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
        item: I,
    ) -> BoxFuture<'a, Result<(O, Cur), CanoError>>;
    /// [`StreamTask::flush_window`], boxed.
    fn flush_window_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
        outputs: Vec<O>,
    ) -> BoxFuture<'a, Result<WindowSignal<S>, CanoError>>;
    /// [`StreamTask::on_close`], boxed.
    fn on_close_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
        reason: CloseReason,
    ) -> BoxFuture<'a, Result<TaskResult<S>, CanoError>>;
}

impl<S: 'static, K: 'static, T> DynStreamTask<S, T::Item, T::Output, T::Cursor, K> for T
where
    T: StreamTask<S, K>,
{
    fn window_dyn(&self) -> StreamWindow {
        self.window()
    }
    fn on_item_error_dyn(&self) -> StreamErrorPolicy {
        self.on_item_error()
    }
    fn config_dyn(&self) -> TaskConfig {
        self.config()
    }
    fn name_dyn(&self) -> Cow<'static, str> {
        self.name()
    }
    fn open_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
        cursor: Option<T::Cursor>,
    ) -> BoxFuture<'a, Result<BoxStream<'a, Result<T::Item, CanoError>>, CanoError>> {
        Box::pin(self.open(res, cursor))
    }
    fn process_item_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
        item: T::Item,
    ) -> BoxFuture<'a, Result<(T::Output, T::Cursor), CanoError>> {
        Box::pin(self.process_item(res, item))
    }
    fn flush_window_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
        outputs: Vec<T::Output>,
    ) -> BoxFuture<'a, Result<WindowSignal<S>, CanoError>> {
        Box::pin(self.flush_window(res, outputs))
    }
    fn on_close_dyn<'a>(
        &'a self,
        res: &'a Resources<K>,
        reason: CloseReason,
    ) -> BoxFuture<'a, Result<TaskResult<S>, CanoError>> {
        Box::pin(self.on_close(res, reason))
    }
}

macro_rules! forward_stream {
    ($ty:ty) => {
        impl<S, I, O, Cur, K> StreamTask<S, K> for $ty
        where
            S: 'static,
            I: Send + 'static,
            O: Send + 'static,
            Cur: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
            K: Sync + 'static,
        {
            type Item = I;
            type Output = O;
            type Cursor = Cur;
            fn window(&self) -> StreamWindow {
                (**self).window_dyn()
            }
            fn on_item_error(&self) -> StreamErrorPolicy {
                (**self).on_item_error_dyn()
            }
            fn config(&self) -> TaskConfig {
                (**self).config_dyn()
            }
            fn name(&self) -> Cow<'static, str> {
                (**self).name_dyn()
            }
            fn open<'a>(
                &'a self,
                res: &'a Resources<K>,
                cursor: Option<Cur>,
            ) -> impl Future<Output = Result<BoxStream<'a, Result<I, CanoError>>, CanoError>> + Send
            {
                async move { (**self).open_dyn(res, cursor).await }
            }
            fn process_item(
                &self,
                res: &Resources<K>,
                item: I,
            ) -> impl Future<Output = Result<(O, Cur), CanoError>> + Send {
                async move { (**self).process_item_dyn(res, item).await }
            }
            fn flush_window(
                &self,
                res: &Resources<K>,
                outputs: Vec<O>,
            ) -> impl Future<Output = Result<WindowSignal<S>, CanoError>> + Send {
                async move { (**self).flush_window_dyn(res, outputs).await }
            }
            fn on_close(
                &self,
                res: &Resources<K>,
                reason: CloseReason,
            ) -> impl Future<Output = Result<TaskResult<S>, CanoError>> + Send {
                async move { (**self).on_close_dyn(res, reason).await }
            }
        }
    };
}

forward_stream!(Box<dyn DynStreamTask<S, I, O, Cur, K>>);
forward_stream!(Arc<dyn DynStreamTask<S, I, O, Cur, K>>);

impl<S, K: Sync, T: StreamTask<S, K>> StreamTask<S, K> for Arc<T> {
    type Item = T::Item;
    type Output = T::Output;
    type Cursor = T::Cursor;
    fn window(&self) -> StreamWindow {
        T::window(self)
    }
    fn on_item_error(&self) -> StreamErrorPolicy {
        T::on_item_error(self)
    }
    fn config(&self) -> TaskConfig {
        T::config(self)
    }
    fn name(&self) -> Cow<'static, str> {
        T::name(self)
    }
    fn open<'a>(
        &'a self,
        res: &'a Resources<K>,
        cursor: Option<T::Cursor>,
    ) -> impl Future<Output = Result<BoxStream<'a, Result<T::Item, CanoError>>, CanoError>> + Send
    {
        T::open(self, res, cursor)
    }
    fn process_item(
        &self,
        res: &Resources<K>,
        item: T::Item,
    ) -> impl Future<Output = Result<(T::Output, T::Cursor), CanoError>> + Send {
        T::process_item(self, res, item)
    }
    fn flush_window(
        &self,
        res: &Resources<K>,
        outputs: Vec<T::Output>,
    ) -> impl Future<Output = Result<WindowSignal<S>, CanoError>> + Send {
        T::flush_window(self, res, outputs)
    }
    fn on_close(
        &self,
        res: &Resources<K>,
        reason: CloseReason,
    ) -> impl Future<Output = Result<TaskResult<S>, CanoError>> + Send {
        T::on_close(self, res, reason)
    }
}

/// Where committed cursors go (see [`StreamRunner::with_cursor_sink`]).
pub type CursorSink<Cur> = Arc<dyn Fn(&Cur) + Send + Sync>;

/// Runs a [`StreamTask`] on `clock`; register it like any [`Task`].
pub struct StreamRunner<T, C, Cur> {
    task: T,
    clock: C,
    cancel: CancellationToken,
    time_limit: Option<Duration>,
    start_cursor: Option<Cur>,
    sink: Option<CursorSink<Cur>>,
}

impl<T, C: Clock, Cur> StreamRunner<T, C, Cur> {
    /// `task`, with duration windows and the time limit on `clock`.
    pub fn new(task: T, clock: C) -> Self {
        StreamRunner {
            task,
            clock,
            cancel: CancellationToken::never(),
            time_limit: None,
            start_cursor: None,
            sink: None,
        }
    }

    /// Drains and stops the stream when `token` is cancelled.
    pub fn with_cancellation(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// Drains and stops the stream `limit` after it opens.
    pub fn with_time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }

    /// Opens the stream after `cursor` (a committed cursor you kept, to resume by hand).
    pub fn with_start_cursor(mut self, cursor: Cur) -> Self {
        self.start_cursor = Some(cursor);
        self
    }

    /// Hands each window's cursor to `sink` once the window is flushed.
    pub fn with_cursor_sink(mut self, sink: CursorSink<Cur>) -> Self {
        self.sink = Some(sink);
        self
    }
}

impl<T, C: core::fmt::Debug, Cur> core::fmt::Debug for StreamRunner<T, C, Cur> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StreamRunner")
            .field("clock", &self.clock)
            .field("time_limit", &self.time_limit)
            .finish_non_exhaustive()
    }
}

enum Event<I> {
    Item(Option<Result<I, CanoError>>),
    WindowEnd,
    Stop(CloseReason),
}

/// What the item-error policy says about one more error.
fn tolerate(policy: StreamErrorPolicy, errors: &mut u32) -> bool {
    match policy {
        StreamErrorPolicy::FailFast => false,
        StreamErrorPolicy::Skip => true,
        StreamErrorPolicy::Tolerate { max_errors } => {
            *errors = errors.saturating_add(1);
            *errors <= max_errors
        }
    }
}

/// Where a consumption ended.
enum Consumed<S, Cur> {
    /// The state's outcome.
    Finished(TaskResult<S>),
    /// One window was flushed (one-window mode); the next step starts after this cursor.
    Window(Cur),
}

impl<T, C, Cur> StreamRunner<T, C, Cur>
where
    C: Clock,
    Cur: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    /// Opens the stream after `from` and consumes it: to the end, or (`one_window`) until
    /// the first flushed window.
    async fn consume<S, K>(
        &self,
        res: &Resources<K>,
        from: Option<Cur>,
        one_window: bool,
    ) -> Result<Consumed<S, Cur>, CanoError>
    where
        T: StreamTask<S, K, Cursor = Cur>,
    {
        let task = &self.task;
        let (per_window, window_length) = match task.window() {
            StreamWindow::Count(0) => {
                return Err(CanoError::configuration(alloc::format!(
                    "stream task {}: a count window needs at least 1 item",
                    task.name()
                )));
            }
            StreamWindow::Count(n) => (n, None),
            StreamWindow::Duration(d) if d < Duration::from_micros(1) => {
                return Err(CanoError::configuration(alloc::format!(
                    "stream task {}: a duration window must be at least 1 µs",
                    task.name()
                )));
            }
            StreamWindow::Duration(d) => (usize::MAX, Some(d)),
        };
        if one_window && self.cancel.is_cancelled() {
            // The window before was drained and checkpointed; now the stream closes.
            return Err(self.close_after_drain(res, CloseReason::Cancelled).await);
        }
        let policy = task.on_item_error();
        let clock = &self.clock;
        let mut stream = task.open(res, from).await?;
        let mut limit: Option<Pin<Box<C::Sleep>>> = self
            .time_limit
            .filter(|_| !one_window)
            .map(|d| Box::pin(clock.sleep_until(clock.now() + d)));
        let mut cancelled = self
            .cancel
            .can_be_cancelled()
            .then(|| self.cancel.cancelled());
        let mut errors = 0u32;
        loop {
            let mut outputs: Vec<T::Output> = Vec::new();
            let mut cursor: Option<Cur> = None;
            let mut window_end: Option<Pin<Box<C::Sleep>>> = None;
            let end = loop {
                if outputs.len() >= per_window {
                    break None;
                }
                let event = core::future::poll_fn(|cx| {
                    if let Some(wait) = cancelled.as_mut()
                        && Pin::new(wait).poll(cx).is_ready()
                    {
                        return Poll::Ready(Event::Stop(CloseReason::Cancelled));
                    }
                    if let Some(sleep) = limit.as_mut()
                        && sleep.as_mut().poll(cx).is_ready()
                    {
                        return Poll::Ready(Event::Stop(CloseReason::TimedOut));
                    }
                    if let Some(sleep) = window_end.as_mut()
                        && sleep.as_mut().poll(cx).is_ready()
                    {
                        return Poll::Ready(Event::WindowEnd);
                    }
                    stream.poll_next_unpin(cx).map(Event::Item)
                })
                .await;
                let item = match event {
                    Event::Item(None) => break Some(CloseReason::Exhausted),
                    Event::Stop(reason) => break Some(reason),
                    Event::WindowEnd => break None,
                    Event::Item(Some(item)) => item,
                };
                if let (Some(d), None) = (window_length, &window_end) {
                    window_end = Some(Box::pin(clock.sleep_until(clock.now() + d)));
                }
                let processed = match item {
                    Ok(item) => task.process_item(res, item).await,
                    Err(error) => Err(error),
                };
                match processed {
                    Ok((output, after)) => {
                        outputs.push(output);
                        cursor = Some(after);
                    }
                    Err(error) => {
                        if !tolerate(policy, &mut errors) {
                            return Err(error);
                        }
                    }
                }
            };
            if let Some(cursor) = cursor {
                let signal = task.flush_window(res, outputs).await?;
                if let Some(sink) = &self.sink {
                    sink(&cursor);
                }
                if let WindowSignal::Stop(next) = signal {
                    return Ok(Consumed::Finished(next));
                }
                if one_window && end != Some(CloseReason::Exhausted) {
                    // The engine checkpoints the cursor; the next step reopens after it (and
                    // closes at once if this window was drained by a cancellation).
                    return Ok(Consumed::Window(cursor));
                }
            }
            match end {
                None => continue,
                Some(CloseReason::Exhausted) => {
                    return task
                        .on_close(res, CloseReason::Exhausted)
                        .await
                        .map(Consumed::Finished);
                }
                Some(reason) => {
                    drop(stream);
                    return Err(self.close_after_drain(res, reason).await);
                }
            }
        }
    }

    /// Tells the task why the stream closed after a drain; the state's error.
    async fn close_after_drain<S, K>(&self, res: &Resources<K>, reason: CloseReason) -> CanoError
    where
        T: StreamTask<S, K, Cursor = Cur>,
    {
        if let Err(error) = self.task.on_close(res, reason).await {
            return error;
        }
        if reason == CloseReason::Cancelled {
            CanoError::cancelled("stream cancelled; the in-flight window was flushed")
        } else {
            CanoError::timeout("stream time limit reached; the in-flight window was flushed")
        }
    }
}

impl<S, K, T, C, Cur> Task<S, K> for StreamRunner<T, C, Cur>
where
    S: Send,
    K: Sync,
    T: StreamTask<S, K, Cursor = Cur>,
    C: Clock,
    Cur: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    async fn run(&self, res: &Resources<K>) -> Result<TaskResult<S>, CanoError> {
        match self.consume(res, self.start_cursor.clone(), false).await? {
            Consumed::Finished(next) => Ok(next),
            Consumed::Window(_) => Err(CanoError::workflow(
                "a stream consumed to its end stopped after one window",
            )),
        }
    }
    fn config(&self) -> TaskConfig {
        self.task.config()
    }
    fn name(&self) -> Cow<'static, str> {
        self.task.name()
    }
}

/// The checkpointed form: register the runner with
/// [`Workflow::register_stepped`](crate::Workflow::register_stepped) and each **window is a
/// step**. The engine writes the window's cursor into the run's checkpoint log (a
/// [`StepCursor`](crate::checkpoint::RowKind::StepCursor) row, like any stepped task) before
/// the next window, and a resumed run reopens the stream after the last checkpointed cursor.
/// So the stream is opened once per window, from the cursor: use it for sources that seek
/// cheaply (an offset, a key range, a page token). The task's [`TaskConfig`] applies per
/// window (retries reopen from the same cursor). A cancellation drains as in the plain form:
/// the in-flight window is flushed and checkpointed, then the next step closes the stream and
/// fails with [`CanoError::Cancelled`]. The time limit ([`StreamRunner::with_time_limit`])
/// is not used in this form; bound a window with the task's attempt timeout.
impl<S, K, T, C, Cur> SteppedTask<S, K> for StreamRunner<T, C, Cur>
where
    S: Send,
    K: Sync,
    T: StreamTask<S, K, Cursor = Cur>,
    C: Clock,
    Cur: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    type Cursor = Cur;

    async fn step(
        &self,
        ctx: TaskContext<'_, K>,
        cursor: Option<Cur>,
    ) -> Result<StepOutcome<Cur, S>, CanoError> {
        let from = cursor.or_else(|| self.start_cursor.clone());
        match self.consume(ctx.resources(), from, true).await? {
            Consumed::Finished(next) => Ok(StepOutcome::Done(next)),
            Consumed::Window(cursor) => Ok(StepOutcome::More(cursor)),
        }
    }

    fn config(&self) -> TaskConfig {
        self.task.config()
    }

    fn name(&self) -> Cow<'static, str> {
        self.task.name()
    }
}
