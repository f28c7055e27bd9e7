//! Support for the fleet tests and benchmarks on PostgreSQL (`tests/fleet_postgres.rs`,
//! the `fleet_node` process and the `fleet_bench` binary): a clock with an offset wall
//! clock ([`OffsetClock`]), the side-effect tables, and the fenced side-effect write each
//! run makes ([`EffectWriter`]).
//!
//! The side effect of a run is one row per `FireId` in `<schema>.test_effects`, written by
//! one statement that first checks, with cano-postgres's `cano_holds_claim` (a share lock
//! on the fire's claim row), that the run's fence is still the claim's and its lease still
//! live. A run whose
//! claim was taken over (a zombie released from a partition, a node that lost its lease)
//! is refused, and the refusal recorded in `<schema>.test_rejected`: this is how a user
//! makes side effects effectively once with [`Fire::fence`](cano_core::scheduler::Fire::fence).
//! A write that is let through for a fire that already has a row is either a *replay*
//! (the run is a takeover, [`Fire::is_takeover`](cano_core::scheduler::Fire::is_takeover):
//! the node that claimed the fire first died or was cut off after its effect and before
//! its completion, and the fire runs again, at-least-once; keyed by the `FireId`, the effect
//! is not applied twice, `replays` counts it) or a *duplicate* (`runs` > 1: two claims of
//! one fire that were not a takeover, which the ledger must never let happen).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as StdInstant};

use cano_core::jiff::{SignedDuration, Timestamp};
use cano_core::runtime::Clock;
use cano_core::scheduler::Fire;
use cano_core::time::Instant;
use cano_postgres::tokio_postgres::{self, Client, NoTls, Statement};
use cano_tokio::TokioClock;

/// The system clocks of tokio, with the wall clock moved by a fixed offset (a node whose
/// clock is off, for skew tests without root).
#[derive(Debug, Clone, Copy)]
pub struct OffsetClock {
    inner: TokioClock,
    offset: SignedDuration,
}

impl OffsetClock {
    /// Tokio's clock with its wall time moved by `offset` (zero: the system clock).
    pub fn new(offset: SignedDuration) -> OffsetClock {
        OffsetClock {
            inner: TokioClock::new(),
            offset,
        }
    }
}

impl Clock for OffsetClock {
    type Sleep = <TokioClock as Clock>::Sleep;

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn wall_now(&self) -> Timestamp {
        let wall = self.inner.wall_now();
        wall.checked_add(self.offset).unwrap_or(wall)
    }

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        self.inner.sleep_until(deadline)
    }
}

/// The statements creating the side-effect tables in `schema` (cano's schema must exist:
/// connect a `PgStore` first).
pub fn effect_tables_ddl(schema: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS \"{schema}\".test_effects (
            flow text COLLATE \"C\" NOT NULL,
            fire_us bigint NOT NULL,
            runs integer NOT NULL,
            first_node text NOT NULL,
            first_fence bigint NOT NULL,
            first_started_us bigint NOT NULL,
            first_takeover boolean NOT NULL,
            replays integer NOT NULL DEFAULT 0,
            last_node text,
            last_takeover boolean,
            PRIMARY KEY (flow, fire_us));
         CREATE TABLE IF NOT EXISTS \"{schema}\".test_rejected (
            flow text NOT NULL,
            fire_us bigint NOT NULL,
            node text NOT NULL,
            fence bigint NOT NULL,
            at_us bigint NOT NULL);"
    )
}

/// The fenced side-effect write (see the [module docs](self)); without `fenced`, the same
/// write with no check (a scheduler outside a fleet: the benchmarks' baseline).
/// Parameters: flow, fire µs, fence, node, started µs, takeover. Answers (written, rejected)
/// as two `bigint`s.
fn effect_sql(schema: &str, fenced: bool) -> String {
    let guard = if fenced {
        // cano-postgres's supported contract (schema v5): true only while the claim is
        // live with this fence, and it locks the claim row to the end of the transaction.
        format!("SELECT 1 WHERE \"{schema}\".cano_holds_claim($1, $2, $3)")
    } else {
        // The parameters still need their types.
        "SELECT 1 WHERE $1::text IS NOT NULL AND $2::bigint IS NOT NULL AND $3::bigint IS NOT NULL"
            .to_owned()
    };
    format!(
        "WITH guard AS ({guard}),
         ins AS (
            INSERT INTO \"{schema}\".test_effects AS e
                (flow, fire_us, runs, first_node, first_fence, first_started_us, first_takeover)
            SELECT $1, $2, 1, $4, $3, $5, $6 FROM guard
            ON CONFLICT (flow, fire_us) DO UPDATE
                SET runs = e.runs + CASE WHEN EXCLUDED.first_takeover THEN 0 ELSE 1 END,
                    replays = e.replays + CASE WHEN EXCLUDED.first_takeover THEN 1 ELSE 0 END,
                    last_node = EXCLUDED.first_node,
                    last_takeover = EXCLUDED.first_takeover
            RETURNING 1),
         rej AS (
            INSERT INTO \"{schema}\".test_rejected (flow, fire_us, node, fence, at_us)
            SELECT $1, $2, $4, $3,
                   (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
            WHERE NOT EXISTS (SELECT 1 FROM guard)
            RETURNING 1)
         SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM rej)"
    )
}

