//! Starting a real Vault for black-box tests: port 0, a fresh migrated database, the embedded broker.
#![allow(dead_code)]

use std::time::Duration;

use casino_observability::lifecycle::{Lifecycle, ShutdownOutcome};
use casino_testkit::{kafka::TestKafka, postgres::TestDatabase};
use casino_vault::{
    config::Settings,
    startup::{Application, MIGRATOR},
};
use serde_json::{Value, json};
use uuid::Uuid;

pub const PROVIDER: &str = "acme";
pub const PROVIDER_SECRET: &str = "acme-secret-key";
pub const ADMIN_EMAIL: &str = "admin@casino.test";
pub const ADMIN_PASSWORD: &str = "staff secret 123";
pub const PASSWORD: &str = "player password 42";
pub const PSPS: &[(&str, &str)] = &[
    ("sandbox-a", "sandbox-a-secret"),
    ("sandbox-b", "sandbox-b-secret"),
];

pub struct TestVault {
    pub public: String,
    pub admin: String,
    pub http: reqwest::Client,
    pub db: TestDatabase,
    pub kafka: TestKafka,
    pub lifecycle: Lifecycle,
    handle: tokio::task::JoinHandle<anyhow::Result<ShutdownOutcome>>,
}

pub async fn spawn_vault() -> TestVault {
    spawn_vault_with(|_| {}).await
}

pub async fn spawn_vault_with(configure: impl FnOnce(&mut Settings)) -> TestVault {
    let db = TestDatabase::create(&MIGRATOR).await.unwrap();
    let kafka = TestKafka::start(&casino_events::topics::ALL).unwrap();
    let mut settings = Settings::with_common(casino_testkit::service_settings(
        &db.url,
        kafka.bootstrap_servers(),
    ));
    settings
        .game_providers
        .insert(PROVIDER.into(), PROVIDER_SECRET.into());
    settings.bootstrap_admin = Some((ADMIN_EMAIL.into(), ADMIN_PASSWORD.into()));
    settings.reconcile_every = Duration::from_millis(500);
    for (name, secret) in PSPS {
        settings
            .psp_providers
            .insert((*name).into(), (*secret).into());
    }
    configure(&mut settings);
    let app = Application::build(settings).await.unwrap();
    let public = format!("http://{}", app.public_addr());
    let admin = format!("http://{}", app.admin_addr());
    let lifecycle = app.lifecycle().clone();
    let handle = tokio::spawn(app.run_until_stopped());
    TestVault {
        public,
        admin,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        db,
        kafka,
        lifecycle,
        handle,
    }
}

pub struct TestPlayer {
    pub id: Uuid,
    pub email: String,
    pub token: String,
    pub refresh: String,
}

