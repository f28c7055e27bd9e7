//! [`DynSpawner`]: any [`Spawner`] behind one concrete type, so that code which only some
//! programs use (a checkpointed or compensating run, see
//! [`Workflow::with_checkpoint_store`](crate::Workflow::with_checkpoint_store)) is compiled
//! once, for one context type, and reached through a function pointer.

use alloc::sync::Arc;
use core::any::Any;
use core::fmt;

use crate::runtime::{BoxFuture, SpawnError, Spawner};

trait ErasedSpawner: Send + Sync {
    fn spawn(&self, future: BoxFuture) -> Result<(), SpawnError>;
}

impl<Sp: Spawner> ErasedSpawner for Sp {
    fn spawn(&self, future: BoxFuture) -> Result<(), SpawnError> {
        Spawner::spawn(self, future)
    }
}

/// A type-erased [`Spawner`]: cheap to clone.
#[derive(Clone)]
pub(crate) struct DynSpawner {
    inner: Arc<dyn ErasedSpawner>,
}

impl DynSpawner {
    /// Erases `spawner`'s type; a `DynSpawner` is shared, not wrapped again.
    pub(crate) fn new<Sp: Spawner>(spawner: Sp) -> Self {
        if let Some(erased) = (&spawner as &dyn Any).downcast_ref::<DynSpawner>() {
            return erased.clone();
        }
        DynSpawner {
            inner: Arc::new(spawner),
        }
    }
}

impl fmt::Debug for DynSpawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DynSpawner")
    }
}

impl Spawner for DynSpawner {
    fn spawn(&self, future: BoxFuture) -> Result<(), SpawnError> {
        self.inner.spawn(future)
    }
}
