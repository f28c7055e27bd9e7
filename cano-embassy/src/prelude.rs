//! One import for firmware: `use cano_embassy::prelude::*;`.
//!
//! Everything in [`cano_core::prelude`] (what cano 0.12's `cano::prelude` held that exists
//! in cano, plus the clock and scheduler names cano added), and embassy's own pieces:
//! [`EmbassyClock`], [`EmbassySpawner`] and [`Pool`]. Workflows run with
//! `workflow.orchestrate_on(&clock, initial)` and schedulers with
//! `scheduler.start(clock, spawner)`.

pub use cano_core::prelude::*;

pub use crate::{EmbassyClock, EmbassySpawner, Pool};
