//! One import for a smol application: `use cano_smol::prelude::*;`.
//!
//! Everything in [`cano_core::prelude`] (what cano 0.12's `cano::prelude` held that exists
//! in cano, plus the clock and scheduler names cano added), and smol's own pieces:
//! [`SmolClock`], [`SmolSpawner`], [`SmolRuntime`] (both as one value, for
//! `workflow.orchestrate_in` and `scheduler.start_in`), [`WorkflowExt`] (for
//! `workflow.orchestrate(initial)`) and [`start_scheduler`].
//!
//! ```
//! use cano_smol::prelude::*;
//!
//! #[derive(Debug, Clone, PartialEq, Eq, Hash)]
//! enum Step { Start, Done }
//!
//! struct Hello;
//! impl Task<Step> for Hello {
//!     async fn run_bare(&self) -> CanoResult<TaskResult<Step>> {
//!         Ok(TaskResult::Single(Step::Done))
//!     }
//! }
//!
//! let workflow = Workflow::bare().register(Step::Start, Hello).add_exit_state(Step::Done);
//! let end = futures_lite::future::block_on(workflow.orchestrate(Step::Start));
//! assert_eq!(end, Ok(Step::Done));
//! ```

pub use cano_core::prelude::*;

pub use crate::{SmolClock, SmolRuntime, SmolSpawner, WorkflowExt, start_scheduler};
