//! A small workflow exercised by the telemetry tests: a flaky single task (fails once, then
//! succeeds after a 2 s pause), a split of two branches, and a join.

use cano_tokio::{
    CanoError, JoinConfig, JoinStrategy, Resources, Task, TaskConfig, TaskResult, Workflow,
};
use core::time::Duration;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Step {
    Start,
    Fan,
    Done,
}

/// Fails its first attempt, then moves to `Fan`; logs from inside the task.
pub(crate) struct Flaky {
    pub(crate) calls: AtomicU32,
}

impl Task<Step> for Flaky {
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal().with_fixed_retry(1, Duration::from_secs(2))
    }
    fn name(&self) -> std::borrow::Cow<'static, str> {
        "flaky".into()
    }
    async fn run(&self, _: &Resources) -> Result<TaskResult<Step>, CanoError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::info!(call, "inside flaky");
        if call == 1 {
            Err(CanoError::task_execution("first call fails"))
        } else {
            Ok(TaskResult::Single(Step::Fan))
        }
    }
}

/// A split branch that logs and succeeds.
pub(crate) struct Leaf;

impl Task<Step> for Leaf {
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }
    fn name(&self) -> std::borrow::Cow<'static, str> {
        "leaf".into()
    }
    async fn run(&self, _: &Resources) -> Result<TaskResult<Step>, CanoError> {
        tracing::info!("inside leaf");
        Ok(TaskResult::Single(Step::Done))
    }
}

pub(crate) fn workflow() -> Workflow<Step> {
    Workflow::bare()
        .register(
            Step::Start,
            Flaky {
                calls: AtomicU32::new(0),
            },
        )
        .register_split(
            Step::Fan,
            [Leaf, Leaf],
            JoinConfig::new(JoinStrategy::All, Step::Done),
        )
        .add_exit_state(Step::Done)
}
