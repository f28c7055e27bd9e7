//! # cano-postgres
//!
//! PostgreSQL stores for cano, on `tokio-postgres`: a
//! [`ScheduleStore`](cano_core::persist::ScheduleStore) (each flow's last fire, streak,
//! pause and trip, so a restart catches up), a
//! [`FireLedger`](cano_core::persist::FireLedger) (a fleet's claims, one per fire, with
//! leases in the database's clock) and a
//! [`CheckpointStore`](cano_core::checkpoint::CheckpointStore) (durable workflow runs; a
//! finished run's rows are deleted, no tombstone is kept), in one [`PgStore`].
//!
//! * **Schema.** [`PgStore::connect`] creates the schema it is given (default `cano`) and
//!   applies the missing migrations, recorded in a `cano_migrations` table, in one
//!   transaction under an advisory lock, so many nodes may start at once. A schema newer
//!   than this crate is refused with [`PersistError::Backend`]. The versions: 1 schedule
//!   store and fire ledger, 2 checkpoint store, 3 takeover within the overlap limit, 4 the
//!   durable command log, 5 `cano_holds_claim`, 6 `cano_claim_batch` (a batch of claims
//!   decided in one statement) ([`SCHEMA_VERSION`]); an older schema is migrated in place.
//! * **Side effects: the supported SQL contract.** The tables are internal and may change
//!   between versions; the function `"<schema>".cano_holds_claim(flow text, scheduled_us
//!   bigint, fence bigint) RETURNS boolean` keeps its meaning. It is true only while that
//!   fire's claim is live (claimed, its lease not run out in the database clock) with that
//!   fence, and it takes a `FOR SHARE` lock on the claim row, so no node can take the fire
//!   over (nor complete or renew it) before the caller's transaction ends. A side effect
//!   written in the same statement or transaction, keyed by the fire, is therefore written
//!   once per fire even across takeovers and partitions:
//!
//!   ```sql
//!   INSERT INTO my_effects (flow, fire_us)
//!   SELECT $1, $2 WHERE cano.cano_holds_claim($1, $2, $3)
//!   ON CONFLICT (flow, fire_us) DO NOTHING;
//!   -- $1 = fire.id().flow(), $2 = fire.id().scheduled() in µs, $3 = fire.fence()
//!   ```
//!
//!   Keep such transactions short: the fire's takeover waits for them.
//! * **Fleet status from any node.** [`PgStore::recent_fires`] lists a flow's newest
//!   fires with the node that holds or held each, its state, outcome, fence and
//!   takeovers.
//! * **Leases in the database clock.** Every claim, renewal and takeover reads
//!   `clock_timestamp()` after taking its row lock, and every answer carries that time
//!   ([`Stamped`](cano_core::persist::Stamped)), so a node can measure its skew.
//! * **One statement per call.** Each ledger call is one prepared statement (a PL/pgSQL
//!   function doing its reads and writes under the flow's row lock): a fire costs a claim and
//!   a completion, plus one renewal per third of the lease. Commands are read at each
//!   scan and on notification, never per fire.
//! * **Reconnects.** A store holds one connection. When it drops, calls answer
//!   [`PersistError::Unavailable`] at once (they never queue), and the store reconnects
//!   with backoff (50 ms doubling to 5 s, [`PgConfig::reconnect_backoff`]);
//!   [`PgStore::wait_connected`] resolves when it is back. A scheduler keeps running its
//!   claimed fires meanwhile and claims no new ones.
//! * **Commands, durable.** [`PgStore::publish`] (and `FireLedger::publish`) appends a
//!   `FleetCommand` to the `cano_fleet_commands` log and sends a `NOTIFY` that only wakes
//!   the readers, in one statement; publishers take the log's lock in turn, so rows become
//!   visible in sequence order. `FireLedger::commands_after(cursor)` reads the log after the
//!   cursor (at most 1 024 per call) and `command_signal` completes at the next
//!   notification or reconnect, so a command reaches the other nodes at once, and a node
//!   that was disconnected when it was published reads it from its cursor when it is back.
//!   A scheduler's first read (cursor 0) starts at the log's end as of this store's
//!   connect: a node starting fresh does not replay last week's pauses, but does see the
//!   commands published after it connected.
//!   [`PgStore::commands`] is the same log as a stream. A row of a kind this crate does not
//!   know (published by a newer cano-postgres) is skipped, not an error: the reader moves
//!   past it, counts it ([`PgStore::skipped_commands`]) and, with the `tracing` feature,
//!   logs a WARN, so a newer node's new kinds do not stall older nodes (the log has no
//!   constraint on kinds, so a new kind needs no schema version). Retention: each publish keeps the
//!   last [`PgConfig::commands_kept`] (10 000) commands, and `retain(cutoff)` also drops
//!   the commands published before the cutoff.
//! * **Errors** map as: connection lost, server shutting down or refusing connections →
//!   `Unavailable`; serialization failure or deadlock → `Conflict`; a stale fence →
//!   `Fenced`; a row that cannot be read → `Corrupt`; anything else → `Backend`.
//!
//! ## On tokio
//!
//! ```no_run
//! use cano_core::persist::{FireLedger, NodeId, ClaimOutcome};
//! use cano_core::scheduler::FireId;
//! use cano_postgres::{PgConfig, PgStore};
//! use std::time::Duration;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let url = std::env::var("DATABASE_URL")?;
//! let store = PgStore::connect(PgConfig::new(&url)?.schema("cano")).await?;
//! let fire = FireId::new("report", "2026-03-08T09:00:00Z".parse()?);
//! let answer = store.claim(&fire, &NodeId::new("node-1"), Duration::from_secs(30)).await?;
//! if let ClaimOutcome::Claimed(claim) = answer.value {
//!     // run the fire, renew every 10 s with claim.fence, then complete
//! }
//! # Ok(()) }
//! ```
//!
//! ## On smol (or any other executor)
//!
//! `tokio-postgres` drives its socket and cano-postgres its reconnect timer on a tokio
//! runtime; the store's own futures need none. A smol program starts one small
//! [`IoRuntime`] (a current-thread tokio runtime on its own thread) and connects with
//! [`PgStore::connect_on`]; everything else is awaited on smol as usual:
//!
//! ```no_run
//! use cano_postgres::{IoRuntime, PgConfig, PgStore};
//!
//! let io = IoRuntime::start()?; // keep it as long as the store
//! let config = PgConfig::new("postgres://cano@localhost/cano")?;
//! let store = futures::executor::block_on(PgStore::connect_on(io.handle(), config))?;
//! // smol::block_on(async { store.claim(...).await }) and so on.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! TLS is not built in: connect to a local socket or a trusted network, or open an issue.

