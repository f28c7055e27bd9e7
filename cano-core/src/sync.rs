//! The one lock inside cano-core, and a set of parked wakers.
//!
//! cano-core is `no_std`, so `std::sync::Mutex` is out. The lock is a critical section around
//! a `RefCell` (the `critical-section` crate, the primitive the embassy ecosystem already
//! uses): safe code, no spinning, and correct even when an interrupt-mode executor contends
//! with thread mode on a microcontroller, where a spin lock could deadlock. On a host
//! (feature `std`) a critical section is a process-wide mutex, which is fine because every
//! section here is a handful of instructions: no user code, no allocation-heavy work, and
//! never an `.await` inside one.

use alloc::vec::Vec;
use core::cell::RefCell;
use core::task::Waker;

/// A value behind a critical section.
pub(crate) struct Lock<T> {
    cell: critical_section::Mutex<RefCell<T>>,
}

impl<T> Lock<T> {
    pub(crate) const fn new(value: T) -> Self {
        Lock {
            cell: critical_section::Mutex::new(RefCell::new(value)),
        }
    }

    /// Runs `f` on the value inside a critical section. `f` must not call back into the
    /// same lock (it would panic on the `RefCell`), so it never runs user code.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        critical_section::with(|cs| f(&mut self.cell.borrow_ref_mut(cs)))
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
