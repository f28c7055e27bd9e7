//! cano's demo on tokio: one scheduler with four flows.
//!
//! * `heartbeat`: a plain async closure, every second;
//! * `report`: a small [`Workflow`] (fetch → render → done) on a cron expression with a
//!   seconds field, at every even second of the wall clock;
//! * `reindex`: a manual flow, triggered from code;
//! * `sync`: a flaky flow whose upstream fails: it backs off (0.4 s, 0.8 s, 1.6 s), trips
//!   after 4 failures, refuses a trigger while tripped, and recovers after `reset_flow`;
//! * `cleanup`: added while the scheduler runs (with an input type of its own), every
//!   0.5 s, and removed again a second and a half later.
//!
//! Everything the scheduler does is printed from its event stream
//! (`RunningScheduler::subscribe`) as it happens, with the wall time (local zone) and the
//! time since start. The workflow prints each state it enters, as it enters it. 4 to 6 s
//! after start the demo stops gracefully (or earlier on Ctrl-C), prints the stop report, the
//! final status of every flow and the last runs of `sync` (`RunningScheduler::history`),
//! and exits 0.
//!
//! The flows' state (last fire, failure streak, backoff, trip, pause) lives in cano's
//! embedded store, a redb file (`cano-quickstart.redb` in the system's temp directory, or
//! the path in `CANO_QUICKSTART_DB`): run the demo twice and the second run starts where the
//! first stopped, with no server. Delete the file to start afresh.
//!
//! Run with `cargo run -p cano-tokio --example quickstart`.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cano_redb::RedbStore;
use cano_tokio::backoff::BackoffPolicy;
use cano_tokio::jiff::Timestamp;
use cano_tokio::jiff::tz::TimeZone;
use cano_tokio::scheduler::{
    Fire, InFlight, RunOutcome, RunningScheduler, Scheduler, SchedulerEvent, SchedulerEvents,
    job_fn,
};
use cano_tokio::{
    CanoError, Resources, Schedule, Status, Task, TaskResult, Workflow, WorkflowObserver,
};
use futures::StreamExt;

const STOP_GRACE: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> Result<(), CanoError> {
    let upstream_up = Arc::new(AtomicBool::new(false));
    let mut scheduler = Scheduler::new();

    // Every flow of one scheduler takes the same input type: here the report workflow's
    // initial state. Plain closures that take only the `Fire` ignore it.
    scheduler.every(
        "heartbeat",
        |_fire: Fire| async { Ok(()) },
        Report::Fetch,
        Duration::from_secs(1),
    )?;
    scheduler.cron("report", report_workflow(), Report::Fetch, "*/2 * * * * *")?;
    scheduler.manual(
        "reindex",
        |_fire: Fire| async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            Ok(())
        },
        Report::Fetch,
    )?;
    let upstream = upstream_up.clone();
    scheduler.every(
        "sync",
        move |_fire: Fire| {
            let up = upstream.load(Ordering::SeqCst);
            async move {
                if up {
                    Ok(())
                } else {
                    Err(CanoError::task_execution("upstream answered 503"))
                }
            }
        },
        Report::Fetch,
        Duration::from_millis(400),
    )?;
    // No jitter, so the delays are exactly 0.4 s, 0.8 s, 1.6 s; the 4th failure trips.
    scheduler.set_backoff(
        "sync",
        BackoffPolicy {
            initial: Duration::from_millis(400),
            multiplier: 2.0,
            max_delay: Duration::from_secs(10),
            jitter: 0.0,
            streak_limit: Some(4),
        },
    )?;

    // The embedded store: every flow's state survives a restart of this program.
    let path = std::env::var_os("CANO_QUICKSTART_DB")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("cano-quickstart.redb"));
    let store = RedbStore::open(&path)
        .await
        .map_err(|e| CanoError::configuration(format!("cannot open {}: {e}", path.display())))?;
    scheduler.set_schedule_store(store);

    println!("cano quickstart on tokio: 4 flows; stops by itself within 6 s, or press Ctrl-C");
    println!(
        "flow state kept in {} (run again to resume from it)",
        path.display()
    );
    println!("(the scheduler's events as they happen; times: local wall clock, +since start)\n");
    clock_start();
    let running = cano_tokio::start_scheduler(scheduler).await?;
    for info in running.list() {
        if let Some(last) = info.last_run {
            println!(
                "restored {:<9} {:?}, last ran {}, failure streak {}",
                info.id,
                info.status,
                last.to_zoned_datetime(TimeZone::system())
                    .strftime("%Y-%m-%d %H:%M:%S"),
                info.failure_streak
            );
        }
    }

    let printer = tokio::spawn(print_events(running.subscribe(), running.clone()));
    let auto_stopped = Arc::new(AtomicBool::new(false));
    let script = tokio::spawn(script(
        running.clone(),
        upstream_up.clone(),
        auto_stopped.clone(),
    ));

    let report = cano_tokio::shutdown_on_ctrl_c(&running, STOP_GRACE).await?;
    script.abort();
    let _ = printer.await;
    let how = if auto_stopped.load(Ordering::SeqCst) {
        "(the demo's time is up)"
    } else {
        "on Ctrl-C"
    };
    log("scheduler", format!("stopped {how}"));
    match report.cancelled.as_slice() {
        [] => println!("\nstop report: every run in flight finished within the grace"),
        cancelled => println!("\nstop report: cancelled at the grace deadline: {cancelled:?}"),
    }
    for (flow, error) in &report.teardown_errors {
        println!("teardown of {flow} failed: {error}");
    }
    println!(
        "\n{:<10} {:<10} {:>5} {:>7} {:>8}",
        "flow", "status", "runs", "streak", "skipped"
    );
    for info in running.list() {
        println!(
            "{:<10} {:<10} {:>5} {:>7} {:>8}",
            info.id,
            status_name(&info.status),
            info.run_count,
            info.failure_streak,
            info.skipped_fires
        );
    }
    println!("\nlast runs of sync:");
    for run in running.history("sync")? {
        let how = match run.error() {
            Some(error) => format!("failed: {error}"),
            None => format!("{:?}", run.outcome),
        };
        println!(
            "  {} ran {} → {}: {how}",
            run.fire,
            Since(run.started),
            Since(run.ended)
        );
    }
    Ok(())
}

