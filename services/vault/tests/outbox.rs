//! The outbox under a Kafka outage: bets keep succeeding, nothing is lost or duplicated, order per player
//! holds once the broker is back.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use casino_events::{Envelope, payloads::TransferEvent, topics};
use futures::{StreamExt as _, stream};
use rdkafka::{
    ClientConfig, Message as _,
    consumer::{Consumer as _, StreamConsumer},
};
use support::{metric, nth_bet, spawn_vault};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_kafka_down_a_thousand_bets_succeed_and_are_all_published_once_in_order_when_it_returns()
 {
    let vault = spawn_vault().await;
    let mut players = Vec::new();
    for _ in 0..4 {
        players.push(vault.funded_player("1000.00").await);
    }
    // Let the relay publish what exists so far, then take the broker away.
    wait_for_empty_outbox(&vault, Duration::from_secs(30)).await;
    vault.kafka.broker_down().unwrap();

    let bets: Vec<_> = (0..1000)
        .map(|i| {
            let (player, session) = &players[i % players.len()];
            nth_bet(player, session, i, "0.50")
        })
        .collect();
    let answers: Vec<(u16, serde_json::Value)> =
        stream::iter(bets.iter().map(|b| vault.game("bet", b)))
            .buffer_unordered(16)
            .collect()
            .await;
    let failed: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status != 200)
        .collect();
    assert!(
        failed.is_empty(),
        "every bet succeeds with Kafka down: {:?}",
        failed.first()
    );

    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(&vault.db.pool)
        .await
        .unwrap();
    assert!(pending >= 1000, "the events wait in the outbox ({pending})");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let metrics = vault.metrics().await;
    assert!(
        metric(&metrics, "vault_outbox_pending", &[]).unwrap() >= 1000.0,
        "the backlog is visible"
    );

    vault.kafka.broker_up().unwrap();
    wait_for_empty_outbox(&vault, Duration::from_secs(120)).await;

    // Read the topic back: every transfer exactly once, per player in ledger order.
    let expected: Vec<(Uuid, Uuid)> =
        sqlx::query_as("SELECT player_id, id FROM transfers ORDER BY seq")
            .fetch_all(&vault.db.pool)
            .await
            .unwrap();
    let events = read_all(vault.kafka.bootstrap_servers(), expected.len()).await;
    let ids: HashSet<Uuid> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), events.len(), "no event was published twice");
    assert_eq!(events.len(), expected.len(), "every transfer was published");
    let mut seen: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for event in &events {
        seen.entry(event.player_id.unwrap())
            .or_default()
            .push(event.data.transfer_id);
    }
    let mut wanted: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (player, transfer) in expected {
        wanted.entry(player).or_default().push(transfer);
    }
    assert_eq!(seen, wanted, "per player, events arrive in ledger order");
    vault.stop().await;
}

async fn wait_for_empty_outbox(vault: &support::TestVault, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(&vault.db.pool)
                .await
                .unwrap();
        if pending == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} outbox rows still unpublished"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn read_all(brokers: &str, at_least: usize) -> Vec<Envelope<TransferEvent>> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{}", Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topics::VAULT_TRANSACTIONS]).unwrap();
    let mut events = Vec::new();
    // Read until we have them all, then a little longer to catch duplicates.
    let mut quiet_until = None;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let wait = match quiet_until {
            Some(until) => until - Instant::now().min(until),
            None => Duration::from_secs(5),
        };
        match tokio::time::timeout(wait, consumer.recv()).await {
            Ok(Ok(message)) => {
                let envelope = Envelope::from_slice(message.payload().unwrap())
                    .unwrap()
                    .into_typed::<TransferEvent>(&[1])
                    .unwrap();
                events.push(envelope);
                if events.len() >= at_least && quiet_until.is_none() {
                    quiet_until = Some(Instant::now() + Duration::from_secs(2));
                }
            }
            Ok(Err(error)) => panic!("consumer error: {error}"),
            Err(_) if quiet_until.is_some() => return events,
            Err(_) => assert!(
                Instant::now() < deadline,
                "only {} of {at_least} events",
                events.len()
            ),
        }
    }
}
