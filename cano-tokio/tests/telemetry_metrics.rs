//! Feature `metrics`: a workflow run records cano 0.15's metric names with low-cardinality
//! labels, checked with a small in-test recorder.

mod telemetry_support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cano_tokio::testing::Simulation;
use cano_tokio::{
    CanoError, CircuitBreaker, CircuitPolicy, Resources, Task, TaskConfig, TaskResult, Workflow,
};
use core::time::Duration;
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use telemetry_support::{Step, workflow};

#[derive(Default)]
struct CounterCell(AtomicU64);
impl CounterFn for CounterCell {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::SeqCst);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct GaugeCell(Mutex<f64>);
impl GaugeFn for GaugeCell {
    fn increment(&self, value: f64) {
        *self.0.lock().unwrap() += value;
    }
    fn decrement(&self, value: f64) {
        *self.0.lock().unwrap() -= value;
    }
    fn set(&self, value: f64) {
        *self.0.lock().unwrap() = value;
    }
}

#[derive(Default)]
struct HistogramCell(Mutex<Vec<f64>>);
impl HistogramFn for HistogramCell {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

/// Every metric by `name{label=value,...}` (labels sorted).
#[derive(Default)]
struct TestRecorder {
    counters: Mutex<BTreeMap<String, Arc<CounterCell>>>,
    gauges: Mutex<BTreeMap<String, Arc<GaugeCell>>>,
    histograms: Mutex<BTreeMap<String, Arc<HistogramCell>>>,
}

fn render(key: &Key) -> String {
    let mut labels: Vec<_> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let cell = self
            .counters
            .lock()
            .unwrap()
            .entry(render(key))
            .or_default()
            .clone();
        Counter::from_arc(cell)
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let cell = self
            .gauges
            .lock()
            .unwrap()
            .entry(render(key))
            .or_default()
            .clone();
        Gauge::from_arc(cell)
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let cell = self
            .histograms
            .lock()
            .unwrap()
            .entry(render(key))
            .or_default()
            .clone();
        Histogram::from_arc(cell)
    }
}

impl TestRecorder {
    fn counter(&self, key: &str) -> u64 {
        self.counters
            .lock()
            .unwrap()
            .get(key)
            .map_or(0, |c| c.0.load(Ordering::SeqCst))
    }
    fn counter_keys(&self) -> Vec<String> {
        self.counters.lock().unwrap().keys().cloned().collect()
    }
    fn gauge(&self, key: &str) -> Option<f64> {
        self.gauges
            .lock()
            .unwrap()
            .get(key)
            .map(|g| *g.0.lock().unwrap())
    }
    fn histogram(&self, key: &str) -> Vec<f64> {
        self.histograms
            .lock()
            .unwrap()
            .get(key)
            .map(|h| h.0.lock().unwrap().clone())
            .unwrap_or_default()
    }
}

#[test]
fn a_run_records_runs_states_attempts_retries_branches_and_duration() {
    let recorder = TestRecorder::default();
    let sim = Simulation::new();
    let wf = workflow();
    let result = metrics::with_local_recorder(&recorder, || {
        sim.block_on(wf.orchestrate_on(&sim.clock(), Step::Start))
    });
    assert_eq!(result, Ok(Step::Done));
    assert_eq!(
        recorder.counter("cano_workflow_runs_total{outcome=completed}"),
        1
    );
    assert_eq!(recorder.counter("cano_state_enters_total{state=Start}"), 1);
    assert_eq!(recorder.counter("cano_state_enters_total{state=Fan}"), 1);
    assert_eq!(recorder.counter("cano_state_enters_total{state=Done}"), 1);
    assert_eq!(recorder.counter("cano_task_attempts_total{task=flaky}"), 2);
    assert_eq!(recorder.counter("cano_task_retries_total{task=flaky}"), 1);
    assert_eq!(recorder.counter("cano_task_attempts_total{task=leaf}"), 2);
    assert_eq!(recorder.counter("cano_task_retries_total{task=leaf}"), 0);
    assert_eq!(
        recorder.counter("cano_split_branch_results_total{result=success}"),
        2
    );
    // The one pause is 2 s of virtual time: the duration is exact.
    assert_eq!(
        recorder.histogram("cano_workflow_duration_seconds{outcome=completed}"),
        [2.0]
    );
    assert_eq!(recorder.gauge("cano_workflow_active{}"), Some(0.0));
    // Low cardinality: no label carries a run id or an error text.
    for key in recorder.counter_keys() {
        assert!(!key.contains("run=") && !key.contains("error="), "{key}");
    }
}

struct Down(Arc<CircuitBreaker>);
impl Task<Step> for Down {
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal().with_circuit_breaker(self.0.clone())
    }
    fn name(&self) -> std::borrow::Cow<'static, str> {
        "down".into()
    }
    async fn run(&self, _: &Resources) -> Result<TaskResult<Step>, CanoError> {
        Err(CanoError::task_execution("down"))
    }
}

