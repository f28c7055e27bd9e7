//! Cooperative cancellation: a [`CancellationToken`] handed to a run.
//!
//! A workflow run checks its token at every state boundary and races it against the running
//! task, so a cancelled run stops at its next `.await` (the task's future is dropped there)
//! and returns [`CanoError::Cancelled`](crate::CanoError::Cancelled). The scheduler uses one
//! token per run to cancel in-flight runs when it stops.

use alloc::sync::Arc;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll};

use crate::sync::{Lock, Waiters, wake_all};

/// A cancellation flag shared by clones; any clone may cancel, every clone sees it.
///
/// [`CancellationToken::never`] is a token that cannot be cancelled and costs nothing to
/// check: runs started without a token use it.
///
/// ```
/// use cano_core::CancellationToken;
///
/// let token = CancellationToken::new();
/// let seen_by_run = token.clone();
/// assert!(!seen_by_run.is_cancelled());
/// token.cancel();
/// assert!(seen_by_run.is_cancelled());
/// assert!(!CancellationToken::never().is_cancelled());
/// ```
#[derive(Clone, Default)]
pub struct CancellationToken {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    cancelled: AtomicBool,
    waiters: Lock<Waiters>,
}

impl CancellationToken {
    /// A token that is not cancelled yet.
    pub fn new() -> Self {
        CancellationToken {
            inner: Some(Arc::new(Inner {
                cancelled: AtomicBool::new(false),
                waiters: Lock::new(Waiters::default()),
            })),
        }
    }

    /// A token that can never be cancelled. [`cancel`](Self::cancel) on it does nothing.
    pub const fn never() -> Self {
        CancellationToken { inner: None }
    }

    /// Whether this token can be cancelled at all (false only for [`never`](Self::never)).
    pub fn can_be_cancelled(&self) -> bool {
        self.inner.is_some()
    }

    /// Cancels the token and wakes every future waiting in [`cancelled`](Self::cancelled).
    /// Idempotent.
    pub fn cancel(&self) {
        if let Some(inner) = &self.inner {
            inner.cancelled.store(true, Ordering::Release);
            wake_all(inner.waiters.with(Waiters::take_all));
        }
    }

    /// Whether this handle is the token's only one (no clone of it is alive), so handing
    /// it to a new owner cannot reach anyone who held it before.
    pub(crate) fn is_sole_handle(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|inner| Arc::strong_count(inner) == 1)
    }

    /// Whether the token has been cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|inner| inner.cancelled.load(Ordering::Acquire))
    }

    /// A future that completes once the token is cancelled (never, for
    /// [`never`](Self::never)).
    pub fn cancelled(&self) -> WaitForCancellation {
        WaitForCancellation {
            inner: self.inner.clone(),
            id: None,
        }
    }
}

impl fmt::Debug for CancellationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            None => f.write_str("CancellationToken(never)"),
            Some(_) => f
                .debug_struct("CancellationToken")
                .field("cancelled", &self.is_cancelled())
                .finish(),
        }
    }
}

/// The future returned by [`CancellationToken::cancelled`]. Dropping it unregisters it.
#[must_use = "futures do nothing unless awaited"]
pub struct WaitForCancellation {
    inner: Option<Arc<Inner>>,
    id: Option<u64>,
}

impl Future for WaitForCancellation {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let Some(inner) = &this.inner else {
            return Poll::Pending;
        };
        if inner.cancelled.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        let id = &mut this.id;
        inner.waiters.with(|w| {
            // Checked again under the lock: `cancel` sets the flag before taking the wakers.
            if inner.cancelled.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                w.park(id, cx.waker());
                Poll::Pending
            }
        })
    }
}

impl Drop for WaitForCancellation {
    fn drop(&mut self) {
        if let (Some(inner), Some(id)) = (&self.inner, self.id) {
            // The waker is dropped outside the lock.
            drop(inner.waiters.with(|w| w.unpark(id)));
        }
    }
}

impl fmt::Debug for WaitForCancellation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WaitForCancellation")
    }
}