mod checkpoint;
mod commands;
mod conn;
mod error;
mod ledger;
mod runtime;
mod schedule;
mod schema;

use std::sync::Arc;
use std::time::Duration;

use cano_core::persist::{FleetCommand, PersistError, PersistResult};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

pub use commands::{CommandEvent, CommandStream};
pub use runtime::IoRuntime;
pub use schema::SCHEMA_VERSION;

use conn::Link;

/// Re-exported so users name the same `tokio-postgres` version (for [`PgConfig::from_config`]).
pub use tokio_postgres;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct PgConfig {
    pub(crate) pg: tokio_postgres::Config,
    pub(crate) schema: String,
    pub(crate) reconnect_min: Duration,
    pub(crate) reconnect_max: Duration,
    pub(crate) commands_kept: u32,
}

impl PgConfig {
    /// A configuration from a connection string (`postgres://user:password@host:port/db` or
    /// `host=… user=… dbname=…`), with schema `cano`.
    ///
    /// # Errors
    ///
    /// [`PersistError::Invalid`] when the string cannot be parsed.
    pub fn new(url: &str) -> PersistResult<PgConfig> {
        let pg = url
            .parse::<tokio_postgres::Config>()
            .map_err(|e| PersistError::invalid(format!("connection string: {e}")))?;
        Ok(PgConfig::from_config(pg))
    }

    /// A configuration from a `tokio_postgres::Config`, with schema `cano`.
    ///
    /// Unless the configuration sets them, connecting gives up after 10 s
    /// (`connect_timeout`) and, on Linux, a connection whose sent data stays unacknowledged
    /// for 10 s is dropped (`tcp_user_timeout`): a silent network partition then surfaces as
    /// `Unavailable` and a reconnect, rather than as calls that hang for the kernel's
    /// retransmission timeout (about 15 minutes).
    pub fn from_config(mut pg: tokio_postgres::Config) -> PgConfig {
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(Duration::from_secs(10));
        }
        if pg.get_tcp_user_timeout().is_none() {
            pg.tcp_user_timeout(Duration::from_secs(10));
        }
        PgConfig {
            pg,
            schema: "cano".into(),
            reconnect_min: conn::RECONNECT_MIN,
            reconnect_max: conn::RECONNECT_MAX,
            commands_kept: commands::COMMANDS_KEPT,
        }
    }

    /// The schema holding cano's tables (created if missing): 1 to 50 of `a-z`, `0-9` and
    /// `_`, not starting with a digit. Nodes of one fleet use the same schema; separate
    /// fleets (or tests) use separate ones. Checked by [`PgStore::connect`].
    pub fn schema(mut self, schema: impl Into<String>) -> PgConfig {
        self.schema = schema.into();
        self
    }

    /// How many fleet commands the schema's log keeps (default 10 000, at least 1): each
    /// publish drops the ones older than the last `kept`. A node that was disconnected
    /// while more than that many were published misses the oldest of them.
    pub fn commands_kept(mut self, kept: u32) -> PgConfig {
        self.commands_kept = kept.max(1);
        self
    }

    /// The reconnect backoff: the first retry after `min`, doubling up to `max`.
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> PgConfig {
        self.reconnect_min = min.max(Duration::from_millis(1));
        self.reconnect_max = max.max(self.reconnect_min);
        self
    }
}

