//! [`DynClock`]: any [`Clock`] behind one concrete type, so that a [`Job`](crate::scheduler::Job) (a
//! trait object) can sleep on the scheduler's clock: a workflow's retries and timeouts run
//! on the fake clock in tests and on the runtime's clock in production.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::any::Any;
use core::fmt;

use futures::future::BoxFuture;
use jiff::Timestamp;

use crate::runtime::Clock;
use crate::time::Instant;

trait ErasedClock: Send + Sync {
    fn now(&self) -> Instant;
    fn wall_now(&self) -> Timestamp;
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()>;
}

impl<C: Clock> ErasedClock for C {
    fn now(&self) -> Instant {
        Clock::now(self)
    }
    fn wall_now(&self) -> Timestamp {
        Clock::wall_now(self)
    }
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(Clock::sleep_until(self, deadline))
    }
}

/// A type-erased [`Clock`]: cheap to clone; each sleep is boxed.
///
/// ```
/// use cano_core::scheduler::DynClock;
/// use cano_core::testing::FakeClock;
/// use cano_core::{Clock, Instant};
/// use cano_core::jiff::Timestamp;
/// use core::time::Duration;
///
/// let fake = FakeClock::new(Timestamp::UNIX_EPOCH);
/// let clock = DynClock::new(fake.clone());
/// fake.advance(Duration::from_secs(5));
/// assert_eq!(clock.now(), Instant::from_secs(5));
/// ```
#[derive(Clone)]
pub struct DynClock {
    inner: Arc<dyn ErasedClock>,
}

impl DynClock {
    /// Erases `clock`'s type. A `DynClock` is shared, not wrapped again (no second
    /// allocation, no second indirection on each reading).
    pub fn new<C: Clock>(clock: C) -> Self {
        if let Some(erased) = (&clock as &dyn Any).downcast_ref::<DynClock>() {
            return erased.clone();
        }
        DynClock {
            inner: Arc::new(clock),
        }
    }
}

impl fmt::Debug for DynClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynClock")
            .field("now", &self.inner.now())
            .finish()
    }
}

impl Clock for DynClock {
    type Sleep = BoxFuture<'static, ()>;

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn wall_now(&self) -> Timestamp {
        self.inner.wall_now()
    }

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        self.inner.sleep_until(deadline)
    }
}
