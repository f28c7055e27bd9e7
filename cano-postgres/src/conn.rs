//! The connection and its supervisor: one connection per store, re-opened with backoff when
//! it drops; notifications wake the command readers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::collections::VecDeque;

use cano_core::persist::{FleetCommand, HeardClaim, NodeId, PersistError, PersistResult};
use cano_core::scheduler::FireId;
use futures::StreamExt;
use tokio::sync::{broadcast, oneshot, watch};
use tokio_postgres::{AsyncMessage, Client, NoTls, Statement};

use crate::PgConfig;
use crate::commands::kind_code;
use crate::error::from_pg;
use crate::schema::migrate;

/// The statements every store call uses, prepared once per connection.
pub(crate) struct Prepared {
    pub(crate) claim: Statement,
    pub(crate) claim_batch: Statement,
    pub(crate) take_over: Statement,
    pub(crate) renew: Statement,
    pub(crate) complete: Statement,
    pub(crate) expired: Statement,
    pub(crate) retain: Statement,
    pub(crate) fire: Statement,
    pub(crate) flow: Statement,
    pub(crate) acquire_flow: Statement,
    pub(crate) renew_flow: Statement,
    pub(crate) release_flow: Statement,
    pub(crate) save_flow: Statement,
    pub(crate) delete_flow: Statement,
    pub(crate) load_all: Statement,
    pub(crate) publish: Statement,
    pub(crate) commands_after: Statement,
    pub(crate) commands_end: Statement,
    pub(crate) checkpoint_start: Statement,
    pub(crate) checkpoint_resume: Statement,
    pub(crate) checkpoint_append: Statement,
    pub(crate) checkpoint_load: Statement,
    pub(crate) checkpoint_finish: Statement,
    pub(crate) checkpoint_list: Statement,
}

/// A live connection: its client and prepared statements.
pub(crate) struct Live {
    pub(crate) client: Client,
    pub(crate) sql: Prepared,
}

/// What the store handles and the supervisor share.
pub(crate) struct Link {
    pub(crate) schema: String,
    pub(crate) channel: String,
    pub(crate) live: Mutex<Option<Arc<Live>>>,
    pub(crate) connected: watch::Sender<bool>,
    /// Sent at each notification on the channel and after each reconnect: the command
    /// log may have grown.
    pub(crate) wake: broadcast::Sender<()>,
    /// The end of the command log when this store first connected: a reader starting
    /// with cursor 0 (a fresh scheduler) reads from here, not the log's history.
    pub(crate) floor: AtomicU64,
    /// The highest command seq this store has seen (the floor, its own publishes, the
    /// notifications' hints): where a new [`CommandStream`](crate::CommandStream) starts.
    pub(crate) latest: AtomicU64,
    /// How many commands a publish leaves in the log.
    pub(crate) commands_kept: i64,
    /// The log rows skipped for a kind this crate does not know.
    pub(crate) unknown: crate::commands::UnknownKinds,
    /// Claims announced on the channel (the claim and takeover statements notify), with
    /// this store's sequence numbers: the last [`HEARD_KEPT`].
    pub(crate) heard: Mutex<(u64, VecDeque<(u64, HeardClaim)>)>,
}

/// Claim announcements a store keeps for its scheduler to read.
const HEARD_KEPT: usize = 1024;

/// The SQL of an announcement's payload, sent by the claim and takeover statements when
/// they grant a claim (`$1` flow, `$2` scheduled µs, `$3` node, unless named): `c<µs>
/// <node bytes> <node><flow>` (the node's length first, so ids may hold any character).
macro_rules! announce_sql {
    ($call:literal, $channel:literal) => {
        announce_sql!("", $call, $channel, "$1", "$2", "$3", "")
    };
    ($before:literal, $call:literal, $channel:literal, $flow:literal, $at:literal,
     $node:literal, $after:literal) => {
        concat!(
            "SELECT c.*, CASE WHEN c.o_status = 0 THEN pg_notify(",
            $channel,
            ", 'c' || ",
            $at,
            "::text || ' ' || octet_length(",
            $node,
            ")::text || ' ' || ",
            $node,
            " || ",
            $flow,
            ") IS NULL END AS o_announced FROM ",
            $before,
            $call,
            " c",
            $after
        )
    };
}

