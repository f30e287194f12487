//! The reconciler against the real Vault when Concierge never received any event of a player: the player
//! is not in Concierge's database at all, so only Vault's list of active players
//! (`GET /internal/v1/wagering/players`) can bring them into the comparison, and the window is reported
//! as a mismatch (Concierge 0 EUR, Vault the player's net wagering).
//!
//! "Never received" is real here, not simulated by deleting rows: the ghost player's events are published
//! by Vault's outbox relay before Concierge starts, and the `concierge` consumer group's offsets are
//! committed past them, so Concierge's consumer starts after them.

mod vault_support;

use std::time::{Duration, Instant};

use casino_auth::{extract::TokenVerifier, jwt::RemoteJwks};
use casino_concierge::{
    config::{CONSUMER_GROUP, Settings as ConciergeSettings},
    reconciler::{self, HttpVault},
    startup::{Application as Concierge, MIGRATOR as CONCIERGE_MIGRATOR},
};
use casino_events::topics;
use casino_testkit::{postgres::TestDatabase, service_settings};
use rdkafka::{
    ClientConfig, Offset, TopicPartitionList,
    consumer::{BaseConsumer, CommitMode, Consumer as _},
};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;
use vault_support::{RunningVault, SECRET, kafka_with_all_topics};

const INTERNAL_TOKEN: &str = "test-internal-token";

async fn post(http: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Value {
    casino_testkit::http::post_json(http, url, token, body).await
}

async fn game(http: &reqwest::Client, vault: &str, operation: &str, body: Value) -> Value {
    casino_testkit::http::signed_game_call(http, vault, "acme", SECRET, operation, body).await
}

/// A registered, funded player with a game session: (id, access token, session token).
async fn player(
    http: &reqwest::Client,
    vault: &str,
    admin_token: &str,
    name: &str,
) -> (String, String, String) {
    let email = format!("{name}@casino.test");
    let password = "player password 42";
    let registered = post(
        http,
        format!("{vault}/api/v1/auth/register"),
        None,
        json!({ "email": email, "password": password, "currency": "EUR" }),
    )
    .await;
    let id = registered["id"].as_str().unwrap().to_owned();
    let login = post(
        http,
        format!("{vault}/api/v1/auth/login"),
        None,
        json!({ "email": email, "password": password }),
    )
    .await;
    let token = login["access_token"].as_str().unwrap().to_owned();
    let funded = http
        .post(format!("{vault}/api/v1/admin/adjustments"))
        .bearer_auth(admin_token)
        .header("idempotency-key", format!("fund-{name}"))
        .json(&json!({ "player_id": id, "currency": "EUR", "amount": "500.00", "reason": "test" }))
        .send()
        .await
        .unwrap();
    assert_eq!(funded.status(), 201);
    let session = post(
        http,
        format!("{vault}/api/v1/games/sessions"),
        Some(&token),
        json!({}),
    )
    .await;
    let session = session["session_token"].as_str().unwrap().to_owned();
    (id, token, session)
}

fn bet(player: &str, session: &str, tx: &str, round: &str, amount: &str) -> Value {
    json!({
        "transaction_id": tx, "round_id": round, "game_id": "book-of-rust", "game_category": "slots",
        "player_id": player, "currency": "EUR", "amount": amount, "session_token": session,
    })
}

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
    let vault_app = RunningVault::start(&kafka).await;
    let (vault, vault_admin) = (vault_app.url.clone(), vault_app.admin_url.clone());

    let http = reqwest::Client::new();
    let admin = post(
        &http,
        format!("{vault}/api/v1/auth/login"),
        None,
        json!({ "email": "admin@casino.test", "password": "staff secret 123" }),
    )
    .await;
    let admin = admin["access_token"].as_str().unwrap().to_owned();

    // The ghost plays before Concierge exists: 40 + 15, the 15 rolled back (net 40 EUR).
    let (ghost, _, ghost_session) = player(&http, &vault, &admin, "ghost").await;
    game(
        &http,
        &vault,
        "bet",
        bet(&ghost, &ghost_session, "g1", "gr1", "40.00"),
    )
    .await;
    game(
        &http,
        &vault,
        "bet",
        bet(&ghost, &ghost_session, "g2", "gr2", "15.00"),
    )
    .await;
    game(
        &http,
        &vault,
        "rollback",
        json!({ "transaction_id": "grb2", "round_id": "gr2", "player_id": ghost,
        "currency": "EUR", "bet_transaction_id": "g2" }),
    )
    .await;

    // Once Vault's outbox relay has published all of it, move the `concierge` group past it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(&vault_app.db.pool)
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
    let concierge_db = TestDatabase::create(&CONCIERGE_MIGRATOR).await.unwrap();
    let mut settings = ConciergeSettings::new(
        service_settings(&concierge_db.url, kafka.bootstrap_servers()),
        TokenVerifier::Remote(RemoteJwks::new(format!("{vault}/.well-known/jwks.json"))),
    );
    settings.vault_url = vault.clone();
    settings.vault_internal_url = vault_admin.clone();
    settings.vault_internal_token = Some(INTERNAL_TOKEN.into());
    let concierge_app = Concierge::build(settings).await.unwrap();
    let concierge = format!("http://{}", concierge_app.public_addr());
    let concierge_lifecycle = concierge_app.lifecycle().clone();
    let concierge_running = tokio::spawn(concierge_app.run_until_stopped());

    let (seen, seen_token, seen_session) = player(&http, &vault, &admin, "seen").await;
    game(
        &http,
        &vault,
        "bet",
        bet(&seen, &seen_session, "s1", "sr1", "20.00"),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body: Value = http
            .get(format!("{concierge}/api/v1/rewards/me"))
            .bearer_auth(&seen_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null);
        if body["lifetime_wagered_eur"] == "20" || body["lifetime_wagered_eur"] == "20.00" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "concierge did not catch up: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ghost_id: Uuid = ghost.parse().unwrap();
    let ghost_awards: i64 = sqlx::query_scalar("SELECT count(*) FROM awards WHERE player_id = $1")
        .bind(ghost_id)
        .fetch_one(&concierge_db.pool)
        .await
        .unwrap();
    assert_eq!(ghost_awards, 0, "concierge must never have seen the ghost");

    // The reconciler compares the closed windows: the seen player agrees, the ghost is a mismatch.
    let vault_client = HttpVault::new(vault_admin.clone(), INTERNAL_TOKEN).unwrap();
    let later = chrono::Utc::now() + chrono::Duration::seconds(61);
    let report = reconciler::run_once(
        &concierge_db.pool,
        &vault_client,
        later,
        Duration::from_secs(60),
        Duration::ZERO,
    )
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
    let wrong = HttpVault::new(vault_admin.clone(), "wrong-token").unwrap();
    sqlx::query("DELETE FROM reconciliation_windows")
        .execute(&concierge_db.pool)
        .await
        .unwrap();
    let error = reconciler::run_once(
        &concierge_db.pool,
        &wrong,
        later,
        Duration::from_secs(60),
        Duration::ZERO,
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("internal token"), "{error:#}");

    concierge_lifecycle.request_shutdown();
    assert_eq!(concierge_running.await.unwrap().unwrap().exit_code(), 0);
    vault_app.stop().await;
}
