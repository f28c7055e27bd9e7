//! Shapes in checkpointed workflows: a stream registered as a stepped task checkpoints its
//! cursor per window and resumes after it; a router writes no checkpoint row.

use std::borrow::Cow;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cano_core::checkpoint::{MemoryCheckpointStore, RowKind, RunId, StateKey};
use cano_core::shapes::router::RouterTask;
use cano_core::shapes::stream::{
    CloseReason, StreamRunner, StreamTask, StreamWindow, WindowSignal,
};
use cano_core::testing::{FakeClock, Simulation};
use cano_core::{
    CancellationToken, CanoError, Clock, Instant, Resources, Task, TaskConfig, TaskResult, Workflow,
};
use futures::future::{Either, select};
use futures::stream::{self, BoxStream, StreamExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum St {
    Before,
    Route,
    Ingest,
    Done,
}

impl StateKey for St {
    fn state_key(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            St::Before => "before",
            St::Route => "route",
            St::Ingest => "ingest",
            St::Done => "done",
        })
    }
}

/// Items 0..10, one per second (item i arrives i+1 s after the stream opens at offset 0, and
/// reopening after cursor c continues with item c at the same pace).
struct Numbers {
    clock: FakeClock,
    windows: Arc<Mutex<Vec<Vec<u32>>>>,
    opened_from: Arc<Mutex<Vec<Option<u32>>>>,
}

impl StreamTask<St> for Numbers {
    type Item = u32;
    type Output = u32;
    type Cursor = u32;
    fn window(&self) -> StreamWindow {
        StreamWindow::Count(3)
    }
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }
    async fn open<'a>(
        &'a self,
        _res: &'a Resources,
        cursor: Option<u32>,
    ) -> Result<BoxStream<'a, Result<u32, CanoError>>, CanoError> {
        self.opened_from.lock().unwrap().push(cursor);
        let clock = self.clock.clone();
        Ok(stream::iter(cursor.unwrap_or(0)..10)
            .then(move |i| {
                let clock = clock.clone();
                async move {
                    clock
                        .sleep_until(clock.now() + Duration::from_secs(1))
                        .await;
                    Ok(i)
                }
            })
            .boxed())
    }
    async fn process_item(&self, _res: &Resources, item: u32) -> Result<(u32, u32), CanoError> {
        Ok((item, item + 1))
    }
    async fn flush_window(
        &self,
        _r: &Resources,
        outputs: Vec<u32>,
    ) -> Result<WindowSignal<St>, CanoError> {
        self.windows.lock().unwrap().push(outputs);
        Ok(WindowSignal::Continue)
    }
    async fn on_close(
        &self,
        _r: &Resources,
        _why: CloseReason,
    ) -> Result<TaskResult<St>, CanoError> {
        Ok(TaskResult::Single(St::Done))
    }
}

struct Logs {
    windows: Arc<Mutex<Vec<Vec<u32>>>>,
    opened_from: Arc<Mutex<Vec<Option<u32>>>>,
}

fn numbers(clock: &FakeClock) -> (Numbers, Logs) {
    let windows = Arc::new(Mutex::new(vec![]));
    let opened_from = Arc::new(Mutex::new(vec![]));
    (
        Numbers {
            clock: clock.clone(),
            windows: windows.clone(),
            opened_from: opened_from.clone(),
        },
        Logs {
            windows,
            opened_from,
        },
    )
}

fn run_or_crash<T>(
    sim: &Simulation,
    run: impl std::future::Future<Output = T>,
    after: Duration,
) -> Option<T> {
    let clock = sim.clock();
    sim.block_on(async move {
        let deadline = clock.now() + after;
        match select(pin!(run), pin!(clock.sleep_until(deadline))).await {
            Either::Left((done, _)) => Some(done),
            Either::Right(_) => None,
        }
    })
}

#[test]
fn a_stepped_stream_checkpoints_each_windows_cursor_and_resumes_after_the_last() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let store = MemoryCheckpointStore::new();
    let (task, logs) = numbers(&clock);
    let wf = Workflow::bare()
        .register_stepped(St::Ingest, StreamRunner::new(task, clock.clone()))
        .add_exit_state(St::Done)
        .with_checkpoint_store(store.clone())
        .with_workflow_id("ingest-1");
    // The process dies 7.5 s in: windows [0,1,2] and [3,4,5] are flushed, 6 is in flight.
    assert!(
        run_or_crash(
            &sim,
            wf.orchestrate_on(&clock, St::Ingest),
            Duration::from_millis(7_500)
        )
        .is_none()
    );
    let rows = store.rows(&RunId::new("ingest-1"));
    let cursors: Vec<(RowKind, String)> =
        rows.iter().map(|r| (r.kind, r.state.to_string())).collect();
    assert_eq!(
        cursors,
        vec![
            (RowKind::StateEntry, "ingest".into()),
            (RowKind::StepCursor, "ingest".into()),
            (RowKind::StepCursor, "ingest".into()),
        ]
    );
    // A new process resumes: the stream reopens after the last checkpointed cursor (6).
    let (task, resumed) = numbers(&clock);
    let wf = Workflow::bare()
        .register_stepped(St::Ingest, StreamRunner::new(task, clock.clone()))
        .add_exit_state(St::Done)
        .with_checkpoint_store(store.clone())
        .with_workflow_id("ingest-1");
    assert_eq!(
        sim.block_on(wf.resume_from_on(&clock, "ingest-1")),
        Ok(St::Done)
    );
    assert_eq!(
        *logs.windows.lock().unwrap(),
        vec![vec![0, 1, 2], vec![3, 4, 5]]
    );
    assert_eq!(
        *resumed.windows.lock().unwrap(),
        vec![vec![6, 7, 8], vec![9]]
    );
    assert_eq!(resumed.opened_from.lock().unwrap()[0], Some(6));
    assert_eq!(logs.opened_from.lock().unwrap()[..2], [None, Some(3)]);
}

