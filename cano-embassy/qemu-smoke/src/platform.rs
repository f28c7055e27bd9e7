//! The executor loop: embassy's raw executor, idling with WFI.
//!
//! embassy-executor's stock Cortex-M platform idles with WFE, which QEMU treats as a yield,
//! so the emulator would spin at 100% CPU for the whole run. WFI really sleeps until the
//! next interrupt (here, SysTick).

use core::sync::atomic::{AtomicBool, Ordering};

use embassy_executor::{Spawner, raw};

/// Set whenever a task is woken, from task code or from an interrupt.
static WORK_PENDING: AtomicBool = AtomicBool::new(true);

// embassy-executor without a platform feature calls this unmangled symbol to wake the
// executor.
#[unsafe(export_name = "__pender")]
fn __pender(_context: *mut ()) {
    WORK_PENDING.store(true, Ordering::Release);
}

/// Creates the executor, lets `init` spawn onto it, and runs it forever.
pub fn run(init: impl FnOnce(Spawner)) -> ! {
    let executor: &'static raw::Executor = alloc::boxed::Box::leak(alloc::boxed::Box::new(
        raw::Executor::new(core::ptr::null_mut()),
    ));
    init(executor.spawner());
    loop {
        WORK_PENDING.store(false, Ordering::Release);
        // SAFETY: `executor` is 'static and polled only from this loop, never re-entrantly.
        unsafe { executor.poll() };
        // With interrupts masked, a wake between the check and WFI still ends the WFI: a
        // pending interrupt wakes the core even while PRIMASK masks it.
        cortex_m::interrupt::free(|_| {
            if !WORK_PENDING.load(Ordering::Acquire) {
                cortex_m::asm::wfi();
            }
        });
    }
}
