//! cano's demo on smol's building blocks: the scheduler runs on an `async-executor`
//! [`Executor`], timed by `async-io`.
//!
//! Four flows: `heartbeat` every second, `clock` on a cron expression at every wall-clock
//! second, `deploy` (a small [`Workflow`]) triggered from code, and `sync`, whose upstream
//! fails: its runs back off (0.6 s, then 1.2 s), the third failure trips it, and `reset_flow`
//! brings it back once the upstream is fixed. Each run prints what it does; the demo prints
//! `sync`'s status at each step, stops after 3.6 s and prints every flow's status.
//!
//! Run with `cargo run -p cano-smol --example smol_quickstart`.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_executor::Executor;
use async_io::Timer;
use cano_smol::backoff::BackoffPolicy;
use cano_smol::scheduler::{Fire, Scheduler};
use cano_smol::{CanoError, Resources, Task, TaskResult, Workflow};

fn main() -> Result<(), CanoError> {
    let executor = Arc::new(Executor::new());
    // `async_io::block_on` drives the timers on this thread while the executor runs the
    // scheduler's loop and its runs.
    async_io::block_on(executor.run(demo(executor.clone())))
}

async fn demo(executor: Arc<Executor<'static>>) -> Result<(), CanoError> {
    let upstream_up = Arc::new(AtomicBool::new(false));
    let mut scheduler = Scheduler::new();

    // One input type per scheduler: the deploy workflow's initial state. The closures,
    // which take only the `Fire`, ignore it.
    scheduler.every_seconds(
        "heartbeat",
        |_fire: Fire| async {
            say("heartbeat", "beat");
            Ok(())
        },
        Deploy::Build,
        1,
    )?;
    scheduler.cron(
        "clock",
        |fire: Fire| async move {
            say("clock", format!("cron fire {}", fire.id()));
            Ok(())
        },
        Deploy::Build,
        "* * * * * *",
    )?;
    scheduler.manual("deploy", deploy_workflow(), Deploy::Build)?;
    let attempts = Arc::new(AtomicU32::new(0));
    let upstream = upstream_up.clone();
    scheduler.every(
        "sync",
        move |_fire: Fire| {
            let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            let up = upstream.load(Ordering::SeqCst);
            async move {
                if up {
                    say("sync", format!("attempt {attempt}: ok"));
                    Ok(())
                } else {
                    say("sync", format!("attempt {attempt}: upstream answered 503"));
                    Err(CanoError::task_execution("upstream answered 503"))
                }
            }
        },
        Deploy::Build,
        // Shorter than the backoff, so while failing the backoff decides when it runs.
        Duration::from_millis(500),
    )?;
    scheduler.set_backoff(
        "sync",
        BackoffPolicy {
            initial: Duration::from_millis(600),
            jitter: 0.0,
            streak_limit: Some(3),
            ..BackoffPolicy::default()
        },
    )?;

    START.get_or_init(Instant::now);
    let running = cano_smol::start_scheduler(scheduler, executor).await?;
    let sync_status = || {
        format!(
            "status(\"sync\"): {:?}",
            running.status("sync").map(|i| i.status)
        )
    };

    sleep_until(0.3).await;
    say("main", sync_status());
    sleep_until(1.0).await;
    say("main", "trigger(\"deploy\")");
    running.trigger("deploy")?;
    sleep_until(2.0).await;
    say("main", sync_status());
    upstream_up.store(true, Ordering::SeqCst);
    say("main", "upstream fixed; reset_flow(\"sync\")");
    running.reset_flow("sync")?;
    sleep_until(2.2).await;
    say("main", sync_status());
    sleep_until(3.6).await;
    say("main", "stop_within(1s)");
    let report = running.stop_within(Duration::from_secs(1)).await?;
    say(
        "main",
        format!("stopped; cancelled runs: {:?}", report.cancelled),
    );
    for info in running.list() {
        println!(
            "  {:<10} runs {:>2}  {:?}",
            info.id, info.run_count, info.status
        );
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Deploy {
    Build,
    Test,
    Shipped,
}

/// One deploy step: `work` long, then on to `next`.
struct Stage(&'static str, Duration, Deploy);

impl Task<Deploy> for Stage {
    async fn run(&self, _res: &Resources) -> Result<TaskResult<Deploy>, CanoError> {
        say("deploy", format!("{} ...", self.0));
        Timer::after(self.1).await;
        Ok(TaskResult::Single(self.2.clone()))
    }
}

fn deploy_workflow() -> Workflow<Deploy> {
    Workflow::bare()
        .register(
            Deploy::Build,
            Stage("build", Duration::from_millis(200), Deploy::Test),
        )
        .register(
            Deploy::Test,
            Stage("test", Duration::from_millis(100), Deploy::Shipped),
        )
        .add_exit_state(Deploy::Shipped)
}

static START: OnceLock<Instant> = OnceLock::new();

fn since_start() -> Duration {
    START.get().map(Instant::elapsed).unwrap_or_default()
}

async fn sleep_until(secs: f64) {
    let start = *START.get().expect("started");
    Timer::at(start + Duration::from_secs_f64(secs)).await;
}

fn say(who: &str, what: impl std::fmt::Display) {
    println!("{:>7.3}s  {who:<9} {what}", since_start().as_secs_f64());
}
