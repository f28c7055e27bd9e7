//! Stream tasks on the fake clock: count and duration windows, a cursor committed per
//! flushed window, the item error policies, an early stop, and the drain on cancellation and
//! on the time limit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cano_core::shapes::stream::{
    CloseReason, DynStreamTask, StreamErrorPolicy, StreamRunner, StreamTask, StreamWindow,
    WindowSignal,
};
use cano_core::testing::{FakeClock, Simulation};
use cano_core::{CancellationToken, CanoError, Clock, Instant, Resources, TaskResult, Workflow};
use futures::stream::{self, BoxStream, StreamExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum St {
    Ingest,
    Stopped,
    Done,
}

/// An item arrives at `at` seconds; `stream_error` makes it an error of the stream itself.
#[derive(Clone, Copy)]
struct Arrival {
    at: u64,
    value: u32,
    stream_error: bool,
}

fn arrivals(times: &[u64]) -> Vec<Arrival> {
    times
        .iter()
        .enumerate()
        .map(|(i, &at)| Arrival {
            at,
            value: i as u32,
            stream_error: false,
        })
        .collect()
}

#[derive(Default)]
struct Log {
    windows: Vec<(Instant, Vec<u32>)>,
    closed: Vec<(Instant, CloseReason)>,
    opened_from: Vec<Option<u32>>,
}

struct Feed {
    clock: FakeClock,
    arrivals: Vec<Arrival>,
    window: StreamWindow,
    policy: StreamErrorPolicy,
    failing_values: Vec<u32>,
    stop_after_windows: Option<usize>,
    log: Arc<Mutex<Log>>,
}

impl Feed {
    fn new(clock: &FakeClock, arrivals: Vec<Arrival>, window: StreamWindow) -> Self {
        Feed {
            clock: clock.clone(),
            arrivals,
            window,
            policy: StreamErrorPolicy::FailFast,
            failing_values: vec![],
            stop_after_windows: None,
            log: Arc::default(),
        }
    }
}

impl StreamTask<St> for Feed {
    type Item = u32;
    type Output = u32;
    type Cursor = u32;
    fn window(&self) -> StreamWindow {
        self.window
    }
    fn on_item_error(&self) -> StreamErrorPolicy {
        self.policy
    }
    async fn open<'a>(
        &'a self,
        _res: &'a Resources,
        cursor: Option<u32>,
    ) -> Result<BoxStream<'a, Result<u32, CanoError>>, CanoError> {
        self.log.lock().unwrap().opened_from.push(cursor);
        let skip = cursor.unwrap_or(0) as usize;
        let clock = self.clock.clone();
        let pending: Vec<Arrival> = self.arrivals.iter().skip(skip).copied().collect();
        Ok(stream::iter(pending)
            .then(move |a| {
                let clock = clock.clone();
                async move {
                    clock.sleep_until(Instant::from_secs(a.at)).await;
                    if a.stream_error {
                        Err(CanoError::task_execution(format!(
                            "stream error at {}",
                            a.value
                        )))
                    } else {
                        Ok(a.value)
                    }
                }
            })
            .boxed())
    }
    async fn process_item(&self, _res: &Resources, item: u32) -> Result<(u32, u32), CanoError> {
        if self.failing_values.contains(&item) {
            return Err(CanoError::task_execution(format!("item {item} failed")));
        }
        Ok((item * 10, item + 1))
    }
    async fn flush_window(
        &self,
        _res: &Resources,
        outputs: Vec<u32>,
    ) -> Result<WindowSignal<St>, CanoError> {
        let mut log = self.log.lock().unwrap();
        log.windows.push((self.clock.now(), outputs));
        if self.stop_after_windows == Some(log.windows.len()) {
            return Ok(WindowSignal::Stop(TaskResult::Single(St::Stopped)));
        }
        Ok(WindowSignal::Continue)
    }
    async fn on_close(
        &self,
        _res: &Resources,
        reason: CloseReason,
    ) -> Result<TaskResult<St>, CanoError> {
        self.log
            .lock()
            .unwrap()
            .closed
            .push((self.clock.now(), reason));
        Ok(TaskResult::Single(St::Done))
    }
}

struct Outcome {
    result: Result<St, CanoError>,
    log: Log,
    committed: Vec<u32>,
}

fn run_with(
    sim: &Simulation,
    feed: Feed,
    tune: impl FnOnce(StreamRunner<Feed, FakeClock, u32>) -> StreamRunner<Feed, FakeClock, u32>,
) -> Outcome {
    let clock = sim.clock();
    let log = feed.log.clone();
    let committed = Arc::new(Mutex::new(vec![]));
    let sink = committed.clone();
    let runner = StreamRunner::new(feed, clock.clone())
        .with_cursor_sink(Arc::new(move |c: &u32| sink.lock().unwrap().push(*c)));
    let wf = Workflow::bare()
        .register(St::Ingest, tune(runner))
        .add_exit_states([St::Done, St::Stopped]);
    let result = sim.block_on(wf.orchestrate_on(&clock, St::Ingest));
    let log = std::mem::take(&mut *log.lock().unwrap());
    let committed = committed.lock().unwrap().clone();
    Outcome {
        result,
        log,
        committed,
    }
}

