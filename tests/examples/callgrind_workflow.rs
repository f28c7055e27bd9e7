//! Instructions per state of a plain and a checkpointed workflow, for callgrind (no runtime,
//! no clock reads: `futures`' block_on and a clock that never moves):
//!
//! ```sh
//! cargo build --profile bench -p cano-tests --example callgrind_workflow
//! for n in 1000 2000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/callgrind_workflow plain $n 10
//! done
//! ```
//!
//! Arguments: `plain | memory | saga`, iterations, states (at most 10). The cost of one state
//! is the difference of two runs' instruction counts over the difference of their
//! iterations × states (which cancels start-up); `memory - plain` is the checkpoint
//! overhead per transition.

use std::borrow::Cow;
use std::hint::black_box;

use cano_core::checkpoint::{MemoryCheckpointStore, StateKey};
use cano_core::{
    CanoError, Clock, CompensatableTask, Instant, Task, TaskContext, TaskResult, Workflow,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct S(u8);

impl StateKey for S {
    fn state_key(&self) -> Cow<'static, str> {
        const KEYS: [&str; 11] = [
            "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10",
        ];
        Cow::Borrowed(KEYS[usize::from(self.0).min(10)])
    }
}

#[derive(Clone)]
struct StillClock;

impl Clock for StillClock {
    type Sleep = futures::future::Pending<()>;
    fn now(&self) -> Instant {
        Instant::ZERO
    }
    fn wall_now(&self) -> cano_core::jiff::Timestamp {
        cano_core::jiff::Timestamp::UNIX_EPOCH
    }
    fn sleep_until(&self, _: Instant) -> Self::Sleep {
        futures::future::pending()
    }
}

struct Step(S);

impl Task<S> for Step {
    async fn run_bare(&self) -> Result<TaskResult<S>, CanoError> {
        Ok(TaskResult::Single(self.0))
    }
}

struct Undoable(S);

impl CompensatableTask<S> for Undoable {
    type Output = u32;
    async fn run(&self, _ctx: TaskContext<'_>) -> Result<(TaskResult<S>, u32), CanoError> {
        Ok((TaskResult::Single(self.0), 7))
    }
    async fn compensate(&self, _ctx: TaskContext<'_>, _output: u32) -> Result<(), CanoError> {
        Ok(())
    }
    fn config(&self) -> cano_core::TaskConfig {
        cano_core::TaskConfig::minimal()
    }
    fn name(&self) -> Cow<'static, str> {
        self.0.state_key()
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "plain".into());
    let iterations: u64 = args.next().map_or(1000, |a| a.parse().expect("iterations"));
    let states: u8 = args.next().map_or(10, |a| a.parse().expect("states"));
    let states = states.clamp(1, 10);
    let wf = (0..states).fold(Workflow::bare(), |wf, i| match mode.as_str() {
        "saga" => wf.register_compensatable(S(i), Undoable(S(i + 1))),
        _ => wf.register(S(i), Step(S(i + 1))),
    });
    let mut wf = wf.add_exit_state(S(states));
    if mode != "plain" {
        wf = wf
            .with_checkpoint_store(MemoryCheckpointStore::new())
            .with_workflow_id("run");
    }
    let clock = StillClock;
    futures::executor::block_on(async {
        for _ in 0..iterations {
            let out = wf.orchestrate_on(&clock, black_box(S(0))).await;
            assert_eq!(black_box(out), Ok(S(states)));
        }
    });
}
