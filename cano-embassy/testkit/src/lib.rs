//! # cano-embassy-testkit
//!
//! Virtual time for embassy code in host tests: [`run_virtual`] drives an embassy executor and,
//! whenever no task is ready, jumps the clock straight to the next timer deadline. A day of
//! timers runs in milliseconds of real time, and every timer fires exactly at its tick, much
//! like tokio's paused clock. [`block_on_virtual`] runs one future to completion that way and
//! returns its output.
//!
//! Linking this crate *is* the test binary's embassy platform. It defines:
//!
//! * the embassy-time driver (`_embassy_time_now`, `_embassy_time_schedule_wake`), with
//!   embassy's own timer queue ([`embassy_time_queue_utils::Queue`]), so timers behave as they
//!   do on firmware built with the same embassy-time features;
//! * the executor's `__pender`;
//! * the critical-section implementation (`critical-section/std`).
//!
//! A binary has exactly one of each, so never link this crate together with embassy's
//! `platform-std`, `embassy-time/std`, `embassy-time/mock-driver` or another driver: the link
//! fails with "symbol `_embassy_time_now` is already defined".
//!
//! The clock and the pender are process-global, like a microcontroller's, so [`run_virtual`]
//! holds a process-wide lock: tests in one binary may run on parallel threads, but their
//! virtual-time runs take turns.
//!
//! ```
//! use std::sync::atomic::{AtomicBool, Ordering};
//!
//! static WOKE: AtomicBool = AtomicBool::new(false);
//!
//! #[embassy_executor::task]
//! async fn sleeper() {
//!     embassy_time::Timer::after_secs(3_600).await; // an hour of virtual time
//!     WOKE.store(true, Ordering::SeqCst);
//! }
//!
//! let ticks = cano_embassy_testkit::run_virtual(
//!     |spawner| spawner.spawn(sleeper().unwrap()),
//!     || WOKE.load(Ordering::SeqCst),
//! );
//! assert_eq!(ticks, embassy_time::Duration::from_secs(3_600).as_ticks());
//! ```

use core::cell::{Cell, RefCell};
use core::future::Future;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::Waker;
use std::rc::Rc;
use std::sync::Mutex as StdMutex;

use critical_section::Mutex;
use embassy_executor::{Spawner, raw};
use embassy_time_driver::Driver;
use embassy_time_queue_utils::Queue;

/// After this many executor polls in a row without time moving, [`run_virtual`] reports a
/// livelock (tasks that keep waking each other) instead of spinning forever.
pub const MAX_POLLS_WITHOUT_PROGRESS: u32 = 1_000_000;

struct VirtualDriver {
    now: Mutex<Cell<u64>>,
    queue: Mutex<RefCell<Queue>>,
}

embassy_time_driver::time_driver_impl!(static DRIVER: VirtualDriver = VirtualDriver {
    now: Mutex::new(Cell::new(0)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

impl Driver for VirtualDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.now.borrow(cs).get())
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let mut queue = self.queue.borrow_ref_mut(cs);
            queue.schedule_wake(at, waker);
            // Wakes the waker at once if `at` is not in the future.
            queue.next_expiration(self.now.borrow(cs).get());
        })
    }
}

impl VirtualDriver {
    /// Moves the clock to the earliest pending deadline and wakes every timer due then.
    /// Returns the new time, or `None` if no timer is pending.
    fn jump_to_next_deadline(&self) -> Option<u64> {
        critical_section::with(|cs| {
            let mut queue = self.queue.borrow_ref_mut(cs);
            let now = self.now.borrow(cs).get();
            let next = queue.next_expiration(now);
            if next == u64::MAX {
                return None;
            }
            self.now.borrow(cs).set(next);
            queue.next_expiration(next);
            Some(next)
        })
    }
}

/// Set by the executor whenever a task is woken.
static WORK_PENDING: AtomicBool = AtomicBool::new(false);

// The executor (embassy-executor without a platform feature) calls this symbol when a task is
// woken; it must be exported under exactly this unmangled name.
#[allow(unsafe_code)]
#[unsafe(export_name = "__pender")]
fn __pender(_context: *mut ()) {
    WORK_PENDING.store(true, Ordering::SeqCst);
}

/// The clock, the timer queue and the pender are process-global: one run at a time.
static ONE_RUN_AT_A_TIME: StdMutex<()> = StdMutex::new(());

