//! One import for a tokio application: `use cano_tokio::prelude::*;`.
//!
//! Everything in [`cano_core::prelude`] (what cano 0.12's `cano::prelude` held that exists
//! in cano, plus the clock and scheduler names cano added), and tokio's own pieces:
//! [`TokioClock`], [`TokioSpawner`], [`TokioRuntime`] (both as one value, for
//! `workflow.orchestrate_in` and `scheduler.start_in`), [`WorkflowExt`] (for
//! `workflow.orchestrate(initial)`), [`start_scheduler`], [`shutdown_on`] and
//! [`shutdown_on_ctrl_c`].
//!
//! ```
//! use cano_tokio::prelude::*;
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
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> CanoResult<()> {
//! let workflow = Workflow::bare().register(Step::Start, Hello).add_exit_state(Step::Done);
//! assert_eq!(workflow.orchestrate(Step::Start).await?, Step::Done);
//! # Ok(())
//! # }
//! ```

pub use cano_core::prelude::*;

pub use crate::{
    TokioClock, TokioRuntime, TokioSpawner, WorkflowExt, shutdown_on, shutdown_on_ctrl_c,
    start_scheduler,
};
