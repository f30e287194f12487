//! The real Vault for the end-to-end suites of Concierge and of Room-Service (its tests/with_vault.rs
//! includes this file): Vault on port 0 with a fresh database, the `acme` game provider and a first admin,
//! and its public API called as a player, the admin and the game provider do.
#![allow(dead_code)]

use casino_observability::lifecycle::Lifecycle;
use casino_testkit::{kafka::TestKafka, postgres::TestDatabase, service_settings};
use casino_vault::{
    config::Settings as VaultSettings,
    startup::{Application as Vault, MIGRATOR as VAULT_MIGRATOR},
};
use serde_json::{Value, json};

/// The game provider's HMAC secret.
pub const SECRET: &str = "acme-secret-key";
/// The first admin's credentials.
pub const ADMIN: (&str, &str) = ("admin@casino.test", "staff secret 123");
/// Every test player's password.
pub const PASSWORD: &str = "player password 42";

/// A running Vault.
pub struct RunningVault {
    /// Public base URL.
    pub url: String,
    /// Admin base URL (`/internal/v1`, `/metrics`).
    pub admin_url: String,
    /// Its database (tests read it directly).
    pub db: TestDatabase,
    pub http: reqwest::Client,
    lifecycle: Lifecycle,
    running:
        tokio::task::JoinHandle<anyhow::Result<casino_observability::lifecycle::ShutdownOutcome>>,
}

/// A player registered through Vault's public API, logged in, with a game session open.
pub struct VaultPlayer {
    pub id: String,
    pub access_token: String,
    pub session: String,
}

impl RunningVault {
    /// Start Vault against `kafka`.
    pub async fn start(kafka: &TestKafka) -> Self {
        Self::start_with(kafka, |_| {}).await
    }

    /// Start Vault against `kafka`, `configure` having the last word on its settings.
    pub async fn start_with(kafka: &TestKafka, configure: impl FnOnce(&mut VaultSettings)) -> Self {
        let db = TestDatabase::create(&VAULT_MIGRATOR).await.unwrap();
        let mut settings =
            VaultSettings::with_common(service_settings(&db.url, kafka.bootstrap_servers()));
        settings.game_providers.insert("acme".into(), SECRET.into());
        settings.bootstrap_admin = Some((ADMIN.0.into(), ADMIN.1.into()));
        configure(&mut settings);
        let app = Vault::build(settings).await.unwrap();
        let url = format!("http://{}", app.public_addr());
        let admin_url = format!("http://{}", app.admin_addr());
        let lifecycle = app.lifecycle().clone();
        let running = tokio::spawn(app.run_until_stopped());
        Self {
            url,
            admin_url,
            db,
            http: reqwest::Client::new(),
            lifecycle,
            running,
        }
    }

    /// Graceful stop; asserts a clean exit.
    pub async fn stop(self) {
        self.lifecycle.request_shutdown();
        assert_eq!(self.running.await.unwrap().unwrap().exit_code(), 0);
    }

    /// POST JSON to the public API (with a bearer token when given); asserts a 2xx, returns the answer.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Value {
        let url = format!("{}{path}", self.url);
        casino_testkit::http::post_json(&self.http, url, token, body).await
    }

    /// A game API call signed as the `acme` provider; asserts a 200, returns the answer.
    pub async fn game(&self, operation: &str, body: Value) -> Value {
        casino_testkit::http::signed_game_call(
            &self.http, &self.url, "acme", SECRET, operation, body,
        )
        .await
    }

    /// The first admin's access token.
    pub async fn admin_token(&self) -> String {
        let credentials = json!({ "email": ADMIN.0, "password": ADMIN.1 });
        let login = self.post("/api/v1/auth/login", None, credentials).await;
        login["access_token"].as_str().unwrap().to_owned()
    }

    /// Register `{name}@casino.test` with a EUR wallet, log in and open a game session.
    pub async fn player(&self, name: &str) -> VaultPlayer {
        let email = format!("{name}@casino.test");
        let registration = json!({ "email": email, "password": PASSWORD, "currency": "EUR" });
        let registered = self.post("/api/v1/auth/register", None, registration).await;
        let credentials = json!({ "email": email, "password": PASSWORD });
        let login = self.post("/api/v1/auth/login", None, credentials).await;
        let access_token = login["access_token"].as_str().unwrap().to_owned();
        let session = self
            .post("/api/v1/games/sessions", Some(&access_token), json!({}))
            .await;
        VaultPlayer {
            id: registered["id"].as_str().unwrap().to_owned(),
            access_token,
            session: session["session_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Credit `amount` EUR to `player` through a staff adjustment by `admin_token`; asserts a 201.
    pub async fn fund(&self, admin_token: &str, player: &VaultPlayer, amount: &str) {
        let adjustment = json!({ "player_id": player.id, "currency": "EUR", "amount": amount, "reason": "test" });
        let funded = self
            .http
            .post(format!("{}/api/v1/admin/adjustments", self.url))
            .bearer_auth(admin_token)
            .header("idempotency-key", format!("fund-{}", player.id))
            .json(&adjustment)
            .send()
            .await
            .unwrap();
        assert_eq!(funded.status(), 201);
    }

    /// [`player`](Self::player), funded with `amount` EUR.
    pub async fn funded_player(&self, admin_token: &str, name: &str, amount: &str) -> VaultPlayer {
        let player = self.player(name).await;
        self.fund(admin_token, &player, amount).await;
        player
    }

    /// The provider's bet `tx` of `amount` EUR on `book-of-rust` (slots) in `round`, in `player`'s
    /// session; the answer.
    pub async fn bet(&self, player: &VaultPlayer, tx: &str, round: &str, amount: &str) -> Value {
        let body = json!({
            "transaction_id": tx, "round_id": round, "game_id": "book-of-rust", "game_category": "slots",
            "player_id": player.id, "currency": "EUR", "amount": amount, "session_token": player.session,
        });
        self.game("bet", body).await
    }

    /// The provider's rollback `tx` of the bet `bet_tx` in `round`; the answer.
    pub async fn rollback(
        &self,
        player: &VaultPlayer,
        tx: &str,
        round: &str,
        bet_tx: &str,
    ) -> Value {
        let body = json!({
            "transaction_id": tx, "round_id": round, "player_id": player.id, "currency": "EUR",
            "bet_transaction_id": bet_tx,
        });
        self.game("rollback", body).await
    }

    /// The provider's win `tx` of `amount` EUR closing `round`; the answer.
    pub async fn win(&self, player: &VaultPlayer, tx: &str, round: &str, amount: &str) -> Value {
        let body = json!({
            "transaction_id": tx, "round_id": round, "game_id": "book-of-rust",
            "player_id": player.id, "currency": "EUR", "amount": amount, "close_round": true,
        });
        self.game("win", body).await
    }
}