/// Reads an announcement's payload (see `announce_sql!`); `None` for anything else.
fn parse_announcement(payload: &str) -> Option<HeardClaim> {
    let rest = payload.strip_prefix('c')?;
    let (at, rest) = rest.split_once(' ')?;
    let (len, rest) = rest.split_once(' ')?;
    let at: i64 = at.parse().ok()?;
    let len: usize = len.parse().ok()?;
    let (node, flow) = (rest.get(..len)?, rest.get(len..)?);
    let scheduled = jiff::Timestamp::from_microsecond(at).ok()?;
    Some(HeardClaim {
        fire: FireId::new(flow, scheduled),
        node: NodeId::new(node),
    })
}

impl Link {
    /// Keeps an announced claim for [`heard_after`](Self::heard_after).
    fn heard_claim(&self, claim: HeardClaim) {
        let mut heard = self.heard.lock().unwrap_or_else(|p| p.into_inner());
        heard.0 += 1;
        let seq = heard.0;
        heard.1.push_back((seq, claim));
        if heard.1.len() > HEARD_KEPT {
            heard.1.pop_front();
        }
    }

    /// The announced claims after `cursor`.
    pub(crate) fn heard_after(&self, cursor: u64) -> Vec<(u64, HeardClaim)> {
        let heard = self.heard.lock().unwrap_or_else(|p| p.into_inner());
        heard
            .1
            .iter()
            .filter(|(seq, _)| *seq > cursor)
            .cloned()
            .collect()
    }
}

impl Link {
    /// The live connection, or `Unavailable` while reconnecting.
    pub(crate) fn live(&self) -> PersistResult<Arc<Live>> {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| PersistError::unavailable("not connected to PostgreSQL (reconnecting)"))
    }

    fn set(&self, live: Option<Arc<Live>>) {
        let up = live.is_some();
        let old = std::mem::replace(
            &mut *self.live.lock().unwrap_or_else(|p| p.into_inner()),
            live,
        );
        drop(old); // outside the lock
        self.connected.send_replace(up);
    }
}

const EXPIRED_SQL: &str = "WITH n AS (SELECT clock_timestamp() AS t)
SELECT cano_us(n.t) AS now_us, c.flow, c.scheduled_us, c.owner, c.fence,
       cano_us(c.lease_until) AS expired_us, c.takeovers
  FROM n LEFT JOIN LATERAL (
       SELECT * FROM cano_fire_claims k
        WHERE k.state = 0 AND k.lease_until <= n.t
        ORDER BY k.lease_until, k.flow, k.scheduled_us
        LIMIT $1) c ON true";

// Also drops the commands published before the cutoff (not counted in `pruned`).
const RETAIN_SQL: &str = "WITH d AS (
    DELETE FROM cano_fire_claims k WHERE k.state <> 0 AND k.ended_at < cano_ts($1) RETURNING 1),
  c AS (DELETE FROM cano_fleet_commands f WHERE f.created_at < cano_ts($1))
SELECT count(*) AS pruned, cano_us(clock_timestamp()) AS now_us FROM d";

const COMMANDS_AFTER_SQL: &str = "SELECT seq, flow, kind, origin FROM cano_fleet_commands
 WHERE seq > $1 ORDER BY seq LIMIT $2";

const COMMANDS_END_SQL: &str = "SELECT coalesce(max(seq), 0) AS seq FROM cano_fleet_commands";

const FIRE_SQL: &str = "SELECT cano_us(clock_timestamp()) AS now_us, k.owner, k.fence, k.state,
       k.outcome, cano_us(k.lease_until) AS expires_us, k.takeovers
  FROM (SELECT 1) one LEFT JOIN cano_fire_claims k ON k.flow = $1 AND k.scheduled_us = $2";

const FLOW_SQL: &str = "SELECT cano_us(clock_timestamp()) AS now_us, l.high_water_us, l.abandoned,
       l.fence, l.owner, cano_us(l.owner_until) AS owner_until_us
  FROM (SELECT 1) one LEFT JOIN cano_ledger_flows l ON l.flow = $1";

const RELEASE_FLOW_SQL: &str = "WITH u AS (
    UPDATE cano_ledger_flows l SET owner_until = least(l.owner_until, clock_timestamp())
     WHERE l.flow = $1 AND l.owner_fence = $2 RETURNING 1)
SELECT cano_us(clock_timestamp()) AS now_us, (SELECT count(*) FROM u) AS released";

const LOAD_ALL_SQL: &str =
    "SELECT flow, fence, schedule_hash, last_fire_us, streak, next_eligible_us,
       paused, tripped, buffered_trigger, last_error FROM cano_flow_records";

