//! # cano-embassy
//!
//! cano on [embassy](https://embassy.dev): [`EmbassyClock`] implements cano's [`Clock`] on
//! `embassy-time`, and [`EmbassySpawner`] implements cano's [`Spawner`] over a task [`Pool`]
//! whose size the application chooses. The whole of `cano-core` is re-exported, so this is
//! the only cano dependency firmware needs (`use cano_embassy::prelude::*;` imports the names
//! most programs use, see [`prelude`]). `#![no_std]`; needs `alloc` (a global allocator).
//!
//! This crate enables no embassy platform, time driver or critical-section implementation:
//! the firmware picks them (its HAL's time driver, `embassy-executor/platform-cortex-m`,
//! `cortex-m/critical-section-single-core`, …), exactly as for any embassy library.
//!
//! ```
//! use core::sync::atomic::{AtomicU64, Ordering};
//! use core::time::Duration;
//! use cano_embassy::{Clock, EmbassyClock, EmbassySpawner, Pool, Spawner};
//!
//! /// Room for two futures alive at once; see "Sizing the pool" below.
//! static POOL: Pool<2> = Pool::new();
//! static SLEPT_MS: AtomicU64 = AtomicU64::new(0);
//!
//! // On a device this runs in `#[embassy_executor::main] async fn main(spawner: Spawner)`.
//! fn start(spawner: embassy_executor::Spawner) {
//!     // Wall time for cron; set it again later from an RTC or SNTP with `set_wall_now`.
//!     let clock = EmbassyClock::with_wall_epoch("2026-01-01T00:00:00Z".parse().unwrap());
//!     let spawner = EmbassySpawner::new(spawner, &POOL);
//!     spawner
//!         .spawn(Box::pin(async move {
//!             let start = clock.now();
//!             clock.sleep_until(start + Duration::from_secs(90)).await;
//!             let slept = clock.now() - start;
//!             SLEPT_MS.store(slept.as_millis() as u64, Ordering::Relaxed);
//!         }))
//!         .expect("the pool has a free slot");
//! }
//! # // On the host, the testkit is the platform: 90 virtual seconds pass at once.
//! # cano_embassy_testkit::run_virtual(start, || SLEPT_MS.load(Ordering::Relaxed) != 0);
//! # assert_eq!(SLEPT_MS.load(Ordering::Relaxed), 90_000);
//! ```
//!
//! ## Sizing the pool
//!
//! Embassy allocates tasks statically, so cano's futures run in the slots of a
//! `static POOL: Pool<N>` that the application declares. `N` is the number of cano futures
//! that can be alive *at the same time* through this spawner: every run the scheduler has in
//! flight, every branch of a workflow split running in parallel, and anything else the
//! application spawns through the same [`EmbassySpawner`]. A slot is reused as soon as its
//! future completes, so `N` is about peak concurrency, not about how many flows exist.
//!
//! A full pool is not a panic: [`Spawner::spawn`] returns [`SpawnError::PoolFull`], and cano
//! reports it as the error of the run that could not start. Slots cost static RAM whether
//! used or not: an embassy task header plus a boxed future's pointer, 48 bytes per slot on
//! `thumbv7m`/`thumbv7em` (`size_of::<Pool<N>>()` gives the figure for any target). The
//! futures themselves live on the heap. Size `N` for the worst case you accept and watch
//! for `PoolFull` in testing.
//!
//! ## What embassy users give up for the `Send` story
//!
//! cano has one code path for tokio and embassy: everything it stores or spawns is `Send`
//! (see "The `Send` story" in `cano-core`). Embassy's thread-mode executor could run `!Send`
//! futures, so on embassy this is a restriction, and these are its costs:
//!
//! * Task futures cannot hold `Rc`, `RefCell` borrows or other `!Send` values **across an
//!   `.await`**. Share state through `embassy_sync` primitives with a
//!   `CriticalSectionRawMutex`, atomics or `static` cells, as embassy code shares state
//!   between tasks anyway. Values used between two awaits are unaffected.
//! * Peripheral drivers whose types are `!Send` must be owned by an ordinary
//!   `#[embassy_executor::task]` and reached through a channel, rather than captured by a
//!   cano task.
//! * Each spawn boxes its future (one heap allocation), instead of embassy's
//!   statically sized `#[task]` storage, and spawns go through [`SendSpawner`]
//!   (which works from any executor or interrupt context).
//!
//! In exchange, the same task types and scheduler code run unchanged on a server and on the
//! host's virtual-time tests.
//!
//! ## Timer queues: enable `generic-queue-N`
//!
//! [`EmbassyClock`]'s sleeps register the polling task's waker with the time driver's timer
//! queue. Embassy's default queue is *integrated* into the executor's task headers: it only
//! accepts wakers of embassy tasks. cano's split/join and per-attempt timeouts poll sleeps
//! with wakers of their own (so that a wake re-polls only the branch that is due), so **a
//! firmware using cano must enable one of `embassy-time`'s `generic-queue-N` features**
//! (`embassy-time = { version = "0.5", features = ["generic-queue-64"] }`), with N at least
//! the number of sleeps that may be pending at once. Without it embassy panics with "Found
//! waker not created by the Embassy executor" (cano reports that panic as the failure of the
//! task that slept). When the generic queue is full it wakes the earliest sleeper early;
//! [`EmbassySleep`] then re-checks the time and re-arms, so nothing is lost, only polled
//! once more. This crate cannot enable the feature itself: embassy accepts exactly one queue
//! size per program, chosen by the application.
//!
//! ## Flash
//!
//! This crate's own code is well under 1 KiB of flash. Mind what the application pulls in
//! from `jiff`: parsing or printing a `Timestamp`, or its panicking operators (`+`, `-`,
//! which format the error on overflow) took the QEMU smoke firmware from 36 KB to 170 KB
//! of flash; `Timestamp::from_second`, `checked_add` and the integer accessors cost little.
//!
//! ## Testing on the host
//!
//! The `cano-embassy-testkit` crate (in this repository, host only) is a complete embassy
//! platform for `cargo test`: it runs an executor on virtual time that jumps to the next
//! timer whenever no task is ready, so a day of schedules runs in milliseconds, exactly.
//!
//! [`SendSpawner`]: embassy_executor::SendSpawner
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use cano_core::*;

mod clock;
mod spawner;
mod ticks;

pub use clock::{EmbassyClock, EmbassySleep};
pub use spawner::{EmbassySpawner, Pool};

pub mod prelude;

#[cfg(feature = "flash-store")]
extern crate alloc;

#[cfg(feature = "flash-store")]
pub mod flash_store;
