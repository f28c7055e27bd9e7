//! Panic isolation: a panicking task, branch or scheduled run becomes an error of its own
//! state or run instead of taking the executor down (feature `std`; without it a panic is
//! whatever the target's panic handler does).
//!
//! Used by the workflow's run loop, by splits and by the scheduler's driver.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures::future::BoxFuture;

use crate::error::CanoError;

/// Runs `f`, turning a panic into a [`CanoError::TaskExecution`] (feature `std`; without it
/// a panic is whatever the target's panic handler does).
#[cfg(feature = "std")]
#[inline(always)]
pub(crate) fn isolate_panic<R>(f: impl FnOnce() -> R) -> Result<R, CanoError> {
    std::panic::catch_unwind(core::panic::AssertUnwindSafe(f)).map_err(|payload| {
        use alloc::borrow::Cow;
        let message: Cow<'_, str> = if let Some(s) = payload.downcast_ref::<&'static str>() {
            Cow::Borrowed(s)
        } else if let Some(s) = payload.downcast_ref::<alloc::string::String>() {
            Cow::Borrowed(s.as_str())
        } else {
            Cow::Borrowed("non-string panic payload")
        };
        crate::telemetry::panicked(&message);
        CanoError::task_execution(alloc::format!("panic: {message}"))
    })
}

/// Without `std` there is no unwinding to catch.
#[cfg(not(feature = "std"))]
pub(crate) fn isolate_panic<R>(f: impl FnOnce() -> R) -> Result<R, CanoError> {
    Ok(f())
}

/// A task future with panics isolated: the outer `Err` is a panic (never retried), the
/// inner result the task's own.
pub(crate) struct Isolated<'a, T>(pub(crate) BoxFuture<'a, Result<T, CanoError>>);

impl<T> Future for Isolated<'_, T> {
    type Output = Result<Result<T, CanoError>, CanoError>;

    // Inlined into the run loop: a plain state's task poll is the hot path, and once more
    // task shapes poll through here the compiler stops inlining it on its own.
    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match isolate_panic(|| self.0.as_mut().poll(cx)) {
            Err(panicked) => Poll::Ready(Err(panicked)),
            Ok(Poll::Ready(outcome)) => Poll::Ready(Ok(outcome)),
            Ok(Poll::Pending) => Poll::Pending,
        }
    }
}

/// Polls `future` (pinned by the caller) to its output, turning a panic in any of its polls
/// into an error (with `std`), without boxing it: how the scheduler isolates a whole run or a
/// teardown, and a batch an item.
///
/// It takes the future pinned, not by value: an `async fn` that pins its argument holds it
/// twice (the argument and the pinned local), and a scheduled run's future nests two such
/// wrappers (issue 15: a run's task was 952 bytes instead of 400).
pub(crate) fn isolate_future_panic<'a, T, F>(
    mut future: Pin<&'a mut F>,
) -> impl Future<Output = Result<T, CanoError>> + 'a
where
    F: Future<Output = Result<T, CanoError>>,
{
    core::future::poll_fn(move |cx| match isolate_panic(|| future.as_mut().poll(cx)) {
        Err(panicked) => Poll::Ready(Err(panicked)),
        Ok(poll) => poll,
    })
}
