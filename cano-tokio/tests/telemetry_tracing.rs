//! Feature `tracing`: the spans of a workflow run nest (run → state → attempt, state →
//! branch → attempt), carry their ids, and the task's own events land inside them.

mod telemetry_support;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use cano_tokio::testing::Simulation;
use cano_tokio::{
    CanoError, CircuitBreaker, CircuitPolicy, Resources, Task, TaskConfig, TaskResult, Workflow,
};
use core::time::Duration;
use telemetry_support::{Step, workflow};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Debug, Clone)]
struct SpanRecord {
    name: &'static str,
    parent: Option<u64>,
    fields: HashMap<String, String>,
}

#[derive(Debug, Clone)]
struct EventRecord {
    message: String,
    span: Option<u64>,
    fields: HashMap<String, String>,
}

#[derive(Default)]
struct Captured {
    next: u64,
    spans: HashMap<u64, SpanRecord>,
    events: Vec<EventRecord>,
    stack: Vec<u64>,
}

/// A subscriber that records every span (with its parent) and event (with the span it
/// happened in). The simulation runs on one thread, so one span stack is enough.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Captured>>);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut c = self.0.lock().unwrap();
        c.next += 1;
        let id = c.next;
        let parent = match attrs.parent() {
            Some(parent) => Some(parent.into_u64()),
            None if attrs.is_contextual() => c.stack.last().copied(),
            None => None,
        };
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        c.spans.insert(
            id,
            SpanRecord {
                name: attrs.metadata().name(),
                parent,
                fields,
            },
        );
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut c = self.0.lock().unwrap();
        if let Some(record) = c.spans.get_mut(&span.into_u64()) {
            values.record(&mut Fields(&mut record.fields));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut c = self.0.lock().unwrap();
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        let span = match event.parent() {
            Some(parent) => Some(parent.into_u64()),
            None if event.is_contextual() => c.stack.last().copied(),
            None => None,
        };
        let message = fields.remove("message").unwrap_or_default();
        c.events.push(EventRecord {
            message,
            span,
            fields,
        });
    }
    fn enter(&self, span: &Id) {
        self.0.lock().unwrap().stack.push(span.into_u64());
    }
    fn exit(&self, span: &Id) {
        let mut c = self.0.lock().unwrap();
        if let Some(at) = c.stack.iter().rposition(|&s| s == span.into_u64()) {
            c.stack.remove(at);
        }
    }
}

impl Capture {
    fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        tracing::subscriber::with_default(self.clone(), f)
    }
    fn snapshot(&self) -> (HashMap<u64, SpanRecord>, Vec<EventRecord>) {
        let c = self.0.lock().unwrap();
        (c.spans.clone(), c.events.clone())
    }
}

fn spans_named<'a>(spans: &'a HashMap<u64, SpanRecord>, name: &str) -> Vec<(u64, &'a SpanRecord)> {
    let mut found: Vec<_> = spans
        .iter()
        .filter(|(_, s)| s.name == name)
        .map(|(id, s)| (*id, s))
        .collect();
    found.sort_by_key(|(id, _)| *id);
    found
}

/// The names of `span` and its ancestors, innermost first.
fn path(spans: &HashMap<u64, SpanRecord>, mut span: Option<u64>) -> Vec<&'static str> {
    let mut names = Vec::new();
    while let Some(id) = span {
        let record = &spans[&id];
        names.push(record.name);
        span = record.parent;
    }
    names
}

