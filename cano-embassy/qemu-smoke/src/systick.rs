//! A minimal embassy-time driver on the Cortex-M SysTick timer.
//!
//! One SysTick exception per embassy tick (TICK_HZ = 1000, from the
//! `embassy-time-driver/tick-hz-1_000` feature), a 64-bit tick counter, and embassy's own
//! timer queue (`embassy-time-queue-utils`, here its generic queue, which accepts the wakers
//! of cano's split branches and timeouts; see Cargo.toml). Real firmware uses its HAL's time
//! driver instead.

use core::cell::{Cell, RefCell};
use core::task::Waker;

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use critical_section::Mutex;
use embassy_time_driver::{Driver, TICK_HZ};
use embassy_time_queue_utils::Queue;

struct SysTickDriver {
    ticks: Mutex<Cell<u64>>,
    queue: Mutex<RefCell<Queue>>,
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    ticks: Mutex::new(Cell::new(0)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

impl Driver for SysTickDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.ticks.borrow(cs).get())
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let mut queue = self.queue.borrow_ref_mut(cs);
            queue.schedule_wake(at, waker);
            // Wakes the waker at once if `at` is not in the future.
            queue.next_expiration(self.ticks.borrow(cs).get());
        })
    }
}

/// SysTick's input clock as QEMU models the machine at reset.
#[cfg(not(feature = "mps2"))]
const CORE_HZ: u32 = 12_500_000; // lm3s6965evb: 200 MHz PLL / (SYSDIV 15 + 1)
#[cfg(feature = "mps2")]
const CORE_HZ: u32 = 25_000_000; // mps2-an385 / an386 / an500

/// Takes the core peripherals and starts SysTick at TICK_HZ from the machine's core clock.
///
/// # Panics
///
/// If the core peripherals were taken already.
pub fn start() {
    let core = cortex_m::Peripherals::take().expect("core peripherals are taken only here");
    init(core.SYST, CORE_HZ);
}

/// Starts SysTick at TICK_HZ from the core clock `core_hz`.
///
/// # Panics
///
/// If `core_hz / TICK_HZ` does not fit SysTick's 24-bit reload register.
fn init(mut syst: SYST, core_hz: u32) {
    let reload = core_hz / TICK_HZ as u32 - 1;
    assert!(
        reload > 0 && reload < (1 << 24),
        "SysTick reload out of range"
    );
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(reload);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let ticks = DRIVER.ticks.borrow(cs);
        let now = ticks.get() + 1;
        ticks.set(now);
        // Wakes every timer that is due; the executor's pender runs from here.
        DRIVER.queue.borrow_ref_mut(cs).next_expiration(now);
    });
}