fn run(sim: &Simulation, feed: Feed) -> Outcome {
    run_with(sim, feed, |r| r)
}

fn at(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

#[test]
fn count_windows_flush_every_n_items_and_the_rest_at_the_end() {
    for n in 1..=7usize {
        let sim = Simulation::new();
        let feed = Feed::new(
            &sim.clock(),
            arrivals(&[0, 0, 0, 0, 0, 0]),
            StreamWindow::Count(n),
        );
        let out = run(&sim, feed);
        assert_eq!(out.result, Ok(St::Done));
        let values: Vec<Vec<u32>> = out.log.windows.iter().map(|w| w.1.clone()).collect();
        let expected: Vec<Vec<u32>> = (0..6u32)
            .collect::<Vec<_>>()
            .chunks(n)
            .map(|c| c.iter().map(|v| v * 10).collect())
            .collect();
        assert_eq!(values, expected, "n = {n}");
        // Each window's cursor: just after its last item.
        let cursors: Vec<u32> = expected
            .iter()
            .map(|w| w.last().unwrap() / 10 + 1)
            .collect();
        assert_eq!(out.committed, cursors, "n = {n}");
        assert_eq!(out.log.closed, vec![(at(0), CloseReason::Exhausted)]);
    }
}

#[test]
fn duration_windows_start_at_their_first_item_and_flush_at_their_end() {
    let sim = Simulation::new();
    let feed = Feed::new(
        &sim.clock(),
        arrivals(&[0, 1, 2, 5, 6, 12]),
        StreamWindow::Duration(Duration::from_secs(3)),
    );
    let out = run(&sim, feed);
    assert_eq!(out.result, Ok(St::Done));
    assert_eq!(
        out.log.windows,
        vec![
            (at(3), vec![0, 10, 20]),
            (at(8), vec![30, 40]),
            (at(12), vec![50]),
        ]
    );
    assert_eq!(out.committed, vec![3, 5, 6]);
}

#[test]
fn fail_fast_fails_without_flushing_or_committing_the_window() {
    let sim = Simulation::new();
    let mut feed = Feed::new(
        &sim.clock(),
        arrivals(&[0, 0, 0, 0, 0]),
        StreamWindow::Count(2),
    );
    feed.failing_values = vec![3];
    let out = run(&sim, feed);
    assert_eq!(out.result, Err(CanoError::task_execution("item 3 failed")));
    assert_eq!(out.log.windows.len(), 1);
    assert_eq!(out.committed, vec![2]);
    assert!(out.log.closed.is_empty());
}

#[test]
fn skip_passes_over_every_error_from_the_stream_and_from_processing() {
    let sim = Simulation::new();
    let mut items = arrivals(&[0, 0, 0, 0, 0, 0]);
    items[1].stream_error = true;
    let mut feed = Feed::new(&sim.clock(), items, StreamWindow::Count(10));
    feed.failing_values = vec![3, 4];
    feed.policy = StreamErrorPolicy::Skip;
    let out = run(&sim, feed);
    assert_eq!(out.result, Ok(St::Done));
    assert_eq!(out.log.windows[0].1, vec![0, 20, 50]);
    assert_eq!(out.committed, vec![6]);
}

#[test]
fn tolerate_skips_up_to_n_errors_in_a_run_then_fails() {
    for max_errors in 0..4u32 {
        let sim = Simulation::new();
        let mut feed = Feed::new(&sim.clock(), arrivals(&[0; 8]), StreamWindow::Count(1));
        feed.failing_values = vec![1, 3, 5];
        feed.policy = StreamErrorPolicy::Tolerate { max_errors };
        let out = run(&sim, feed);
        if max_errors >= 3 {
            assert_eq!(out.result, Ok(St::Done));
        } else {
            let failing = [1, 3, 5][max_errors as usize];
            assert_eq!(
                out.result,
                Err(CanoError::task_execution(format!("item {failing} failed")))
            );
        }
    }
}

#[test]
fn a_window_may_stop_the_stream_with_a_next_state() {
    let sim = Simulation::new();
    let mut feed = Feed::new(
        &sim.clock(),
        arrivals(&[0, 1, 2, 3, 4]),
        StreamWindow::Count(2),
    );
    feed.stop_after_windows = Some(1);
    let out = run(&sim, feed);
    assert_eq!(out.result, Ok(St::Stopped));
    assert_eq!(out.log.windows.len(), 1);
    assert!(out.log.closed.is_empty());
    assert_eq!(sim.clock().now(), at(1));
}

#[test]
fn cancellation_drains_the_in_flight_window_then_fails_as_cancelled() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let feed = Feed::new(
        &clock,
        arrivals(&[0, 1, 2, 3, 4, 5, 6]),
        StreamWindow::Count(10),
    );
    let token = CancellationToken::new();
    let canceller = token.clone();
    let c = clock.clone();
    let cancel_at = Instant::from_millis(3_500);
    let log = feed.log.clone();
    let committed = Arc::new(Mutex::new(vec![]));
    let sink = committed.clone();
    let runner = StreamRunner::new(feed, clock.clone())
        .with_cancellation(token)
        .with_cursor_sink(Arc::new(move |v: &u32| sink.lock().unwrap().push(*v)));
    let wf = Workflow::bare()
        .register(St::Ingest, runner)
        .add_exit_state(St::Done);
    let result = sim.block_on(async move {
        let run = wf.orchestrate_on(&c, St::Ingest);
        let cancel = async {
            c.sleep_until(cancel_at).await;
            canceller.cancel();
            std::future::pending::<()>().await
        };
        futures::pin_mut!(run, cancel);
        match futures::future::select(run, cancel).await {
            futures::future::Either::Left((r, _)) => r,
            futures::future::Either::Right(_) => unreachable!(),
        }
    });
    assert_eq!(result.unwrap_err().category(), "cancelled");
    let log = log.lock().unwrap();
    assert_eq!(log.windows, vec![(cancel_at, vec![0, 10, 20, 30])]);
    assert_eq!(log.closed, vec![(cancel_at, CloseReason::Cancelled)]);
    assert_eq!(*committed.lock().unwrap(), vec![4]);
}