#[test]
fn failures_cancellations_and_circuit_transitions_are_counted() {
    let recorder = TestRecorder::default();
    let sim = Simulation::new();
    let breaker = Arc::new(
        CircuitBreaker::new(CircuitPolicy {
            failure_threshold: 1,
            reset_timeout: Duration::from_secs(30),
            half_open_max_calls: 1,
        })
        .unwrap(),
    );
    let wf = Workflow::bare()
        .register(Step::Start, Down(breaker))
        .add_exit_state(Step::Done);
    metrics::with_local_recorder(&recorder, || {
        // Fails and opens the breaker; then rejected; then, 30 s later, a failing trial.
        for wait in [0, 0, 30] {
            sim.block_on(async {
                let clock = sim.clock();
                cano_tokio::Clock::sleep_until(
                    &clock,
                    cano_tokio::Clock::now(&clock) + Duration::from_secs(wait),
                )
                .await;
                assert!(wf.orchestrate_on(&clock, Step::Start).await.is_err());
            });
        }
    });
    assert_eq!(
        recorder.counter("cano_workflow_runs_total{outcome=failed}"),
        3
    );
    assert_eq!(
        recorder.counter("cano_circuit_transitions_total{transition=closed_to_open}"),
        1
    );
    assert_eq!(
        recorder.counter("cano_circuit_transitions_total{transition=open_to_half_open}"),
        1
    );
    assert_eq!(
        recorder.counter("cano_circuit_transitions_total{transition=half_open_to_open}"),
        1
    );
    assert_eq!(
        recorder.counter("cano_circuit_rejections_total{task=down}"),
        1
    );
    assert_eq!(recorder.counter("cano_task_attempts_total{task=down}"), 2);
}

#[test]
fn a_cancelled_run_is_counted_as_cancelled_and_leaves_no_active_run() {
    let recorder = TestRecorder::default();
    let sim = Simulation::new();
    let wf = workflow();
    let token = cano_tokio::CancellationToken::new();
    token.cancel();
    let ctx = cano_tokio::RunContext::new(sim.clock()).with_cancellation(token);
    let result = metrics::with_local_recorder(&recorder, || {
        sim.block_on(wf.orchestrate_with(ctx, Step::Start))
    });
    assert!(matches!(result, Err(CanoError::Cancelled(_))), "{result:?}");
    assert_eq!(
        recorder.counter("cano_workflow_runs_total{outcome=cancelled}"),
        1
    );
    assert_eq!(
        recorder.counter("cano_workflow_runs_total{outcome=completed}"),
        0
    );
    assert_eq!(recorder.gauge("cano_workflow_active{}"), Some(0.0));
}

/// The scheduler's metrics (cano 0.15's names), driven by its events: runs by outcome,
/// durations, backoff and trips by flow, and the active-flows gauge through additions,
/// removals and the stop.
#[test]
fn the_scheduler_records_runs_durations_backoff_trips_and_active_flows() {
    use cano_tokio::scheduler::{Fire, FlowOptions, InFlight, Scheduler, job_fn};
    use cano_tokio::{BackoffPolicy, Schedule};

    let recorder = TestRecorder::default();
    let sim = Simulation::new();
    metrics::with_local_recorder(&recorder, || {
        let mut s = Scheduler::new();
        s.every("wf", workflow(), Step::Start, Duration::from_secs(60))
            .unwrap();
        let running = sim.block_on(s.start(sim.clock(), sim.spawner())).unwrap();
        assert_eq!(recorder.gauge("cano_scheduler_active_flows{}"), Some(1.0));
        sim.block_on(running.add_flow_with(
            "flaky",
            Schedule::Every(Duration::from_secs(10)),
            FlowOptions::default().with_backoff(BackoffPolicy {
                jitter: 0.0,
                ..BackoffPolicy::with_trip(2)
            }),
            job_fn(|(), _: Fire| async { Err(CanoError::task_execution("down")) }),
            (),
        ))
        .unwrap();
        sim.block_on(running.add_flow(
            "brief",
            Schedule::Manual,
            job_fn(|(), _: Fire| async { Ok(()) }),
            (),
        ))
        .unwrap();
        sim.run_for(Duration::from_secs(30));
        assert_eq!(recorder.gauge("cano_scheduler_active_flows{}"), Some(3.0));
        sim.block_on(running.remove_flow("brief", InFlight::Wait))
            .unwrap();
        sim.run_for(Duration::from_secs(1));
        assert_eq!(recorder.gauge("cano_scheduler_active_flows{}"), Some(2.0));
        sim.block_on(running.stop()).unwrap();
    });
    assert_eq!(
        recorder.counter("cano_scheduler_flow_runs_total{flow=wf,outcome=completed}"),
        1
    );
    assert_eq!(
        recorder.counter("cano_scheduler_flow_runs_total{flow=flaky,outcome=failed}"),
        2
    );
    assert_eq!(
        recorder.histogram("cano_scheduler_flow_duration_seconds{flow=wf}"),
        [2.0],
        "the workflow's one 2 s retry pause, exact on virtual time"
    );
    assert_eq!(
        recorder.counter("cano_scheduler_flow_backoff_total{flow=flaky}"),
        1
    );
    assert_eq!(
        recorder.counter("cano_scheduler_flow_tripped_total{flow=flaky}"),
        1
    );
    assert_eq!(recorder.gauge("cano_scheduler_active_flows{}"), Some(0.0));
}
