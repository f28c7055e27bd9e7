//! The one lock inside cano-core, and a set of parked wakers.
//!
//! Every [`Lock`] is its own lock: two `MemoryStore`s (or a store and a scheduler) never
//! contend with each other.
//!
//! * With feature `std` it is a `std::sync::Mutex` per object. A poisoned mutex is used as
//!   is: sections run no user code, so a panic inside one is a bug in cano or an allocation
//!   failure, and refusing every later call would only turn it into a cascade of panics.
//! * Without `std` it is a critical section around a `RefCell` (the `critical-section`
//!   crate, the primitive the embassy ecosystem already uses): safe code, no spinning, and
//!   correct even when an interrupt-mode executor contends with thread mode on a
//!   microcontroller, where a spin lock could deadlock. There the final binary picks the
//!   implementation (`cortex-m/critical-section-single-core`, …); cano-core never enables
//!   `critical-section/std`, whose implementation is one mutex for the whole process.
//!
//! Either way every section is a handful of instructions: no user code, no allocation-heavy
//! work, and never an `.await` inside one.

use alloc::vec::Vec;
#[cfg(not(feature = "std"))]
use core::cell::RefCell;
use core::task::Waker;

/// A value behind its own lock.
pub(crate) struct Lock<T> {
    #[cfg(feature = "std")]
    cell: std::sync::Mutex<T>,
    #[cfg(not(feature = "std"))]
    cell: critical_section::Mutex<RefCell<T>>,
}

impl<T> Lock<T> {
    pub(crate) const fn new(value: T) -> Self {
        Lock {
            #[cfg(feature = "std")]
            cell: std::sync::Mutex::new(value),
            #[cfg(not(feature = "std"))]
            cell: critical_section::Mutex::new(RefCell::new(value)),
        }
    }

    /// Runs `f` on the value under the lock. `f` must not call back into the same lock (it
    /// would deadlock on `std` and panic on the `RefCell` without it), so it never runs user
    /// code.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        #[cfg(feature = "std")]
        {
            let mut guard = self
                .cell
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut guard)
        }
        #[cfg(not(feature = "std"))]
        {
            critical_section::with(|cs| f(&mut self.cell.borrow_ref_mut(cs)))
        }
    }
}

impl<T: Default> Default for Lock<T> {
    fn default() -> Self {
        Lock::new(T::default())
    }
}

/// Wakers of futures waiting for one event, each under a stable id so a dropped future can
/// take its waker back out.
#[derive(Default)]
pub(crate) struct Waiters {
    next_id: u64,
    parked: Vec<(u64, Waker)>,
}

impl Waiters {
    /// Parks (or refreshes) the waker of the future whose id lives in `id`.
    pub(crate) fn park(&mut self, id: &mut Option<u64>, waker: &Waker) {
        if let Some(key) = *id
            && let Some(slot) = self.parked.iter_mut().find(|(k, _)| *k == key)
        {
            if !slot.1.will_wake(waker) {
                slot.1 = waker.clone();
            }
            return;
        }
        let key = *id.get_or_insert_with(|| {
            self.next_id += 1;
            self.next_id
        });
        self.parked.push((key, waker.clone()));
    }

    /// Removes the waker parked under `id`, if it is still there.
    pub(crate) fn unpark(&mut self, id: u64) -> Option<Waker> {
        let at = self.parked.iter().position(|(k, _)| *k == id)?;
        Some(self.parked.swap_remove(at).1)
    }

    /// Takes every parked waker, to be woken outside the lock.
    pub(crate) fn take_all(&mut self) -> Vec<(u64, Waker)> {
        core::mem::take(&mut self.parked)
    }
}

/// Wakes every waker taken out of a [`Waiters`], outside any lock.
pub(crate) fn wake_all(wakers: Vec<(u64, Waker)>) {
    for (_, waker) in wakers {
        waker.wake();
    }
}
