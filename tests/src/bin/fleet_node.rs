//! One node of the fleet that `tests/fleet_postgres.rs` and the `fleet_bench` binary run: a
//! scheduler in fleet mode on cano-postgres with the flows of
//! [`cano_tests::fleet::fleet_flows`], each run writing its fenced side effect
//! ([`cano_tests::fleet::EffectWriter`]).
//!
//! Usage: `fleet_node --url <conn> --schema <schema> --node <id> [--flows 200]
//! [--lease-ms 3000] [--scan-ms 500] [--wall-offset-ms 0] [--work-ms 0] [--idle 0]
//! [--fleet 1] [--schedule-store 0]`. With `--fleet 0` it is a plain scheduler (no ledger,
//! unfenced effects): the benchmarks' baseline. With `--schedule-store 1` the flows' state is
//! also kept in the database's schedule store, so a restart of the whole fleet catches up.
//! With `--idle 1` every flow is a cron that fires once a year (on 1 January), so the node
//! only waits: for measuring what an idle node costs.
//!
//! Prints `ready <node>` once started, then every second
//! `S <node> <available> <skew ms|-> <skew warnings> <held early> <claims held> <runs>
//! <elsewhere> <takeovers> <lease losses> <fenced effects>`. Stops gracefully (waits for
//! its runs) when its stdin closes, and prints `stopped <node>`.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cano_core::CanoError;
use cano_core::jiff::SignedDuration;
use cano_core::persist::NodeId;
use cano_core::schedule::{IntervalMode, MissedFirePolicy, OverlapPolicy};
use cano_core::scheduler::{Fire, FleetConfig, RunningScheduler, Scheduler};
use cano_postgres::{PgConfig, PgStore};
use cano_tests::fleet::{Effect, EffectWriter, OffsetClock, fleet_flows};
use cano_tokio::TokioSpawner;

struct Args {
    url: String,
    schema: String,
    node: String,
    flows: usize,
    lease: Duration,
    scan: Duration,
    wall_offset_ms: i64,
    work: Duration,
    idle: bool,
    fleet: bool,
    schedule_store: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: String::new(),
        schema: "cano".into(),
        node: String::new(),
        flows: 200,
        lease: Duration::from_secs(3),
        scan: Duration::from_millis(500),
        wall_offset_ms: 0,
        work: Duration::ZERO,
        idle: false,
        fleet: true,
        schedule_store: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<i64>()
                .map_err(|_| format!("{flag}: not a number: {value}"))
        };
        match flag.as_str() {
            "--url" => args.url = value.clone(),
            "--schema" => args.schema = value.clone(),
            "--node" => args.node = value.clone(),
            "--flows" => args.flows = number()? as usize,
            "--lease-ms" => args.lease = Duration::from_millis(number()? as u64),
            "--scan-ms" => args.scan = Duration::from_millis(number()? as u64),
            "--wall-offset-ms" => args.wall_offset_ms = number()?,
            "--work-ms" => args.work = Duration::from_millis(number()? as u64),
            "--idle" => args.idle = number()? != 0,
            "--fleet" => args.fleet = number()? != 0,
            "--schedule-store" => args.schedule_store = number()? != 0,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.url.is_empty() || args.node.is_empty() {
        return Err("--url and --node are required".into());
    }
    Ok(args)
}