async fn prepare(client: &Client) -> Result<Prepared, tokio_postgres::Error> {
    Ok(Prepared {
        claim: client
            .prepare(announce_sql!("cano_claim($1, $2, $3, $4, $5)", "$6"))
            .await?,
        // Fires claimed together (`$1` flows, `$2` scheduled µs, `$5` limits; `$3` node,
        // `$4` lease): one transaction, decided by one set-based statement (schema v6);
        // `o_n` is each row's place in the arrays.
        claim_batch: client
            .prepare(announce_sql!(
                "",
                "cano_claim_batch($1::text[], $2::bigint[], $3, $4, $5::bigint[])",
                "$6",
                "c.o_flow",
                "c.o_at",
                "$3",
                " ORDER BY c.o_n"
            ))
            .await?,
        take_over: client
            .prepare(announce_sql!(
                "cano_take_over($1, $2, $3, $4, $5, $6)",
                "$7"
            ))
            .await?,
        renew: client
            .prepare("SELECT * FROM cano_renew($1, $2, $3, $4)")
            .await?,
        complete: client
            .prepare("SELECT * FROM cano_complete($1, $2, $3, $4)")
            .await?,
        expired: client.prepare(EXPIRED_SQL).await?,
        retain: client.prepare(RETAIN_SQL).await?,
        fire: client.prepare(FIRE_SQL).await?,
        flow: client.prepare(FLOW_SQL).await?,
        acquire_flow: client
            .prepare("SELECT * FROM cano_acquire_flow($1, $2, $3)")
            .await?,
        renew_flow: client
            .prepare("SELECT * FROM cano_renew_flow($1, $2, $3)")
            .await?,
        release_flow: client.prepare(RELEASE_FLOW_SQL).await?,
        save_flow: client
            .prepare("SELECT * FROM cano_save_flow($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .await?,
        delete_flow: client
            .prepare("SELECT * FROM cano_delete_flow($1, $2)")
            .await?,
        load_all: client.prepare(LOAD_ALL_SQL).await?,
        publish: client
            .prepare("SELECT o_seq FROM cano_publish($1, $2, $3, $4, $5)")
            .await?,
        commands_after: client.prepare(COMMANDS_AFTER_SQL).await?,
        commands_end: client.prepare(COMMANDS_END_SQL).await?,
        checkpoint_start: client
            .prepare("SELECT * FROM cano_checkpoint_start($1, $2, $3)")
            .await?,
        checkpoint_resume: client
            .prepare("SELECT * FROM cano_checkpoint_resume($1)")
            .await?,
        checkpoint_append: client
            .prepare("SELECT * FROM cano_checkpoint_append($1, $2, $3, $4)")
            .await?,
        checkpoint_load: client
            .prepare("SELECT row_bytes FROM cano_checkpoint_rows WHERE run = $1 ORDER BY sequence")
            .await?,
        checkpoint_finish: client
            .prepare("SELECT * FROM cano_checkpoint_finish($1, $2)")
            .await?,
        checkpoint_list: client
            .prepare("SELECT run FROM cano_checkpoint_runs ORDER BY run")
            .await?,
    })
}

/// Opens a connection, drives it on the current tokio runtime, migrates (the first time),
/// sets the search path, listens for commands and prepares the statements. Returns the live
/// connection and a receiver that resolves when the connection ends.
async fn open(
    config: &PgConfig,
    link: &Arc<Link>,
    run_migrations: bool,
) -> PersistResult<(Arc<Live>, oneshot::Receiver<()>)> {
    let (mut client, mut connection) = config.pg.connect(NoTls).await.map_err(from_pg)?;
    let (ended_tx, ended_rx) = oneshot::channel();
    let weak = Arc::downgrade(link);
    let channel = link.channel.clone();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) if n.channel() == channel => {
                    if let Some(link) = weak.upgrade() {
                        if let Some(claim) = parse_announcement(n.payload()) {
                            // A claim granted: no command to read, so no wake-up.
                            link.heard_claim(claim);
                            continue;
                        }
                        // The payload is a hint (the new seq); the log is what counts.
                        if let Ok(seq) = n.payload().parse::<u64>() {
                            link.latest.fetch_max(seq, Ordering::Relaxed);
                        }
                        let _ = link.wake.send(());
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let _ = ended_tx.send(());
    });
    if run_migrations {
        migrate(&mut client, &link.schema).await?;
    }
    client
        .batch_execute(&format!(
            "SET search_path TO \"{}\"; LISTEN \"{}\";",
            link.schema, link.channel
        ))
        .await
        .map_err(from_pg)?;
    let sql = prepare(&client).await.map_err(from_pg)?;
    Ok((Arc::new(Live { client, sql }), ended_rx))
}