#[test]
fn workflow_spans_nest_and_carry_their_ids() {
    let capture = Capture::default();
    let sim = Simulation::new();
    let wf = workflow();
    let result = capture.run(|| sim.block_on(wf.orchestrate_on(&sim.clock(), Step::Start)));
    assert_eq!(result, Ok(Step::Done));
    let (spans, events) = capture.snapshot();

    let runs = spans_named(&spans, "workflow_run");
    assert_eq!(runs.len(), 1, "{spans:#?}");
    let (run_id, run) = runs[0];
    assert_eq!(run.parent, None);
    assert!(
        run.fields.contains_key("run"),
        "the run span carries the run's id"
    );

    let states = spans_named(&spans, "state");
    let state_names: Vec<_> = states
        .iter()
        .map(|(_, s)| s.fields["state"].as_str())
        .collect();
    assert_eq!(state_names, ["Start", "Fan", "Done"]);
    assert!(states.iter().all(|(_, s)| s.parent == Some(run_id)));
    assert_eq!(states[0].1.fields["task"], "flaky");
    let (start_id, fan_id) = (states[0].0, states[1].0);

    let attempts = spans_named(&spans, "attempt");
    let flaky_attempts: Vec<_> = attempts
        .iter()
        .filter(|(_, a)| a.parent == Some(start_id))
        .map(|(_, a)| a.fields["attempt"].as_str())
        .collect();
    assert_eq!(
        flaky_attempts,
        ["1", "2"],
        "two attempts under the Start state"
    );

    let branches = spans_named(&spans, "branch");
    assert_eq!(branches.len(), 2);
    for (n, (branch_id, branch)) in branches.iter().enumerate() {
        assert_eq!(branch.parent, Some(fan_id));
        assert_eq!(branch.fields["index"], n.to_string());
        assert_eq!(branch.fields["task"], "leaf");
        let under = attempts
            .iter()
            .filter(|(_, a)| a.parent == Some(*branch_id))
            .count();
        assert_eq!(under, 1, "one attempt under branch {n}");
    }

    // The tasks' own events happen inside their attempt spans.
    let inside: Vec<_> = events
        .iter()
        .filter(|e| e.message == "inside flaky")
        .collect();
    assert_eq!(inside.len(), 2);
    for event in &inside {
        assert_eq!(
            path(&spans, event.span),
            ["attempt", "state", "workflow_run"]
        );
    }
    let leaves: Vec<_> = events
        .iter()
        .filter(|e| e.message == "inside leaf")
        .collect();
    assert_eq!(leaves.len(), 2);
    for event in &leaves {
        assert_eq!(
            path(&spans, event.span),
            ["attempt", "branch", "state", "workflow_run"]
        );
    }

    let retries: Vec<_> = events.iter().filter(|e| e.message == "retry").collect();
    assert_eq!(retries.len(), 1);
    assert_eq!(retries[0].fields["task"], "flaky");
    assert_eq!(retries[0].fields["attempt"], "1");
    assert_eq!(path(&spans, retries[0].span).last(), Some(&"workflow_run"));

    let finished: Vec<_> = events
        .iter()
        .filter(|e| e.message == "workflow_finished")
        .collect();
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0].fields["outcome"], "completed");
    assert_eq!(finished[0].fields["run"], run.fields["run"]);
}

#[test]
fn each_run_gets_its_own_id() {
    let capture = Capture::default();
    let sim = Simulation::new();
    let wf = workflow();
    capture.run(|| {
        for _ in 0..2 {
            // The flaky task keeps its call count: the second run succeeds at once.
            let result = sim.block_on(wf.orchestrate_on(&sim.clock(), Step::Start));
            assert_eq!(result, Ok(Step::Done));
        }
    });
    let (spans, _) = capture.snapshot();
    let ids: Vec<_> = spans_named(&spans, "workflow_run")
        .iter()
        .map(|(_, s)| s.fields["run"].clone())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
}

struct AlwaysFails;
impl Task<Step> for AlwaysFails {
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal().with_circuit_breaker(Arc::new(
            CircuitBreaker::new(CircuitPolicy {
                failure_threshold: 1,
                reset_timeout: Duration::from_secs(30),
                half_open_max_calls: 1,
            })
            .unwrap(),
        ))
    }
    async fn run(&self, _: &Resources) -> Result<TaskResult<Step>, CanoError> {
        Err(CanoError::task_execution("down"))
    }
}

struct Panics;
impl Task<Step> for Panics {
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }
    async fn run(&self, _: &Resources) -> Result<TaskResult<Step>, CanoError> {
        panic!("boom")
    }
}

