//! A fleet on a real PostgreSQL 15 (started by the test, see `cano_tests::pg_server`), as
//! real processes: `fleet_node` runs a scheduler in fleet mode with 200 flows (cron every
//! second, epoch-aligned intervals of 1–3 s) whose runs write a side effect keyed by their
//! `FireId`, fenced by their claim (`cano_tests::fleet`).
//!
//! * **Kills**: 3 nodes for 60 s; nodes are killed with SIGKILL and restarted at seeded
//!   random times (`CANO_FLEET_SEED` overrides the seed). Every fire of the window has its
//!   effect exactly once; a fire runs again only as a takeover after the node that claimed
//!   it was killed (its effect is then not applied twice); none is late by more than the
//!   lease and a scan.
//! * **Partition**: one node's connections go through a pausable TCP proxy, held for
//!   longer than twice the lease and released: its late writes are refused (fenced), every
//!   fire it had claimed is taken over and runs once, no fire's effect is applied twice.
//! * **Skew**: nodes with wall clocks 3 s behind and 3 s ahead: every fire runs once, never
//!   before its time, and both skewed nodes warn.
//! * **Outage**: all three nodes killed at once and restarted 4 s later, with the schedule
//!   store: the fires due while the fleet was down are caught up (`RunAll`), each once.
//!
//! These run on the real clock (about 2.5 minutes in all), one at a time (a lock), each on
//! a schema of its own.

use cano_tests::crash::SplitMix;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cano_core::jiff::Timestamp;
use cano_postgres::tokio_postgres::{self, NoTls};
use cano_postgres::{PgConfig, PgStore};
use cano_tests::fleet::{
    NodeProcess as Node, effect_tables_ddl, fires_between, fleet_flows, percentile,
};
use cano_tests::pg_server::PgServer;
use cano_tests::tcp_proxy::TcpProxy;

const NODE: &str = env!("CARGO_BIN_EXE_fleet_node");
const FLOWS: usize = 200;
const LEASE_MS: u64 = 3_000;
const SCAN_MS: u64 = 500;

/// One test at a time: each runs three node processes.
static SERIAL: Mutex<()> = Mutex::new(());

fn now_us() -> i64 {
    Timestamp::now().as_microsecond()
}

struct Fleet {
    schema: String,
    url: String,
    rt: tokio::runtime::Runtime,
}

