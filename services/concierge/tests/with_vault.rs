//! End to end with the real Vault: bets placed through Vault's signed game API reach Concierge over Kafka,
//! show up in `/rewards/me` and on the leaderboard, and the reconciler finds Concierge and Vault in
//! agreement; an event Concierge "missed" shows up as a mismatch.

mod vault_support;

use std::time::{Duration, Instant};

use casino_auth::{extract::TokenVerifier, jwt::RemoteJwks};
use casino_concierge::{
    config::Settings as ConciergeSettings,
    reconciler::{self, HttpVault},
    startup::{Application as Concierge, MIGRATOR as CONCIERGE_MIGRATOR},
};
use casino_testkit::{postgres::TestDatabase, service_settings};
use serde_json::{Value, json};
use vault_support::{RunningVault, SECRET, kafka_with_all_topics};

async fn post(http: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Value {
    casino_testkit::http::post_json(http, url, token, body).await
}

async fn game(http: &reqwest::Client, vault: &str, operation: &str, body: Value) -> Value {
    casino_testkit::http::signed_game_call(http, vault, "acme", SECRET, operation, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bets_through_vaults_game_api_become_rewards_and_the_reconciler_agrees_with_vault() {
    let kafka = kafka_with_all_topics();
    let vault_app = RunningVault::start(&kafka).await;
    let (vault, vault_admin) = (vault_app.url.clone(), vault_app.admin_url.clone());

    // Concierge, verifying tokens with Vault's JWKS over HTTP and reconciling against Vault's internal API.
    let concierge_db = TestDatabase::create(&CONCIERGE_MIGRATOR).await.unwrap();
    let mut settings = ConciergeSettings::new(
        service_settings(&concierge_db.url, kafka.bootstrap_servers()),
        TokenVerifier::Remote(RemoteJwks::new(format!("{vault}/.well-known/jwks.json"))),
    );
    settings.vault_url = vault.clone();
    settings.vault_internal_url = vault_admin.clone();
    settings.vault_internal_token = Some("test-internal-token".into());
    let concierge_app = Concierge::build(settings).await.unwrap();
    let concierge = format!("http://{}", concierge_app.public_addr());
    let concierge_lifecycle = concierge_app.lifecycle().clone();
    let concierge_running = tokio::spawn(concierge_app.run_until_stopped());

    // A player bets through the game provider: two bets, one rolled back, one win.
    let http = reqwest::Client::new();
    let email = "gambler@casino.test";
    let password = "player password 42";
    let registered = post(
        &http,
        format!("{vault}/api/v1/auth/register"),
        None,
        json!({ "email": email, "password": password, "currency": "EUR" }),
    )
    .await;
    let player = registered["id"].as_str().unwrap().to_owned();
    let login = post(
        &http,
        format!("{vault}/api/v1/auth/login"),
        None,
        json!({ "email": email, "password": password }),
    )
    .await;
    let token = login["access_token"].as_str().unwrap().to_owned();
    let admin = post(
        &http,
        format!("{vault}/api/v1/auth/login"),
        None,
        json!({ "email": "admin@casino.test", "password": "staff secret 123" }),
    )
    .await;
    let funded = http
        .post(format!("{vault}/api/v1/admin/adjustments"))
        .bearer_auth(admin["access_token"].as_str().unwrap())
        .header("idempotency-key", "fund-1")
        .json(&json!({ "player_id": player, "currency": "EUR", "amount": "500.00", "reason": "test" }))
        .send()
        .await
        .unwrap();
    assert_eq!(funded.status(), 201);
    let session = post(
        &http,
        format!("{vault}/api/v1/games/sessions"),
        Some(&token),
        json!({}),
    )
    .await;
    let session = session["session_token"].as_str().unwrap();
    let bet = |tx: &str, round: &str, amount: &str| {
        json!({
            "transaction_id": tx, "round_id": round, "game_id": "book-of-rust", "game_category": "slots",
            "player_id": player, "currency": "EUR", "amount": amount, "session_token": session,
        })
    };
    game(&http, &vault, "bet", bet("b1", "r1", "120.00")).await;
    game(&http, &vault, "bet", bet("b2", "r2", "30.00")).await;
    game(
        &http,
        &vault,
        "rollback",
        json!({ "transaction_id": "rb2", "round_id": "r2", "player_id": player,
        "currency": "EUR", "bet_transaction_id": "b2" }),
    )
    .await;
    game(
        &http,
        &vault,
        "win",
        json!({ "transaction_id": "w1", "round_id": "r1", "game_id": "book-of-rust",
        "player_id": player, "currency": "EUR", "amount": "50.00", "close_round": true }),
    )
    .await;

    // Concierge sees exactly the net wagering: 120 (the 30 was rolled back), 120 VIP points on slots.
    let deadline = Instant::now() + Duration::from_secs(60);
    let rewards = loop {
        let response = http
            .get(format!("{concierge}/api/v1/rewards/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if body["lifetime_wagered_eur"] == "120" || body["lifetime_wagered_eur"] == "120.00" {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "concierge did not catch up: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(rewards["vip_points"], 120, "{rewards}");
    let board: Value = http
        .get(format!("{concierge}/api/v1/leaderboards/daily?limit=10"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = &board["entries"][0];
    assert_eq!(entry["player_id"], player.as_str(), "{board}");
    assert_eq!(entry["points"], 120);

    // The reconciler compares the closed window with Vault's ledger: no mismatch.
    let vault_client = HttpVault::new(vault_admin.clone(), "test-internal-token").unwrap();
    let window = Duration::from_secs(60);
    let later = chrono::Utc::now() + chrono::Duration::seconds(61);
    let report = reconciler::run_once(
        &concierge_db.pool,
        &vault_client,
        later,
        window,
        Duration::ZERO,
    )
    .await
    .unwrap();
    assert!(report.players >= 1, "{report:?}");
    assert!(report.mismatches.is_empty(), "{report:?}");

    // Make Concierge "miss" the first bet (as if the event never arrived): the window now disagrees.
    sqlx::query("DELETE FROM awards WHERE player_id = $1::uuid AND amount_eur = 120")
        .bind(&player)
        .execute(&concierge_db.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM reconciliation_windows")
        .execute(&concierge_db.pool)
        .await
        .unwrap();
    let report = reconciler::run_once(
        &concierge_db.pool,
        &vault_client,
        later,
        window,
        Duration::ZERO,
    )
    .await
    .unwrap();
    assert_eq!(report.mismatches.len(), 1, "{report:?}");
    assert_eq!(report.open_mismatches, 1);

    concierge_lifecycle.request_shutdown();
    assert_eq!(concierge_running.await.unwrap().unwrap().exit_code(), 0);
    vault_app.stop().await;
}
