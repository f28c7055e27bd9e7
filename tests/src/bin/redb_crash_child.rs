//! The process that `tests/redb_crash.rs` kills: it runs checkpointed workflows on a redb
//! store and records every side effect in an append-only file, keyed by the idempotency
//! key, so the test can tell what ran how often across process deaths.
//!
//! Usage: `redb_crash_child <dir> <generation> <first run> <end run> <concurrency>`.
//! Runs `run-<first>` … `run-<end - 1>`: resumes the unfinished ones, starts the unknown
//! ones, skips the finished ones (the store keeps tombstones), and exits 0 when all ended.
//!
//! Effect lines (one `write` each, so a kill never tears one):
//! * `G <generation>`: this process started;
//! * `E <generation> <run> <visit> <state> <attempt>`: a forward state's task ran;
//! * `C <generation> <run> <completion> <state>`: a compensation ran.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cano_core::checkpoint::{CheckpointRow, CheckpointStore, RunId, RunLog, RunOutcome};
use cano_redb::RedbStore;
use futures::StreamExt;

/// The forward states of every run, then the exit state.
const STATES: [&str; 6] = ["reserve", "charge", "pack", "label", "ship", "done"];
const VERSION: u32 = 1;
/// How long each state's work takes: short, so kills land on every boundary.
const WORK: Duration = Duration::from_millis(2);

struct Effects {
    file: Mutex<File>,
    generation: u64,
}

impl Effects {
    fn record(&self, line: std::fmt::Arguments<'_>) {
        let line = format!("{line}\n");
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(line.as_bytes()).expect("record an effect");
    }
}

async fn drive(store: &RedbStore, effects: &Effects, run: RunId) -> Result<(), String> {
    let (fence, mut rows) = match store.load(&run).await.map_err(|e| e.to_string())? {
        RunLog::Finished(_) => return Ok(()),
        RunLog::Unknown => {
            let first = CheckpointRow::state_entry(0, STATES[0].into(), VERSION);
            let fence = store.start(&run, &first).await.map_err(|e| e.to_string())?;
            (fence, vec![first])
        }
        RunLog::Unfinished(rows) => (store.resume(&run).await.map_err(|e| e.to_string())?, rows),
    };
    loop {
        let last = rows.last().ok_or("an unfinished log has rows")?.clone();
        let index = STATES
            .iter()
            .position(|s| *s == last.state)
            .ok_or_else(|| format!("unknown state {}", last.state))?;
        if index + 1 == STATES.len() {
            return store
                .finish(&run, fence, RunOutcome::Completed)
                .await
                .map_err(|e| e.to_string());
        }
        // The state's work: its side effect is keyed by (run, visit, state, attempt).
        tokio::time::sleep(WORK).await;
        effects.record(format_args!(
            "E {} {} {} {} 1",
            effects.generation, run, last.sequence, last.state
        ));
        let next = CheckpointRow::state_entry(last.sequence + 1, STATES[index + 1].into(), VERSION);
        store
            .append(&run, fence, &next)
            .await
            .map_err(|e| e.to_string())?;
        rows.push(next);
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, generation, first, end, concurrency] = args.as_slice() else {
        eprintln!("usage: redb_crash_child <dir> <generation> <first> <end> <concurrency>");
        return ExitCode::from(2);
    };
    let dir = PathBuf::from(dir);
    let parse = |s: &str| s.parse::<u64>().expect("a number");
    let (generation, first, end) = (parse(generation), parse(first), parse(end));
    let concurrency = parse(concurrency) as usize;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("effects.log"))
        .expect("open the effect log");
    let effects = Arc::new(Effects {
        file: Mutex::new(file),
        generation,
    });
    effects.record(format_args!("G {generation}"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let result: Result<(), String> = rt.block_on(async {
        let store = RedbStore::builder()
            .tombstones(1 << 20)
            .open(dir.join("store.redb"))
            .await
            .map_err(|e| e.to_string())?;
        let results: Vec<Result<(), String>> = futures::stream::iter(first..end)
            .map(|i| {
                let store = store.clone();
                let effects = Arc::clone(&effects);
                async move { drive(&store, &effects, RunId::new(format!("run-{i}"))).await }
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        results.into_iter().collect()
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redb_crash_child: {e}");
            ExitCode::FAILURE
        }
    }
}
