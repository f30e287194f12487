//! The reconciler against the real Vault when Concierge never received any event of a player: the player
//! is not in Concierge's database at all, so only Vault's list of active players
//! (`GET /internal/v1/wagering/players`) can bring them into the comparison, and the window is reported
//! as a mismatch (Concierge 0 EUR, Vault the player's net wagering).
//!
//! "Never received" is real here, not simulated by deleting rows: the ghost player's events are published
//! by Vault's outbox relay before Concierge starts, and the `concierge` consumer group's offsets are
//! committed past them, so Concierge's consumer starts after them.

mod support;
mod vault_support;

use std::time::{Duration, Instant};

use casino_concierge::{
    config::CONSUMER_GROUP,
    reconciler::{self, HttpVault},
};
use casino_events::topics;
use rdkafka::{
    ClientConfig, Offset, TopicPartitionList,
    consumer::{BaseConsumer, CommitMode, Consumer as _},
};
use rust_decimal::Decimal;
use support::{
    VAULT_INTERNAL_TOKEN, concierge_with_vault, forget_reconciled_windows, kafka_with_all_topics,
    reconcile, wait_for_lifetime_wagered,
};
use uuid::Uuid;
use vault_support::RunningVault;

/// Commit the `concierge` group's offsets at the end of every partition of `topics`: a consumer of the
/// group starts after everything published so far.
fn skip_everything_published(bootstrap: &str, topics: &[&str]) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", CONSUMER_GROUP)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    let mut offsets = TopicPartitionList::new();
    for topic in metadata
        .topics()
        .iter()
        .filter(|t| topics.contains(&t.name()))
    {
        for partition in topic.partitions() {
            let (_, high) = consumer
                .fetch_watermarks(topic.name(), partition.id(), Duration::from_secs(10))
                .unwrap();
            offsets
                .add_partition_offset(topic.name(), partition.id(), Offset::Offset(high))
                .unwrap();
        }
    }
    assert!(offsets.count() > 0, "no partitions of {topics:?}");
    consumer.commit(&offsets, CommitMode::Sync).unwrap();
    let committed = consumer
        .committed_offsets(offsets.clone(), Duration::from_secs(10))
        .unwrap();
    assert_eq!(committed.to_topic_map(), offsets.to_topic_map());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_whose_every_event_concierge_missed_is_reported_by_the_reconciler() {
    let kafka = kafka_with_all_topics();
    let vault = RunningVault::start(&kafka).await;
    let admin = vault.admin_token().await;

    // The ghost plays before Concierge exists: 40 + 15, the 15 rolled back (net 40 EUR).
    let ghost = vault.funded_player(&admin, "ghost", "500.00").await;
    vault.bet(&ghost, "g1", "gr1", "40.00").await;
    vault.bet(&ghost, "g2", "gr2", "15.00").await;
    vault.rollback(&ghost, "grb2", "gr2", "g2").await;

    // Once Vault's outbox relay has published all of it, move the `concierge` group past it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(&vault.db.pool)
                .await
                .unwrap();
        if pending == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "vault's outbox did not drain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bootstrap = kafka.bootstrap_servers().to_owned();
    tokio::task::spawn_blocking(move || {
        skip_everything_published(
            &bootstrap,
            &[topics::VAULT_TRANSACTIONS, topics::VAULT_PLAYERS],
        );
    })
    .await
    .unwrap();

    // Concierge starts and sees only what comes next: another player's 20 EUR bet.
    let (concierge, concierge_db) =
        concierge_with_vault(&kafka, &vault.url, &vault.admin_url).await;
    let seen = vault.funded_player(&admin, "seen", "500.00").await;
    vault.bet(&seen, "s1", "sr1", "20.00").await;
    wait_for_lifetime_wagered(&concierge, &seen.access_token, "20").await;
    let ghost_id: Uuid = ghost.id.parse().unwrap();
    let ghost_awards: i64 = sqlx::query_scalar("SELECT count(*) FROM awards WHERE player_id = $1")
        .bind(ghost_id)
        .fetch_one(&concierge_db.pool)
        .await
        .unwrap();
    assert_eq!(ghost_awards, 0, "concierge must never have seen the ghost");

    // The reconciler compares the closed windows: the seen player agrees, the ghost is a mismatch.
    let vault_client = HttpVault::new(vault.admin_url.clone(), VAULT_INTERNAL_TOKEN).unwrap();
    let later = chrono::Utc::now() + chrono::Duration::seconds(61);
    let report = reconcile(&concierge_db, &vault_client, later)
        .await
        .unwrap();
    assert_eq!(report.mismatches.len(), 1, "{report:?}");
    let mismatch = &report.mismatches[0];
    assert_eq!(mismatch.player_id, ghost_id, "{report:?}");
    assert_eq!(mismatch.concierge_eur, Decimal::ZERO);
    assert_eq!(mismatch.vault_eur, Some(Decimal::from(40)));
    assert_eq!(report.open_mismatches, 1);
    // Concierge's own view of that window does not contain the ghost: Vault's list brought them in.
    let ours = reconciler::concierge_wagering(&concierge_db.pool, mismatch.window)
        .await
        .unwrap();
    assert!(!ours.contains_key(&ghost_id), "{ours:?}");
    assert!(report.players >= 2, "{report:?}");

    // A wrong token is an error of the run (retried), not a silent pass.
    let wrong = HttpVault::new(vault.admin_url.clone(), "wrong-token").unwrap();
    forget_reconciled_windows(&concierge_db).await;
    let error = reconcile(&concierge_db, &wrong, later).await.unwrap_err();
    assert!(error.to_string().contains("internal token"), "{error:#}");

    concierge.stop().await;
    vault.stop().await;
}