impl Fleet {
    fn new(prefix: &str) -> Fleet {
        let server = PgServer::shared();
        let schema = server.fresh_schema(prefix);
        let url = server.url("postgres");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // Creates and migrates cano's schema, then the side-effect tables in it.
            let config = PgConfig::new(&url).unwrap().schema(schema.as_str());
            drop(PgStore::connect(config).await.expect("create the schema"));
            let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
            tokio::spawn(connection);
            client
                .batch_execute(&effect_tables_ddl(&schema))
                .await
                .expect("create the effect tables");
        });
        Fleet { schema, url, rt }
    }

    /// The connection string of the server, or of `proxy_port` in front of it.
    fn url_via(&self, proxy_port: Option<u16>) -> String {
        match proxy_port {
            None => self.url.clone(),
            Some(port) => {
                let server = PgServer::shared().port();
                self.url
                    .replace(&format!("port={server}"), &format!("port={port}"))
            }
        }
    }

    fn node(&self, name: &str, url: &str, extra: &[String]) -> Node {
        let mut args: Vec<String> = [
            "--url",
            url,
            "--schema",
            &self.schema,
            "--flows",
            &FLOWS.to_string(),
            "--lease-ms",
            &LEASE_MS.to_string(),
            "--scan-ms",
            &SCAN_MS.to_string(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend_from_slice(extra);
        Node::spawn(std::path::Path::new(NODE), name, &args)
    }

    fn query(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        self.rt.block_on(async {
            let (client, connection) = tokio_postgres::connect(&self.url, NoTls).await.unwrap();
            tokio::spawn(connection);
            client.query(sql, &[]).await.expect("query")
        })
    }

    fn effects(&self) -> BTreeMap<(String, i64), EffectRow> {
        self.query(&format!(
            "SELECT flow, fire_us, runs, replays, first_node, first_started_us, first_takeover
             FROM \"{}\".test_effects",
            self.schema
        ))
        .into_iter()
        .map(|r| {
            (
                (r.get::<_, String>(0), r.get::<_, i64>(1)),
                EffectRow {
                    runs: r.get(2),
                    replays: r.get(3),
                    first_node: r.get(4),
                    first_started_us: r.get(5),
                    first_takeover: r.get(6),
                },
            )
        })
        .collect()
    }

    /// (flow, fire, node, at) of every refused side-effect write.
    fn rejected(&self) -> Vec<(String, i64, String, i64)> {
        self.query(&format!(
            "SELECT flow, fire_us, node, at_us FROM \"{}\".test_rejected",
            self.schema
        ))
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
    }

    fn abandoned(&self) -> i64 {
        self.query(&format!(
            "SELECT count(*) FROM \"{}\".cano_fire_claims WHERE state = 2",
            self.schema
        ))[0]
            .get(0)
    }
}

#[derive(Debug, Clone)]
struct EffectRow {
    runs: i32,
    replays: i32,
    first_node: String,
    first_started_us: i64,
    first_takeover: bool,
}

/// What the effects of fires scheduled in `[from, to)` show.
#[derive(Debug, Default)]
struct Check {
    expected: usize,
    missing: Vec<(String, i64)>,
    duplicated: Vec<(String, i64, i32)>,
    off_grid: Vec<(String, i64)>,
    /// Fires whose effect came from a takeover, or was replayed by one.
    replayed: Vec<((String, i64), EffectRow)>,
    /// Start minus scheduled time, µs, of each fire's first run.
    lateness: Vec<i64>,
}

fn check(effects: &BTreeMap<(String, i64), EffectRow>, from: i64, to: i64) -> Check {
    let mut c = Check::default();
    let flows = fleet_flows(FLOWS);
    let mut grid: BTreeSet<(String, i64)> = BTreeSet::new();
    for (id, period, phase) in &flows {
        for fire in fires_between(*period, *phase, from, to) {
            grid.insert((id.clone(), fire));
        }
    }
    c.expected = grid.len();
    for key in &grid {
        match effects.get(key) {
            None => c.missing.push(key.clone()),
            Some(row) => {
                if row.runs != 1 {
                    c.duplicated.push((key.0.clone(), key.1, row.runs));
                }
                if row.replays > 0 || row.first_takeover {
                    c.replayed.push((key.clone(), row.clone()));
                }
                c.lateness.push(row.first_started_us - key.1);
            }
        }
    }
    // Any effect at a time that is no fire of its flow (over the whole run).
    let periods: BTreeMap<&str, (i64, i64)> = flows
        .iter()
        .map(|(id, p, ph)| (id.as_str(), (p.as_micros() as i64, ph.as_micros() as i64)))
        .collect();
    for (flow, fire) in effects.keys() {
        let on_grid = periods
            .get(flow.as_str())
            .is_some_and(|(p, ph)| (fire - ph).rem_euclid(*p) == 0);
        if !on_grid {
            c.off_grid.push((flow.clone(), *fire));
        }
    }
    c.lateness.sort_unstable();
    c
}

fn assert_exactly_once(c: &Check, what: &str) {
    let sample = |v: &[(String, i64)]| v.iter().take(10).cloned().collect::<Vec<_>>();
    assert!(c.expected > 0, "{what}: no fire in the window");
    assert!(
        c.missing.is_empty(),
        "{what}: {} of {} fires have no effect, e.g. {:?}",
        c.missing.len(),
        c.expected,
        sample(&c.missing)
    );
    assert!(
        c.duplicated.is_empty(),
        "{what}: effects applied twice (not as a takeover): {:?}",
        &c.duplicated[..c.duplicated.len().min(10)]
    );
    assert!(
        c.off_grid.is_empty(),
        "{what}: effects of fires that are not on their flow's schedule: {:?}",
        sample(&c.off_grid)
    );
}

/// 3 nodes, 200 flows, ≥ 60 s; SIGKILLs and restarts at random.
#[test]
fn three_nodes_killed_and_restarted_run_every_fire_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let seed = std::env::var("CANO_FLEET_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x000F_1EE7_u64);
    let mut rng = SplitMix(seed);
    let fleet = Fleet::new("fleet_kill");
    let url = fleet.url_via(None);
    // Runs of 300 ms: a kill lands on claims in flight, which the others must take over.
    let work = ["--work-ms".to_owned(), "300".to_owned()];
    let mut incarnation = [0u32; 3];
    let name = |i: usize, inc: u32| format!("n{}.{}", i + 1, inc);
    let mut nodes: Vec<Option<Node>> = (0..3)
        .map(|i| Some(fleet.node(&name(i, 0), &url, &work)))
        .collect();
    let began = Instant::now();
    let from = now_us() + 2_000_000;
    // (node name, kill time µs)
    let mut kills: Vec<(String, i64)> = Vec::new();
    // (node index, restart at)
    let mut restarts: Vec<(usize, Instant)> = Vec::new();
    let chaos = Duration::from_secs(62);
    let mut next_kill = began + Duration::from_millis(rng.in_range(3_000..6_000));
    while began.elapsed() < chaos {
        std::thread::sleep(Duration::from_millis(50));
        let now = Instant::now();
        restarts.retain(|&(i, at)| {
            if at <= now {
                incarnation[i] += 1;
                nodes[i] = Some(fleet.node(&name(i, incarnation[i]), &url, &work));
                false
            } else {
                true
            }
        });
        if now >= next_kill {
            next_kill = now + Duration::from_millis(rng.in_range(3_000..7_000));
            let alive: Vec<usize> = (0..3).filter(|i| nodes[*i].is_some()).collect();
            // Keep one node alive: with none, nobody would claim (that is a restart, tested
            // on its own).
            if alive.len() >= 2 {
                let i = alive[rng.in_range(0..alive.len() as u64) as usize];
                let node = nodes[i].take().unwrap();
                let node_name = node.name().to_owned();
                kills.push((node_name, node.kill()));
                restarts.push((i, now + Duration::from_millis(rng.in_range(500..5_000))));
            }
        }
    }
    let to = now_us();
    for (i, _) in restarts.drain(..) {
        incarnation[i] += 1;
        nodes[i] = Some(fleet.node(&name(i, incarnation[i]), &url, &work));
    }
    // Time for the last takeovers: a lease, a scan, and slack.
    std::thread::sleep(Duration::from_millis(LEASE_MS + SCAN_MS + 2_000));
    for node in nodes.into_iter().flatten() {
        node.stop();
    }

    let effects = fleet.effects();
    let c = check(&effects, from, to);
    assert_exactly_once(&c, "kills");
    // A replay is a takeover of a fire whose first claimer was killed (before completing).
    let killed: BTreeMap<&str, i64> = kills.iter().map(|(n, at)| (n.as_str(), *at)).collect();
    for ((flow, fire), row) in &c.replayed {
        if row.replays > 0 {
            let at = killed.get(row.first_node.as_str()).unwrap_or_else(|| {
                panic!(
                    "{flow}@{fire} was replayed, but its first node {} was not killed",
                    row.first_node
                )
            });
            assert!(
                *at >= row.first_started_us
                    && *at - row.first_started_us <= (LEASE_MS as i64 + 1_000) * 1_000,
                "{flow}@{fire}: replayed, but its first run started at {} and {} was killed at {at}",
                row.first_started_us,
                row.first_node
            );
        }
    }
    // Nothing is later than a takeover allows: the lease, a scan, and slack for the load.
    let worst = c.lateness.last().copied().unwrap_or(0);
    assert!(
        worst <= ((LEASE_MS + SCAN_MS) as i64 + 3_000) * 1_000,
        "a fire ran {worst} µs late"
    );
    assert_eq!(fleet.abandoned(), 0, "no fire given up");
    assert!(kills.len() >= 8, "only {} kills", kills.len());
    // The kills hit claims in flight, and those fires were taken over.
    let taken_over = c.replayed.len();
    assert!(
        taken_over >= kills.len(),
        "{} kills but only {taken_over} fires taken over",
        kills.len()
    );
    eprintln!(
        "seed {seed}: {} fires in {:.0} s, {} kills, {} takeovers ({} replayed effects), \
         lateness p50 {} ms, p99 {} ms, max {} ms",
        c.expected,
        (to - from) as f64 / 1e6,
        kills.len(),
        c.replayed.len(),
        c.replayed.iter().filter(|(_, r)| r.replays > 0).count(),
        percentile(&c.lateness, 0.5) / 1000,
        percentile(&c.lateness, 0.99) / 1000,
        worst / 1000
    );
}

/// One node's traffic held for longer than twice its lease, then released.
#[test]
fn a_partitioned_node_is_fenced_and_no_fire_runs_twice() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let fleet = Fleet::new("fleet_partition");
    let upstream = ([127, 0, 0, 1], PgServer::shared().port()).into();
    let proxy = TcpProxy::start(upstream).expect("start the proxy");
    // Runs that take 400 ms, so the cut-off node has runs in flight when it is cut off.
    let work = ["--work-ms".to_owned(), "400".to_owned()];
    let direct = fleet.url_via(None);
    let a = fleet.node("a", &direct, &work);
    let b = fleet.node("b", &direct, &work);
    let cut = fleet.node("cut", &fleet.url_via(Some(proxy.port())), &work);
    let from = now_us() + 2_000_000;
    std::thread::sleep(Duration::from_secs(5));
    // Cut it off while it holds claims: 150 ms after a whole second, when the per-second
    // cron fires are running (each run takes 400 ms); if it holds none then (it lost every
    // race of that second), release at once and try the next second.
    let live_claims = |f: &Fleet| -> i64 {
        f.query(&format!(
            "SELECT count(*) FROM \"{}\".cano_fire_claims WHERE owner = 'cut' AND state = 0",
            f.schema
        ))[0]
            .get(0)
    };
    let mut held = 0;
    let mut paused_at = 0;
    for _ in 0..10 {
        let into_second = now_us().rem_euclid(1_000_000);
        std::thread::sleep(Duration::from_micros(
            (1_150_000 - into_second).rem_euclid(1_000_000) as u64,
        ));
        proxy.pause();
        paused_at = now_us();
        held = live_claims(&fleet);
        if held > 0 {
            break;
        }
        proxy.resume();
    }
    assert!(held > 0, "the node to cut off never held a claim");
    std::thread::sleep(Duration::from_millis(2 * LEASE_MS + 1_000));
    // Taken before the release: the held writes may reach the server (and be refused)
    // before `resume` returns.
    let resumed_at = now_us();
    proxy.resume();
    std::thread::sleep(Duration::from_secs(5));
    let to = now_us();
    std::thread::sleep(Duration::from_millis(LEASE_MS + SCAN_MS + 2_000));
    let cut_lines = cut.stop();
    a.stop();
    b.stop();

    let effects = fleet.effects();
    let c = check(&effects, from, to);
    assert_exactly_once(&c, "partition");
    // The cut-off node's late writes came after the release and were refused...
    let rejected = fleet.rejected();
    let late: Vec<_> = rejected.iter().filter(|r| r.2 == "cut").collect();
    assert!(
        !late.is_empty(),
        "the cut-off node had runs in flight, yet none of its writes was refused"
    );
    for (flow, fire, _, at) in &late {
        assert!(
            *at >= resumed_at,
            "{flow}@{fire}: refused at {at}, before the release at {resumed_at}"
        );
        // ...and the fire it had claimed ran elsewhere, once.
        let row = effects
            .get(&(flow.clone(), *fire))
            .unwrap_or_else(|| panic!("{flow}@{fire} never ran after its claimer was cut off"));
        assert_eq!(row.runs, 1);
        assert_ne!(row.first_node, "cut", "{flow}@{fire}");
    }
    // Only the cut-off node's fires were replayed.
    for ((flow, fire), row) in &c.replayed {
        if row.replays > 0 {
            assert_eq!(row.first_node, "cut", "{flow}@{fire} replayed: {row:?}");
            assert!(row.first_started_us < resumed_at);
        }
    }
    // It knew it had lost its leases.
    let status = cut_lines
        .iter()
        .rev()
        .find(|l| l.starts_with("S "))
        .expect("a status line");
    let losses: u64 = status.split(' ').nth(10).unwrap().parse().unwrap();
    assert!(losses > 0, "the cut-off node lost no lease: {status}");
    eprintln!(
        "partition of {:.1} s with {held} claims held: {} fires, {} refused late writes, \
         {} takeovers, {} replayed",
        (resumed_at - paused_at) as f64 / 1e6,
        c.expected,
        late.len(),
        c.replayed.len(),
        c.replayed.iter().filter(|(_, r)| r.replays > 0).count()
    );
}