/// The PostgreSQL schedule store and fire ledger (one connection, reconnected when it
/// drops). Clones share the connection; the connection closes when the last clone is
/// dropped. See the [crate docs](crate).
#[derive(Clone)]
pub struct PgStore {
    link: Arc<Link>,
    /// Dropped with the last clone: stops the supervisor.
    _stop: Arc<oneshot::Sender<()>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.link.schema)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl PgStore {
    /// Connects on the current tokio runtime, creating and migrating the schema.
    ///
    /// # Errors
    ///
    /// [`PersistError::Invalid`] for a bad schema name or when not called on a tokio
    /// runtime (use [`connect_on`](Self::connect_on) there); `Unavailable` when the
    /// server cannot be reached; `Backend` when the server refuses (authentication, a
    /// missing database, a newer schema).
    pub async fn connect(config: PgConfig) -> PersistResult<PgStore> {
        let handle = Handle::try_current().map_err(|_| {
            PersistError::invalid(
                "PgStore::connect needs a tokio runtime; elsewhere use PgStore::connect_on with an IoRuntime",
            )
        })?;
        PgStore::connect_on(&handle, config).await
    }

    /// Connects with its connection driven on the tokio runtime `handle` (an
    /// [`IoRuntime`]'s, for programs on other executors). The returned future and the
    /// store's calls may be awaited on any executor. Errors as [`connect`](Self::connect).
    pub async fn connect_on(handle: &Handle, config: PgConfig) -> PersistResult<PgStore> {
        schema::check_schema_name(&config.schema)?;
        if config.schema.len() > 50 {
            return Err(PersistError::invalid(
                "schema name longer than 50 characters",
            ));
        }
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        handle.spawn(async move {
            match conn::start(config, stop_rx).await {
                Ok((link, supervised)) => {
                    if ready_tx.send(Ok(link)).is_ok() {
                        supervised.await;
                    }
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        });
        let link = ready_rx.await.map_err(|_| {
            PersistError::unavailable("the tokio runtime stopped while connecting")
        })??;
        Ok(PgStore {
            link,
            _stop: Arc::new(stop_tx),
        })
    }

    /// The schema this store uses.
    pub fn schema(&self) -> &str {
        &self.link.schema
    }

    /// Whether the connection is up right now.
    pub fn is_connected(&self) -> bool {
        *self.link.connected.borrow()
    }

    /// Resolves once the connection is up (at once if it is).
    pub async fn wait_connected(&self) {
        let mut rx = self.link.connected.subscribe();
        let _ = rx.wait_for(|up| *up).await;
    }

    /// Appends `command` to this schema's command log (every node of the fleet reads it,
    /// this one included) and wakes the listeners; returns its sequence number in the log.
    ///
    /// # Errors
    ///
    /// `Unavailable` while disconnected (the command may or may not have been logged);
    /// `Invalid` for an empty flow id or a command kind this crate does not know;
    /// `Backend` if the server refuses.
    pub async fn publish(&self, command: &FleetCommand) -> PersistResult<u64> {
        conn::publish(&self.link, command).await
    }

    /// How many command log rows this store skipped because their kind is unknown to this
    /// cano-postgres (a newer node published them); each row is counted once.
    pub fn skipped_commands(&self) -> u64 {
        self.link
            .unknown
            .skipped
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A stream of the commands published on this schema from now on (see
    /// [`CommandStream`]).
    pub fn commands(&self) -> CommandStream {
        let wake = self.link.wake.subscribe();
        CommandStream {
            link: Arc::downgrade(&self.link),
            wake,
            cursor: self.link.latest.load(std::sync::atomic::Ordering::Relaxed),
            ready: std::collections::VecDeque::new(),
        }
    }
}
