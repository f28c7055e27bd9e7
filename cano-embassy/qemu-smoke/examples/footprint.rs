//! What cano costs an application: the smoke firmware's scheduler (an interval flow, a cron
//! flow, the manual split workflow, and a flow that backs off and trips), with no test
//! harness around it. It prints one line and exits QEMU with 0 when the flows did what they
//! should, 1 when not, 101 on a panic.
//!
//! `qemu-smoke.sh` builds it and prints its flash and RAM next to the smoke firmware's, so
//! the difference between the two is the harness, not cano.
#![no_std]
#![no_main]

extern crate alloc;

// The smoke firmware's platform and workflow, shared as files; not every item is used here.
#[cfg(feature = "defmt")]
#[path = "../src/defmt_sink.rs"]
mod defmt_sink;
#[allow(dead_code)]
#[path = "../src/heap.rs"]
mod heap;
#[allow(dead_code)]
#[path = "../src/host.rs"]
mod host;
#[path = "../src/panic.rs"]
mod panic;
#[path = "../src/platform.rs"]
mod platform;
#[allow(dead_code)]
#[path = "../src/split_workflow.rs"]
mod split_workflow;
#[path = "../src/stack_paint.rs"]
mod stack_paint;
#[path = "../src/systick.rs"]
mod systick;

use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;

use cano_embassy::jiff::Timestamp;
use cano_embassy::scheduler::{Fire, Scheduler};
use cano_embassy::{
    BackoffPolicy, CanoError, CanoResult, Clock, EmbassyClock, EmbassySpawner, Pool, Status,
};
use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use embassy_executor::SendSpawner;

use crate::heap::PeakHeap;
use crate::split_workflow::{BRANCH_ENDS, Log, Step, split_workflow};

#[global_allocator]
static HEAP: PeakHeap = PeakHeap::empty();
/// 8 KiB sufficed before the scheduler kept a run history (4 runs per flow without `std`)
/// and, with `defmt`, an event ring for its logs (16 events): those need about 1.5 KiB more.
const HEAP_BYTES: usize = 10 * 1024;

/// The scheduler's loop and one run of each of its four flows.
static SCHEDULER_POOL: Pool<5> = Pool::new();

static INTERVAL_RUNS: AtomicU32 = AtomicU32::new(0);
static CRON_RUNS: AtomicU32 = AtomicU32::new(0);

#[entry]
fn main() -> ! {
    stack_paint::paint();
    // SAFETY: first thing, once, before any allocation.
    unsafe {
        embedded_alloc::init!(HEAP, HEAP_BYTES);
    }
    platform::run(app())
}

async fn app() {
    let executor = SendSpawner::for_current_executor().await;
    let spawner = EmbassySpawner::from_send_spawner(executor, &SCHEDULER_POOL);
    let passed = run(spawner).await.unwrap_or(false);
    // With DEFMT_LOG=trace the flows' runs are logged; nothing logged means no logs linked.
    #[cfg(feature = "defmt")]
    let passed =
        passed && (defmt_sink::bytes_logged() > 0 || option_env!("DEFMT_LOG") != Some("trace"));
    hprintln!(
        "footprint: {}, heap peak {} B of {} B, stack peak {} B of {} B",
        if passed { "ok" } else { "FAILED" },
        HEAP.peak(),
        HEAP_BYTES,
        stack_paint::high_water(),
        stack_paint::size()
    );
    #[cfg(feature = "defmt")]
    hprintln!(
        "defmt: {} B of cano logs encoded",
        defmt_sink::bytes_logged()
    );
    host::exit(if passed { 0 } else { 1 });
}

/// Runs the four flows for 1.25 s from 12:00:00.800 on the wall clock; whether they did
/// what they should.
async fn run(spawner: EmbassySpawner<5>) -> CanoResult<bool> {
    let clock = EmbassyClock::new();
    let (begun, joined) = (Log::new(), Log::new());
    let count = |runs: &'static AtomicU32| {
        move |_: Fire| async move {
            runs.fetch_add(1, Ordering::Relaxed);
            Ok::<(), CanoError>(())
        }
    };
    let failing = |_: Fire| async { Err::<(), CanoError>(CanoError::task_execution("offline")) };
    let mut scheduler = Scheduler::new();
    let interval = Duration::from_millis(100);
    scheduler.every("interval", count(&INTERVAL_RUNS), Step::Begin, interval)?;
    scheduler.cron("cron", count(&CRON_RUNS), Step::Begin, "1,2,30 * * * * *")?;
    scheduler.manual("split", split_workflow(&begun, &joined), Step::Begin)?;
    scheduler.every("flaky", failing, Step::Begin, Duration::from_millis(20))?;
    let backoff = BackoffPolicy {
        initial: Duration::from_millis(50),
        jitter: 0.0,
        ..BackoffPolicy::with_trip(3)
    };
    scheduler.set_backoff("flaky", backoff)?;

    // 2026-01-01T12:00:00.800Z: the cron flow fires 200 ms and 1200 ms from now.
    let wall = Timestamp::from_millisecond(1_767_268_800_800)
        .map_err(|_| CanoError::configuration("wall time out of range"))?;
    let t0 = clock.now();
    clock.set_wall_now(wall);
    let running = scheduler.start(clock, spawner).await?;
    clock.sleep_until(t0 + Duration::from_millis(300)).await;
    running.trigger("split")?;
    clock.sleep_until(t0 + Duration::from_millis(1250)).await;
    let flaky = running.status("flaky");
    let report = running.stop_within(Duration::from_millis(500)).await?;
    let tripped = flaky.is_some_and(|info| {
        matches!(info.status, Status::Tripped { streak: 3, .. }) && info.run_count == 3
    });
    let split_joined = joined.entries().iter().map(|j| j.ends).eq([BRANCH_ENDS]);
    Ok(tripped
        && split_joined
        && report.cancelled.is_empty()
        && INTERVAL_RUNS.load(Ordering::Relaxed) == 13
        && CRON_RUNS.load(Ordering::Relaxed) == 2)
}