#[test]
fn the_time_limit_drains_the_in_flight_window_then_fails_as_a_timeout() {
    let sim = Simulation::new();
    let feed = Feed::new(
        &sim.clock(),
        arrivals(&[0, 1, 2, 3, 4, 5, 8]),
        StreamWindow::Count(4),
    );
    let out = run_with(&sim, feed, |r| {
        r.with_time_limit(Duration::from_millis(5_500))
    });
    assert_eq!(out.result.unwrap_err().category(), "timeout");
    let limit = Instant::from_millis(5_500);
    assert_eq!(
        out.log.windows,
        vec![(at(3), vec![0, 10, 20, 30]), (limit, vec![40, 50])]
    );
    assert_eq!(out.committed, vec![4, 6]);
    assert_eq!(out.log.closed, vec![(limit, CloseReason::TimedOut)]);
}

#[test]
fn the_stream_opens_after_the_start_cursor() {
    let sim = Simulation::new();
    let feed = Feed::new(
        &sim.clock(),
        arrivals(&[0, 0, 0, 0, 0]),
        StreamWindow::Count(10),
    );
    let out = run_with(&sim, feed, |r| r.with_start_cursor(3));
    assert_eq!(out.log.opened_from, vec![Some(3)]);
    assert_eq!(out.log.windows[0].1, vec![30, 40]);
}

#[test]
fn empty_windows_are_configuration_errors() {
    for window in [
        StreamWindow::Count(0),
        StreamWindow::Duration(Duration::ZERO),
    ] {
        let sim = Simulation::new();
        let feed = Feed::new(&sim.clock(), arrivals(&[0]), window);
        let out = run(&sim, feed);
        assert_eq!(out.result.unwrap_err().category(), "configuration");
        assert!(out.log.opened_from.is_empty());
    }
}

#[test]
fn stream_tasks_of_different_types_share_a_dyn_form() {
    struct Empty;
    impl StreamTask<St> for Empty {
        type Item = u32;
        type Output = u32;
        type Cursor = u32;
        async fn open<'a>(
            &'a self,
            _res: &'a Resources,
            _cursor: Option<u32>,
        ) -> Result<BoxStream<'a, Result<u32, CanoError>>, CanoError> {
            Ok(stream::empty().boxed())
        }
        async fn process_item(&self, _r: &Resources, item: u32) -> Result<(u32, u32), CanoError> {
            Ok((item, item))
        }
        async fn flush_window(
            &self,
            _r: &Resources,
            _o: Vec<u32>,
        ) -> Result<WindowSignal<St>, CanoError> {
            unreachable!("an empty stream flushes nothing")
        }
        async fn on_close(
            &self,
            _r: &Resources,
            _reason: CloseReason,
        ) -> Result<TaskResult<St>, CanoError> {
            Ok(TaskResult::Single(St::Ingest))
        }
    }
    let sim = Simulation::new();
    let clock = sim.clock();
    let tasks: Vec<Box<dyn DynStreamTask<St, u32, u32, u32>>> = vec![
        Box::new(Empty),
        Box::new(Feed::new(&clock, arrivals(&[1, 2]), StreamWindow::Count(5))),
    ];
    let mut tasks = tasks.into_iter();
    let wf = Workflow::bare()
        .register(
            St::Stopped,
            StreamRunner::new(tasks.next().unwrap(), clock.clone()),
        )
        .register(
            St::Ingest,
            StreamRunner::new(tasks.next().unwrap(), clock.clone()),
        )
        .add_exit_state(St::Done);
    assert_eq!(
        sim.block_on(wf.orchestrate_on(&clock, St::Stopped)),
        Ok(St::Done)
    );
    assert_eq!(clock.now(), at(2));
}
