//! The fleet benchmarks of issue 12, on a PostgreSQL 15 server this program starts itself
//! (see `cano_tests::pg_server`) and `fleet_node` processes on loopback. Prints a
//! Markdown table for the README.
//!
//! Run: `cargo build --release -p cano-tests --bin fleet_node --bin fleet_bench &&
//! target/release/fleet_bench` (`--seconds N` sets each lateness run's length, default 20;
//! `--lateness` runs only the lateness rows; `--worst-seconds` prints each lateness run's
//! five latest seconds to standard error).
//!
//! * **Fire lateness** (scheduled time → run start, real clock), p50/p99/max, for 1 and 3
//!   nodes running the 200 flows of `cano_tests::fleet::fleet_flows` (about 160 fires a
//!   second in all). Fires of the first 3 s are left out (start-up).
//! * **Statements per fire**: the statements the server logged for the run's own database
//!   (`log_statement = all` during the run), minus the side-effect writes, divided by the
//!   fires run; the calls of each of cano's PL/pgSQL functions (`pg_stat_user_functions`,
//!   `track_functions = pl`); and the transactions the server committed
//!   (`pg_stat_database.xact_commit`) minus the side-effect writes, which also counts the
//!   server's own work for each `NOTIFY` delivered to a listening node.
//! * **Failover time**: runs of 300 ms on 3 nodes; one node is killed while it holds
//!   claims; the time from the kill until each of its fires starts on another node.
//! * **Idle CPU per node** with 10 000 flows (crons that fire once a year): CPU time of
//!   each of 3 node processes over 10 s, from `/proc/<pid>/stat`.
//! * **Claims per second** sustained: claim + complete of distinct fires, straight on
//!   `PgStore`, over 1 and 8 connections for 5 s, one claim per statement and 64 per
//!   statement (`claim_batch`, as a node claims the fires that come due together).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cano_core::jiff::Timestamp;
use cano_core::persist::{ClaimOutcome, ClaimRequest, FireLedger, FireOutcome, NodeId};
use cano_core::scheduler::FireId;
use cano_postgres::tokio_postgres::{self, Client, NoTls};
use cano_postgres::{PgConfig, PgStore};
use cano_tests::fleet::{NodeProcess, effect_tables_ddl, percentile};
use cano_tests::pg_server::PgServer;

const LEASE_MS: u64 = 3_000;
const SCAN_MS: u64 = 500;
const SCHEMA: &str = "cano";

fn node_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("this program's path");
    exe.with_file_name("fleet_node")
}

fn now_us() -> i64 {
    Timestamp::now().as_microsecond()
}