/// What the demo does from code while the scheduler runs.
async fn script(running: RunningScheduler, upstream_up: Arc<AtomicBool>, stopped: Arc<AtomicBool>) {
    let at = |secs: f64| tokio::time::sleep_until(start_instant() + Duration::from_secs_f64(secs));

    at(1.5).await;
    log("main", "trigger(\"reindex\")");
    report_error(running.trigger("reindex"));

    at(2.0).await;
    log("main", "add_flow(\"cleanup\", every 0.5 s)");
    let cleanup = job_fn(|dir: &'static str, _fire: Fire| async move {
        let _ = dir; // a flow's input may be of any type
        Ok(())
    });
    report_error(
        running
            .add_flow(
                "cleanup",
                Schedule::Every(Duration::from_millis(500)),
                cleanup,
                "/tmp/cano-cache",
            )
            .await,
    );

    at(3.2).await;
    log("main", "trigger(\"sync\")");
    report_error(running.trigger("sync"));

    at(3.5).await;
    upstream_up.store(true, Ordering::SeqCst);
    log("main", "upstream fixed; reset_flow(\"sync\")");
    report_error(running.reset_flow("sync"));

    at(3.6).await;
    log("main", "remove_flow(\"cleanup\", InFlight::Wait)");
    report_error(running.remove_flow("cleanup", InFlight::Wait).await);

    // Stop 5 s after start while a reindex run (and maybe a report workflow) is in flight:
    // runs in flight get the grace period to finish.
    let stop_at = 5.0;
    at(stop_at - 0.3).await;
    log("main", "trigger(\"reindex\")");
    report_error(running.trigger("reindex"));

    at(stop_at).await;
    let in_flight: Vec<String> = running
        .list()
        .into_iter()
        .filter(|info| info.status == Status::Running)
        .map(|info| info.id)
        .collect();
    log(
        "main",
        format!("stop_within({STOP_GRACE:?}); in flight: {in_flight:?}"),
    );
    stopped.store(true, Ordering::SeqCst);
    // The report goes to whoever else waits for it (`shutdown_on_ctrl_c` in `main`).
    let _ = running.stop_within(STOP_GRACE).await;
}

fn report_error(result: Result<(), CanoError>) {
    if let Err(e) = result {
        log("main", format!("  refused: {e}"));
    }
}

