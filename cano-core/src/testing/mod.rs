//! Deterministic time for tests (feature `testing`): a [`FakeClock`] whose monotonic and wall
//! clocks move independently, and [`Simulation`], a virtual-time executor that runs every
//! ready task and then jumps time to the earliest pending timer.
//!
//! There is no global state: every simulation owns its clock and its tasks, so tests run in
//! parallel.
//!
//! ```
//! use cano_core::testing::Simulation;
//! use cano_core::{Clock, Spawner};
//! use core::time::Duration;
//! use std::sync::{Arc, Mutex};
//!
//! let sim = Simulation::new();
//! let clock = sim.clock();
//! let woke = Arc::new(Mutex::new(Vec::new()));
//! for hours in [5u64, 1, 23] {
//!     let (clock, woke) = (clock.clone(), woke.clone());
//!     sim.spawner()
//!         .spawn(Box::pin(async move {
//!             let deadline = clock.now() + Duration::from_secs(hours * 3600);
//!             clock.sleep_until(deadline).await;
//!             woke.lock().unwrap().push((hours, clock.now()));
//!         }))
//!         .unwrap();
//! }
//! sim.run_until_idle(); // a simulated day, in microseconds of real time
//! let woke = woke.lock().unwrap();
//! assert_eq!(woke.iter().map(|w| w.0).collect::<Vec<_>>(), [1, 5, 23]);
//! assert_eq!(woke[2].1.as_micros(), 23 * 3600 * 1_000_000);
//! ```

mod executor;
mod fake_clock;

pub use executor::{SimSpawner, Simulation};
pub use fake_clock::{FakeClock, FakeSleep};
