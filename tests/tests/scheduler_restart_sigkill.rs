//! Restart without a fleet, with real process death: `restart_child` runs a scheduler on a
//! redb schedule store and is killed with SIGKILL, then started again after a short
//! downtime, four times. Its fsynced log (every run keyed by its `FireId`, the store's
//! records at each start, what each process had acknowledged) must show:
//!
//! * nothing acknowledged is lost: each start finds a last fire, a streak, a pause and a
//!   trip at least as recent as the killed process had flushed;
//! * catch-up per policy: the runs a restarted process makes for fires up to its first poll
//!   are exactly what the flow's `MissedFirePolicy` says (`Skip`, `RunOnce`, `RunAll { 3 }`,
//!   `RunAll { 1000 }` on a 250 ms epoch grid, `RunAll { 2 }` on a per-second cron), for one
//!   poll time between the process's start and its first run, computed here by an oracle
//!   independent of the scheduler's code;
//! * no fire at or before the store's last fire runs again; a fire re-runs only when the
//!   process that ran it died before its start was written (at-least-once);
//! * `RunAll { 1000 }` leaves no hole in its grid over the whole test;
//! * a pause holds across restarts until the resume; a tripped flow stays tripped.
//!
//! One of the few tests on the real clock (about 12 s): uptimes and downtimes are drawn
//! from a seeded generator (`CANO_RESTART_SEED` overrides the seed). Every bound on timing
//! is one-sided or searched over, so scheduling delay on a loaded machine cannot fail it.

use cano_tests::crash::{KillOnDrop, ScratchDir, SplitMix};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHILD: &str = env!("CARGO_BIN_EXE_restart_child");
/// The commands of the four processes (see the child's docs).
const COMMANDS: [&str; 4] = ["none", "pause", "none", "resume"];
const UPTIME_MS: std::ops::Range<u64> = 1_300..2_000;
const DOWNTIME_MS: std::ops::Range<u64> = 900..1_500;
const GRID_US: i64 = 250_000;
const CRON_US: i64 = 1_000_000;
const GRACE_US: i64 = 100_000;

#[derive(Debug, Clone, Default)]
struct Record {
    last_fire: Option<i64>,
    streak: u32,
    paused: bool,
    tripped: bool,
}

#[derive(Debug, Clone)]
struct Ack {
    streak: u32,
    paused: bool,
    tripped: bool,
    latest: Option<i64>,
}

/// What one process logged.
#[derive(Debug, Default)]
struct Generation {
    records: BTreeMap<String, Record>,
    started: Option<i64>,
    /// (flow, scheduled, started), in log order.
    runs: Vec<(String, i64, i64)>,
    /// The last acknowledged state of each flow.
    acks: BTreeMap<String, Ack>,
    paused_at: Option<i64>,
    resumed_at: Option<i64>,
}

impl Generation {
    fn runs_of<'a>(&'a self, flow: &'a str) -> impl Iterator<Item = (i64, i64)> + 'a {
        self.runs
            .iter()
            .filter(move |(f, _, _)| f == flow)
            .map(|(_, s, t)| (*s, *t))
    }
}

fn parse_log(path: &Path) -> BTreeMap<u64, Generation> {
    let text = std::fs::read_to_string(path).expect("read the log");
    let mut gens: BTreeMap<u64, Generation> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        fn bad<T>(line: &str) -> T {
            panic!("malformed line {line:?}")
        }
        let int = |i: usize| -> i64 {
            f.get(i)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| bad(line))
        };
        let opt = |i: usize| -> Option<i64> {
            match f.get(i) {
                Some(&"-") => None,
                _ => Some(int(i)),
            }
        };
        let flag = |i: usize| -> bool {
            f.get(i)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| bad(line))
        };
        let g = gens.entry(int(1) as u64).or_default();
        match f[0] {
            "R" => {
                g.records.insert(
                    f[2].to_owned(),
                    Record {
                        last_fire: opt(3),
                        streak: int(4) as u32,
                        paused: flag(5),
                        tripped: flag(6),
                    },
                );
            }
            "G" => g.started = Some(int(2)),
            "E" => g.runs.push((f[2].to_owned(), int(3), int(4))),
            "F" => {
                g.acks.insert(
                    f[2].to_owned(),
                    Ack {
                        streak: int(3) as u32,
                        paused: flag(4),
                        tripped: flag(5),
                        latest: opt(6),
                    },
                );
            }
            "P" => g.paused_at = Some(int(2)),
            "U" => g.resumed_at = Some(int(2)),
            _ => bad(line),
        }
    }
    gens
}

