//! cano's `tracing` and `metrics` features: a workflow with a flaky task and a split runs
//! under a tiny `tracing` subscriber that prints every event with its span path, and a tiny
//! `metrics` recorder that prints every counter and histogram update. Then the same workflow
//! runs once as a scheduled flow (its span path starts with `scheduled_run{flow, fire}`),
//! beside a flow that backs off and trips (`flow_backoff`, `flow_tripped`, the
//! `cano_scheduler_*` metrics).
//!
//! Run with `cargo run -p cano-tokio --example telemetry --features tracing,metrics`. In an
//! application, install `tracing-subscriber` and a `metrics` exporter instead.

use std::borrow::Cow;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cano_tokio::{
    CanoError, JoinConfig, JoinStrategy, Task, TaskConfig, TaskResult, Workflow, WorkflowExt,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Step {
    Fetch,
    Fan,
    Done,
}

/// Fails once, then succeeds after a 50 ms pause.
struct Fetch(AtomicU32);
impl Task<Step> for Fetch {
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal().with_fixed_retry(1, Duration::from_millis(50))
    }
    fn name(&self) -> Cow<'static, str> {
        "fetch".into()
    }
    async fn run_bare(&self) -> Result<TaskResult<Step>, CanoError> {
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(CanoError::task_execution("upstream not ready"));
        }
        tracing::info!("fetched");
        Ok(TaskResult::Single(Step::Fan))
    }
}

struct Index;
impl Task<Step> for Index {
    fn config(&self) -> TaskConfig {
        TaskConfig::minimal()
    }
    fn name(&self) -> Cow<'static, str> {
        "index".into()
    }
    async fn run_bare(&self) -> Result<TaskResult<Step>, CanoError> {
        tracing::info!("indexed");
        Ok(TaskResult::Single(Step::Done))
    }
}

/// Prints each event as `span > span > ... : message {fields}`.
mod print_subscriber {
    use super::*;
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    #[derive(Default)]
    struct Spans {
        next: u64,
        names: Vec<(u64, String, Option<u64>)>,
        stack: Vec<u64>,
    }

    #[derive(Default)]
    pub(crate) struct Printer(Mutex<Spans>);

    struct Text(String);
    impl Visit for Text {
        fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
            if field.name() == "message" {
                self.0.insert_str(0, &format!("{value:?} "));
            } else {
                self.0.push_str(&format!("{}={value:?} ", field.name()));
            }
        }
    }

    impl Printer {
        fn path(spans: &Spans, mut at: Option<u64>) -> String {
            let mut names = Vec::new();
            while let Some(id) = at {
                let (_, name, parent) = &spans.names[(id - 1) as usize];
                names.push(name.clone());
                at = *parent;
            }
            names.reverse();
            names.join(" > ")
        }
    }

    impl Subscriber for Printer {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, attrs: &Attributes<'_>) -> Id {
            let mut spans = self.0.lock().unwrap();
            spans.next += 1;
            let id = spans.next;
            let mut text = Text(String::new());
            attrs.record(&mut text);
            let parent = attrs.parent().map(Id::into_u64).or_else(|| {
                attrs
                    .is_contextual()
                    .then(|| spans.stack.last().copied())
                    .flatten()
            });
            let name = format!("{}{{{}}}", attrs.metadata().name(), text.0.trim_end());
            spans.names.push((id, name, parent));
            Id::from_u64(id)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let spans = self.0.lock().unwrap();
            let mut text = Text(String::new());
            event.record(&mut text);
            let at = event
                .parent()
                .map(Id::into_u64)
                .or(spans.stack.last().copied());
            println!(
                "{:<5} {} : {}",
                event.metadata().level(),
                Printer::path(&spans, at),
                text.0
            );
        }
        fn enter(&self, span: &Id) {
            self.0.lock().unwrap().stack.push(span.into_u64());
        }
        fn exit(&self, span: &Id) {
            let mut spans = self.0.lock().unwrap();
            if let Some(at) = spans.stack.iter().rposition(|&s| s == span.into_u64()) {
                spans.stack.remove(at);
            }
        }
    }
}

/// Prints every counter increment and histogram value.
mod print_recorder {
    use super::*;
    use metrics::{
        Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata,
        Recorder, SharedString, Unit,
    };

    struct Printed(String);
    impl CounterFn for Printed {
        fn increment(&self, value: u64) {
            println!("metric {} += {value}", self.0);
        }
        fn absolute(&self, value: u64) {
            println!("metric {} = {value}", self.0);
        }
    }
    impl GaugeFn for Printed {
        fn increment(&self, value: f64) {
            println!("metric {} += {value}", self.0);
        }
        fn decrement(&self, value: f64) {
            println!("metric {} -= {value}", self.0);
        }
        fn set(&self, value: f64) {
            println!("metric {} = {value}", self.0);
        }
    }
    impl HistogramFn for Printed {
        fn record(&self, value: f64) {
            println!("metric {} <- {value:.3}", self.0);
        }
    }

    fn printed(key: &Key) -> Arc<Printed> {
        let labels: Vec<_> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        Arc::new(Printed(format!("{}{{{}}}", key.name(), labels.join(","))))
    }

    pub(crate) struct PrintRecorder;
    impl Recorder for PrintRecorder {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(printed(key))
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(printed(key))
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::from_arc(printed(key))
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing::subscriber::set_global_default(print_subscriber::Printer::default())?;
    metrics::set_global_recorder(print_recorder::PrintRecorder)?;
    let workflow = Workflow::bare()
        .register(Step::Fetch, Fetch(AtomicU32::new(0)))
        .register_split(
            Step::Fan,
            [Index, Index],
            JoinConfig::new(JoinStrategy::All, Step::Done),
        )
        .add_exit_state(Step::Done);
    let end = workflow.orchestrate(Step::Fetch).await?;
    println!("ended in {end:?}");

    println!("\n-- the same workflow as a scheduled flow, beside one that trips --");
    // A fresh `Fetch` (it fails its first attempt again).
    let workflow = Workflow::bare()
        .register(Step::Fetch, Fetch(AtomicU32::new(0)))
        .register_split(
            Step::Fan,
            [Index, Index],
            JoinConfig::new(JoinStrategy::All, Step::Done),
        )
        .add_exit_state(Step::Done);
    let mut scheduler = cano_tokio::Scheduler::new();
    scheduler.manual("report", workflow, Step::Fetch)?;
    scheduler.every(
        "sync",
        |_fire: cano_tokio::scheduler::Fire| async {
            Err::<(), _>(CanoError::task_execution("upstream answered 503"))
        },
        Step::Fetch,
        Duration::from_millis(20),
    )?;
    scheduler.set_backoff(
        "sync",
        cano_tokio::BackoffPolicy {
            initial: Duration::from_millis(20),
            jitter: 0.0,
            ..cano_tokio::BackoffPolicy::with_trip(2)
        },
    )?;
    let running = cano_tokio::start_scheduler(scheduler).await?;
    running.trigger("report")?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    running.stop().await?;
    Ok(())
}