/// Runs embassy tasks on virtual time until `done()` returns true, and returns how many ticks
/// of virtual time the run took.
///
/// `init` receives the spawner of a fresh executor and spawns the tasks. Then, repeatedly:
/// every ready task is polled; `done()` is checked; if no task was woken meanwhile, the clock
/// jumps to the earliest pending timer deadline, waking the timers due then.
///
/// Virtual time is monotonic across runs in one process (it never resets, as on a real
/// device), so assert on differences from a reading taken at the start of the run.
/// Tasks still alive when `done()` returns are never polled again; the executor is leaked.
///
/// # Panics
///
/// * Deadlock: no task is ready, no timer is pending and `done()` is still false.
/// * Livelock: tasks kept waking each other for [`MAX_POLLS_WITHOUT_PROGRESS`] polls while
///   time stood still.
/// * A panic in a task, `init` or `done` propagates out of this function.
pub fn run_virtual(init: impl FnOnce(Spawner), mut done: impl FnMut() -> bool) -> u64 {
    // A test that panicked in an earlier run poisons the lock; the state it guards is still
    // consistent, because each run starts from whatever time the previous one reached.
    let _turn = ONE_RUN_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let start = DRIVER.now();
    let executor: &'static raw::Executor =
        Box::leak(Box::new(raw::Executor::new(core::ptr::null_mut())));
    init(executor.spawner());
    let mut polls_without_progress = 0u32;
    loop {
        WORK_PENDING.store(false, Ordering::SeqCst);
        // SAFETY: `executor` is 'static, and only this thread polls it (the lock above keeps
        // other runs out); `poll` is not re-entered from a task.
        #[allow(unsafe_code)]
        unsafe {
            executor.poll()
        };
        if done() {
            return DRIVER.now() - start;
        }
        if WORK_PENDING.load(Ordering::SeqCst) {
            polls_without_progress += 1;
            assert!(
                polls_without_progress < MAX_POLLS_WITHOUT_PROGRESS,
                "livelock: tasks kept waking each other for {polls_without_progress} polls \
                 at virtual tick {} without time moving",
                DRIVER.now(),
            );
            continue;
        }
        polls_without_progress = 0;
        if DRIVER.jump_to_next_deadline().is_none() {
            panic!(
                "deadlock at virtual tick {}: no task is ready, no timer is pending, and the \
                 run is not done",
                DRIVER.now()
            );
        }
    }
}

/// Runs the future `make` returns as a task on virtual time until it completes, and returns
/// its output; see [`run_virtual`] for how time moves.
///
/// `make` receives the executor's spawner, so the future may spawn other tasks; those that
/// are still alive when it completes are never polled again. The future need not be `Send`:
/// it runs on this thread, in a task storage of its own (leaked, like the executor).
///
/// ```
/// let ticks_slept = cano_embassy_testkit::block_on_virtual(|_spawner| async {
///     let start = embassy_time::Instant::now();
///     embassy_time::Timer::after_secs(86_400).await; // a virtual day
///     start.elapsed().as_ticks()
/// });
/// assert_eq!(ticks_slept, embassy_time::Duration::from_secs(86_400).as_ticks());
/// ```
///
/// # Panics
///
/// As [`run_virtual`]: on deadlock (for instance the future waits for something that never
/// happens), livelock, or a panic in a task.
pub fn block_on_virtual<F>(make: impl FnOnce(Spawner) -> F) -> F::Output
where
    F: Future + 'static,
    F::Output: 'static,
{
    let output = Rc::new(RefCell::new(None));
    let output_in = output.clone();
    run_virtual(
        move |spawner| {
            let future = make(spawner);
            spawn_in_own_storage(spawner, async move {
                let value = future.await;
                *output_in.borrow_mut() = Some(value);
            });
        },
        || output.borrow().is_some(),
    );
    output
        .borrow_mut()
        .take()
        .expect("run_virtual returns once the output is set")
}

/// Spawns `future` as an embassy task without a `#[task]` function or a shared pool.
fn spawn_in_own_storage<F: Future<Output = ()> + 'static>(spawner: Spawner, future: F) {
    let storage: &'static raw::TaskStorage<F> = Box::leak(Box::new(raw::TaskStorage::new()));
    let token = storage
        .spawn(move || future)
        .expect("a new task storage is free");
    spawner.spawn(token);
}