fn scheduler(
    args: &Args,
    store: PgStore,
    effects: &Arc<EffectWriter>,
    fenced: &Arc<AtomicU64>,
) -> Result<Scheduler, CanoError> {
    let mut config = FleetConfig::default();
    config.lease = args.lease;
    config.safety_margin = args.lease / 3;
    config.scan_every = args.scan;
    config.retry = Duration::from_millis(100);
    config.retry_max = Duration::from_secs(1);
    let mut s = Scheduler::new();
    if args.schedule_store {
        s.set_schedule_store(store.clone());
    }
    if args.fleet {
        s.set_fleet(store, NodeId::new(args.node.as_str()), config)?;
    }
    for (id, period, phase) in fleet_flows(args.flows) {
        let effects = Arc::clone(effects);
        let fenced = Arc::clone(fenced);
        let work = args.work;
        let job = move |fire: Fire| {
            let effects = Arc::clone(&effects);
            let fenced = Arc::clone(&fenced);
            async move {
                let started = cano_core::jiff::Timestamp::now().as_microsecond();
                if !work.is_zero() {
                    tokio::time::sleep(work).await;
                }
                match effects.write(&fire, started).await {
                    Ok(Effect::Written) => Ok(()),
                    Ok(Effect::Fenced) => {
                        fenced.fetch_add(1, Ordering::Relaxed);
                        Err(CanoError::task_execution("the side effect was fenced"))
                    }
                    Err(e) => Err(CanoError::task_execution(e)),
                }
            }
        };
        if args.idle {
            s.cron(&id, job, (), "0 0 1 1 *")?;
        } else if id.starts_with('c') {
            s.cron(&id, job, (), "* * * * * *")?;
        } else {
            s.every(&id, job, (), period)?;
            s.set_interval_mode(&id, IntervalMode::EpochAligned { phase })?;
        }
        // A fire that waited on the ledger (a reconnect, a takeover) still runs.
        s.set_missed_fires(&id, MissedFirePolicy::RunAll { max: 16 })?;
        // Fleet-wide overlap: a dead node's claim stays live until its lease ends; with
        // `Skip` the fires of that flow meanwhile would be refused everywhere.
        s.set_overlap(&id, OverlapPolicy::AllowConcurrent(8))?;
    }
    Ok(s)
}

fn status_line(node: &str, running: &RunningScheduler, fenced: u64) -> String {
    let list = running.list();
    let sum = |f: fn(&cano_core::scheduler::FlowInfo) -> u64| list.iter().map(f).sum::<u64>();
    let fleet = running.fleet_status();
    let (available, skew, warnings, held_early, claims) = match &fleet {
        Some(f) => (
            f.ledger_available,
            f.skew
                .map_or_else(|| "-".into(), |s| s.as_millis().to_string()),
            f.skew_warnings,
            f.held_early,
            f.claims_held,
        ),
        None => (false, "-".into(), 0, 0, 0),
    };
    format!(
        "S {node} {available} {skew} {warnings} {held_early} {claims} {} {} {} {} {fenced}",
        sum(|i| i.run_count),
        sum(|i| i.fires_elsewhere),
        sum(|i| i.takeovers),
        sum(|i| i.lease_losses),
    )
}

async fn run(args: Args) -> Result<(), String> {
    let config = PgConfig::new(&args.url)
        .map_err(|e| e.to_string())?
        .schema(args.schema.as_str())
        .reconnect_backoff(Duration::from_millis(50), Duration::from_millis(500));
    let store = PgStore::connect(config).await.map_err(|e| e.to_string())?;
    let effects =
        Arc::new(EffectWriter::connect(&args.url, &args.schema, &args.node, args.fleet).await?);
    let fenced = Arc::new(AtomicU64::new(0));
    let scheduler = scheduler(&args, store, &effects, &fenced).map_err(|e| e.to_string())?;
    let clock = OffsetClock::new(SignedDuration::from_millis(args.wall_offset_ms));
    let running = scheduler
        .start(clock, TokioSpawner::current())
        .await
        .map_err(|e| e.to_string())?;
    println!("ready {}", args.node);
    // Stdin on a thread of its own: its end is the signal to stop.
    let (closed_tx, mut closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        let _ = closed_tx.send(());
    });
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = &mut closed => break,
            _ = ticker.tick() => {
                println!("{}", status_line(&args.node, &running, fenced.load(Ordering::Relaxed)));
            }
        }
    }
    running
        .stop_within(Duration::from_secs(5))
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "{}",
        status_line(&args.node, &running, fenced.load(Ordering::Relaxed))
    );
    println!("stopped {}", args.node);
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("fleet_node: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleet_node: {e}");
            ExitCode::FAILURE
        }
    }
}