/// Waits until the log has a line starting with `prefix`.
fn wait_for_line(path: &Path, prefix: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().any(|l| l.starts_with(prefix)) {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the child exited ({status}) before logging {prefix:?}");
        }
        assert!(
            Instant::now() < deadline,
            "the child did not log {prefix:?} in 20 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The catch-up oracle: which fires of a grid of `period` µs (aligned to the epoch) a
/// flow whose last fire was `last` runs at a poll at `now`, under its policy. Written from
/// the policy's definition, not from the scheduler's code.
fn expected_catch_up(flow: &str, last: i64, now: i64) -> Vec<i64> {
    let period = if flow == "cron2" { CRON_US } else { GRID_US };
    let first = (last.div_euclid(period) + 1) * period;
    let missed: Vec<i64> = (0..)
        .map(|k| first + k * period)
        .take_while(|x| *x <= now)
        .collect();
    let latest_if = |window: i64| match missed.last() {
        Some(m) if now - m <= window => vec![*m],
        _ => Vec::new(),
    };
    let last_n = |n: usize| missed[missed.len().saturating_sub(n)..].to_vec();
    match flow {
        "skip" | "paused" => latest_if(GRACE_US),
        "once" => latest_if(2_000_000),
        "all3" => last_n(3),
        "all" => last_n(1000),
        "cron2" => last_n(2),
        other => panic!("no oracle for {other}"),
    }
}

const CAUGHT_UP: [&str; 6] = ["skip", "once", "all3", "all", "cron2", "paused"];

#[test]
fn a_killed_scheduler_restarts_with_its_state_and_catches_up_per_policy() {
    let seed = std::env::var("CANO_RESTART_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0005_1D0C_u64);
    let mut rng = SplitMix(seed);
    let dir =
        ScratchDir(std::env::temp_dir().join(format!("cano-restart-kill-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).unwrap();
    let log = dir.0.join("effects.log");
    let began = Instant::now();

    for (i, command) in COMMANDS.iter().enumerate() {
        let generation = i as u64 + 1;
        if i > 0 {
            std::thread::sleep(Duration::from_millis(rng.in_range(DOWNTIME_MS)));
        }
        let mut child = KillOnDrop(
            Command::new(CHILD)
                .args([dir.0.to_str().unwrap(), &generation.to_string(), command])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn the child"),
        );
        wait_for_line(&log, &format!("G {generation} "), &mut child.0);
        let up = Instant::now();
        match *command {
            "pause" => wait_for_line(&log, &format!("P {generation} "), &mut child.0),
            "resume" => wait_for_line(&log, &format!("U {generation} "), &mut child.0),
            _ => {}
        }
        let uptime = Duration::from_millis(rng.in_range(UPTIME_MS));
        std::thread::sleep(uptime.saturating_sub(up.elapsed()));
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("generation {generation} exited on its own: {status} (seed {seed})");
        }
        // SIGKILL: nothing is flushed, nothing is stopped.
        child.0.kill().expect("kill the child");
        child.0.wait().expect("reap the child");
    }

    let gens = parse_log(&log);
    assert_eq!(gens.len(), COMMANDS.len(), "one log per process");
    let ctx = |g: u64, what: &str| format!("generation {g}, {what} (seed {seed})");

    // The first process started from an empty store.
    assert!(gens[&1].records.is_empty(), "{}", ctx(1, "empty store"));

    let mut catch_up_runs = BTreeMap::<&str, usize>::new();
    for (&g, now) in gens.iter().skip(1) {
        let before = &gens[&(g - 1)];
        let started = now.started.unwrap_or_else(|| panic!("{}", ctx(g, "no G")));
        // 1. Nothing acknowledged is lost, nothing is invented.
        for (flow, ack) in &before.acks {
            let record = now
                .records
                .get(flow)
                .unwrap_or_else(|| panic!("{}", ctx(g, &format!("{flow} has a record"))));
            if flow != "flaky" && flow != "tripper" {
                assert!(
                    record.last_fire >= ack.latest,
                    "{}: stored last fire {:?} is older than acknowledged {:?}",
                    ctx(g, flow),
                    record.last_fire,
                    ack.latest
                );
                let ran_before: BTreeSet<i64> = gens
                    .range(..g)
                    .flat_map(|(_, x)| x.runs_of(flow).map(|(s, _)| s))
                    .collect();
                if let Some(last) = record.last_fire {
                    assert!(
                        ran_before.contains(&last),
                        "{}: stored last fire {last} never ran",
                        ctx(g, flow)
                    );
                }
            }
            assert!(
                record.streak >= ack.streak,
                "{}: streak {} < acknowledged {}",
                ctx(g, flow),
                record.streak,
                ack.streak
            );
            assert_eq!(record.paused, ack.paused, "{}", ctx(g, flow));
            assert!(record.tripped >= ack.tripped, "{}", ctx(g, flow));
        }
        let failures: usize = gens
            .range(..g)
            .map(|(_, x)| x.runs_of("flaky").count())
            .sum();
        assert!(
            (now.records["flaky"].streak as usize) <= failures,
            "{}: the streak counts only failures that happened",
            ctx(g, "flaky")
        );
        // The streak goes on from the stored one rather than restarting.
        if let Some(ack) = now.acks.get("flaky") {
            assert!(
                ack.streak > now.records["flaky"].streak,
                "{}",
                ctx(g, "flaky's streak grows on")
            );
        }

        // 2. Catch-up per policy, at one poll time between start and the first run.
        let first_run = now
            .runs
            .iter()
            .map(|(_, _, t)| *t)
            .min()
            .unwrap_or_else(|| panic!("{}", ctx(g, "no run at all")));
        assert!(first_run >= started, "{}", ctx(g, "runs after start"));
        let observed = |flow: &str, poll: i64| -> Vec<i64> {
            let mut v: Vec<i64> = now
                .runs_of(flow)
                .map(|(s, _)| s)
                .filter(|s| *s <= poll)
                .collect();
            v.sort_unstable();
            v
        };
        let expected = |flow: &str, poll: i64| -> Vec<i64> {
            let record = &now.records[flow];
            match record.last_fire {
                Some(last) if !record.paused && !record.tripped => {
                    expected_catch_up(flow, last, poll)
                }
                _ => Vec::new(),
            }
        };
        // Every 50 µs: the oracle's answer changes at most every 100 ms (grid points, and
        // the grace after them).
        let candidates = (started..first_run).step_by(50).chain([first_run]);
        let poll = candidates.clone().find(|&poll| {
            CAUGHT_UP
                .iter()
                .all(|flow| observed(flow, poll) == expected(flow, poll))
        });
        let Some(poll) = poll else {
            let report: Vec<String> = CAUGHT_UP
                .iter()
                .map(|f| {
                    format!(
                        "{f}: ran {:?}, expected at start {:?} / at first run {:?}",
                        observed(f, first_run),
                        expected(f, started),
                        expected(f, first_run)
                    )
                })
                .collect();
            panic!(
                "{}: no poll time in [{started}, {first_run}] explains the catch-up:\n{}",
                ctx(g, "catch-up"),
                report.join("\n")
            );
        };
        for flow in CAUGHT_UP {
            *catch_up_runs.entry(flow).or_default() += expected(flow, poll).len();
        }

        // 3. Nothing at or before the stored last fire runs again.
        for (flow, record) in &now.records {
            if let Some(last) = record
                .last_fire
                .filter(|_| CAUGHT_UP.contains(&flow.as_str()))
            {
                let old: Vec<i64> = now
                    .runs_of(flow)
                    .map(|(s, _)| s)
                    .filter(|s| *s <= last)
                    .collect();
                assert!(old.is_empty(), "{}: re-ran {old:?}", ctx(g, flow));
            }
        }
    }

    // Each policy was exercised: a backlog existed at every restart (`skip` caught up at
    // most the one fire within its grace, which the oracle checked).
    let restarts = COMMANDS.len() - 1;
    assert!(catch_up_runs["all"] >= 3 * restarts, "{catch_up_runs:?}");
    assert_eq!(catch_up_runs["all3"], 3 * restarts, "{catch_up_runs:?}");
    assert_eq!(catch_up_runs["once"], restarts, "{catch_up_runs:?}");

    // 4. Each fire runs once, except a fire whose start the killed process had not written:
    // it runs again in the next process (at-least-once), and only then.
    for flow in CAUGHT_UP {
        let mut seen: BTreeMap<i64, u64> = BTreeMap::new();
        for (&g, x) in &gens {
            for (s, _) in x.runs_of(flow) {
                if let Some(&earlier) = seen.get(&s) {
                    let stored = gens[&g].records[flow].last_fire;
                    assert!(
                        earlier + 1 == g && stored < Some(s),
                        "{}: fire {s} ran in generation {earlier} and again",
                        ctx(g, flow)
                    );
                }
                seen.insert(s, g);
            }
        }
        // RunAll without a practical cap leaves no hole anywhere.
        if flow == "all" {
            let fires: Vec<i64> = seen.keys().copied().collect();
            let holes: Vec<i64> = fires
                .windows(2)
                .filter(|w| w[1] - w[0] != GRID_US)
                .map(|w| w[0] + GRID_US)
                .collect();
            assert!(holes.is_empty(), "`all` never ran {holes:?} (seed {seed})");
        }
    }

    // 5. The pause holds from the second process's pause to the fourth's resume.
    let paused_at = gens[&2].paused_at.expect("the second process paused");
    let resumed_at = gens[&4].resumed_at.expect("the fourth process resumed");
    for (&g, x) in &gens {
        for (s, _) in x.runs_of("paused") {
            let during = match g {
                2 => s > paused_at,
                3 => true,
                // A resume does not run what passed while paused.
                4 => s < resumed_at - GRID_US - GRACE_US,
                _ => false,
            };
            assert!(!during, "{}: ran fire {s} while paused", ctx(g, "paused"));
        }
    }
    assert!(gens[&3].records["paused"].paused && gens[&4].records["paused"].paused);
    assert!(
        gens[&4].runs_of("paused").any(|(s, _)| s > resumed_at),
        "the resumed flow runs again"
    );

    // 6. The tripped flow stays tripped: it tripped in the first process and never ran again.
    assert_eq!(gens[&1].runs_of("tripper").count(), 3, "trips at 3");
    for (&g, x) in gens.iter().skip(1) {
        assert!(x.records["tripper"].tripped, "{}", ctx(g, "tripped"));
        assert_eq!(x.runs_of("tripper").count(), 0, "{}", ctx(g, "tripper ran"));
    }

    eprintln!(
        "seed {seed}: {} processes, catch-up runs {catch_up_runs:?}, {:.1?}",
        gens.len(),
        began.elapsed()
    );
}