async fn client(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

struct Bench {
    server: PgServer,
    rt: tokio::runtime::Runtime,
    /// Print each lateness run's worst seconds (`--worst-seconds`).
    worst_seconds: bool,
}

impl Bench {
    /// A fresh database with cano's schema and the side-effect tables; its URL.
    fn database(&self, name: &str) -> String {
        let url = self.server.url(name);
        let admin = self.server.url("postgres");
        self.rt.block_on(async {
            let c = client(&admin).await;
            c.batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create a database");
            let config = PgConfig::new(&url).unwrap().schema(SCHEMA);
            drop(PgStore::connect(config).await.expect("create the schema"));
            client(&url)
                .await
                .batch_execute(&effect_tables_ddl(SCHEMA))
                .await
                .expect("create the effect tables");
        });
        url
    }

    fn query_i64(&self, url: &str, sql: &str) -> i64 {
        self.rt
            .block_on(async { client(url).await.query_one(sql, &[]).await.unwrap().get(0) })
    }

    fn nodes(&self, url: &str, n: usize, extra: &[&str]) -> Vec<NodeProcess> {
        (0..n)
            .map(|i| {
                let mut args: Vec<String> = [
                    "--url",
                    url,
                    "--schema",
                    SCHEMA,
                    "--lease-ms",
                    &LEASE_MS.to_string(),
                    "--scan-ms",
                    &SCAN_MS.to_string(),
                ]
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
                args.extend(extra.iter().map(|s| (*s).to_owned()));
                NodeProcess::spawn(&node_bin(), &format!("n{}", i + 1), &args)
            })
            .collect()
    }

    /// Lateness and statements per fire of `n` nodes over `seconds` (`n == 0`: one
    /// scheduler outside a fleet, the baseline).
    fn lateness(&self, n: usize, seconds: u64) -> String {
        let db = format!("lateness{n}");
        let url = self.database(&db);
        let commits = |b: &Bench| {
            b.query_i64(
                &url,
                &format!("SELECT xact_commit FROM pg_stat_database WHERE datname = '{db}'"),
            )
        };
        let before = commits(self);
        let calls_before = self.function_calls(&url);
        let log_from = self.log_statements(true);
        let nodes = if n == 0 {
            self.nodes(&url, 1, &["--fleet", "0"])
        } else {
            self.nodes(&url, n, &[])
        };
        let from = now_us() + 3_000_000;
        std::thread::sleep(Duration::from_secs(seconds));
        let to = now_us();
        for node in nodes {
            node.stop();
        }
        // Stats of ended sessions are flushed when they end; give the server a moment.
        std::thread::sleep(Duration::from_millis(1_500));
        self.log_statements(false);
        let sent = self.statements_logged(&db, log_from);
        let effects = self.query_i64(&url, "SELECT count(*) FROM cano.test_effects");
        let transactions = commits(self) - before - effects;
        let calls = self.function_calls(&url);
        let per_function: Vec<String> = calls
            .iter()
            .map(|(f, c)| {
                let was = calls_before
                    .iter()
                    .find(|(g, _)| g == f)
                    .map_or(0, |(_, c)| *c);
                format!("{f} {:.2}", (c - was) as f64 / effects as f64)
            })
            .collect();
        let fires: Vec<(i64, i64)> = self.rt.block_on(async {
            client(&url)
                .await
                .query(
                    "SELECT fire_us, first_started_us - fire_us FROM cano.test_effects
                     WHERE fire_us >= $1 AND fire_us < $2",
                    &[&from, &to],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)))
                .collect()
        });
        if self.worst_seconds {
            eprintln!("{}", worst_seconds(&fires, from));
        }
        let mut lateness: Vec<i64> = fires.iter().map(|f| f.1).collect();
        lateness.sort_unstable();
        let ms = |us: i64| us as f64 / 1000.0;
        format!(
            "| fire lateness | {} | {} fires in {:.0} s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms | {:.2} statements per fire sent besides the effect ({}); {:.2} transactions per fire on the server |",
            match n {
                0 => "no fleet (baseline: same flows, 1 process)".to_owned(),
                1 => "fleet of 1 node".to_owned(),
                n => format!("fleet of {n} nodes"),
            },
            lateness.len(),
            (to - from) as f64 / 1e6,
            ms(percentile(&lateness, 0.5)),
            ms(percentile(&lateness, 0.99)),
            ms(lateness.last().copied().unwrap_or(0)),
            sent as f64 / effects as f64,
            if per_function.is_empty() {
                "no ledger".to_owned()
            } else {
                per_function.join(", ")
            },
            transactions as f64 / effects as f64,
        )
    }

    /// Turns the server's statement log on or off; the log's length when it was turned on.
    fn log_statements(&self, on: bool) -> u64 {
        let setting = if on { "all" } else { "none" };
        self.rt.block_on(async {
            let c = client(&self.server.url("postgres")).await;
            c.batch_execute(&format!("ALTER SYSTEM SET log_statement = '{setting}'"))
                .await
                .expect("set log_statement");
            c.batch_execute("SELECT pg_reload_conf()")
                .await
                .expect("reload the configuration");
        });
        // The reload reaches the backends at their next command; let it settle.
        std::thread::sleep(Duration::from_millis(200));
        std::fs::metadata(self.log()).map_or(0, |m| m.len())
    }

    /// The statements the server logged for database `db` after byte `from` of its log,
    /// except the side-effect writes (`WITH guard AS`, the tests' effect statement):
    /// every statement cano sent, counted on the server, whatever its transaction.
    fn statements_logged(&self, db: &str, from: u64) -> u64 {
        let log = std::fs::read(self.log()).unwrap_or_default();
        let log = String::from_utf8_lossy(log.get(from as usize..).unwrap_or_default());
        let prefix = format!("{db} ");
        log.lines()
            .filter(|line| line.starts_with(&prefix))
            .filter(|line| line.contains("LOG:  execute ") || line.contains("LOG:  statement: "))
            .filter(|line| !line.contains("WITH guard AS"))
            .count() as u64
    }

    fn log(&self) -> PathBuf {
        self.server.dir().join("server.log")
    }

    fn function_calls(&self, url: &str) -> Vec<(String, i64)> {
        self.rt.block_on(async {
            client(url)
                .await
                .query(
                    "SELECT funcname::text, calls FROM pg_stat_user_functions
                     WHERE schemaname = 'cano' ORDER BY funcname",
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect()
        })
    }

    /// From a kill until the killed node's claimed fires start elsewhere, over `kills`.
    fn failover(&self, kills: usize) -> String {
        let url = self.database("failover");
        let mut nodes = self.nodes(&url, 3, &["--work-ms", "300"]);
        let mut delays: Vec<i64> = Vec::new();
        let mut held_total = 0;
        for k in 0..kills {
            std::thread::sleep(Duration::from_secs(4));
            // 150 ms after a whole second: the per-second fires are running.
            let into = now_us().rem_euclid(1_000_000);
            std::thread::sleep(Duration::from_micros(
                (1_150_000 - into).rem_euclid(1_000_000) as u64,
            ));
            let victim = nodes.remove(k % nodes.len());
            let name = victim.name().to_owned();
            let killed_at = victim.kill();
            let held: Vec<(String, i64)> = self.rt.block_on(async {
                client(&url)
                    .await
                    .query(
                        "SELECT flow, scheduled_us FROM cano.cano_fire_claims
                         WHERE owner = $1 AND state = 0",
                        &[&name],
                    )
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect()
            });
            held_total += held.len();
            std::thread::sleep(Duration::from_millis(LEASE_MS + SCAN_MS + 2_000));
            for (flow, fire) in held {
                let started = self.rt.block_on(async {
                    client(&url)
                        .await
                        .query_opt(
                            "SELECT first_started_us FROM cano.test_effects
                             WHERE flow = $1 AND fire_us = $2",
                            &[&flow, &fire],
                        )
                        .await
                        .unwrap()
                        .map(|r| r.get::<_, i64>(0))
                });
                if let Some(started) = started {
                    delays.push(started - killed_at);
                }
            }
            // The killed node comes back under a new id.
            nodes.push(NodeProcess::spawn(
                &node_bin(),
                &format!("{name}r{k}"),
                &[
                    "--url".into(),
                    url.clone(),
                    "--schema".into(),
                    SCHEMA.into(),
                    "--lease-ms".into(),
                    LEASE_MS.to_string(),
                    "--scan-ms".into(),
                    SCAN_MS.to_string(),
                    "--work-ms".into(),
                    "300".into(),
                ],
            ));
        }
        for node in nodes {
            node.stop();
        }
        delays.sort_unstable();
        format!(
            "| failover after a kill | {kills} kills, {held_total} fires held by the killed nodes, {} taken over | p50 {:.2} s, max {:.2} s | lease {:.1} s + scan {:.1} s = {:.1} s |",
            delays.len(),
            percentile(&delays, 0.5) as f64 / 1e6,
            delays.last().copied().unwrap_or(0) as f64 / 1e6,
            LEASE_MS as f64 / 1e3,
            SCAN_MS as f64 / 1e3,
            (LEASE_MS + SCAN_MS) as f64 / 1e3
        )
    }

    /// CPU of idle nodes with 10 000 flows each.
    fn idle_cpu(&self) -> String {
        let url = self.database("idle");
        let nodes = self.nodes(&url, 3, &["--flows", "10000", "--idle", "1"]);
        std::thread::sleep(Duration::from_secs(3));
        let ticks = |pid: u32| -> u64 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Fields after the command (which is in parentheses): utime is the 12th, stime
            // the 13th of those.
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
        };
        let before: Vec<u64> = nodes.iter().map(|n| ticks(n.pid())).collect();
        let window = Duration::from_secs(10);
        std::thread::sleep(window);
        let after: Vec<u64> = nodes.iter().map(|n| ticks(n.pid())).collect();
        // USER_HZ is 100 on Linux.
        let percent: Vec<String> = before
            .iter()
            .zip(&after)
            .map(|(b, a)| {
                format!(
                    "{:.2} %",
                    (a - b) as f64 / 100.0 / window.as_secs_f64() * 100.0
                )
            })
            .collect();
        for node in nodes {
            node.stop();
        }
        format!(
            "| idle CPU, 10 000 flows per node | 3 nodes, 10 s | {} | scan every {:.1} s |",
            percent.join(", "),
            SCAN_MS as f64 / 1e3
        )
    }

    /// Claims + completions per second straight on `PgStore`.
    /// Claim + complete of distinct fires straight on `PgStore`, `batch` fires per claim
    /// call (1: `claim`, one statement each; more: `claim_batch`, the way a node claims
    /// the fires due together), completions pipelined on the same connection.
    fn claims_per_second(&self, connections: usize, batch: usize) -> String {
        let url = self.database(&format!("claims{connections}x{batch}"));
        let done = Arc::new(AtomicU64::new(0));
        let window = Duration::from_secs(5);
        self.rt.block_on(async {
            let mut tasks = Vec::new();
            for c in 0..connections {
                let config = PgConfig::new(&url).unwrap().schema(SCHEMA);
                let store = PgStore::connect(config).await.unwrap();
                let done = Arc::clone(&done);
                tasks.push(tokio::spawn(async move {
                    let node = NodeId::new(format!("bench{c}"));
                    let started = Instant::now();
                    let mut at = 1_767_225_600_000_000i64;
                    let lease = Duration::from_secs(30);
                    while started.elapsed() < window {
                        let fires: Vec<FireId> = (0..batch)
                            .map(|_| {
                                at += 1_000_000;
                                FireId::new(
                                    format!("flow{}", c * 64 + (at as usize / 1_000_000) % 64),
                                    Timestamp::from_microsecond(at).unwrap(),
                                )
                            })
                            .collect();
                        let answers = if batch == 1 {
                            vec![store.claim(&fires[0], &node, lease).await]
                        } else {
                            let asked: Vec<ClaimRequest> = fires
                                .iter()
                                .map(|f| ClaimRequest::new(f.clone(), u32::MAX))
                                .collect();
                            store.claim_batch(&asked, &node, lease).await
                        };
                        let completes = fires.iter().zip(answers).filter_map(|(fire, a)| {
                            match a.unwrap().value {
                                ClaimOutcome::Claimed(claim) => {
                                    Some(store.complete(fire, claim.fence, FireOutcome::Succeeded))
                                }
                                _ => None,
                            }
                        });
                        for ended in futures::future::join_all(completes).await {
                            ended.unwrap();
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
        let n = done.load(Ordering::Relaxed);
        format!(
            "| claims per second | {connections} connection{}, {} | {:.0} claim + complete per second | distinct fires, 64 flows per connection |",
            if connections == 1 { "" } else { "s" },
            if batch == 1 {
                "one claim per statement".to_owned()
            } else {
                format!("{batch} claims per statement")
            },
            n as f64 / window.as_secs_f64()
        )
    }
}

/// The five seconds of a lateness run whose fires were latest (on standard error, with
/// `--worst-seconds`): second since the run's start, fires due in it, their p50 and max.
fn worst_seconds(fires: &[(i64, i64)], from: i64) -> String {
    let mut by_second: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    for &(at, late) in fires {
        by_second
            .entry((at - from).div_euclid(1_000_000))
            .or_default()
            .push(late);
    }
    let mut seconds: Vec<(i64, i64, i64, usize)> = by_second
        .into_iter()
        .map(|(second, mut late)| {
            late.sort_unstable();
            (
                *late.last().unwrap_or(&0),
                percentile(&late, 0.5),
                second,
                late.len(),
            )
        })
        .collect();
    seconds.sort_unstable_by(|a, b| b.cmp(a));
    seconds
        .iter()
        .take(5)
        .map(|(max, p50, second, n)| {
            format!(
                "  second {second}: {n} fires, p50 {:.1} ms, max {:.1} ms",
                *p50 as f64 / 1000.0,
                *max as f64 / 1000.0
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn main() {
    let mut seconds = 20;
    let mut only_lateness = false;
    let mut worst = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => {
                seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(seconds);
            }
            "--lateness" => only_lateness = true,
            "--worst-seconds" => worst = true,
            other => {
                eprintln!(
                    "fleet_bench [--seconds N] [--lateness] [--worst-seconds]: unknown argument {other}"
                );
                std::process::exit(2);
            }
        }
    }
    let server = PgServer::start().expect("start PostgreSQL");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bench = Bench {
        server,
        rt,
        worst_seconds: worst,
    };
    bench.rt.block_on(async {
        let c = client(&bench.server.url("postgres")).await;
        // `%d `: each log line starts with its database, for `statements_logged`.
        for setting in ["track_functions = 'pl'", "log_line_prefix = '%d '"] {
            c.batch_execute(&format!("ALTER SYSTEM SET {setting}"))
                .await
                .expect("configure the server");
        }
        c.batch_execute("SELECT pg_reload_conf()")
            .await
            .expect("reload the configuration");
    });
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load.trim());
    println!("| what | setup | result | note |");
    println!("|---|---|---|---|");
    println!("{}", bench.lateness(0, seconds));
    println!("{}", bench.lateness(1, seconds));
    println!("{}", bench.lateness(3, seconds));
    if !only_lateness {
        println!("{}", bench.failover(3));
        println!("{}", bench.idle_cpu());
        for (connections, batch) in [(1, 1), (8, 1), (1, 64), (8, 64)] {
            println!("{}", bench.claims_per_second(connections, batch));
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at end: {}", load.trim());
}
