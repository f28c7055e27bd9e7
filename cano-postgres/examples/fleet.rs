//! One node of a fleet: run it three times against the same PostgreSQL database and each
//! fire runs on one node only.
//!
//! ```sh
//! export DATABASE_URL="host=localhost user=postgres dbname=postgres"
//! cargo run -p cano-postgres --example fleet -- node-1   # in a first terminal
//! cargo run -p cano-postgres --example fleet -- node-2   # in a second
//! cargo run -p cano-postgres --example fleet -- node-3   # in a third
//! ```
//!
//! Every node prints the fires it runs: together they print each fire once. Stop one with
//! Ctrl-C (or `kill -9` it): the others go on without a gap, and a fire it had claimed and
//! not finished runs on another node once its lease (10 s here) has passed, marked as a
//! takeover. The flows: `report`, a cron every 5 seconds, whose runs take 3 s; `sync`, an
//! interval of 2 s aligned to the Unix epoch (every node computes the same fire times).
//! `pause report` / `resume report` typed on one node's stdin reach every node.

use std::time::Duration;

use cano_core::CanoError;
use cano_core::persist::NodeId;
use cano_core::schedule::IntervalMode;
use cano_core::scheduler::{Fire, FleetConfig, Scheduler};
use cano_postgres::{PgConfig, PgStore};
use tokio::io::{AsyncBufReadExt, BufReader};

fn log(node: &str, fire: &Fire, what: &str) {
    println!(
        "{node}: {} {what} (fence {}{})",
        fire.id(),
        fire.fence().0,
        if fire.is_takeover() { ", takeover" } else { "" }
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let node = std::env::args().nth(1).unwrap_or_else(|| "node-1".into());
    let url = std::env::var("DATABASE_URL")
        .map_err(|_| "set DATABASE_URL (e.g. host=localhost user=postgres dbname=postgres)")?;
    // Creates the schema `cano_fleet_example` (and migrates it) on first use.
    let store = PgStore::connect(PgConfig::new(&url)?.schema("cano_fleet_example")).await?;

    let mut config = FleetConfig::default();
    config.lease = Duration::from_secs(10);
    config.safety_margin = Duration::from_secs(2);
    config.scan_every = Duration::from_secs(1);
    let mut scheduler = Scheduler::new();
    scheduler.set_fleet(store, NodeId::new(node.as_str()), config)?;

    let name = node.clone();
    scheduler.cron(
        "report",
        move |fire: Fire| {
            let name = name.clone();
            async move {
                log(&name, &fire, "starts");
                // Stop early if this node stops trusting its lease (the fire then runs
                // elsewhere); key real side effects by `fire.id()`.
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(3)) => {}
                    () = fire.cancellation().cancelled() => {
                        log(&name, &fire, "cancelled");
                        return Err(CanoError::cancelled("the lease was lost"));
                    }
                }
                log(&name, &fire, "done");
                Ok(())
            }
        },
        (),
        "*/5 * * * * *",
    )?;
    let name = node.clone();
    scheduler.every(
        "sync",
        move |fire: Fire| {
            let name = name.clone();
            async move {
                log(&name, &fire, "runs");
                Ok::<(), CanoError>(())
            }
        },
        (),
        Duration::from_secs(2),
    )?;
    scheduler.set_interval_mode(
        "sync",
        IntervalMode::EpochAligned {
            phase: Duration::ZERO,
        },
    )?;

    let running = cano_tokio::start_scheduler(scheduler).await?;
    println!("{node}: running; Ctrl-C stops, `pause report` / `resume report` steer the fleet");
    let commands = {
        let running = running.clone();
        let node = node.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(tokio::io::stdin()).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let result = match line.split_whitespace().collect::<Vec<_>>()[..] {
                    ["pause", flow] => running.pause(flow),
                    ["resume", flow] => running.resume(flow),
                    _ => continue,
                };
                println!("{node}: {line}: {result:?}");
            }
        })
    };
    let report = cano_tokio::shutdown_on_ctrl_c(&running, Duration::from_secs(5)).await?;
    commands.abort();
    println!("{node}: stopped; cancelled runs: {:?}", report.cancelled);
    Ok(())
}
