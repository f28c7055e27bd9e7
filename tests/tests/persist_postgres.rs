//! cano-postgres against a real PostgreSQL 15 (started by the test itself, see
//! `cano_tests::pg_server`): the conformance suite, claim races over many connections,
//! migrations, the durable command log (woken by LISTEN/NOTIFY).

use std::time::Duration;

use cano_core::persist::{
    ClaimOutcome, ClaimRequest, Fence, FireLedger, FleetCommand, FleetCommandKind, NodeId,
    PersistError, ScheduleStore,
};
use cano_core::scheduler::FireId;
use cano_postgres::{CommandEvent, IoRuntime, PgConfig, PgStore, SCHEMA_VERSION};
use cano_tests::persist_conformance::{
    Boxed, StoreFixture, run_fire_ledger_suite, run_schedule_store_suite,
};
use cano_tests::pg_server::PgServer;
use cano_tests::tcp_proxy::TcpProxy;

/// Short enough to keep the suite fast, long enough for a loaded CI machine to make a few
/// calls inside it.
const SHORT_LEASE: Duration = Duration::from_millis(400);

struct Pg {
    store: PgStore,
    config: PgConfig,
}

async fn fresh(prefix: &str) -> Pg {
    let server = PgServer::shared();
    let config = PgConfig::new(&server.url("postgres"))
        .expect("config")
        .schema(server.fresh_schema(prefix));
    let store = PgStore::connect(config.clone()).await.expect("connect");
    Pg { store, config }
}

impl StoreFixture for Pg {
    type Ledger = PgStore;
    type Schedule = PgStore;

