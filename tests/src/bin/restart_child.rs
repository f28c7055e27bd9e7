//! The process that `tests/scheduler_restart_sigkill.rs` kills: a scheduler on a redb
//! schedule store with flows under different missed-fire policies, recording every run in an
//! append-only, fsynced file keyed by the run's `FireId`, so the test can tell what ran
//! across process deaths, and what the store held at each start.
//!
//! Usage: `restart_child <dir> <generation> <command>`, where `<command>` is `none`,
//! `pause` or `resume` (applied to the flow `paused` 300 ms after start). Runs until killed.
//!
//! The flows (all but `flaky` and `tripper` succeed at once):
//! * `skip`, `once`, `all3`, `all`: an epoch-aligned 250 ms interval with
//!   `MissedFirePolicy::Skip`, `RunOnce { window: 2 s }`, `RunAll { max: 3 }` and
//!   `RunAll { max: 1000 }`;
//! * `cron2`: cron every second, `RunAll { max: 2 }`;
//! * `paused`: an epoch-aligned 250 ms interval (`Skip`) that the test pauses and resumes;
//! * `flaky`: every 200 ms (fixed delay), always fails, never trips: its streak grows;
//! * `tripper`: every 200 ms, always fails, trips at a streak of 3.
//!
//! The misfire grace is 100 ms.
//!
//! Lines (one `write` + `fdatasync` each, so a kill never tears one; times in µs since the
//! Unix epoch):
//! * `R <gen> <flow> <last fire|-> <streak> <paused> <tripped>`: the store's record of a flow
//!   when this process started, before the scheduler read it;
//! * `G <gen> <wall>`: the scheduler is about to start;
//! * `E <gen> <flow> <scheduled> <started>`: a run (its `FireId` time and the wall time it
//!   started);
//! * `F <gen> <flow> <streak> <paused> <tripped> <latest fire|->`: acknowledged: written after
//!   `flush()` returned, every 100 ms; `latest fire` is the latest scheduled time a run of
//!   the flow had started with before the flush began;
//! * `P <gen> <wall>` / `U <gen> <wall>`: `paused` was paused / resumed, and that is flushed.

use cano_tests::crash::EffectLog;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use cano_core::jiff::Timestamp;
use cano_core::persist::ScheduleStore;
use cano_core::schedule::{IntervalMode, MissedFirePolicy};
use cano_core::scheduler::{Fire, Scheduler};
use cano_core::{BackoffPolicy, CanoError, Status};
use cano_redb::RedbStore;

/// The flows with an epoch-aligned 250 ms interval, and their policies.
const ALIGNED: [(&str, MissedFirePolicy); 5] = [
    ("skip", MissedFirePolicy::Skip),
    (
        "once",
        MissedFirePolicy::RunOnce {
            window: Duration::from_secs(2),
        },
    ),
    ("all3", MissedFirePolicy::RunAll { max: 3 }),
    ("all", MissedFirePolicy::RunAll { max: 1000 }),
    ("paused", MissedFirePolicy::Skip),
];

struct Effects {
    log: EffectLog,
    generation: u64,
    /// The latest scheduled time (µs) each flow started a run for.
    latest: BTreeMap<&'static str, AtomicI64>,
}

impl Effects {
    fn record(&self, line: std::fmt::Arguments<'_>) {
        self.log.record(line);
    }

    fn ran(&self, flow: &'static str, fire: &Fire) {
        let scheduled = fire.id().scheduled().as_microsecond();
        if let Some(latest) = self.latest.get(flow) {
            latest.fetch_max(scheduled, Ordering::SeqCst);
        }
        self.record(format_args!(
            "E {} {flow} {scheduled} {}",
            self.generation,
            Timestamp::now().as_microsecond()
        ));
    }
}

fn micros_or_dash(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "-".to_owned(), |t| t.as_microsecond().to_string())
}

fn job(
    effects: &Arc<Effects>,
    flow: &'static str,
    fails: bool,
) -> impl Fn(Fire) -> futures::future::Ready<Result<(), CanoError>> + Send + Sync + 'static {
    let effects = Arc::clone(effects);
    move |fire: Fire| {
        effects.ran(flow, &fire);
        futures::future::ready(if fails {
            Err(CanoError::task_execution(format!("{flow} always fails")))
        } else {
            Ok(())
        })
    }
}

