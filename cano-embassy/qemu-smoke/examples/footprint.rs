//! What cano costs an application: the smoke firmware's scheduler (an interval flow, a cron
//! flow, a manual workflow with a split, and a flow that backs off and trips), with no test
//! harness around it. It prints one line and exits QEMU with 0 when the flows did what they
//! should, 1 when not, 101 on a panic.
//!
//! `qemu-smoke.sh` builds it and prints its flash and RAM next to the smoke firmware's, so
//! the difference between the two is the harness, not cano.
#![no_std]
#![no_main]

extern crate alloc;

// The smoke firmware's platform, shared as files; not every item is used here.
#[allow(dead_code)]
#[path = "../src/heap.rs"]
mod heap;
#[allow(dead_code)]
#[path = "../src/host.rs"]
mod host;
#[path = "../src/platform.rs"]
mod platform;
#[path = "../src/systick.rs"]
mod systick;

use alloc::boxed::Box;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use core::time::Duration;

use cano_embassy::jiff::Timestamp;
use cano_embassy::scheduler::{Fire, Scheduler};
use cano_embassy::{
    BackoffPolicy, CanoError, CanoResult, Clock, EmbassyClock, EmbassySpawner, JoinConfig,
    JoinStrategy, JoinTask, Pool, Resources, Spawner, SplitResult, Status, Task, TaskConfig,
    TaskResult, Workflow,
};
use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;

use crate::heap::PeakHeap;

#[global_allocator]
static HEAP: PeakHeap = PeakHeap::empty();
const HEAP_BYTES: usize = 8 * 1024;

#[cfg(not(feature = "mps2"))]
const CORE_HZ: u32 = 12_500_000;
#[cfg(feature = "mps2")]
const CORE_HZ: u32 = 25_000_000;

static APP_POOL: Pool<1> = Pool::new();
/// The scheduler's loop and one run of each of its four flows.
static SCHEDULER_POOL: Pool<5> = Pool::new();

static INTERVAL_RUNS: AtomicU32 = AtomicU32::new(0);
static CRON_RUNS: AtomicU32 = AtomicU32::new(0);
static JOINED_SUCCESSES: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Step {
    Begin,
    Fan,
    Merge,
    Done,
}

struct Begin;

impl Task<Step> for Begin {
    async fn run_bare(&self) -> CanoResult<TaskResult<Step>> {
        Ok(Step::Fan.into())
    }

    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }
}

/// Sleeps `.0` ms, then succeeds if `.1`.
struct Branch(u64, bool);

impl Task<Step> for Branch {
    async fn run_bare(&self) -> CanoResult<TaskResult<Step>> {
        let clock = EmbassyClock::new();
        clock
            .sleep_until(clock.now() + Duration::from_millis(self.0))
            .await;
        match self.1 {
            true => Ok(Step::Merge.into()),
            false => Err(CanoError::task_execution("branch failed")),
        }
    }

    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }
}

struct Merge;

impl JoinTask<Step> for Merge {
    async fn join(
        &self,
        _: &Resources,
        results: &SplitResult<Step>,
    ) -> CanoResult<TaskResult<Step>> {
        JOINED_SUCCESSES.store(results.successes.len(), Ordering::Relaxed);
        Ok(Step::Done.into())
    }
}

#[entry]
fn main() -> ! {
    // SAFETY: first thing, once, before any allocation.
    unsafe {
        embedded_alloc::init!(HEAP, HEAP_BYTES);
    }
    let core = cortex_m::Peripherals::take().expect("core peripherals are taken only here");
    systick::init(core.SYST, CORE_HZ);
    platform::run(|spawner| {
        let scheduler_spawner = EmbassySpawner::new(spawner, &SCHEDULER_POOL);
        EmbassySpawner::new(spawner, &APP_POOL)
            .spawn(Box::pin(app(scheduler_spawner)))
            .expect("the application's pool is empty at start");
    })
}

async fn app(spawner: EmbassySpawner<5>) {
    let passed = run(spawner).await.unwrap_or(false);
    hprintln!(
        "footprint: {}, heap peak {} B of {} B",
        if passed { "ok" } else { "FAILED" },
        HEAP.peak(),
        HEAP_BYTES
    );
    host::exit(if passed { 0 } else { 1 });
}

/// Runs the four flows for 1.3 s from 12:00:00.800 on the wall clock; whether they did
/// what they should.
async fn run(spawner: EmbassySpawner<5>) -> CanoResult<bool> {
    let clock = EmbassyClock::new();
    let workflow = Workflow::bare()
        .register(Step::Begin, Begin)
        .register_split(
            Step::Fan,
            [Branch(20, false), Branch(40, true), Branch(60, true)],
            JoinConfig::new(JoinStrategy::Quorum(2), Step::Merge),
        )
        .register_join(Step::Merge, Merge)
        .add_exit_state(Step::Done);
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
    scheduler.manual("split", workflow, Step::Begin)?;
    scheduler.every("flaky", failing, Step::Begin, Duration::from_millis(20))?;
    let backoff = BackoffPolicy {
        initial: Duration::from_millis(50),
        jitter: 0.0,
        ..BackoffPolicy::with_trip(3)
    };
    scheduler.set_backoff("flaky", backoff)?;

    // 2026-01-01T12:00:00.800Z: the cron flow fires 200 ms and 1200 ms from now.
    let wall = Timestamp::from_millisecond(1_767_268_800_800).map_err(|_| bad_time())?;
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
    Ok(tripped
        && report.cancelled.is_empty()
        && INTERVAL_RUNS.load(Ordering::Relaxed) == 13
        && CRON_RUNS.load(Ordering::Relaxed) == 2
        && JOINED_SUCCESSES.load(Ordering::Relaxed) == 2)
}

fn bad_time() -> CanoError {
    CanoError::configuration("wall time out of range")
}

/// As the smoke firmware's: the message only with `--features panic-message`.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    if cfg!(feature = "panic-message") {
        hprintln!("PANIC: {}", info);
    } else {
        hprintln!("PANIC (build with --features panic-message to see where and why)");
    }
    host::exit(101);
}