/// One node's connection for side effects (its own, beside the store's).
pub struct EffectWriter {
    client: Client,
    statement: Statement,
    node: String,
}

impl std::fmt::Debug for EffectWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EffectWriter")
            .field("node", &self.node)
            .finish()
    }
}

/// What became of one side-effect write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Written under a live claim.
    Written,
    /// Refused: the run's fence is no longer its fire's claim (or the lease ran out).
    Fenced,
}

impl EffectWriter {
    /// Connects to `url` (a connection string) on the current tokio runtime; `fenced`
    /// checks each write against the fire's claim (off for a scheduler outside a fleet).
    ///
    /// # Errors
    ///
    /// The driver's error as text.
    pub async fn connect(
        url: &str,
        schema: &str,
        node: &str,
        fenced: bool,
    ) -> Result<EffectWriter, String> {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|e| format!("connect for effects: {e}"))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let statement = client
            .prepare(&effect_sql(schema, fenced))
            .await
            .map_err(|e| format!("prepare the effect write: {e}"))?;
        Ok(EffectWriter {
            client,
            statement,
            node: node.to_owned(),
        })
    }

    /// Writes `fire`'s side effect, fenced by its claim; `started` is when its run started
    /// (µs since the epoch, real time).
    ///
    /// # Errors
    ///
    /// The driver's error as text (the connection dropped).
    pub async fn write(&self, fire: &Fire, started: i64) -> Result<Effect, String> {
        let row = self
            .client
            .query_one(
                &self.statement,
                &[
                    &fire.id().flow(),
                    &fire.id().scheduled().as_microsecond(),
                    &(fire.fence().0 as i64),
                    &self.node,
                    &started,
                    &fire.is_takeover(),
                ],
            )
            .await
            .map_err(|e| format!("effect write: {e}"))?;
        let written: i64 = row.get(0);
        Ok(if written == 1 {
            Effect::Written
        } else {
            Effect::Fenced
        })
    }
}

/// The fleet test's flows, as every node registers them: `n` flows, the even ones a cron
/// every second (`c<i>`), the odd ones an epoch-aligned interval of 1, 2 or 3 s with a phase
/// of 0, 250, 500 or 750 ms (`a<i>`). Returns (id, period, phase).
pub fn fleet_flows(n: usize) -> Vec<(String, Duration, Duration)> {
    (0..n)
        .map(|i| {
            if i % 2 == 0 {
                (format!("c{i}"), Duration::from_secs(1), Duration::ZERO)
            } else {
                (
                    format!("a{i}"),
                    Duration::from_secs(1 + (i as u64 / 2) % 3),
                    Duration::from_millis(250 * ((i as u64 / 2) % 4)),
                )
            }
        })
        .collect()
}

/// The fires of a flow of `period` and `phase` (as [`fleet_flows`] gives them) scheduled
/// in `[from, to)` (µs since the epoch).
pub fn fires_between(period: Duration, phase: Duration, from: i64, to: i64) -> Vec<i64> {
    let p = period.as_micros() as i64;
    let ph = phase.as_micros() as i64 % p;
    let first = (from - ph).div_euclid(p) * p + ph;
    (0..)
        .map(|k| first + k * p)
        .skip_while(|t| *t < from)
        .take_while(|t| *t < to)
        .collect()
}

/// A running `fleet_node` process (see its docs); killed if dropped while running.
#[derive(Debug)]
pub struct NodeProcess {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl NodeProcess {
    /// Starts the node binary `bin` as node `name` with `args` (besides `--node`), and
    /// waits until it says it is ready.
    ///
    /// # Panics
    ///
    /// When it cannot be started or is not ready within 60 s (a test or benchmark cannot go
    /// on without it).
    pub fn spawn(bin: &Path, name: &str, args: &[String]) -> NodeProcess {
        let mut child = Command::new(bin)
            .args(["--node", name])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("the node's stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready) = mpsc::channel();
        {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if line.starts_with("ready ") {
                        let _ = ready_tx.send(());
                    }
                    lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            });
        }
        if ready.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            panic!("node {name} did not start");
        }
        NodeProcess {
            name: name.to_owned(),
            child,
            stdin,
            lines,
        }
    }

    /// The node's id.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The node's last status line (`S …`), split into fields.
    pub fn last_status(&self) -> Option<Vec<String>> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .rev()
            .find(|l| l.starts_with("S "))
            .map(|l| l.split(' ').map(str::to_owned).collect())
    }

    /// SIGKILL; returns when, in µs since the epoch.
    ///
    /// # Panics
    ///
    /// When the process cannot be killed or reaped.
    pub fn kill(mut self) -> i64 {
        let at = Timestamp::now().as_microsecond();
        self.child.kill().expect("kill a node");
        self.child.wait().expect("reap a node");
        at
    }

    /// Closes its stdin (a graceful stop), waits for it to exit, and returns what it
    /// printed.
    ///
    /// # Panics
    ///
    /// When it does not exit successfully within 20 s.
    pub fn stop(mut self) -> Vec<String> {
        drop(self.stdin.take());
        let deadline = StdInstant::now() + Duration::from_secs(20);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    assert!(status.success(), "node {} ended with {status}", self.name);
                    break;
                }
                _ if StdInstant::now() > deadline => panic!("node {} did not stop", self.name),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `p` quantile (0 to 1) of `sorted`, 0 when empty.
pub fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
