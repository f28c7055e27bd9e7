//! The executor loop: embassy's raw executor, idling with WFI, running one application
//! future (spawned through cano's spawner, like everything else).
//!
//! embassy-executor's stock Cortex-M platform idles with WFE, which QEMU treats as a yield,
//! so the emulator would spin at 100% CPU for the whole run. WFI really sleeps until the
//! next interrupt (here, SysTick).

use alloc::boxed::Box;
use core::future::Future;
use core::sync::atomic::{AtomicBool, Ordering};

use cano_embassy::{EmbassySpawner, Pool, Spawner};
use embassy_executor::raw;

use crate::systick;

/// The application future's slot.
static APP_POOL: Pool<1> = Pool::new();

/// Set whenever a task is woken, from task code or from an interrupt.
static WORK_PENDING: AtomicBool = AtomicBool::new(true);

// embassy-executor without a platform feature calls this unmangled symbol to wake the
// executor.
#[unsafe(export_name = "__pender")]
fn __pender(_context: *mut ()) {
    WORK_PENDING.store(true, Ordering::Release);
}

/// Starts SysTick, spawns `app` onto a new executor, and runs the executor forever. `app`
/// gets its spawner with `SendSpawner::for_current_executor().await`.
pub fn run(app: impl Future<Output = ()> + Send + 'static) -> ! {
    systick::start();
    let executor: &'static raw::Executor =
        Box::leak(Box::new(raw::Executor::new(core::ptr::null_mut())));
    EmbassySpawner::new(executor.spawner(), &APP_POOL)
        .spawn(Box::pin(app))
        .expect("the application's pool is empty at start");
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
