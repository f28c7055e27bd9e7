//! cano-embassy on emulated Cortex-M: runs the scenarios in `scenarios.rs` on embassy with a
//! SysTick time driver, prints each result over semihosting, and exits QEMU with 0 when all
//! pass, 1 when one fails, 101 on a panic.
//!
//! Machines: lm3s6965evb (thumbv7m-none-eabi, default features) and mps2-an386
//! (thumbv7em-none-eabihf, `--features mps2`). `qemu-smoke.sh` builds and runs both.
#![no_std]
#![no_main]

extern crate alloc;

#[cfg(feature = "defmt")]
mod defmt_sink;
mod heap;
mod host;
mod panic;
mod platform;
mod scenarios;
mod split_workflow;
mod systick;

use core::pin::pin;
use core::time::Duration;

use cano_embassy::{Clock, EmbassyClock, EmbassySpawner, Pool};
use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use embassy_executor::SendSpawner;
use futures::future::{Either, select};

use crate::heap::PeakHeap;
use crate::scenarios::{Env, POOL_SIZE};

#[global_allocator]
pub static HEAP: PeakHeap = PeakHeap::empty();
/// The scheduler scenario peaks at about 6.4 KiB (printed at the end of a run); the rest is
/// headroom for timing-dependent overlaps of runs and for the allocator's fragmentation.
const HEAP_BYTES: usize = 10 * 1024;

/// A scenario that has not finished after this long has failed.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(5);

/// The scenarios' own futures.
static SCENARIO_POOL: Pool<POOL_SIZE> = Pool::new();

#[entry]
fn main() -> ! {
    // SAFETY: first thing, once, before any allocation.
    unsafe {
        embedded_alloc::init!(HEAP, HEAP_BYTES);
    }
    platform::run(run_all())
}

async fn run_all() {
    let env = Env {
        clock: EmbassyClock::new(),
        spawner: EmbassySpawner::from_send_spawner(
            SendSpawner::for_current_executor().await,
            &SCENARIO_POOL,
        ),
    };
    let (mut passed, mut failed) = (0u32, 0u32);
    for scenario in scenarios::ALL {
        let start = env.clock.now();
        let timeout = pin!(env.clock.sleep_until(start + SCENARIO_TIMEOUT));
        let outcome = match select((scenario.run)(env), timeout).await {
            Either::Left((outcome, _)) => outcome,
            Either::Right(((), _)) => Err(alloc::format!(
                "timed out after {} ms",
                SCENARIO_TIMEOUT.as_millis() as u64
            )),
        };
        let took = env.clock.now() - start;
        match outcome {
            Ok(()) => {
                passed += 1;
                hprintln!("ok     {} ({} ms)", scenario.name, millis(took));
            }
            Err(why) => {
                failed += 1;
                hprintln!("FAILED {} ({} ms): {}", scenario.name, millis(took), why);
            }
        }
    }
    hprintln!(
        "heap: peak {} B of {} B, {} B still in use; Pool<1> = {} B, Pool<{}> = {} B",
        HEAP.peak(),
        HEAP_BYTES,
        HEAP.used(),
        size_of::<Pool<1>>(),
        POOL_SIZE,
        size_of::<Pool<POOL_SIZE>>(),
    );
    #[cfg(feature = "defmt")]
    {
        // The scenarios retry, split and trip: with DEFMT_LOG=trace cano logs all of it.
        let logged = defmt_sink::bytes_logged();
        hprintln!("defmt: {} B of cano logs encoded", logged);
        if logged == 0 && option_env!("DEFMT_LOG") == Some("trace") {
            failed += 1;
            hprintln!("FAILED defmt: cano logged nothing");
        }
    }
    hprintln!("scenarios: {passed} passed, {failed} failed");
    host::exit(if failed == 0 { 0 } else { 1 });
}

/// Whole milliseconds, as `u64`: printing the `u128` of `Duration::as_millis` would link
/// 128-bit formatting (1.5 KiB of flash).
fn millis(duration: Duration) -> u64 {
    duration.as_millis() as u64
}