    fn ledger(&self) -> &PgStore {
        &self.store
    }
    fn schedule(&self) -> &PgStore {
        &self.store
    }
    fn handles(&self, n: usize) -> Boxed<'_, Vec<(PgStore, PgStore)>> {
        Box::pin(async move {
            let mut handles = Vec::new();
            for _ in 0..n {
                // A connection each: the races run in the database, not in one client.
                let store = PgStore::connect(self.config.clone())
                    .await
                    .expect("connect");
                handles.push((store.clone(), store));
            }
            handles
        })
    }
    fn pass(&self, d: Duration) -> Boxed<'_, ()> {
        Box::pin(tokio::time::sleep(d))
    }
    fn short_lease(&self) -> Duration {
        SHORT_LEASE
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_fire_ledger_conforms() {
    run_fire_ledger_suite(|| fresh("ledger")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_schedule_store_conforms() {
    run_schedule_store_suite(|| fresh("schedule")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_checkpoint_store_passes_the_core_contract() {
    let pg = fresh("checkpoint").await;
    cano_core::checkpoint::check_store_contract(&pg.store).await;
    // And it survives a reconnect of the same schema: the rows are in the database.
    use cano_core::checkpoint::{CheckpointRow, CheckpointStore, RunId, RunLog};
    let run = RunId::new("kept");
    let first = CheckpointRow::state_entry(0, "a".into(), 1);
    let fence = pg.store.start(&run, &first).await.unwrap();
    let again = PgStore::connect(pg.config.clone()).await.unwrap();
    assert_eq!(
        again.load(&run).await.unwrap(),
        RunLog::Unfinished(vec![first])
    );
    assert!(again.resume(&run).await.unwrap() > fence);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_race_over_32_connections_has_one_winner_per_fire() {
    let pg = fresh("race").await;
    let handles = pg.handles(32).await;
    for round in 0..10 {
        let fire = FireId::new(
            "hot",
            format!("2026-01-01T00:00:{round:02}Z").parse().unwrap(),
        );
        let claims = handles.iter().enumerate().map(|(i, (store, _))| {
            let fire = fire.clone();
            async move {
                store
                    .claim(
                        &fire,
                        &NodeId::new(format!("n{i}")),
                        Duration::from_secs(60),
                    )
                    .await
                    .expect("claim")
                    .value
            }
        });
        let answers = futures::future::join_all(claims).await;
        let winners = answers
            .iter()
            .filter(|a| matches!(a, ClaimOutcome::Claimed(_)))
            .count();
        assert_eq!(winners, 1, "round {round}: {answers:?}");
        assert!(
            answers
                .iter()
                .all(|a| matches!(a, ClaimOutcome::Claimed(_) | ClaimOutcome::Taken { .. }))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_concurrent_starts_do_not_race() {
    let server = PgServer::shared();
    let config = PgConfig::new(&server.url("postgres"))
        .unwrap()
        .schema(server.fresh_schema("migrate"));
    // Eight nodes start at once on an empty database.
    let starts = (0..8).map(|_| PgStore::connect(config.clone()));
    let stores: Vec<PgStore> = futures::future::join_all(starts)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("every start succeeds");
    let fire = FireId::new("m", "2026-01-01T00:00:00Z".parse().unwrap());
    stores[0]
        .claim(&fire, &NodeId::new("a"), Duration::from_secs(60))
        .await
        .unwrap();
    // And once more on the existing schema: the data is kept, nothing is applied twice.
    let again = PgStore::connect(config.clone()).await.expect("restart");
    assert!(again.fire(&fire).await.unwrap().value.is_some());
    let (client, connection) = cano_postgres::tokio_postgres::connect(
        &server.url("postgres"),
        cano_postgres::tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let schema = again.schema().to_owned();
    let versions = applied_versions(&client, &schema).await;
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    // A schema from a newer cano-postgres is refused, not misread.
    client
        .execute(
            &format!(
                "INSERT INTO \"{schema}\".cano_migrations (version, name) VALUES (99, 'future')"
            ),
            &[],
        )
        .await
        .unwrap();
    let newer = PgStore::connect(config).await.unwrap_err();
    assert!(
        matches!(newer, PersistError::Backend(ref m) if m.contains("newer")),
        "{newer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_at_version_1_is_upgraded_in_place() {
    // What version 1 of this crate left behind, with a claim in it.
    let Upgraded {
        schema,
        client,
        store,
        ..
    } = upgraded_from(1, "upgrade", OLD_CLAIM).await;
    let old = FireId::new("old", cano_core::jiff::Timestamp::UNIX_EPOCH);
    assert!(
        store.fire(&old).await.unwrap().value.is_some(),
        "v1 data kept"
    );
    let run = cano_core::checkpoint::RunId::new("new");
    let first = cano_core::checkpoint::CheckpointRow::state_entry(0, "s".into(), 1);
    cano_core::checkpoint::CheckpointStore::start(&store, &run, &first)
        .await
        .expect("v2 tables work");
    let takeover = store
        .take_over_limited(
            &old,
            &cano_core::persist::NodeId::new("b"),
            Duration::from_secs(5),
            3,
            1,
        )
        .await
        .expect("the v3 takeover works on v1 claims")
        .value;
    assert!(
        matches!(takeover, cano_core::persist::TakeoverOutcome::Live { .. }),
        "{takeover:?}"
    );
    let versions = applied_versions(&client, &schema).await;
    assert_eq!(versions, all_versions());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_is_a_typed_error() {
    let server = PgServer::shared();
    assert!(matches!(
        PgConfig::new("host=127.0.0.1 port=notaport"),
        Err(PersistError::Invalid(_))
    ));
    let bad_schema = PgConfig::new(&server.url("postgres"))
        .unwrap()
        .schema("Robert'); DROP");
    assert!(matches!(
        PgStore::connect(bad_schema).await,
        Err(PersistError::Invalid(_))
    ));
    let no_db = PgConfig::new(&server.url("no_such_database")).unwrap();
    assert!(matches!(
        PgStore::connect(no_db).await,
        Err(PersistError::Backend(_))
    ));
    // Nobody listens on port 1.
    let refused = PgConfig::new("host=127.0.0.1 port=1 user=postgres connect_timeout=2").unwrap();
    assert!(matches!(
        PgStore::connect(refused).await,
        Err(PersistError::Unavailable(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_reach_every_node_promptly() {
    let a = fresh("commands").await;
    let b = PgStore::connect(a.config.clone()).await.unwrap();
    let mut heard_by_b = b.commands();
    let mut heard_by_a = a.store.commands();
    let cmd = FleetCommand::new("report", FleetCommandKind::Pause, NodeId::new("a"));
    a.store.publish(&cmd).await.unwrap();
    let timeout = Duration::from_secs(10);
    let got = tokio::time::timeout(timeout, heard_by_b.next())
        .await
        .expect("b hears it");
    assert_eq!(got, Some(CommandEvent::Command(cmd.clone())));
    let own = tokio::time::timeout(timeout, heard_by_a.next())
        .await
        .expect("a hears its own");
    assert_eq!(own, Some(CommandEvent::Command(cmd)));
    // Another fleet (schema) hears nothing of it.
    let other = fresh("commands_other").await;
    let mut heard_elsewhere = other.store.commands();
    a.store
        .publish(&FleetCommand::new(
            "x",
            FleetCommandKind::Trigger,
            NodeId::new("a"),
        ))
        .await
        .unwrap();
    let next = tokio::time::timeout(timeout, heard_by_b.next())
        .await
        .expect("b hears");
    assert!(matches!(next, Some(CommandEvent::Command(_))));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), heard_elsewhere.next())
            .await
            .is_err()
    );
    // What a scheduler reads: the commands received, numbered, and a signal at the next.
    let read = FireLedger::commands_after(&b, 0).await.unwrap();
    assert_eq!(read.len(), 2, "{read:?}");
    assert_eq!(read[0].1, cmd_pause());
    assert_eq!(
        FireLedger::commands_after(&b, read[0].0).await.unwrap(),
        read[1..]
    );
    let signal = FireLedger::command_signal(&b).expect("PostgreSQL notifies");
    FireLedger::publish(&a.store, &cmd_pause()).await.unwrap();
    tokio::time::timeout(timeout, signal)
        .await
        .expect("the signal comes with the notification");
    let latest = FireLedger::commands_after(&b, read[1].0).await.unwrap();
    assert_eq!(latest.len(), 1);
    assert!(
        FireLedger::commands_after(&other.store, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

fn cmd_pause() -> FleetCommand {
    FleetCommand::new("report", FleetCommandKind::Pause, NodeId::new("a"))
}

#[test]
fn a_smol_style_program_uses_the_store_through_an_io_runtime() {
    let io = IoRuntime::start().unwrap();
    let server = PgServer::shared();
    let config = PgConfig::new(&server.url("postgres"))
        .unwrap()
        .schema(server.fresh_schema("io_runtime"));
    // No tokio runtime on this thread: everything is awaited on another executor.
    assert!(tokio::runtime::Handle::try_current().is_err());
    futures::executor::block_on(async {
        assert!(matches!(
            PgStore::connect(config.clone()).await,
            Err(PersistError::Invalid(_))
        ));
        let store = PgStore::connect_on(io.handle(), config).await.unwrap();
        let fire = FireId::new("smol", "2026-01-01T00:00:00Z".parse().unwrap());
        let answer = store
            .claim(&fire, &NodeId::new("a"), Duration::from_secs(30))
            .await
            .unwrap();
        assert!(matches!(answer.value, ClaimOutcome::Claimed(_)));
        assert!(store.load_all().await.unwrap().is_empty());
    });
}

/// A raw client on the shared server, for looking at the tables behind the store.
async fn raw_client() -> cano_postgres::tokio_postgres::Client {
    let (client, connection) = cano_postgres::tokio_postgres::connect(
        &PgServer::shared().url("postgres"),
        cano_postgres::tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    client
}

async fn logged_commands(schema: &str) -> i64 {
    raw_client()
        .await
        .query_one(
            &format!("SELECT count(*) FROM \"{schema}\".cano_fleet_commands"),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

fn command(flow: &str, kind: FleetCommandKind, from: &str) -> FleetCommand {
    FleetCommand::new(flow, kind, NodeId::new(from))
}

/// The `FireLedger` command contract, on any ledger whose handles share one log and were
/// made before the commands were published.
async fn ledger_commands_conform<L: FireLedger>(publisher: &L, reader: &L) {
    let sent = [
        command("a", FleetCommandKind::Pause, "n1"),
        command("b", FleetCommandKind::Trigger, "n1"),
        command("a", FleetCommandKind::Resume, "n2"),
        command("c", FleetCommandKind::Reset, "n1"),
    ];
    for c in &sent {
        publisher.publish(c).await.unwrap();
    }
    let read = reader.commands_after(0).await.unwrap();
    assert_eq!(
        read.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>(),
        sent,
        "every command, in order"
    );
    assert!(
        read.windows(2).all(|w| w[0].0 < w[1].0),
        "strictly increasing: {read:?}"
    );
    assert_eq!(reader.commands_after(read[1].0).await.unwrap(), read[2..]);
    assert!(reader.commands_after(read[3].0).await.unwrap().is_empty());
    // The publisher reads the same log.
    assert_eq!(publisher.commands_after(0).await.unwrap(), read);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_log_conforms_and_reads_are_bounded() {
    let pg = fresh("cmd_conform").await;
    let handles = pg.handles(1).await;
    ledger_commands_conform(&pg.store, &handles[0].0).await;
    assert!(matches!(
        FireLedger::publish(&pg.store, &command("", FleetCommandKind::Pause, "n1")).await,
        Err(PersistError::Invalid(_))
    ));
    // And the memory ledger, the reference for the contract, agrees.
    let memory =
        cano_core::persist::MemoryFireLedger::new_at(cano_core::jiff::Timestamp::UNIX_EPOCH);
    ledger_commands_conform(&memory, &memory).await;

    // One read returns at most 1 024; the next read goes on from there, nothing skipped.
    let reader = &handles[0].0;
    let mut cursor = reader.commands_after(0).await.unwrap().last().unwrap().0;
    for i in 0..1100 {
        pg.store
            .publish(&command(&format!("f{i}"), FleetCommandKind::Trigger, "n1"))
            .await
            .unwrap();
    }
    let first = reader.commands_after(cursor).await.unwrap();
    assert_eq!(first.len(), 1024);
    cursor = first.last().unwrap().0;
    let rest = reader.commands_after(cursor).await.unwrap();
    assert_eq!(rest.len(), 76);
    let flows: Vec<String> = first
        .iter()
        .chain(&rest)
        .map(|(_, c)| c.flow.to_string())
        .collect();
    assert_eq!(
        flows,
        (0..1100).map(|i| format!("f{i}")).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_starting_fresh_reads_from_the_end_of_the_log() {
    let pg = fresh("cmd_fresh").await;
    pg.store
        .publish(&command("old", FleetCommandKind::Pause, "a"))
        .await
        .unwrap();
    // Started after the pause: it does not replay it ...
    let late = PgStore::connect(pg.config.clone()).await.unwrap();
    assert!(
        FireLedger::commands_after(&late, 0)
            .await
            .unwrap()
            .is_empty()
    );
    let mut stream = late.commands();
    // ... but reads everything published after it connected, before its scheduler ran.
    let new = command("new", FleetCommandKind::Resume, "a");
    pg.store.publish(&new).await.unwrap();
    let read = FireLedger::commands_after(&late, 0).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].1, new);
    let heard = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the stream hears it");
    assert_eq!(heard, Some(CommandEvent::Command(new)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_published_while_a_node_is_cut_off_reaches_it_once_in_order() {
    let pg = fresh("cmd_outage").await;
    let server = PgServer::shared();
    let proxy = TcpProxy::start(([127, 0, 0, 1], server.port()).into()).unwrap();
    let via_proxy = server.url("postgres").replace(
        &format!("port={}", server.port()),
        &format!("port={}", proxy.port()),
    );
    let b = PgStore::connect(
        PgConfig::new(&via_proxy)
            .unwrap()
            .schema(pg.store.schema())
            .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200)),
    )
    .await
    .unwrap();
    let mut b_stream = b.commands();
    let before = command("r", FleetCommandKind::Pause, "a");
    pg.store.publish(&before).await.unwrap();
    let timeout = Duration::from_secs(20);
    assert_eq!(
        tokio::time::timeout(timeout, b_stream.next())
            .await
            .unwrap(),
        Some(CommandEvent::Command(before.clone()))
    );
    let read = FireLedger::commands_after(&b, 0).await.unwrap();
    assert_eq!(read.len(), 1);
    let cursor = read[0].0;

    // B's connection drops and its reconnects hang in the held proxy.
    proxy.pause();
    proxy.sever();
    tokio::time::timeout(timeout, async {
        while b.is_connected() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("b notices the cut");
    let during = [
        command("r", FleetCommandKind::Resume, "a"),
        command("s", FleetCommandKind::Trigger, "a"),
        command("r", FleetCommandKind::Reset, "a"),
    ];
    for c in &during {
        pg.store.publish(c).await.unwrap();
    }
    assert!(matches!(
        FireLedger::commands_after(&b, cursor).await,
        Err(PersistError::Unavailable(_))
    ));
    let signal = FireLedger::command_signal(&b).expect("PostgreSQL wakes");

    proxy.resume();
    tokio::time::timeout(timeout, b.wait_connected())
        .await
        .expect("b reconnects");
    tokio::time::timeout(timeout, signal)
        .await
        .expect("the reconnect wakes the reader");
    let missed = FireLedger::commands_after(&b, cursor).await.unwrap();
    assert_eq!(
        missed.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>(),
        during,
        "what was published during the outage, once, in order"
    );
    // The stream gets them too, each once, then nothing more.
    for c in &during {
        assert_eq!(
            tokio::time::timeout(timeout, b_stream.next())
                .await
                .unwrap(),
            Some(CommandEvent::Command(c.clone()))
        );
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), b_stream.next())
            .await
            .is_err(),
        "no command twice"
    );
    assert!(
        FireLedger::commands_after(&b, missed[2].0)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_log_is_pruned_to_its_bound_and_by_retain() {
    let pg = fresh("cmd_prune").await;
    let small = PgStore::connect(pg.config.clone().commands_kept(5))
        .await
        .unwrap();
    for i in 0..12 {
        small
            .publish(&command(&format!("f{i}"), FleetCommandKind::Trigger, "a"))
            .await
            .unwrap();
    }
    let schema = pg.store.schema().to_owned();
    assert_eq!(logged_commands(&schema).await, 5, "the last 5 are kept");
    let kept = FireLedger::commands_after(&pg.store, 0).await.unwrap();
    assert_eq!(
        kept.iter()
            .map(|(_, c)| c.flow.to_string())
            .collect::<Vec<_>>(),
        ["f7", "f8", "f9", "f10", "f11"]
    );
    // `retain` drops the commands published before its cutoff (and counts only claims).
    let now = pg.store.flow("x").await.unwrap().store_now;
    let later = now + Duration::from_secs(1);
    assert_eq!(pg.store.retain(later).await.unwrap().value, 0);
    assert_eq!(logged_commands(&schema).await, 0);
    // The log goes on after being emptied, its sequence never reused.
    let seq = small
        .publish(&command("after", FleetCommandKind::Pause, "a"))
        .await
        .unwrap();
    assert!(seq > kept[4].0);
    assert_eq!(
        FireLedger::commands_after(&pg.store, kept[4].0)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_at_version_3_gets_the_command_log_and_keeps_its_claims() {
    let Upgraded {
        schema,
        client,
        config,
        store,
    } = upgraded_from(3, "upgrade_v3", OLD_CLAIM).await;
    let old = FireId::new("old", cano_core::jiff::Timestamp::UNIX_EPOCH);
    let record = store
        .fire(&old)
        .await
        .unwrap()
        .value
        .expect("v3 claim kept");
    assert_eq!(record.owner, NodeId::new("a"));
    let other = PgStore::connect(config).await.unwrap();
    let cmd = command("old", FleetCommandKind::Pause, "a");
    store.publish(&cmd).await.unwrap();
    let read = FireLedger::commands_after(&other, 0).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].1, cmd);
    let versions = applied_versions(&client, &schema).await;
    assert_eq!(versions, all_versions());
}

/// A claim of fire ("old", the epoch) by node `a` with a one-minute lease, as an older
/// schema's `cano_claim` made it.
const OLD_CLAIM: &str = "SELECT * FROM cano_claim('old', 0, 'a', 60000000, 1);";

/// A schema built as version `version` of this crate left it (then `then` run in it), and
/// a store connected to it, which migrated it to [`SCHEMA_VERSION`].
struct Upgraded {
    schema: String,
    client: cano_postgres::tokio_postgres::Client,
    config: PgConfig,
    store: PgStore,
}

async fn upgraded_from(version: usize, name: &str, then: &str) -> Upgraded {
    let server = PgServer::shared();
    let schema = server.fresh_schema(name);
    let client = raw_client().await;
    build_schema_at_version(&client, &schema, version, then).await;
    let config = PgConfig::new(&server.url("postgres"))
        .unwrap()
        .schema(schema.clone());
    let store = PgStore::connect(config.clone()).await.expect("upgrades");
    Upgraded {
        schema,
        client,
        config,
        store,
    }
}

/// Every schema version this crate applies, in order.
fn all_versions() -> Vec<i32> {
    (1..=SCHEMA_VERSION).collect()
}

fn at_us(us: i64) -> FireId {
    FireId::new(
        "f",
        cano_core::persist::from_micros(us).expect("a valid time"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_at_version_4_gets_cano_holds_claim_and_keeps_its_rows() {
    let then = concat!(
        "SELECT * FROM cano_claim('old', 0, 'a', 60000000, 1);",
        "SELECT * FROM cano_publish('old', 1::smallint, 'a', 'unused', 100);"
    );
    let Upgraded {
        schema,
        client,
        store,
        ..
    } = upgraded_from(4, "upgrade_v4", then).await;
    let old = FireId::new("old", cano_core::jiff::Timestamp::UNIX_EPOCH);
    let record = store
        .fire(&old)
        .await
        .unwrap()
        .value
        .expect("v4 claim kept");
    assert_eq!(record.owner, NodeId::new("a"));
    assert_eq!(logged_commands(&schema).await, 1, "v4 command log kept");
    // The new function answers for the claim made before the upgrade, from a connection
    // whose search path does not include the schema.
    let holds = |fence: i64| {
        let client = &client;
        let schema = &schema;
        async move {
            client
                .batch_execute("SET search_path TO public")
                .await
                .unwrap();
            client
                .query_one(
                    &format!("SELECT \"{schema}\".cano_holds_claim('old', 0, $1)"),
                    &[&fence],
                )
                .await
                .unwrap()
                .get::<_, bool>(0)
        }
    };
    assert!(holds(record.fence.0 as i64).await);
    assert!(!holds(record.fence.0 as i64 + 1).await);
    let versions = applied_versions(&client, &schema).await;
    assert_eq!(versions, all_versions());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_at_version_5_gets_cano_claim_batch_and_keeps_its_claims() {
    let Upgraded {
        schema,
        client,
        store,
        ..
    } = upgraded_from(
        5,
        "upgrade_v5",
        "SELECT * FROM cano_claim('f', 1000000, 'a', 600000000, 1);",
    )
    .await;
    assert_eq!(SCHEMA_VERSION, 6);
    assert_eq!(applied_versions(&client, &schema).await, all_versions());
    // The batch sees the claim made before the upgrade: held by `a`, and its mark.
    let asked = [
        ClaimRequest::new(at_us(1_000_000), 1),
        ClaimRequest::new(at_us(500_000), 2),
        ClaimRequest::new(at_us(2_000_000), 2),
    ];
    let answers: Vec<ClaimOutcome> = store
        .claim_batch(&asked, &NodeId::new("b"), Duration::from_secs(60))
        .await
        .into_iter()
        .map(|a| a.expect("claim").value)
        .collect();
    assert!(
        matches!(&answers[0], ClaimOutcome::Taken { owner, .. } if *owner == NodeId::new("a")),
        "{answers:?}"
    );
    assert!(
        matches!(answers[1], ClaimOutcome::Stale { .. }),
        "{answers:?}"
    );
    let ClaimOutcome::Claimed(next) = answers[2] else {
        panic!("a later fire is claimed: {answers:?}");
    };
    assert_eq!(
        next.fence,
        Fence(2),
        "the flow's fence counter carried over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cano_holds_claim_is_true_only_for_the_live_fence_and_blocks_a_takeover() {
    let pg = fresh("holds").await;
    let schema = pg.store.schema().to_owned();
    let other = PgStore::connect(pg.config.clone()).await.unwrap();
    let fire = at_us(1_000_000);
    let lease = Duration::from_millis(1500);
    let ClaimOutcome::Claimed(claim) = pg
        .store
        .claim(&fire, &NodeId::new("a"), lease)
        .await
        .unwrap()
        .value
    else {
        panic!("claimed");
    };
    let sql = format!("SELECT \"{schema}\".cano_holds_claim('f', 1000000, $1)");
    let effects = raw_client().await;
    let check = |fence: u64| {
        let sql = sql.clone();
        let effects = &effects;
        async move {
            effects
                .query_one(&sql, &[&(fence as i64)])
                .await
                .unwrap()
                .get::<_, bool>(0)
        }
    };
    assert!(!check(claim.fence.0 + 1).await, "another fence");
    // The caller's transaction takes the share lock while the lease is live ...
    effects.batch_execute("BEGIN").await.unwrap();
    assert!(check(claim.fence.0).await, "the live fence");
    tokio::time::sleep(lease + Duration::from_millis(300)).await;
    // ... so once the lease has run out, a takeover waits for that transaction to end.
    let takeover = tokio::spawn(async move {
        other
            .take_over(&at_us(1_000_000), &NodeId::new("b"), lease, 3)
            .await
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !takeover.is_finished(),
        "the takeover went ahead under the caller's share lock"
    );
    effects.batch_execute("COMMIT").await.unwrap();
    let taken = tokio::time::timeout(Duration::from_secs(10), takeover)
        .await
        .expect("the takeover proceeds after the commit")
        .unwrap()
        .unwrap();
    let cano_core::persist::TakeoverOutcome::Claimed(new) = taken.value else {
        panic!("taken over: {:?}", taken.value);
    };
    assert!(new.fence > claim.fence);
    assert!(
        !check(claim.fence.0).await,
        "the old fence after the takeover"
    );
    assert!(check(new.fence.0).await, "the new fence");
    // A lease that ran out without a takeover holds nothing either.
    tokio::time::sleep(lease + Duration::from_millis(300)).await;
    assert!(!check(new.fence.0).await, "an expired lease");
    // Nor does a completed fire.
    let done = at_us(2_000_000);
    let ClaimOutcome::Claimed(claim) = pg
        .store
        .claim(&done, &NodeId::new("a"), lease)
        .await
        .unwrap()
        .value
    else {
        panic!("claimed");
    };
    pg.store
        .complete(
            &done,
            claim.fence,
            cano_core::persist::FireOutcome::Succeeded,
        )
        .await
        .unwrap();
    let completed = effects
        .query_one(
            &format!("SELECT \"{schema}\".cano_holds_claim('f', 2000000, $1)"),
            &[&(claim.fence.0 as i64)],
        )
        .await
        .unwrap()
        .get::<_, bool>(0);
    assert!(!completed, "a completed fire");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_skips_command_kinds_it_does_not_know_and_moves_past_them() {
    let pg = fresh("unknown_kind").await;
    let schema = pg.store.schema().to_owned();
    let reader = PgStore::connect(pg.config.clone()).await.unwrap();
    let mut stream = reader.commands();
    let behind = PgStore::connect(pg.config.clone()).await.unwrap();
    let mut behind_stream = behind.commands();
    let raw = raw_client().await;
    let unknown_sql = format!(
        "INSERT INTO \"{schema}\".cano_fleet_commands (flow, kind, origin)
         VALUES ('a', 99, 'newer') RETURNING seq"
    );
    let unknown = || async {
        raw.query_one(&unknown_sql, &[])
            .await
            .unwrap()
            .get::<_, i64>(0) as u64
    };
    let first = command("a", FleetCommandKind::Pause, "n1");
    let second = command("a", FleetCommandKind::Resume, "n1");
    let s1 = pg.store.publish(&first).await.unwrap();
    let skipped = unknown().await;
    let s2 = pg.store.publish(&second).await.unwrap();
    assert!(s1 < skipped && skipped < s2);
    let read = FireLedger::commands_after(&reader, 0)
        .await
        .expect("not Corrupt");
    assert_eq!(read, [(s1, first.clone()), (s2, second.clone())]);
    assert_eq!(reader.skipped_commands(), 1);
    // The stream reads the same, in order.
    for (seq, want) in [(s1, &first), (s2, &second)] {
        let got = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("a command");
        assert_eq!(got, Some(CommandEvent::Command(want.clone())), "seq {seq}");
    }
    // Unknown rows at the end of the log: nothing to return, counted once however often
    // they are re-read, and the stream's cursor moves past them.
    let trailing = unknown().await;
    assert!(
        FireLedger::commands_after(&reader, s2)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        FireLedger::commands_after(&reader, s2)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(reader.skipped_commands(), 2);
    // A reader behind another of the same store meets rows the other did not: each is
    // still counted once. `behind` read nothing yet; its ledger reads the end first.
    assert!(
        FireLedger::commands_after(&behind, s2)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(behind.skipped_commands(), 1, "the trailing row");
    for want in [&first, &second] {
        let got = tokio::time::timeout(Duration::from_secs(10), behind_stream.next())
            .await
            .expect("a command");
        assert_eq!(got, Some(CommandEvent::Command(want.clone())));
    }
    assert_eq!(behind.skipped_commands(), 2, "the earlier row, met later");
    assert!(
        tokio::time::timeout(Duration::from_millis(500), stream.next())
            .await
            .is_err(),
        "no command to yield"
    );
    assert!(
        format!("{stream:?}").contains(&format!("cursor: {trailing}")),
        "{stream:?} moved past seq {trailing}"
    );
    // A known command after them still arrives.
    let third = command("a", FleetCommandKind::Trigger, "n1");
    let s3 = pg.store.publish(&third).await.unwrap();
    assert_eq!(
        FireLedger::commands_after(&reader, s2).await.unwrap(),
        [(s3, third.clone())]
    );
    let got = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a command");
    assert_eq!(got, Some(CommandEvent::Command(third)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_fires_show_every_nodes_fires_from_any_node() {
    use cano_core::persist::{ClaimState, FireOutcome, TakeoverOutcome};
    let pg = fresh("recent").await;
    let a = pg.store.clone();
    let b = PgStore::connect(pg.config.clone()).await.unwrap();
    let operator = PgStore::connect(pg.config.clone()).await.unwrap();
    let long = Duration::from_secs(60);
    let short = Duration::from_millis(300);
    let claimed = |answer: ClaimOutcome| match answer {
        ClaimOutcome::Claimed(claim) => claim,
        other => panic!("claimed: {other:?}"),
    };
    // t1: run by a, done; t2: b, running; t3: a's claim expired, taken over by b.
    let c1 = claimed(
        a.claim(&at_us(1), &NodeId::new("a"), long)
            .await
            .unwrap()
            .value,
    );
    a.complete(&at_us(1), c1.fence, FireOutcome::Failed)
        .await
        .unwrap();
    let c2 = claimed(
        b.claim(&at_us(2), &NodeId::new("b"), long)
            .await
            .unwrap()
            .value,
    );
    let c3 = claimed(
        a.claim(&at_us(3), &NodeId::new("a"), short)
            .await
            .unwrap()
            .value,
    );
    tokio::time::sleep(short + Duration::from_millis(200)).await;
    let TakeoverOutcome::Claimed(t3) = b
        .take_over(&at_us(3), &NodeId::new("b"), long, 3)
        .await
        .unwrap()
        .value
    else {
        panic!("taken over");
    };
    assert!(t3.fence > c3.fence);
    // Another flow's fire is not listed.
    let elsewhere = FireId::new("g", cano_core::persist::from_micros(4).unwrap());
    a.claim(&elsewhere, &NodeId::new("a"), long).await.unwrap();

    let recent = operator.recent_fires("f", 10).await.unwrap();
    let seen: Vec<_> = recent
        .value
        .iter()
        .map(|r| {
            (
                r.fire.clone(),
                r.owner.as_str().to_owned(),
                r.fence,
                r.state,
                r.takeovers,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (at_us(3), "b".to_owned(), t3.fence, ClaimState::Claimed, 1),
            (at_us(2), "b".to_owned(), c2.fence, ClaimState::Claimed, 0),
            (
                at_us(1),
                "a".to_owned(),
                c1.fence,
                ClaimState::Done(FireOutcome::Failed),
                0
            ),
        ]
    );
    assert!(
        recent.value[0].expires > recent.store_now,
        "t3's new lease is live"
    );
    let newest = operator.recent_fires("f", 2).await.unwrap().value;
    assert_eq!(
        newest.iter().map(|r| r.fire.clone()).collect::<Vec<_>>(),
        [at_us(3), at_us(2)]
    );
    assert!(
        operator
            .recent_fires("none", 10)
            .await
            .unwrap()
            .value
            .is_empty()
    );
    assert!(matches!(
        operator.recent_fires("", 10).await,
        Err(PersistError::Invalid(_))
    ));
}

/// A fleet node on tokio with one yearly cron flow `tick` (it never fires during the test),
/// a scan so rare that only the notification or the reconnect can bring a command in time.
async fn tick_node(store: PgStore, name: &str) -> cano_core::scheduler::RunningScheduler {
    use cano_core::scheduler::{Fire, FleetConfig, Scheduler, job_fn};
    let mut config = FleetConfig::default();
    config.scan_every = Duration::from_secs(60);
    config.retry = Duration::from_millis(100);
    config.retry_max = Duration::from_millis(500);
    let mut scheduler = Scheduler::new();
    scheduler
        .set_fleet(store, NodeId::new(name), config)
        .unwrap();
    scheduler
        .cron(
            "tick",
            job_fn(|(), _fire: Fire| async { Ok(()) }),
            (),
            "0 0 1 1 *",
        )
        .unwrap();
    scheduler
        .start(
            cano_tokio::TokioClock::new(),
            cano_tokio::TokioSpawner::current(),
        )
        .await
        .unwrap()
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_given_while_a_scheduler_is_cut_off_reaches_it_after_the_reconnect() {
    let pg = fresh("cmd_scheduler").await;
    let server = PgServer::shared();
    let proxy = TcpProxy::start(([127, 0, 0, 1], server.port()).into()).unwrap();
    let via_proxy = server.url("postgres").replace(
        &format!("port={}", server.port()),
        &format!("port={}", proxy.port()),
    );
    let b_store = PgStore::connect(
        PgConfig::new(&via_proxy)
            .unwrap()
            .schema(pg.store.schema())
            .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200)),
    )
    .await
    .unwrap();
    let a = tick_node(pg.store.clone(), "a").await;
    let b = tick_node(b_store.clone(), "b").await;
    let paused = |node: &cano_core::scheduler::RunningScheduler| {
        node.status("tick").unwrap().next_fire.is_none()
    };
    assert!(!paused(&b));
    // Connected: the notification brings it at once (the scan is a minute away).
    a.pause("tick").unwrap();
    until("b paused by the notification", || paused(&b)).await;
    a.resume("tick").unwrap();
    until("b resumed by the notification", || !paused(&b)).await;

    // Cut off: b misses the notification, and reads the command from the log once back.
    proxy.pause();
    proxy.sever();
    until("b notices the cut", || !b_store.is_connected()).await;
    a.pause("tick").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!paused(&b), "b cannot know yet");
    proxy.resume();
    until("b paused after the reconnect", || paused(&b)).await;
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_racing_concurrent_publishers_misses_none() {
    let pg = fresh("cmd_race").await;
    let publishers = pg.handles(4).await;
    let reader = PgStore::connect(pg.config.clone()).await.unwrap();
    const EACH: usize = 50;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reading = {
        let done = done.clone();
        tokio::spawn(async move {
            // Reads while the others publish: a seq that became visible after a higher one
            // would be skipped by the cursor.
            let mut cursor = 0;
            let mut seen = Vec::new();
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let read = FireLedger::commands_after(&reader, cursor).await.unwrap();
                if let Some((last, _)) = read.last() {
                    cursor = *last;
                }
                seen.extend(read.into_iter().map(|(_, c)| c));
                if finished && seen.len() >= 4 * EACH {
                    return seen;
                }
                if finished {
                    // One more read after the last publish, then give what was seen.
                    let rest = FireLedger::commands_after(&reader, cursor).await.unwrap();
                    seen.extend(rest.into_iter().map(|(_, c)| c));
                    return seen;
                }
            }
        })
    };
    let publishing = publishers
        .iter()
        .enumerate()
        .map(|(p, (store, _))| async move {
            for i in 0..EACH {
                store
                    .publish(&command(
                        &format!("p{p}_{i}"),
                        FleetCommandKind::Trigger,
                        "x",
                    ))
                    .await
                    .unwrap();
            }
        });
    futures::future::join_all(publishing).await;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = reading.await.unwrap();
    let mut flows: Vec<String> = seen.iter().map(|c| c.flow.to_string()).collect();
    assert_eq!(flows.len(), 4 * EACH, "each command once");
    flows.sort();
    flows.dedup();
    assert_eq!(flows.len(), 4 * EACH, "no command twice");
    // Each publisher's commands in the order it published them.
    for p in 0..4 {
        let own: Vec<String> = seen
            .iter()
            .map(|c| c.flow.to_string())
            .filter(|f| f.starts_with(&format!("p{p}_")))
            .collect();
        assert_eq!(
            own,
            (0..EACH).map(|i| format!("p{p}_{i}")).collect::<Vec<_>>()
        );
    }
}

/// What versions `1..=version` of this crate left behind in `schema` (their SQL files and
/// `cano_migrations` rows, applied by hand), then `then` run in it.
async fn build_schema_at_version(
    client: &cano_postgres::tokio_postgres::Client,
    schema: &str,
    version: usize,
    then: &str,
) {
    const MIGRATIONS: [(&str, &str); 5] = [
        (
            "schedule store and fire ledger",
            include_str!("../../cano-postgres/src/schema_v1.sql"),
        ),
        (
            "checkpoint store",
            include_str!("../../cano-postgres/src/schema_v2.sql"),
        ),
        (
            "takeover within the overlap limit",
            include_str!("../../cano-postgres/src/schema_v3.sql"),
        ),
        (
            "durable fleet command log",
            include_str!("../../cano-postgres/src/schema_v4.sql"),
        ),
        (
            "cano_holds_claim, the side-effect contract",
            include_str!("../../cano-postgres/src/schema_v5.sql"),
        ),
    ];
    let mut sql = format!(
        "CREATE SCHEMA \"{schema}\"; SET search_path TO \"{schema}\";
         CREATE TABLE cano_migrations (version integer PRIMARY KEY, name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT clock_timestamp());"
    );
    for (i, (name, file)) in MIGRATIONS[..version].iter().enumerate() {
        sql.push_str(file);
        sql.push_str(&format!(
            "\nINSERT INTO cano_migrations (version, name) VALUES ({}, '{name}');\n",
            i + 1
        ));
    }
    sql.push_str(then);
    client.batch_execute(&sql).await.unwrap();
}

/// The migrations recorded in `schema`, in order.
async fn applied_versions(
    client: &cano_postgres::tokio_postgres::Client,
    schema: &str,
) -> Vec<i32> {
    client
        .query(
            &format!("SELECT version FROM \"{schema}\".cano_migrations ORDER BY version"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granted_claims_and_takeovers_are_announced_to_every_store_and_refusals_are_not() {
    use cano_core::persist::{HeardClaim, TakeoverOutcome};
    let pg = fresh("heard").await;
    let (a, b) = (
        pg.store.clone(),
        PgStore::connect(pg.config.clone()).await.unwrap(),
    );
    let heard_by = |store: &PgStore| -> Vec<HeardClaim> {
        let heard = store
            .claims_heard_after(0)
            .expect("PostgreSQL announces its claims");
        let seqs: Vec<u64> = heard.iter().map(|(seq, _)| *seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "increasing: {seqs:?}");
        heard.into_iter().map(|(_, claim)| claim).collect()
    };
    let short = Duration::from_millis(300);
    // A flow id with a space and a node id with one, to pin the payload's framing.
    let fire = FireId::new("daily report", cano_core::persist::from_micros(7).unwrap());
    a.claim(&fire, &NodeId::new("node a"), short).await.unwrap();
    // Refused (the claim is live): not announced.
    let refused = b
        .claim(&fire, &NodeId::new("b"), short)
        .await
        .unwrap()
        .value;
    assert!(!matches!(refused, ClaimOutcome::Claimed(_)), "{refused:?}");
    let granted = HeardClaim {
        fire: fire.clone(),
        node: NodeId::new("node a"),
    };
    until("b hears a's claim", || heard_by(&b).contains(&granted)).await;
    tokio::time::sleep(short + Duration::from_millis(200)).await;
    let taken = b
        .take_over(&fire, &NodeId::new("b"), short, 3)
        .await
        .unwrap()
        .value;
    assert!(matches!(taken, TakeoverOutcome::Claimed(_)), "{taken:?}");
    let takeover = HeardClaim {
        fire: fire.clone(),
        node: NodeId::new("b"),
    };
    until("a hears b's takeover", || heard_by(&a).contains(&takeover)).await;
    // Every store hears the same announcements, its own included, and only those two.
    until("both announcements on both stores", || {
        heard_by(&a) == vec![granted.clone(), takeover.clone()]
            && heard_by(&b) == vec![granted.clone(), takeover.clone()]
    })
    .await;
    // A cursor past the first leaves the second.
    let first = a.claims_heard_after(0).unwrap()[0].0;
    let after: Vec<_> = a
        .claims_heard_after(first)
        .unwrap()
        .into_iter()
        .map(|(_, claim)| claim)
        .collect();
    assert_eq!(after, vec![takeover]);
}