fn scheduler(store: RedbStore, effects: &Arc<Effects>) -> Result<Scheduler, CanoError> {
    let mut s = Scheduler::new().with_schedule_store(store);
    s.set_misfire_grace(Duration::from_millis(100));
    for (flow, missed) in ALIGNED {
        s.every(
            flow,
            job(effects, flow, false),
            (),
            Duration::from_millis(250),
        )?;
        s.set_interval_mode(
            flow,
            IntervalMode::EpochAligned {
                phase: Duration::ZERO,
            },
        )?;
        s.set_missed_fires(flow, missed)?;
    }
    s.cron("cron2", job(effects, "cron2", false), (), "* * * * * *")?;
    s.set_missed_fires("cron2", MissedFirePolicy::RunAll { max: 2 })?;
    for (flow, limit) in [("flaky", None), ("tripper", Some(3))] {
        s.every(
            flow,
            job(effects, flow, true),
            (),
            Duration::from_millis(200),
        )?;
        s.set_backoff(
            flow,
            BackoffPolicy {
                initial: Duration::from_millis(50),
                multiplier: 1.0,
                max_delay: Duration::from_millis(50),
                jitter: 0.0,
                streak_limit: limit,
            },
        )?;
    }
    Ok(s)
}

const FLOWS: [&str; 8] = [
    "skip", "once", "all3", "all", "paused", "cron2", "flaky", "tripper",
];

async fn run(dir: PathBuf, effects: Arc<Effects>, command: String) -> Result<(), String> {
    let store = RedbStore::open(dir.join("store.redb"))
        .await
        .map_err(|e| e.to_string())?;
    let gen_ = effects.generation;
    for stored in store.load_all().await.map_err(|e| e.to_string())? {
        let r = &stored.record;
        effects.record(format_args!(
            "R {gen_} {} {} {} {} {}",
            stored.flow,
            micros_or_dash(r.last_fire),
            r.streak,
            r.paused,
            r.tripped
        ));
    }
    let scheduler = scheduler(store, &effects).map_err(|e| e.to_string())?;
    effects.record(format_args!(
        "G {gen_} {}",
        Timestamp::now().as_microsecond()
    ));
    let running = cano_tokio::start_scheduler(scheduler)
        .await
        .map_err(|e| e.to_string())?;
    let mut ticks = 0u64;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        ticks += 1;
        if ticks == 3 && command != "none" {
            let (result, line) = match command.as_str() {
                "pause" => (running.pause("paused"), 'P'),
                "resume" => (running.resume("paused"), 'U'),
                other => return Err(format!("unknown command {other:?}")),
            };
            result.map_err(|e| e.to_string())?;
            running.flush().await.map_err(|e| e.to_string())?;
            effects.record(format_args!(
                "{line} {gen_} {}",
                Timestamp::now().as_microsecond()
            ));
        }
        let latest: Vec<i64> = FLOWS
            .iter()
            .map(|f| effects.latest[f].load(Ordering::SeqCst))
            .collect();
        let infos = running.list();
        running.flush().await.map_err(|e| e.to_string())?;
        for info in infos {
            let Some(i) = FLOWS.iter().position(|f| *f == info.id) else {
                continue;
            };
            let latest = (latest[i] != i64::MIN).then_some(latest[i]);
            effects.record(format_args!(
                "F {gen_} {} {} {} {} {}",
                info.id,
                info.failure_streak,
                info.status == Status::Paused,
                matches!(info.status, Status::Tripped { .. }),
                latest.map_or_else(|| "-".to_owned(), |t| t.to_string())
            ));
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, generation, command] = args.as_slice() else {
        eprintln!("usage: restart_child <dir> <generation> <none|pause|resume>");
        return ExitCode::from(2);
    };
    let dir = PathBuf::from(dir);
    let Ok(generation) = generation.parse::<u64>() else {
        eprintln!("restart_child: the generation is a number");
        return ExitCode::from(2);
    };
    let effects = Arc::new(Effects {
        log: EffectLog::open(&dir, true),
        generation,
        latest: FLOWS
            .iter()
            .map(|f| (*f, AtomicI64::new(i64::MIN)))
            .collect(),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a tokio runtime");
    match rt.block_on(run(dir, effects, command.clone())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("restart_child: {e}");
            ExitCode::FAILURE
        }
    }
}
