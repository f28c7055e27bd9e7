//! Real process death: `redb_crash_child` runs checkpointed workflows on a redb store and
//! is killed with SIGKILL at random points, at least 200 times; after each kill a new
//! process resumes the unfinished runs. The side effects it records, keyed by the
//! idempotency key, must show: no state lost, at most the in-flight state re-run (and only
//! after a death, under the same key), no finished compensation re-run, compensations in
//! LIFO order, every run ends (completed, or rolled back for the runs whose last state
//! fails). At least 20 of the kills land inside a compensation drain.
//!
//! One of the few tests on the real clock: kill delays are drawn from a seeded generator
//! (`CANO_CRASH_SEED` overrides the seed) over a small range.

use cano_tests::crash::{ScratchDir, SplitMix};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cano_core::checkpoint::{CheckpointStore, RunId, RunLog, RunOutcome};
use cano_redb::RedbStore;

const CHILD: &str = env!("CARGO_BIN_EXE_redb_crash_child");
const MIN_KILLS: usize = 200;
/// Of which at least this many in the middle of a compensation drain.
const MIN_KILLS_IN_DRAINS: usize = 20;
/// Runs per phase; a new phase is planned until enough kills happened.
const RUNS_PER_PHASE: u64 = 16;
const CONCURRENCY: u64 = 4;
/// Kill delays, in milliseconds, after the child said its store is open.
const DELAY_MS: std::ops::Range<u64> = 0..40;
/// One kill in this many lands during start-up instead (opening, before `ready`), with a
/// delay from spawning in this range.
const EARLY_KILL_ONE_IN: u64 = 10;
const EARLY_DELAY_MS: std::ops::Range<u64> = 0..8;
/// The forward states, as the child names them, in order.
const FORWARD: [&str; 4] = ["reserve", "charge", "pack", "ship"];
/// The compensations of a rolled-back run, in the order they must run (LIFO).
const DRAIN: [&str; 3] = ["pack", "charge", "reserve"];
/// A bound so that a broken store fails the test instead of looping forever.
const MAX_GENERATIONS: u64 = 5_000;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Effect {
    Generation,
    Forward {
        run: String,
        visit: u64,
        state: String,
    },
    Compensation {
        run: String,
        visit: u64,
        state: String,
    },
}

fn read_effects(path: &Path) -> Vec<(u64, Effect)> {
    let text = std::fs::read_to_string(path).expect("read the effect log");
    text.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let number = |i: usize| -> u64 {
                fields
                    .get(i)
                    .and_then(|f| f.parse().ok())
                    .unwrap_or_else(|| panic!("malformed effect line {line:?}"))
            };
            let generation = number(1);
            let effect = match fields[0] {
                "G" => Effect::Generation,
                "E" => Effect::Forward {
                    run: fields[2].to_owned(),
                    visit: number(3),
                    state: fields[4].to_owned(),
                },
                "C" => Effect::Compensation {
                    run: fields[2].to_owned(),
                    visit: number(3),
                    state: fields[4].to_owned(),
                },
                _ => panic!("malformed effect line {line:?}"),
            };
            (generation, effect)
        })
        .collect()
}