/// Wall clocks 3 s behind, right, and 3 s ahead.
#[test]
fn nodes_with_skewed_clocks_run_every_fire_once_and_never_early() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let fleet = Fleet::new("fleet_skew");
    let url = fleet.url_via(None);
    let offset = |ms: i64| vec!["--wall-offset-ms".to_owned(), ms.to_string()];
    let behind = fleet.node("behind", &url, &offset(-3_000));
    let right = fleet.node("right", &url, &offset(0));
    let ahead = fleet.node("ahead", &url, &offset(3_000));
    let from = now_us() + 5_000_000;
    std::thread::sleep(Duration::from_secs(20));
    let to = now_us() - 4_000_000;
    let statuses: Vec<(String, Vec<String>)> = [behind, right, ahead]
        .into_iter()
        .map(|n| {
            let name = n.name().to_owned();
            let status = n.last_status().expect("a status line");
            n.stop();
            (name, status)
        })
        .collect();

    let effects = fleet.effects();
    let c = check(&effects, from, to);
    assert_exactly_once(&c, "skew");
    // Never early by the real clock (the database's: the same machine); 2 ms for the
    // rounding between the two clocks.
    let earliest = c.lateness.first().copied().unwrap_or(0);
    assert!(earliest >= -2_000, "a fire started {} µs early", -earliest);
    let field = |name: &str, i: usize| -> u64 {
        let (_, s) = statuses.iter().find(|(n, _)| n == name).unwrap();
        s[i].parse().unwrap()
    };
    // S node available skew warnings held_early ...
    assert!(field("behind", 4) > 0, "the slow node warns: {statuses:?}");
    assert!(field("ahead", 4) > 0, "the fast node warns: {statuses:?}");
    // The right node does not, but for an answer delayed by load: far fewer than the others.
    assert!(
        field("right", 4) * 20 <= field("behind", 4).min(field("ahead", 4)),
        "the right node warns as often as a skewed one: {statuses:?}"
    );
    assert!(
        field("ahead", 5) > 0,
        "the fast node held fires back: {statuses:?}"
    );
    let runs = |name: &str| field(name, 7);
    eprintln!(
        "skew: {} fires; runs behind/right/ahead {}/{}/{}; skew warnings {}/{}/{}; \
         lateness min {} µs, p50 {} ms, p99 {} ms",
        c.expected,
        runs("behind"),
        runs("right"),
        runs("ahead"),
        field("behind", 4),
        field("right", 4),
        field("ahead", 4),
        earliest,
        percentile(&c.lateness, 0.5) / 1000,
        percentile(&c.lateness, 0.99) / 1000,
    );
    let _ = std::io::stderr().flush();
}

