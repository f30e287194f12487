//! End to end with the real Vault and the official Node client: a bet settled through Vault's signed game
//! API reaches that player's socket as `balance.updated`, with Vault's transfer id, and no other player's.

mod support;

use serde_json::{Value, json};
use support::{Node, TestEnv};

const SECRET: &str = "acme-secret-key";

async fn post(http: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Value {
    casino_testkit::http::post_json(http, url, token, body).await
}

async fn game(http: &reqwest::Client, vault: &str, operation: &str, body: Value) -> Value {
    casino_testkit::http::signed_game_call(http, vault, "acme", SECRET, operation, body).await
}

async fn player(http: &reqwest::Client, vault: &str, email: &str) -> (String, String) {
    let password = "player password 42";
    let registered = post(
        http,
        format!("{vault}/api/v1/auth/register"),
        None,
        json!({ "email": email, "password": password, "currency": "EUR" }),
    )
    .await;
    let login = post(
        http,
        format!("{vault}/api/v1/auth/login"),
        None,
        json!({ "email": email, "password": password }),
    )
    .await;
    (
        registered["id"].as_str().unwrap().to_owned(),
        login["access_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bet_settled_through_vaults_game_api_reaches_that_players_socket_and_no_other() {
    // One broker for both services; Vault signs tokens with the key Room-Service verifies.
    let env = TestEnv::start().await;
    let vault_db = casino_testkit::postgres::TestDatabase::create(&casino_vault::startup::MIGRATOR)
        .await
        .unwrap();
    let mut settings = casino_vault::config::Settings::with_common(
        casino_testkit::service_settings(&vault_db.url, env.kafka.bootstrap_servers()),
    );
    settings.jwt_signing_key = Some(env.seed.clone());
    settings.game_providers.insert("acme".into(), SECRET.into());
    settings.bootstrap_admin = Some(("admin@casino.test".into(), "staff secret 123".into()));
    let vault_app = casino_vault::startup::Application::build(settings)
        .await
        .unwrap();
    let vault = format!("http://{}", vault_app.public_addr());
    let vault_lifecycle = vault_app.lifecycle().clone();
    let vault_running = tokio::spawn(vault_app.run_until_stopped());

    let app = env.app().await;
    app.wait_until_live(&env).await;
    let http = reqwest::Client::new();
    let (alice, alice_token) = player(&http, &vault, "alice@casino.test").await;
    let (_bob, bob_token) = player(&http, &vault, "bob@casino.test").await;
    let node = Node::start().await;
    node.connect("alice", &app.public, json!({ "token": alice_token }))
        .await;
    node.connect("bob", &app.public, json!({ "token": bob_token }))
        .await;

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
        .header("idempotency-key", "fund-alice")
        .json(
            &json!({ "player_id": alice, "currency": "EUR", "amount": "20.00", "reason": "test" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(funded.status(), 201);
    let credited = node.event("alice", "balance.updated").await;
    assert_eq!(credited[0]["reason"], "adjustment");
    assert_eq!(credited[0]["balance"], 2000);

    let session = post(
        &http,
        format!("{vault}/api/v1/games/sessions"),
        Some(&alice_token),
        json!({}),
    )
    .await;
    let placed = game(&http, &vault, "bet", json!({
        "transaction_id": "b1", "round_id": "r1", "game_id": "book-of-rust", "game_category": "slots",
        "player_id": alice, "currency": "EUR", "amount": "2.50",
        "session_token": session["session_token"],
    }))
    .await;
    let pushed = node.event("alice", "balance.updated").await;
    assert_eq!(
        pushed[0]["transfer_id"], placed["transfer_id"],
        "{pushed:?}"
    );
    assert_eq!(pushed[0]["reason"], "bet");
    assert_eq!(pushed[0]["delta"], -250);
    assert_eq!(pushed[0]["balance"], 1750);
    assert_eq!(pushed[0]["currency"], "EUR");

    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        node.take_events("bob", "balance.updated").is_empty(),
        "bob saw alice's balance"
    );
    assert!(
        node.take_events("alice", "balance.updated").is_empty(),
        "pushed twice"
    );

    assert_eq!(app.stop().await.exit_code(), 0);
    vault_lifecycle.request_shutdown();
    assert_eq!(vault_running.await.unwrap().unwrap().exit_code(), 0);
}
