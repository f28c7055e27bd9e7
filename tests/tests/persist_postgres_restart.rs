//! cano-postgres when its server restarts under it: typed `Unavailable` while it is down,
//! reconnection with backoff, the command log read on, committed claims survive. Its own server
//! (this binary restarts it), so other tests are not disturbed.

use std::time::Duration;

use cano_core::persist::{
    ClaimOutcome, FireLedger, FleetCommand, FleetCommandKind, NodeId, PersistError,
};
use cano_core::scheduler::FireId;
use cano_postgres::{CommandEvent, PgConfig, PgStore};
use cano_tests::pg_server::PgServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_reconnects_after_the_server_restarts() {
    let server = PgServer::start().unwrap_or_else(|e| panic!("PostgreSQL test server: {e}"));
    let config = PgConfig::new(&server.url("postgres"))
        .unwrap()
        .schema("restart")
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200));
    let store = PgStore::connect(config.clone()).await.unwrap();
    let mut commands = store.commands();
    let me = NodeId::new("a");
    let before = FireId::new("r", "2026-01-01T00:00:00Z".parse().unwrap());
    let ClaimOutcome::Claimed(claim) = store
        .claim(&before, &me, Duration::from_secs(60))
        .await
        .unwrap()
        .value
    else {
        panic!("claimed")
    };

    server.stop_server("fast").unwrap();
    // While it is down: a typed, retryable error at once, never a hang.
    let during = FireId::new("r", "2026-01-01T00:01:00Z".parse().unwrap());
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        store.claim(&during, &me, Duration::from_secs(60)),
    )
    .await
    .expect("answers promptly")
    .unwrap_err();
    assert!(matches!(err, PersistError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());

    server.start_again().unwrap();
    tokio::time::timeout(Duration::from_secs(20), store.wait_connected())
        .await
        .expect("reconnects");
    assert!(store.is_connected());
    // The command log is in the database: a command another node publishes now reaches
    // this store's stream (once), and its reader, from before the restart, on.
    let other = PgStore::connect(config.clone()).await.unwrap();
    let cmd = FleetCommand::new("r", FleetCommandKind::Pause, NodeId::new("b"));
    other.publish(&cmd).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), commands.next())
        .await
        .expect("the command after reconnecting");
    assert_eq!(event, Some(CommandEvent::Command(cmd.clone())));
    let read = FireLedger::commands_after(&store, 0).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].1, cmd);
    // What was committed before is still there, and the connection works.
    let renewed = store
        .renew(&before, claim.fence, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(renewed.value > claim.expires);
    assert!(matches!(
        store
            .claim(&during, &me, Duration::from_secs(60))
            .await
            .unwrap()
            .value,
        ClaimOutcome::Claimed(_)
    ));

    // A restart that drops the connection while idle is noticed too.
    server.restart().unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match store.flow("r").await {
                Ok(_) if store.is_connected() => break,
                _ => store.wait_connected().await,
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("back after pg_ctl restart");
}