/// Prints every event of the scheduler as it happens, until the stream ends (after the
/// scheduler stopped).
async fn print_events(mut events: SchedulerEvents, running: RunningScheduler) {
    while let Some(event) = events.next().await {
        let who = event.flow().unwrap_or("scheduler").to_string();
        let what = match &event {
            SchedulerEvent::FireStarted { fire, .. } => {
                format!("started (fire {})", Since(fire.scheduled()))
            }
            SchedulerEvent::FireEnded {
                outcome, duration, ..
            } => match outcome {
                RunOutcome::Succeeded => format!("completed in {} ms", duration.as_millis()),
                RunOutcome::Failed(failure) => format!("failed: {}", failure.message()),
                RunOutcome::Cancelled => "cancelled".to_string(),
                other => format!("{other:?}"),
            },
            SchedulerEvent::Backoff { streak, delay, .. } => {
                let next = running
                    .status(&who)
                    .and_then(|info| info.next_fire)
                    .map(|next| format!("; next fire {}", Since(next)))
                    .unwrap_or_default();
                format!(
                    "backs off {:.2}s ({streak} in a row){next}",
                    delay.as_secs_f64()
                )
            }
            SchedulerEvent::Tripped { streak, .. } => {
                format!("TRIPPED: {streak} failures in a row; no runs until reset_flow")
            }
            SchedulerEvent::Reset { .. } => "reset: streak, backoff and trip cleared".into(),
            SchedulerEvent::FiresMissed { count, .. } => format!("{count} fires missed"),
            SchedulerEvent::FiresSkipped { count, .. } => {
                format!("{count} fires skipped inside the backoff window")
            }
            SchedulerEvent::FlowAdded { .. } => "added while running".into(),
            SchedulerEvent::FlowRemoved { .. } => "removed".into(),
            SchedulerEvent::Lagged { missed } => format!("(this printer missed {missed} events)"),
            other => format!("{other:?}"),
        };
        log(&who, what);
    }
}

fn status_name(status: &Status) -> &'static str {
    match status {
        Status::Idle => "idle",
        Status::Running => "running",
        Status::Completed => "completed",
        Status::Backoff { .. } => "backoff",
        Status::Tripped { .. } => "TRIPPED",
        Status::Paused => "paused",
        _ => "other",
    }
}

// --- The report workflow -------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Report {
    Fetch,
    Render,
    Done,
}

/// A step that takes `work` and moves on to `next`.
struct Step {
    work: Duration,
    next: Report,
}

impl Task<Report> for Step {
    async fn run(&self, _res: &Resources) -> Result<TaskResult<Report>, CanoError> {
        tokio::time::sleep(self.work).await;
        Ok(TaskResult::Single(self.next.clone()))
    }
}

/// Prints each state the workflow enters, as it enters it.
struct PrintStates;

impl WorkflowObserver<Report> for PrintStates {
    fn on_state_enter(&self, state: &Report) {
        log("report", format!("  workflow enters {state:?}"));
    }
}

fn report_workflow() -> Workflow<Report> {
    let step = |ms, next| Step {
        work: Duration::from_millis(ms),
        next,
    };
    Workflow::bare()
        .register(Report::Fetch, step(150, Report::Render))
        .register(Report::Render, step(100, Report::Done))
        .add_exit_state(Report::Done)
        .with_observer(Arc::new(PrintStates))
}

// --- Timestamps ----------------------------------------------------------------------------

static START: OnceLock<(tokio::time::Instant, Timestamp)> = OnceLock::new();

fn clock_start() {
    START.get_or_init(|| (tokio::time::Instant::now(), Timestamp::now()));
}

fn start_instant() -> tokio::time::Instant {
    START.get().expect("clock_start() first").0
}

/// A wall time shown as seconds since the demo started.
struct Since(Timestamp);

impl fmt::Display for Since {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let start = START.get().expect("clock_start() first").1;
        let secs = self.0.duration_since(start).as_secs_f64();
        write!(f, "{secs:+.3}s")
    }
}

fn log(who: &str, what: impl fmt::Display) {
    let now = Timestamp::now();
    let local = now.to_zoned_datetime(TimeZone::system());
    println!(
        "{} {:>8}  {who:<10} {what}",
        local.strftime("%H:%M:%S%.3f"),
        Since(now).to_string()
    );
}