impl TestVault {
    pub async fn stop(self) -> ShutdownOutcome {
        self.lifecycle.request_shutdown();
        self.handle.await.unwrap().unwrap()
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.public)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = self.http.get(format!("{}{path}", self.public));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn register(&self, currency: &str) -> TestPlayer {
        let email = format!("p-{}@casino.test", Uuid::new_v4().simple());
        let (status, body) = self
            .post(
                "/api/v1/auth/register",
                None,
                json!({ "email": email, "password": PASSWORD, "currency": currency }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, login) = self.login(&email, PASSWORD).await;
        assert_eq!(status, 200, "{login}");
        TestPlayer {
            id: body["id"].as_str().unwrap().parse().unwrap(),
            email,
            token: login["access_token"].as_str().unwrap().to_owned(),
            refresh: login["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// `POST /api/v1/auth/login`.
    pub async fn login(&self, email: &str, password: &str) -> (u16, Value) {
        let credentials = json!({ "email": email, "password": password });
        self.post("/api/v1/auth/login", None, credentials).await
    }

    /// `POST /api/v1/auth/refresh`.
    pub async fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        let body = json!({ "refresh_token": refresh_token });
        self.post("/api/v1/auth/refresh", None, body).await
    }

    /// `POST /api/v1/auth/logout`.
    pub async fn logout(&self, refresh_token: &str) -> (u16, Value) {
        let body = json!({ "refresh_token": refresh_token });
        self.post("/api/v1/auth/logout", None, body).await
    }

    pub async fn admin_token(&self) -> String {
        let (status, login) = self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(status, 200, "{login}");
        login["access_token"].as_str().unwrap().to_owned()
    }

    /// Credit a player through a staff adjustment.
    pub async fn fund(&self, player: Uuid, currency: &str, amount: &str) {
        let admin = self.admin_token().await;
        let response = self
            .http
            .post(format!("{}/api/v1/admin/adjustments", self.public))
            .bearer_auth(&admin)
            .header("idempotency-key", Uuid::new_v4().to_string())
            .json(&json!({ "player_id": player, "currency": currency, "amount": amount, "reason": "test funding" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
    }

    pub async fn session(&self, player: &TestPlayer) -> String {
        let (status, body) = self
            .post("/api/v1/games/sessions", Some(&player.token), json!({}))
            .await;
        assert_eq!(status, 201, "{body}");
        body["session_token"].as_str().unwrap().to_owned()
    }

    /// A registered EUR player, funded with `funds` EUR, and a game session of theirs.
    pub async fn funded_player(&self, funds: &str) -> (TestPlayer, String) {
        let player = self.register("EUR").await;
        self.fund(player.id, "EUR", funds).await;
        let session = self.session(&player).await;
        (player, session)
    }

    /// A signed game API call.
    pub async fn game(&self, operation: &str, body: &Value) -> (u16, Value) {
        let raw = serde_json::to_vec(body).unwrap();
        self.game_raw(
            operation,
            &raw,
            PROVIDER_SECRET,
            chrono::Utc::now().timestamp(),
        )
        .await
    }

    /// The game provider `acme` calling the game API for `player`.
    pub fn acme<'a>(&'a self, player: &'a TestPlayer) -> Acme<'a> {
        Acme {
            vault: self,
            player,
        }
    }

    pub async fn game_raw(
        &self,
        operation: &str,
        raw: &[u8],
        secret: &str,
        timestamp: i64,
    ) -> (u16, Value) {
        let signature = casino_auth::signature::sign(secret.as_bytes(), timestamp, raw);
        let response = self
            .http
            .post(format!("{}/api/v1/games/{operation}", self.public))
            .header("content-type", "application/json")
            .header("x-casino-provider", PROVIDER)
            .header("x-casino-timestamp", timestamp.to_string())
            .header("x-casino-signature", signature)
            .body(raw.to_vec())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn balance(&self, player: Uuid, currency: &str) -> String {
        let (status, body) = self
            .game(
                "balance",
                &json!({ "player_id": player, "currency": currency }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["balance"].as_str().unwrap().to_owned()
    }

    /// The count `sql` selects with `$1` bound to `player`.
    pub async fn count(&self, sql: &str, player: Uuid) -> i64 {
        sqlx::query_scalar(sql)
            .bind(player)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// The game provider `acme` calling Vault's signed game API for one player.
pub struct Acme<'a> {
    vault: &'a TestVault,
    player: &'a TestPlayer,
}

impl Acme<'_> {
    /// The player's [`bet`] in `session`.
    pub async fn bet(&self, session: &str, tx: &str, round: &str, amount: &str) -> (u16, Value) {
        let body = bet(self.player, session, tx, round, amount);
        self.vault.game("bet", &body).await
    }

    /// The player's [`win`].
    pub async fn win(&self, tx: &str, round: &str, amount: &str, close: bool) -> (u16, Value) {
        let body = win(self.player, tx, round, amount, close);
        self.vault.game("win", &body).await
    }

    /// The [`rollback`] of the player's bet `bet_tx`.
    pub async fn rollback(&self, tx: &str, round: &str, bet_tx: &str) -> (u16, Value) {
        let body = rollback(self.player, tx, round, bet_tx);
        self.vault.game("rollback", &body).await
    }
}

pub fn bet(player: &TestPlayer, session: &str, tx: &str, round: &str, amount: &str) -> Value {
    json!({
        "transaction_id": tx, "round_id": round, "game_id": "book-of-rust", "game_category": "slots",
        "player_id": player.id, "currency": "EUR", "amount": amount, "session_token": session,
    })
}

/// Bet `i` of a series, each in its own round: transaction `b{i}` in round `r{i}`.
pub fn nth_bet(player: &TestPlayer, session: &str, i: usize, amount: &str) -> Value {
    bet(player, session, &format!("b{i}"), &format!("r{i}"), amount)
}

pub fn win(player: &TestPlayer, tx: &str, round: &str, amount: &str, close: bool) -> Value {
    json!({
        "transaction_id": tx, "round_id": round, "game_id": "book-of-rust",
        "player_id": player.id, "currency": "EUR", "amount": amount, "close_round": close,
    })
}

pub fn rollback(player: &TestPlayer, tx: &str, round: &str, bet_tx: &str) -> Value {
    json!({
        "transaction_id": tx, "round_id": round, "player_id": player.id, "currency": "EUR",
        "bet_transaction_id": bet_tx,
    })
}

/// The rollback `rb{i}` of [`nth_bet`] `i`.
pub fn nth_rollback(player: &TestPlayer, i: usize) -> Value {
    rollback(
        player,
        &format!("rb{i}"),
        &format!("r{i}"),
        &format!("b{i}"),
    )
}

/// The error code of a JSON error answer, if it is one.
pub fn error_code(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

/// The value of the first series of `name` whose labels contain all of `labels`.
pub fn metric(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| {
            l.starts_with(name)
                && (l[name.len()..].starts_with('{') || l[name.len()..].starts_with(' '))
        })
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