#[test]
fn a_cancelled_stepped_stream_checkpoints_the_drained_window_then_fails() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let store = MemoryCheckpointStore::new();
    let (task, logs) = numbers(&clock);
    let token = CancellationToken::new();
    let wf = Workflow::bare()
        .register_stepped(
            St::Ingest,
            StreamRunner::new(task, clock.clone()).with_cancellation(token.clone()),
        )
        .add_exit_state(St::Done)
        .with_checkpoint_store(store.clone())
        .with_workflow_id("ingest-2");
    let c = clock.clone();
    let result = sim.block_on(async move {
        let run = wf.orchestrate_on(&c, St::Ingest);
        let cancel = async {
            c.sleep_until(Instant::from_millis(4_500)).await;
            token.cancel();
            std::future::pending::<()>().await
        };
        match select(pin!(run), pin!(cancel)).await {
            Either::Left((r, _)) => r,
            Either::Right(_) => unreachable!(),
        }
    });
    assert_eq!(result.unwrap_err().category(), "cancelled");
    assert_eq!(*logs.windows.lock().unwrap(), vec![vec![0, 1, 2], vec![3]]);
    let last = store.rows(&RunId::new("ingest-2"));
    let cursor_rows = last
        .iter()
        .filter(|r| r.kind == RowKind::StepCursor)
        .count();
    assert_eq!(cursor_rows, 2);
}

struct Note {
    label: &'static str,
    next: St,
    ran: Arc<Mutex<Vec<&'static str>>>,
    clock: FakeClock,
    work: Duration,
}

impl Task<St> for Note {
    async fn run_bare(&self) -> Result<TaskResult<St>, CanoError> {
        self.ran.lock().unwrap().push(self.label);
        self.clock.sleep_until(self.clock.now() + self.work).await;
        Ok(TaskResult::Single(self.next))
    }
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }
}

struct ToIngest;
impl RouterTask<St> for ToIngest {
    async fn route(&self, _res: &Resources) -> Result<TaskResult<St>, CanoError> {
        Ok(TaskResult::Single(St::Ingest))
    }
}

#[test]
fn a_router_writes_no_checkpoint_row_and_the_state_after_it_does() {
    for (initial, expected) in [
        (St::Before, ["before", "ingest"]),
        // A run that starts in a router records its start there (so, unlike cano 0.12, a
        // crash before the first non-router state still leaves a log to resume from).
        (St::Route, ["route", "ingest"]),
    ] {
        let sim = Simulation::new();
        let clock = sim.clock();
        let store = MemoryCheckpointStore::new();
        let ran = Arc::new(Mutex::new(vec![]));
        let note = |label, next, work| Note {
            label,
            next,
            ran: ran.clone(),
            clock: clock.clone(),
            work: Duration::from_secs(work),
        };
        let wf = Workflow::bare()
            .register(St::Before, note("before", St::Route, 1))
            .register_router(St::Route, ToIngest)
            .register(St::Ingest, note("ingest", St::Done, 10))
            .add_exit_state(St::Done)
            .with_checkpoint_store(store.clone())
            .with_workflow_id("routed");
        // The process dies inside `ingest`.
        assert!(
            run_or_crash(
                &sim,
                wf.orchestrate_on(&clock, initial),
                Duration::from_secs(5)
            )
            .is_none()
        );
        let rows = store.rows(&RunId::new("routed"));
        let entries: Vec<String> = rows
            .iter()
            .map(|r| {
                assert_eq!(r.kind, RowKind::StateEntry);
                r.state.to_string()
            })
            .collect();
        assert_eq!(entries, expected, "from {initial:?}");
        // The resumed run re-runs `ingest`, not the router or what came before it.
        assert_eq!(
            sim.block_on(wf.resume_from_on(&clock, "routed")),
            Ok(St::Done)
        );
        let ran = ran.lock().unwrap().clone();
        assert_eq!(ran.iter().filter(|l| **l == "ingest").count(), 2, "{ran:?}");
        assert!(ran.iter().filter(|l| **l == "before").count() <= 1);
    }
}
