//! [`EmbassySpawner`]: cano's [`Spawner`] over an application-sized embassy task pool.

use core::fmt;

use cano_core::{BoxFuture, SpawnError, Spawner};
use embassy_executor::SendSpawner;
use embassy_executor::raw::TaskPool;

/// Room for `N` cano futures alive at once on an embassy executor.
///
/// Declare one as a `static` (it is `const`-constructible, so no macro and no nightly
/// feature) and hand it to [`EmbassySpawner::new`]. Each slot holds an embassy task header
/// and a boxed future's pointer; the future itself lives on the heap, allocated by the
/// caller of [`Spawner::spawn`]. A slot is free again as soon as its future completes.
///
/// ```
/// use cano_embassy::Pool;
///
/// /// Room for the scheduler's runs plus the branches of one split (see the crate docs).
/// static POOL: Pool<8> = Pool::new();
/// ```
pub type Pool<const N: usize> = TaskPool<BoxFuture, N>;

/// cano's [`Spawner`] on an embassy executor: each spawned future takes a slot of an
/// application-provided [`Pool`] and runs as an embassy task.
///
/// It spawns through embassy's [`SendSpawner`], because cano's `Spawner` must be `Send +
/// Sync` and every cano future is `Send` (see the crate docs). It is `Copy`, so clones are
/// free.
///
/// # Errors
///
/// [`Spawner::spawn`] returns [`SpawnError::PoolFull`] when all `N` slots hold running
/// futures; the future is dropped without being polled. It never panics.
///
/// ```
/// use cano_embassy::{EmbassySpawner, Pool, SpawnError, Spawner};
///
/// static POOL: Pool<1> = Pool::new();
///
/// # cano_embassy_testkit::run_virtual(|spawner: embassy_executor::Spawner| {
/// let spawner = EmbassySpawner::new(spawner, &POOL);
/// assert_eq!(spawner.capacity(), 1);
/// spawner.spawn(Box::pin(core::future::pending())).unwrap();
/// assert_eq!(spawner.spawn(Box::pin(async {})), Err(SpawnError::PoolFull));
/// # }, || true);
/// ```
#[derive(Clone, Copy)]
pub struct EmbassySpawner<const N: usize> {
    spawner: SendSpawner,
    pool: &'static Pool<N>,
}

impl<const N: usize> EmbassySpawner<N> {
    /// A spawner onto the executor behind `spawner`, with room for the `N` futures of `pool`.
    ///
    /// Usually called once in `main` with the spawner `#[embassy_executor::main]` passes in.
    pub fn new(spawner: embassy_executor::Spawner, pool: &'static Pool<N>) -> Self {
        EmbassySpawner::from_send_spawner(spawner.make_send(), pool)
    }

    /// Like [`EmbassySpawner::new`], from a [`SendSpawner`] (for example one obtained with
    /// `SendSpawner::for_current_executor().await` inside a task).
    pub const fn from_send_spawner(spawner: SendSpawner, pool: &'static Pool<N>) -> Self {
        EmbassySpawner { spawner, pool }
    }

    /// How many futures can be alive at once: the pool's size `N`.
    pub const fn capacity(&self) -> usize {
        N
    }
}

impl<const N: usize> fmt::Debug for EmbassySpawner<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbassySpawner")
            .field("capacity", &N)
            .finish_non_exhaustive()
    }
}

impl<const N: usize> Spawner for EmbassySpawner<N> {
    fn spawn(&self, future: BoxFuture) -> Result<(), SpawnError> {
        let token = self
            .pool
            .spawn(move || future)
            .map_err(|embassy_executor::SpawnError::Busy| SpawnError::PoolFull)?;
        self.spawner.spawn(token);
        Ok(())
    }
}