/// Connects (migrating the schema) and returns the link, then keeps the connection up on
/// the current tokio runtime until `stop` resolves (the last store handle was dropped).
pub(crate) async fn start(
    config: PgConfig,
    stop: oneshot::Receiver<()>,
) -> PersistResult<(Arc<Link>, impl std::future::Future<Output = ()> + Send)> {
    let (connected, _) = watch::channel(false);
    // Only a wake-up: a receiver that lags has nothing to miss.
    let (wake, _) = broadcast::channel(16);
    let link = Arc::new(Link {
        channel: format!("cano_{}", config.schema),
        schema: config.schema.clone(),
        live: Mutex::new(None),
        connected,
        wake,
        floor: AtomicU64::new(0),
        latest: AtomicU64::new(0),
        commands_kept: i64::from(config.commands_kept),
        heard: Mutex::new((0, VecDeque::new())),
        unknown: crate::commands::UnknownKinds::default(),
    });
    let (live, ended) = open(&config, &link, true).await?;
    // Listening already (in `open`), so nothing published from here on is missed.
    let end = query_one(&live, &live.sql.commands_end, &[]).await?;
    let end = u64::try_from(get::<i64>(&end, "seq")?).unwrap_or(0);
    link.floor.store(end, Ordering::Relaxed);
    link.latest.store(end, Ordering::Relaxed);
    link.set(Some(live));
    let supervised = supervise(config, link.clone(), stop, ended);
    Ok((link, supervised))
}

async fn supervise(
    config: PgConfig,
    link: Arc<Link>,
    mut stop: oneshot::Receiver<()>,
    mut ended: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = &mut ended => {}
        }
        link.set(None);
        let mut backoff = config.reconnect_min;
        loop {
            tokio::select! {
                _ = &mut stop => { link.set(None); return; }
                _ = tokio::time::sleep(backoff) => {}
            }
            match open(&config, &link, false).await {
                Ok((live, now_ended)) => {
                    link.set(Some(live));
                    // Notifications sent while disconnected are lost, the log is not:
                    // readers read it from their cursors.
                    let _ = link.wake.send(());
                    ended = now_ended;
                    break;
                }
                Err(_) => backoff = jittered((backoff * 2).min(config.reconnect_max)),
            }
        }
    }
    link.set(None);
}

/// `d` less up to a quarter, so a fleet whose database restarted does not reconnect in
/// lockstep.
fn jittered(d: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let quarter = d.as_micros() as u64 / 4;
    d.saturating_sub(Duration::from_micros(random % quarter.max(1)))
}

/// Reads a typed value from a row.
pub(crate) fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    column: &str,
) -> PersistResult<T> {
    row.try_get(column)
        .map_err(|e| PersistError::corrupt(format!("column {column}: {e}")))
}

/// One row of a query that always returns one.
pub(crate) async fn query_one(
    live: &Live,
    statement: &Statement,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> PersistResult<tokio_postgres::Row> {
    live.client
        .query_one(statement, params)
        .await
        .map_err(from_pg)
}

/// Appends `command` to the fleet's command log and wakes the listeners (one statement);
/// returns its seq.
pub(crate) async fn publish(link: &Link, command: &FleetCommand) -> PersistResult<u64> {
    cano_core::persist::check_flow_id(&command.flow)?;
    let kind = kind_code(command.kind)?;
    let live = link.live()?;
    let row = query_one(
        &live,
        &live.sql.publish,
        &[
            &&*command.flow,
            &kind,
            &command.from.as_str(),
            &link.channel,
            &link.commands_kept,
        ],
    )
    .await?;
    let seq = get::<i64>(&row, "o_seq")?;
    let seq = u64::try_from(seq)
        .map_err(|_| PersistError::corrupt(format!("a negative command seq {seq}")))?;
    link.latest.fetch_max(seq, Ordering::Relaxed);
    Ok(seq)
}

/// The default reconnect backoff: from 50 ms, doubling, up to 5 s.
pub(crate) const RECONNECT_MIN: Duration = Duration::from_millis(50);
/// See [`RECONNECT_MIN`].
pub(crate) const RECONNECT_MAX: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_parse_back_and_commands_do_not() {
        let claim = parse_announcement("c1767225660000000 5 nodé:a:b").unwrap();
        assert_eq!(claim.node.as_str(), "nodé");
        assert_eq!(claim.fire.flow(), ":a:b");
        assert_eq!(
            claim.fire.scheduled().as_microsecond(),
            1_767_225_660_000_000
        );
        assert_eq!(parse_announcement("42"), None, "a command's seq");
        assert_eq!(parse_announcement("c1 9 short"), None);
    }
}
