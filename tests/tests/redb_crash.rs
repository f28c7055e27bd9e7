//! Real process death: `redb_crash_child` runs checkpointed workflows on a redb store and
//! is killed with SIGKILL at random points, at least 200 times; after each kill a new
//! process resumes the unfinished runs. The side effects it records, keyed by the
//! idempotency key, must show: no state lost, at most the in-flight state re-run (and only
//! after a death), no finished compensation re-run, every run ends.
//!
//! One of the few tests on the real clock: kill delays are drawn from a seeded generator
//! (`CANO_CRASH_SEED` overrides the seed) over a small range.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cano_core::checkpoint::{CheckpointStore, RunId, RunLog, RunOutcome};
use cano_redb::RedbStore;

const CHILD: &str = env!("CARGO_BIN_EXE_redb_crash_child");
const MIN_KILLS: usize = 200;
/// Runs per phase; a new phase is planned until enough kills happened.
const RUNS_PER_PHASE: u64 = 16;
const CONCURRENCY: u64 = 4;
/// Kill delays, in milliseconds, after the child is spawned.
const DELAY_MS: std::ops::Range<u64> = 10..80;
/// The forward states, as the child names them (the last is the exit state).
const STATES: [&str; 6] = ["reserve", "charge", "pack", "label", "ship", "done"];
/// A bound so that a broken store fails the test instead of looping forever.
const MAX_GENERATIONS: u64 = 5_000;

struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn in_range(&mut self, range: std::ops::Range<u64>) -> u64 {
        range.start + self.next_u64() % (range.end - range.start)
    }
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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
        completion: u64,
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
                    completion: number(3),
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
    let dir = Dir(std::env::temp_dir().join(format!("cano-redb-crash-{}", std::process::id())));
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
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the child");
        std::thread::sleep(Duration::from_millis(rng.in_range(DELAY_MS)));
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
    for i in 0..runs_planned {
        let run = RunId::new(format!("run-{i}"));
        assert_eq!(
            futures::executor::block_on(store.load(&run)).unwrap(),
            RunLog::Finished(RunOutcome::Completed),
            "{run} ended (seed {seed})"
        );
    }

    let effects = read_effects(&dir.0.join("effects.log"));
    let mut per_run: BTreeMap<String, Vec<(u64, Effect)>> = BTreeMap::new();
    let mut last_effect_of_generation: BTreeMap<u64, Effect> = BTreeMap::new();
    for (generation, effect) in &effects {
        last_effect_of_generation.insert(*generation, effect.clone());
        match effect {
            Effect::Forward { run, .. } | Effect::Compensation { run, .. } => per_run
                .entry(run.clone())
                .or_default()
                .push((*generation, effect.clone())),
            Effect::Generation => {}
        }
    }
    let mut reruns = 0usize;
    for i in 0..runs_planned {
        let run = format!("run-{i}");
        let history = per_run.get(&run).map(Vec::as_slice).unwrap_or_default();
        // No state lost: every forward state ran, at visits 0, 1, 2, … in order.
        let mut highest: Option<u64> = None;
        let mut seen: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for (generation, effect) in history {
            let Effect::Forward { visit, state, .. } = effect else {
                continue;
            };
            assert_eq!(
                STATES[*visit as usize], state,
                "{run}: visit {visit} is the state the workflow defines"
            );
            match highest {
                // A re-run is only ever of the state in flight: the newest one started,
                // never an older one whose successor already ran.
                Some(h) => assert!(
                    *visit == h || *visit == h + 1,
                    "{run}: visit {visit} ran after visit {h} (seed {seed}): {history:?}"
                ),
                None => assert_eq!(*visit, 0, "{run}: the first state ran first"),
            }
            highest = Some(highest.map_or(*visit, |h| h.max(*visit)));
            seen.entry(*visit).or_default().push(*generation);
        }
        assert_eq!(
            seen.keys().copied().collect::<Vec<_>>(),
            (0..STATES.len() as u64 - 1).collect::<Vec<_>>(),
            "{run}: every forward state ran (seed {seed})"
        );
        for (visit, generations) in &seen {
            // A state runs again only in a new process, after the one running it died.
            for pair in generations.windows(2) {
                assert!(
                    pair[0] < pair[1] && killed_generations.contains(&pair[0]),
                    "{run}: visit {visit} ran twice without a death in between: {generations:?}"
                );
            }
            reruns += generations.len() - 1;
        }
    }
    assert!(
        reruns <= kills,
        "{reruns} re-runs for {kills} kills: more than the states in flight"
    );
    let killed_mid_run = killed_generations
        .iter()
        .filter(|g| {
            matches!(
                last_effect_of_generation.get(g),
                Some(Effect::Forward { .. } | Effect::Compensation { .. })
            )
        })
        .count();
    eprintln!(
        "seed {seed}: {kills} kills ({killed_mid_run} after some state ran), {reruns} re-runs, \
         {runs_planned} runs, {generation} processes, {:.1?}",
        started.elapsed()
    );
    assert!(kills >= MIN_KILLS);
}