#[test]
fn sigkill_at_random_points_loses_nothing_and_reruns_only_the_state_in_flight() {
    let seed = std::env::var("CANO_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00C4_A5E5_u64);
    let mut rng = SplitMix(seed);
    let dir =
        ScratchDir(std::env::temp_dir().join(format!("cano-redb-crash-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).unwrap();

    let started = Instant::now();
    let mut kills = 0usize;
    let mut killed_generations = BTreeSet::new();
    let mut phase = 0u64;
    let mut generation = 0u64;
    loop {
        let (first, end) = (phase * RUNS_PER_PHASE, (phase + 1) * RUNS_PER_PHASE);
        generation += 1;
        assert!(
            generation < MAX_GENERATIONS,
            "no progress after {generation} processes (seed {seed})"
        );
        let mut child = Command::new(CHILD)
            .args([
                dir.0.to_str().unwrap(),
                &generation.to_string(),
                &first.to_string(),
                &end.to_string(),
                &CONCURRENCY.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the child");
        if rng.in_range(0..EARLY_KILL_ONE_IN) == 0 {
            std::thread::sleep(Duration::from_millis(rng.in_range(EARLY_DELAY_MS)));
        } else {
            // Blocks until the child is ready (or has died: then the line is empty).
            let mut ready = String::new();
            let stdout = child.stdout.as_mut().expect("the child's stdout");
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut ready)
                .expect("read the child's stdout");
            std::thread::sleep(Duration::from_millis(rng.in_range(DELAY_MS)));
        }
        // SIGKILL on unix; harmless if the child already exited (it is not yet reaped).
        child.kill().expect("kill the child");
        let output = child.wait_with_output().expect("wait for the child");
        if output.status.success() {
            // The phase ended before the kill: plan the next one, or stop.
            if kills >= MIN_KILLS {
                break;
            }
            phase += 1;
            continue;
        }
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            output.status.signal(),
            Some(9),
            "the child failed on its own (seed {seed}): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        kills += 1;
        killed_generations.insert(generation);
    }
    let runs_planned = (phase + 1) * RUNS_PER_PHASE;

    // Every run ended, as the store says.
    let store = futures::executor::block_on(
        RedbStore::builder()
            .tombstones(1 << 20)
            .open(dir.0.join("store.redb")),
    )
    .expect("reopen the store");
    assert_eq!(
        futures::executor::block_on(store.list_unfinished()).unwrap(),
        Vec::<RunId>::new(),
        "every run ended"
    );
    let rolls_back = |i: u64| i.is_multiple_of(3);
    for i in 0..runs_planned {
        let run = RunId::new(format!("run-{i}"));
        let expected = if rolls_back(i) {
            RunOutcome::RolledBack
        } else {
            RunOutcome::Completed
        };
        assert_eq!(
            futures::executor::block_on(store.load(&run)).unwrap(),
            RunLog::Finished(expected),
            "{run} ended (seed {seed})"
        );
    }

    let effects = read_effects(&dir.0.join("effects.log"));
    let mut per_run: BTreeMap<String, Vec<(u64, Effect)>> = BTreeMap::new();
    for (generation, effect) in &effects {
        match effect {
            Effect::Forward { run, .. } | Effect::Compensation { run, .. } => per_run
                .entry(run.clone())
                .or_default()
                .push((*generation, effect.clone())),
            Effect::Generation => {}
        }
    }
    // Re-runs per killed process: at most one per run it had in flight.
    let mut reruns_after: BTreeMap<u64, usize> = BTreeMap::new();
    let mut kills_in_drains = BTreeSet::new();
    for i in 0..runs_planned {
        let run = format!("run-{i}");
        let history = per_run.get(&run).map(Vec::as_slice).unwrap_or_default();
        let forward: Vec<(u64, &str, u64)> = history
            .iter()
            .filter_map(|(g, e)| match e {
                Effect::Forward { state, visit, .. } => Some((*g, state.as_str(), *visit)),
                _ => None,
            })
            .collect();
        let drain: Vec<(u64, &str, u64)> = history
            .iter()
            .filter_map(|(g, e)| match e {
                Effect::Compensation { state, visit, .. } => Some((*g, state.as_str(), *visit)),
                _ => None,
            })
            .collect();
        // Forward states, then (for a rollback) compensations: never a forward state
        // after the drain began.
        if let Some(first_undo) = history
            .iter()
            .position(|(_, e)| matches!(e, Effect::Compensation { .. }))
        {
            assert!(
                history[first_undo..]
                    .iter()
                    .all(|(_, e)| matches!(e, Effect::Compensation { .. })),
                "{run}: a forward state ran after the rollback began: {history:?}"
            );
        }
        let drain_expected: &[&str] = if rolls_back(i) { &DRAIN } else { &[] };
        for (what, executions, order) in [
            ("state", &forward, &FORWARD[..]),
            ("compensation", &drain, drain_expected),
        ] {
            // No state lost / every compensation ran: the distinct steps, in order, are
            // exactly the workflow's.
            let mut steps: Vec<&str> = executions.iter().map(|(_, s, _)| *s).collect();
            steps.dedup();
            assert_eq!(
                steps, order,
                "{run}: each {what} ran, in order, and a finished one never again \
                 (seed {seed}): {history:?}"
            );
            // A step runs again only in a new process after the one running it died, under
            // the same idempotency key (same visit).
            for pair in executions.windows(2) {
                let ((g0, s0, v0), (g1, s1, v1)) = (pair[0], pair[1]);
                if s0 == s1 {
                    assert!(
                        g0 < g1 && killed_generations.contains(&g0),
                        "{run}: {what} {s0} ran twice without a death in between: {history:?}"
                    );
                    assert_eq!(v0, v1, "{run}: a re-run of {s0} has the same key");
                    *reruns_after.entry(g0).or_insert(0usize) += 1;
                }
            }
        }
        // Kills that landed inside this run's drain: between its first and last
        // compensation.
        if let (Some(first), Some(last)) = (drain.first(), drain.last()) {
            kills_in_drains.extend(killed_generations.range(first.0..last.0).copied());
        }
    }
    for (generation, count) in &reruns_after {
        assert!(
            *count <= CONCURRENCY as usize,
            "process {generation} ran at most {CONCURRENCY} runs at once, yet {count} steps \
             re-ran after its death"
        );
    }
    let reruns: usize = reruns_after.values().sum();
    eprintln!(
        "seed {seed}: {kills} kills ({} inside a rollback drain), {reruns} re-runs, \
         {runs_planned} runs, {generation} processes, {:.1?}",
        kills_in_drains.len(),
        started.elapsed()
    );
    assert!(
        kills_in_drains.len() >= MIN_KILLS_IN_DRAINS,
        "only {} kills landed inside a drain (seed {seed})",
        kills_in_drains.len()
    );
    assert!(kills >= MIN_KILLS);
}

/// The class of the first-open hazard: a process killed while it creates a new store file
/// must not leave a file that no later process can open. Sweeps kill delays over the
/// creation of fresh stores.
#[test]
fn a_process_killed_while_creating_its_store_leaves_an_openable_file() {
    let mut rng = SplitMix(0x5EED_F11E);
    let root = ScratchDir(
        std::env::temp_dir().join(format!("cano-redb-create-kill-{}", std::process::id())),
    );
    for attempt in 0..60u64 {
        let dir = root.0.join(attempt.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new(CHILD)
            .args([dir.to_str().unwrap(), "1", "0", "0", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the child");
        // Spread over the child's start-up, which creates the store.
        std::thread::sleep(Duration::from_micros(rng.in_range(0..12_000)));
        child.kill().expect("kill the child");
        child.wait().expect("wait for the child");
        let store = futures::executor::block_on(RedbStore::open(dir.join("store.redb")));
        assert!(
            store.is_ok(),
            "attempt {attempt}: the store left by a killed creation does not open: {store:?}"
        );
    }
}
