//! The smoke firmware's split workflow, shared with the `footprint` example: `Begin` → a
//! split `Fan` of four branches sleeping on embassy's clock, joined on a quorum → `Merge`,
//! a join task that records what it was told → `Done`.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::time::Duration;

use cano_embassy::{
    CanoError, CanoResult, Clock, EmbassyClock, Instant, JoinConfig, JoinStrategy, JoinTask,
    Resources, SplitResult, Task, TaskConfig, TaskResult, Workflow,
};
use critical_section::Mutex;

/// The split's branches: how long each takes and whether it succeeds.
pub const BRANCHES: [(u64, bool); 4] = [(20, false), (40, true), (60, true), (100, true)];
/// Two successes satisfy the join when the third branch ends, so the fourth is cancelled.
pub const QUORUM: usize = 2;
pub const BRANCH_ENDS: [BranchEnd; 4] = [
    BranchEnd::Failed,
    BranchEnd::Succeeded,
    BranchEnd::Succeeded,
    BranchEnd::Cancelled,
];
/// When the join is satisfied: when the third branch succeeds.
pub const SPLIT_TAKES: Duration = Duration::from_millis(60);

/// An append-only record shared between runs and whoever checks them.
pub struct Log<T>(Arc<Mutex<RefCell<Vec<T>>>>);

impl<T> Clone for Log<T> {
    fn clone(&self) -> Self {
        Log(self.0.clone())
    }
}

impl<T: Clone> Log<T> {
    pub fn new() -> Self {
        Log(Arc::new(Mutex::new(RefCell::new(Vec::new()))))
    }

    pub fn push(&self, entry: T) {
        critical_section::with(|cs| self.0.borrow_ref_mut(cs).push(entry));
    }

    pub fn entries(&self) -> Vec<T> {
        critical_section::with(|cs| self.0.borrow_ref(cs).clone())
    }
}

/// The workflow's states: `Begin` → split `Fan` → join `Merge` → `Done`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    Begin,
    Fan,
    Merge,
    Done,
}

/// Notes when a run of the workflow began.
pub struct Begin(Log<Instant>);

impl Task<Step> for Begin {
    async fn run_bare(&self) -> CanoResult<TaskResult<Step>> {
        self.0.push(EmbassyClock::new().now());
        Ok(Step::Fan.into())
    }

    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }
}

/// A branch of the split: sleeps on embassy's clock, then succeeds or fails.
pub struct Branch {
    takes: Duration,
    succeeds: bool,
}

impl Task<Step> for Branch {
    async fn run_bare(&self) -> CanoResult<TaskResult<Step>> {
        let clock = EmbassyClock::new();
        clock.sleep_until(clock.now() + self.takes).await;
        if self.succeeds {
            Ok(Step::Merge.into())
        } else {
            Err(CanoError::task_execution("branch failed"))
        }
    }

    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }
}

/// How one branch of the split ended, as the join state was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BranchEnd {
    Succeeded,
    Failed,
    Cancelled,
    Unreported,
}

/// What the join state received, and when.
#[derive(Clone)]
pub struct Joined {
    pub at: Instant,
    pub ends: [BranchEnd; BRANCHES.len()],
}

pub struct Merge(Log<Joined>);

impl JoinTask<Step> for Merge {
    async fn join(
        &self,
        _: &Resources,
        results: &SplitResult<Step>,
    ) -> CanoResult<TaskResult<Step>> {
        let mut ends = [BranchEnd::Unreported; BRANCHES.len()];
        let outcomes = (results
            .successes
            .iter()
            .map(|(i, _)| (*i, BranchEnd::Succeeded)))
        .chain(results.errors.iter().map(|(i, _)| (*i, BranchEnd::Failed)))
        .chain(results.cancelled.iter().map(|&i| (i, BranchEnd::Cancelled)));
        for (branch, end) in outcomes {
            if let Some(slot) = ends.get_mut(branch) {
                *slot = end;
            }
        }
        self.0.push(Joined {
            at: EmbassyClock::new().now(),
            ends,
        });
        Ok(Step::Done.into())
    }

    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }
}

pub fn split_workflow(begun: &Log<Instant>, joined: &Log<Joined>) -> Workflow<Step> {
    let branches = BRANCHES.map(|(millis, succeeds)| Branch {
        takes: Duration::from_millis(millis),
        succeeds,
    });
    Workflow::bare()
        .register(Step::Begin, Begin(begun.clone()))
        .register_split(
            Step::Fan,
            branches,
            JoinConfig::new(JoinStrategy::Quorum(QUORUM), Step::Merge),
        )
        .register_join(Step::Merge, Merge(joined.clone()))
        .add_exit_state(Step::Done)
}