#[test]
fn circuit_transitions_panics_and_failures_are_events() {
    let capture = Capture::default();
    let sim = Simulation::new();
    let failing = Workflow::bare()
        .register(Step::Start, AlwaysFails)
        .add_exit_state(Step::Done);
    let panicking = Workflow::bare()
        .register(Step::Start, Panics)
        .add_exit_state(Step::Done);
    capture.run(|| {
        // Once to open the breaker, once to be rejected by it.
        for _ in 0..2 {
            assert!(
                sim.block_on(failing.orchestrate_on(&sim.clock(), Step::Start))
                    .is_err()
            );
        }
        assert!(
            sim.block_on(panicking.orchestrate_on(&sim.clock(), Step::Start))
                .is_err()
        );
    });
    let (_, events) = capture.snapshot();
    let named = |name: &str| {
        events
            .iter()
            .filter(|e| e.message == name)
            .cloned()
            .collect::<Vec<_>>()
    };
    let transitions = named("circuit_transition");
    assert_eq!(transitions.len(), 1, "{events:#?}");
    assert_eq!(transitions[0].fields["from"], "closed");
    assert_eq!(transitions[0].fields["to"], "open");
    assert_eq!(named("circuit_rejected").len(), 1);
    let panics = named("task_panicked");
    assert_eq!(panics.len(), 1);
    assert!(panics[0].fields["panic"].contains("boom"));
    let outcomes: Vec<_> = named("workflow_finished")
        .iter()
        .map(|e| e.fields["outcome"].clone())
        .collect();
    assert_eq!(outcomes, ["failed", "failed", "failed"]);
}

/// A scheduled run has its own span carrying its fire id, the workflow run it makes nests
/// inside it, and backoff and trips are events naming the flow.
#[test]
fn scheduled_runs_have_spans_with_their_fire_ids_and_backoff_and_trips_are_events() {
    use cano_tokio::BackoffPolicy;
    use cano_tokio::scheduler::{Fire, Scheduler, job_fn};

    let capture = Capture::default();
    let sim = Simulation::new();
    let mut s = Scheduler::new();
    s.every("wf", workflow(), Step::Start, Duration::from_secs(60))
        .unwrap();
    let running = capture.run(|| {
        let running = sim.block_on(s.start(sim.clock(), sim.spawner())).unwrap();
        sim.block_on(running.add_flow_with(
            "flaky",
            cano_tokio::Schedule::Every(Duration::from_secs(10)),
            cano_tokio::scheduler::FlowOptions::default().with_backoff(BackoffPolicy {
                jitter: 0.0,
                ..BackoffPolicy::with_trip(2)
            }),
            job_fn(|(), _: Fire| async { Err(CanoError::task_execution("down")) }),
            (),
        ))
        .unwrap();
        sim.run_for(Duration::from_secs(30));
        running
    });
    capture.run(|| sim.block_on(running.stop())).unwrap();
    let (spans, events) = capture.snapshot();

    let scheduled = spans_named(&spans, "scheduled_run");
    let wf_runs: Vec<_> = scheduled
        .iter()
        .filter(|(_, s)| s.fields["flow"] == "wf")
        .collect();
    assert_eq!(wf_runs.len(), 1, "{scheduled:#?}");
    let (wf_span, wf_run) = wf_runs[0];
    assert!(
        wf_run.fields["fire"].starts_with("wf@2026-01-01T00:00:00"),
        "{:?}",
        wf_run.fields
    );
    let workflow_runs = spans_named(&spans, "workflow_run");
    assert_eq!(workflow_runs.len(), 1);
    assert_eq!(
        workflow_runs[0].1.parent,
        Some(*wf_span),
        "the workflow run nests in it"
    );
    let attempt_paths: Vec<_> = spans_named(&spans, "attempt")
        .iter()
        .map(|(id, _)| path(&spans, Some(*id)))
        .collect();
    assert!(attempt_paths.contains(&vec!["attempt", "state", "workflow_run", "scheduled_run"]));

    let named = |message: &str| -> Vec<&EventRecord> {
        events.iter().filter(|e| e.message == message).collect()
    };
    let backoff = named("flow_backoff");
    assert_eq!(backoff.len(), 1, "{events:#?}");
    assert_eq!(backoff[0].fields["flow"], "flaky");
    assert_eq!(backoff[0].fields["streak"], "1");
    let tripped = named("flow_tripped");
    assert_eq!(tripped.len(), 1);
    assert_eq!(tripped[0].fields["flow"], "flaky");
    assert_eq!(tripped[0].fields["streak"], "2");
    let finished = named("scheduled_run_finished");
    let failed: Vec<_> = finished
        .iter()
        .filter(|e| e.fields["outcome"] == "failed")
        .collect();
    assert_eq!(failed.len(), 2);
    assert!(
        failed
            .iter()
            .all(|e| e.fields["fire"].starts_with("flaky@"))
    );
    assert_eq!(named("flow_added").len(), 1);
    assert_eq!(named("scheduler_stopped").len(), 1);
}
