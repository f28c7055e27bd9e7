//! Adapter smoke test: `orchestrate(initial)` on a real multi-threaded tokio runtime, with a
//! split that spawns its branches onto the runtime's workers. No sleeping.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use cano_tokio::{
    CanoError, JoinConfig, JoinStrategy, Resources, Task, TaskConfig, TaskResult, Workflow,
    WorkflowExt,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum State {
    Fan,
    Done,
}

/// Records the thread it ran on and whether it saw the other branch inside `run` at the
/// same time, which only parallel branches can (bounded wait: a regression fails, it does
/// not hang).
struct Branch {
    threads: Arc<Mutex<HashSet<ThreadId>>>,
    inside: Arc<AtomicUsize>,
    met: Arc<AtomicUsize>,
}

impl Task<State> for Branch {
    async fn run(&self, _res: &Resources) -> Result<TaskResult<State>, CanoError> {
        self.inside.fetch_add(1, Ordering::SeqCst);
        let give_up = Instant::now() + Duration::from_secs(5);
        while Instant::now() < give_up {
            if self.inside.load(Ordering::SeqCst) == 2 {
                self.met.fetch_add(1, Ordering::SeqCst);
                break;
            }
            std::thread::yield_now();
        }
        self.threads
            .lock()
            .unwrap()
            .insert(std::thread::current().id());
        Ok(TaskResult::Single(State::Done))
    }

    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }
}

#[test]
fn spawned_split_branches_run_in_parallel_on_tokio_workers() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let threads = Arc::new(Mutex::new(HashSet::new()));
    let (inside, met) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let branches = (0..2).map(|_| Branch {
        threads: threads.clone(),
        inside: inside.clone(),
        met: met.clone(),
    });
    let workflow = Workflow::bare()
        .register_split(
            State::Fan,
            branches,
            JoinConfig::new(JoinStrategy::All, State::Done).with_spawned_branches(),
        )
        .add_exit_state(State::Done);
    let end = runtime.block_on(async { workflow.orchestrate(State::Fan).await });
    assert_eq!(end, Ok(State::Done));
    assert_eq!(
        met.load(Ordering::SeqCst),
        2,
        "both branches ran at the same time"
    );
    assert_eq!(
        threads.lock().unwrap().len(),
        2,
        "each branch on its own worker"
    );
}
