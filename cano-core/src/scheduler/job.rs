//! What the scheduler runs: a [`Job`] (once per fire, Ok or Err, with optional setup and
//! teardown hooks), the [`Fire`] each run receives, and its [`FireId`].

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};

use futures::future::BoxFuture;
use jiff::Timestamp;

use super::lock::Lock;
use crate::error::CanoResult;

/// The identity of one run: the flow's id and the fire's scheduled time (wall clock).
///
/// Usable as an idempotency key: for one flow, fire ids strictly increase, and a scheduled
/// fire keeps its id however late it runs. A `trigger` gets the wall time it was accepted
/// at (moved a microsecond past the flow's previous fire id if the wall clock went back).
///
/// ```
/// use cano_core::scheduler::FireId;
/// use cano_core::jiff::Timestamp;
///
/// let id = FireId::new("report", "2026-03-08T09:00:00Z".parse().unwrap());
/// assert_eq!(id.to_string(), "report@2026-03-08T09:00:00Z");
/// assert_eq!(id.flow(), "report");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FireId {
    flow: Arc<str>,
    scheduled: Timestamp,
}

impl FireId {
    /// A fire id for `flow` at `scheduled`.
    pub fn new(flow: impl Into<Arc<str>>, scheduled: Timestamp) -> Self {
        FireId {
            flow: flow.into(),
            scheduled,
        }
    }

    /// The flow's id.
    pub fn flow(&self) -> &str {
        &self.flow
    }

    /// The fire's scheduled wall time (for interval flows: the monotonic fire time as seen
    /// on the wall clock when the run started).
    pub fn scheduled(&self) -> Timestamp {
        self.scheduled
    }
}

impl fmt::Display for FireId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.flow, self.scheduled)
    }
}

/// The scheduler's cooperative stop signal, shared by every run: set when `stop` begins, so
/// a run can wind down before the stop deadline cancels it outright.
#[derive(Clone, Default)]
pub struct StopSignal {
    inner: Arc<StopInner>,
}

#[derive(Default)]
struct StopInner {
    stopped: AtomicBool,
    waiters: Lock<Vec<Waker>>,
}

impl Default for Lock<Vec<Waker>> {
    fn default() -> Self {
        Lock::new(Vec::new())
    }
}

impl StopSignal {
    /// A signal that has not fired.
    pub fn new() -> Self {
        StopSignal::default()
    }

    /// Fires the signal and wakes every [`StopSignal::stopped`] future. Idempotent.
    pub fn fire(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        let waiters = self.inner.waiters.with(core::mem::take);
        waiters.into_iter().for_each(Waker::wake);
    }

    /// Whether the signal has fired.
    pub fn is_fired(&self) -> bool {
        self.inner.stopped.load(Ordering::SeqCst)
    }

    /// A future that completes once the signal fires.
    pub fn stopped(&self) -> Stopped<'_> {
        Stopped { signal: self }
    }
}

impl fmt::Debug for StopSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StopSignal")
            .field("fired", &self.is_fired())
            .finish()
    }
}

/// The future returned by [`StopSignal::stopped`].
#[derive(Debug)]
pub struct Stopped<'a> {
    signal: &'a StopSignal,
}

impl Future for Stopped<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.signal.is_fired() {
            return Poll::Ready(());
        }
        self.signal.inner.waiters.with(|w| {
            if !w.iter().any(|x| x.will_wake(cx.waker())) {
                w.push(cx.waker().clone());
            }
        });
        // Re-check: `fire` may have run between the first check and the registration.
        if self.signal.is_fired() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// What one run receives: its [`FireId`] and the scheduler's stop signal.
#[derive(Debug, Clone)]
pub struct Fire {
    id: FireId,
    stop: StopSignal,
}

impl Fire {
    /// A fire (the scheduler makes these; tests of a job may too).
    pub fn new(id: FireId, stop: StopSignal) -> Self {
        Fire { id, stop }
    }

    /// This run's fire id.
    pub fn id(&self) -> &FireId {
        &self.id
    }

    /// Whether the scheduler is stopping: finish soon, the stop deadline will cancel the run.
    pub fn is_stopping(&self) -> bool {
        self.stop.is_fired()
    }

    /// The scheduler's stop signal (await [`StopSignal::stopped`] to react to a stop).
    pub fn stop_signal(&self) -> &StopSignal {
        &self.stop
    }
}

/// Something a scheduler runs once per fire.
///
/// `input` is the flow's `initial_state`, cloned for each run. Errors make the run a
/// failure of the flow (backoff, and eventually a trip); with `std`, so does a panic.
/// `setup` runs once per flow at `start()` (in registration order) and `teardown` once at
/// stop (in reverse order); a failing `setup` fails `start()`.
///
/// Plain async closures become jobs through [`job_fn`], or directly when they take only the
/// [`Fire`]:
///
/// ```
/// use cano_core::scheduler::{job_fn, Fire, Job};
/// use cano_core::CanoError;
///
/// fn assert_job<S, J: Job<S>>(_: &J) {}
/// let with_input = job_fn(|n: u32, fire: Fire| async move {
///     if n > 3 { Err(CanoError::task_execution("too big")) } else { Ok(()) }
/// });
/// assert_job::<u32, _>(&with_input);
/// let fire_only = |_fire: Fire| async move { Ok::<(), CanoError>(()) };
/// assert_job::<(), _>(&fire_only);
/// ```
pub trait Job<S>: Send + Sync + 'static {
    /// Runs once for one fire.
    fn run<'a>(&'a self, input: S, fire: Fire) -> BoxFuture<'a, CanoResult<()>>;

    /// Prepares resources, once at `start()`. Does nothing by default.
    fn setup(&self) -> BoxFuture<'_, CanoResult<()>> {
        Box::pin(core::future::ready(Ok(())))
    }

    /// Releases resources, once at stop. Does nothing by default.
    fn teardown(&self) -> BoxFuture<'_, CanoResult<()>> {
        Box::pin(core::future::ready(Ok(())))
    }
}

/// A closure `Fn(input, Fire) -> impl Future<Output = CanoResult<()>>` as a [`Job`]; see
/// [`job_fn`].
pub struct JobFn<F, S> {
    f: F,
    _input: PhantomData<fn(S)>,
}

impl<F, S> fmt::Debug for JobFn<F, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JobFn")
    }
}

/// Turns an async closure taking the flow's input and the [`Fire`] into a [`Job`].
pub fn job_fn<S, F, Fut>(f: F) -> JobFn<F, S>
where
    F: Fn(S, Fire) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CanoResult<()>> + Send + 'static,
{
    JobFn {
        f,
        _input: PhantomData,
    }
}

impl<S, F, Fut> Job<S> for JobFn<F, S>
where
    S: 'static,
    F: Fn(S, Fire) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CanoResult<()>> + Send + 'static,
{
    fn run<'a>(&'a self, input: S, fire: Fire) -> BoxFuture<'a, CanoResult<()>> {
        Box::pin((self.f)(input, fire))
    }
}

impl<S, F, Fut> Job<S> for F
where
    F: Fn(Fire) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CanoResult<()>> + Send + 'static,
{
    fn run<'a>(&'a self, _input: S, fire: Fire) -> BoxFuture<'a, CanoResult<()>> {
        Box::pin(self(fire))
    }
}