/// Every node killed at once, the fleet down for 4 s, started again: with the schedule store
/// the fires of the outage are caught up per policy (`RunAll { max: 16 }`: all of them),
/// each once across the fleet.
#[test]
fn a_whole_fleet_killed_and_restarted_catches_up_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let fleet = Fleet::new("fleet_outage");
    let url = fleet.url_via(None);
    let store = ["--schedule-store".to_owned(), "1".to_owned()];
    let start = |generation: u32| -> Vec<Node> {
        (1..=3)
            .map(|i| fleet.node(&format!("n{i}.{generation}"), &url, &store))
            .collect()
    };
    let from = now_us() + 2_000_000;
    let nodes = start(0);
    std::thread::sleep(Duration::from_secs(6));
    for n in &nodes {
        eprintln!("DEBUG0 {:?}", n.last_status());
    }
    let down_at = nodes.into_iter().map(Node::kill).max().unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let nodes = start(1);
    let up_at = now_us();
    std::thread::sleep(Duration::from_secs(6));
    let to = now_us();
    std::thread::sleep(Duration::from_millis(LEASE_MS + SCAN_MS + 2_000));
    for n in &nodes {
        eprintln!("DEBUG1 {:?}", n.last_status());
    }
    for node in nodes {
        let lines = node.stop();
        eprintln!("DEBUG {:?}", &lines[lines.len().saturating_sub(3)..]);
    }
    let effects = fleet.effects();
    let c = check(&effects, from, to);
    assert_exactly_once(&c, "whole-fleet restart");
    let outage = effects
        .keys()
        .filter(|(_, fire)| *fire > down_at && *fire < up_at)
        .count();
    assert!(outage > 0, "no fire fell in the outage");
    eprintln!(
        "outage of {:.1} s: {} fires, {outage} of them due while every node was down",
        (up_at - down_at) as f64 / 1e6,
        c.expected
    );
}
