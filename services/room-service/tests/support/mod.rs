//! Shared harness of Room-Service's black-box tests: a fresh database, the embedded Kafka broker, a local
//! signing key (Vault's key, configured rather than fetched), the real application on port 0, and a driver
//! for the official Node socket.io client.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use casino_testkit::process::SafeSpawn as _;

use base64::Engine as _;
use casino_auth::{
    Role,
    extract::TokenVerifier,
    jwt::{Claims, JwtSigner},
};
use casino_events::{
    Envelope,
    payloads::{LevelUp, TransferEvent, TransferKind, transaction_types},
    topics,
};
use casino_messaging::{KafkaConfig, Producer};
use casino_observability::lifecycle::{Lifecycle, ShutdownOutcome};
use casino_room_service::{
    client::{Client, ClientError, ClientEvent, ClientOptions},
    config::Settings,
    startup::Application,
    store::MIGRATOR,
};
use casino_testkit::{kafka::TestKafka, postgres::TestDatabase};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

/// Generous bound for anything that should happen "soon".
pub const SOON: Duration = Duration::from_secs(15);

/// Database, broker, key.
pub struct TestEnv {
    pub db: TestDatabase,
    pub kafka: TestKafka,
    pub signer: JwtSigner,
    pub seed: String,
    pub producer: Producer,
}

impl TestEnv {
    pub async fn start() -> Self {
        let db = TestDatabase::create(&MIGRATOR).await.unwrap();
        let kafka = TestKafka::start(&topics::ALL).unwrap();
        let seed_bytes: [u8; 32] = rand::random();
        let seed = base64::engine::general_purpose::STANDARD.encode(seed_bytes);
        let signer = JwtSigner::from_seed_base64(&seed, Duration::from_secs(900)).unwrap();
        let producer = Producer::new(
            &KafkaConfig::plaintext(kafka.bootstrap_servers(), "room-service-tests"),
            Duration::from_secs(10),
        )
        .unwrap();
        Self {
            db,
            kafka,
            signer,
            seed,
            producer,
        }
    }

    pub fn settings(&self) -> Settings {
        Settings::for_tests(
            casino_testkit::service_settings(&self.db.url, self.kafka.bootstrap_servers()),
            TokenVerifier::Local(self.signer.verifier()),
        )
    }

    pub async fn app(&self) -> TestApp {
        TestApp::start(self.settings()).await
    }

    pub fn token(&self, player: Uuid) -> String {
        self.signer.issue(player, Role::Player).0
    }

    pub fn staff_token(&self) -> String {
        self.signer.issue(Uuid::now_v7(), Role::Staff).0
    }

    pub fn expired_token(&self, player: Uuid) -> String {
        let now = chrono::Utc::now().timestamp();
        self.signer.sign(&Claims {
            sub: player,
            role: Role::Player,
            exp: now - 120,
            iat: now - 1000,
            iss: "vault".into(),
            jti: Uuid::now_v7(),
        })
    }

    /// A player token that expires `in_seconds` from now.
    pub fn token_expiring_in(&self, player: Uuid, in_seconds: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        self.signer.sign(&Claims {
            sub: player,
            role: Role::Player,
            exp: now + in_seconds,
            iat: now,
            iss: "vault".into(),
            jti: Uuid::now_v7(),
        })
    }

    pub async fn publish<T: Serialize>(&self, topic: &str, event: &Envelope<T>) {
        self.producer.send_envelope(topic, event).await.unwrap();
    }

    /// A committed transfer of `player` on `vault.transactions.v1`.
    pub async fn transfer(
        &self,
        player: Uuid,
        kind: TransferKind,
        delta: i64,
        balance_after: i64,
        amount_eur: &str,
    ) -> Envelope<TransferEvent> {
        let event_type = match kind {
            TransferKind::Bet => transaction_types::BET_PLACED,
            TransferKind::Win => transaction_types::BET_WON,
            TransferKind::Rollback => transaction_types::BET_ROLLED_BACK,
            _ if delta >= 0 => transaction_types::WALLET_CREDITED,
            _ => transaction_types::WALLET_DEBITED,
        };
        let event = Envelope::new(
            event_type,
            "vault",
            Some(player),
            TransferEvent {
                transfer_id: Uuid::now_v7(),
                kind,
                currency: "EUR".into(),
                amount: delta.abs(),
                delta,
                balance_after,
                amount_eur: amount_eur.parse::<Decimal>().unwrap(),
                provider: Some("acme".into()),
                round_id: Some(format!("round-{}", Uuid::now_v7().simple())),
                game_id: Some("book-of-rust".into()),
                game_category: Some("slots".into()),
                reference_transfer_id: None,
                round_closed: kind == TransferKind::Win,
            },
        );
        self.publish(topics::VAULT_TRANSACTIONS, &event).await;
        event
    }

    /// Concierge's `level.up` of `player` to level `to`, on `concierge.rewards.v1`.
    pub async fn level_up(&self, player: Uuid, to: u32) -> Envelope<LevelUp> {
        let event = level_up_event(player, to);
        self.publish(topics::CONCIERGE_REWARDS, &event).await;
        event
    }
}

/// Concierge's `level.up` of `player` from level `to - 1` to `to`.
pub fn level_up_event(player: Uuid, to: u32) -> Envelope<LevelUp> {
    Envelope::new(
        casino_events::payloads::reward_types::LEVEL_UP,
        "concierge",
        Some(player),
        LevelUp {
            from: to - 1,
            to,
            name: format!("Level {to}"),
        },
    )
}

/// Database, broker, one running application and the official client.
pub async fn app_and_node() -> (TestEnv, TestApp, Node) {
    let env = TestEnv::start().await;
    let app = env.app().await;
    let node = Node::start().await;
    (env, app, node)
}

/// [`app_and_node`] once the application's live consumer receives: events published from now on are
/// pushed to sockets.
pub async fn live_app_and_node() -> (TestEnv, TestApp, Node) {
    let env = TestEnv::start().await;
    let app = env.app().await;
    app.wait_until_live(&env).await;
    let node = Node::start().await;
    (env, app, node)
}

/// What the Rust client reports after the events it has already received (a disconnect, usually).
pub async fn after_pending_events(client: &mut Client) -> Result<ClientEvent, ClientError> {
    loop {
        match client.next_event(SOON).await {
            Ok(ClientEvent::Event { .. }) => continue,
            other => return other,
        }
    }
}

/// The count of the next `notifications.unread_count` the Rust client receives.
pub async fn next_unread_count(client: &mut Client) -> Value {
    let args = client
        .wait_for("notifications.unread_count", SOON)
        .await
        .unwrap();
    args[0]["count"].clone()
}

/// The reason the Rust client is given by the next `event` it receives.
pub async fn next_reason(client: &mut Client, event: &str) -> Value {
    client.wait_for(event, SOON).await.unwrap()[0]["reason"].clone()
}

/// The error code of a JSON error answer, if it is one.
pub fn error_code(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

/// The application running in this process.
pub struct TestApp {
    pub public: String,
    pub admin: String,
    pub instance_id: String,
    pub lifecycle: Lifecycle,
    handle: tokio::task::JoinHandle<anyhow::Result<ShutdownOutcome>>,
}

impl TestApp {
    pub async fn start(settings: Settings) -> Self {
        let app = Application::build(settings).await.unwrap();
        let public = format!("http://{}", app.public_addr());
        let admin = format!("http://{}", app.admin_addr());
        let instance_id = app.instance_id().to_owned();
        let lifecycle = app.lifecycle().clone();
        let handle = tokio::spawn(app.run_until_stopped());
        Self {
            public,
            admin,
            instance_id,
            lifecycle,
            handle,
        }
    }

    pub async fn stop(self) -> ShutdownOutcome {
        self.lifecycle.request_shutdown();
        self.handle.await.unwrap().unwrap()
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Connect a Rust client with `auth: {token}`.
    pub async fn client(&self, token: &str) -> Client {
        Client::connect(&self.public, ClientOptions::token(token))
            .await
            .unwrap()
    }

    /// Wait until this task's live consumer has its partitions (it starts at the latest offsets, so an
    /// event published before that would never reach a socket): publish transfers for a probe player
    /// until one arrives.
    pub async fn wait_until_live(&self, env: &TestEnv) {
        let player = Uuid::now_v7();
        let mut client = self.client(&env.token(player)).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            env.transfer(player, TransferKind::Deposit, 100, 100, "1.00")
                .await;
            if client
                .wait_for("balance.updated", Duration::from_millis(500))
                .await
                .is_ok()
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the live consumer never started"
            );
        }
        client.close();
        // Every partition's starting offset is resolved in the same assignment; give the others a moment.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    pub fn http(&self) -> Http {
        Http {
            base: self.public.clone(),
            client: reqwest::Client::new(),
        }
    }
}

/// The public REST API with bearer tokens.
pub struct Http {
    pub base: String,
    pub client: reqwest::Client,
}

impl Http {
    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.send(self.client.get(self.url(path)), token).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.send(self.client.post(self.url(path)).json(&body), token)
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        self.send(self.client.delete(self.url(path)), token).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Send with `token` as the bearer; the status and the JSON body (`null` when there is none).
    async fn send(&self, request: reqwest::RequestBuilder, token: &str) -> (u16, Value) {
        let response = request.bearer_auth(token).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// The value of a Prometheus series (exact label set as rendered), or 0.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series || strip_service(name) == series).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}

/// Assert that a Prometheus series (as [`metric`] finds it) has reached at least `min`.
#[track_caller]
pub fn assert_metric_at_least(text: &str, series: &str, min: f64) {
    let value = metric(text, series);
    assert!(
        value >= min,
        "{series} is {value}, expected at least {min}: {text}"
    );
}

fn strip_service(name: &str) -> String {
    name.replace("service=\"room-service\",", "")
        .replace(",service=\"room-service\"", "")
        .replace("{service=\"room-service\"}", "")
}

// ---------------------------------------------------------------------------------------------------
// The official client, driven through tests/node/driver.mjs.

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

/// `npm ci` once per test process when node_modules is missing.
pub fn ensure_node_modules() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let result = DONE.get_or_init(|| {
        let dir = node_dir();
        if dir.join("node_modules/socket.io-client").exists() {
            return Ok(());
        }
        let status = casino_testkit::process::command("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .safe_status()
            .map_err(|e| {
                format!(
                    "running npm ci in {}: {e} (install Node.js 18+)",
                    dir.display()
                )
            })?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("npm ci failed in {}: {status}", dir.display()))
        }
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}

/// A Node process running the official socket.io client.
pub struct Node {
    child: tokio::process::Child,
    commands: mpsc::UnboundedSender<String>,
    lines: Arc<Mutex<VecDeque<Value>>>,
    arrived: Arc<Notify>,
    next_req: std::sync::atomic::AtomicU64,
}

impl Node {
    pub async fn start() -> Self {
        ensure_node_modules();
        let mut command = tokio::process::Command::from(casino_testkit::process::command("node"));
        command
            .arg("driver.mjs")
            .current_dir(node_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child =
            casino_testkit::process::spawning(|| command.spawn()).expect("node is installed");
        let mut stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (commands, mut rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                if stdin
                    .write_all(format!("{line}\n").as_bytes())
                    .await
                    .is_err()
                {
                    break;
                }
                let _ = stdin.flush().await;
            }
        });
        let lines: Arc<Mutex<VecDeque<Value>>> = Arc::default();
        let arrived = Arc::new(Notify::new());
        let (l, a) = (lines.clone(), arrived.clone());
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    l.lock().unwrap().push_back(value);
                    a.notify_waiters();
                }
            }
        });
        let node = Self {
            child,
            commands,
            lines,
            arrived,
            next_req: std::sync::atomic::AtomicU64::new(1),
        };
        node.expect(|v| v["type"] == "ready", SOON).await;
        node
    }

    pub fn send(&self, command: Value) {
        self.commands.send(command.to_string()).unwrap();
    }

    /// Wait for (and consume) the first output line matching `pred`.
    pub async fn expect(&self, pred: impl Fn(&Value) -> bool, timeout: Duration) -> Value {
        self.try_expect(pred, timeout).await.unwrap_or_else(|| {
            panic!(
                "nothing matching arrived; seen: {:?}",
                self.lines.lock().unwrap()
            )
        })
    }

    pub async fn try_expect(
        &self,
        pred: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            {
                let mut lines = self.lines.lock().unwrap();
                if let Some(pos) = lines.iter().position(&pred) {
                    return lines.remove(pos);
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let mut lines = self.lines.lock().unwrap();
                return lines
                    .iter()
                    .position(&pred)
                    .and_then(|pos| lines.remove(pos));
            }
        }
    }

    /// Connect socket `id` with `auth`; returns the `connect` or `connect_error` line.
    pub async fn connect_with(&self, id: &str, url: &str, auth: Value, extra: Value) -> Value {
        let mut command = json!({"op": "connect", "id": id, "url": url, "auth": auth});
        if let (Some(command), Some(extra)) = (command.as_object_mut(), extra.as_object()) {
            command.extend(extra.clone());
        }
        self.send(command);
        self.expect(
            |v| v["id"] == id && (v["type"] == "connect" || v["type"] == "connect_error"),
            SOON,
        )
        .await
    }

    /// Connect socket `id` over WebSocket and expect success.
    pub async fn connect(&self, id: &str, url: &str, auth: Value) -> Value {
        let line = self
            .connect_with(id, url, auth, json!({"transports": ["websocket"]}))
            .await;
        assert_eq!(line["type"], "connect", "{line}");
        line
    }

    /// Connect socket `id` over WebSocket with `auth: {token}` and expect success.
    pub async fn connect_as(&self, id: &str, url: &str, token: &str) -> Value {
        self.connect(id, url, json!({"token": token})).await
    }

    /// Connect socket `id` with `auth: {token}` on the default transports (HTTP long-polling, then the
    /// WebSocket upgrade); the `connect` or `connect_error` line.
    pub async fn connect_upgrading(&self, id: &str, url: &str, token: &str) -> Value {
        self.connect_with(id, url, json!({"token": token}), json!({}))
            .await
    }

    /// The next `event` received by socket `id` (its arguments).
    pub async fn event(&self, id: &str, event: &str) -> Vec<Value> {
        self.try_event(id, event, SOON).await.unwrap_or_else(|| {
            panic!(
                "{id} did not receive {event}; seen: {:?}",
                self.lines.lock().unwrap()
            )
        })
    }

    /// The next `notification` pushed to socket `id`.
    pub async fn notification(&self, id: &str) -> Value {
        self.event(id, "notification").await[0].clone()
    }

    /// The count of the next `notifications.unread_count` received by socket `id`.
    pub async fn unread_count(&self, id: &str) -> Value {
        self.event(id, "notifications.unread_count").await[0]["count"].clone()
    }

    pub async fn try_event(&self, id: &str, event: &str, timeout: Duration) -> Option<Vec<Value>> {
        self.try_expect(
            |v| v["id"] == id && v["type"] == "event" && v["event"] == event,
            timeout,
        )
        .await
        .map(|v| v["args"].as_array().cloned().unwrap_or_default())
    }

    /// Every `event` received by `id` so far (consumed).
    pub fn take_events(&self, id: &str, event: &str) -> Vec<Vec<Value>> {
        let mut lines = self.lines.lock().unwrap();
        let mut taken = Vec::new();
        lines.retain(|v| {
            if v["id"] == id && v["type"] == "event" && v["event"] == event {
                taken.push(v["args"].as_array().cloned().unwrap_or_default());
                false
            } else {
                true
            }
        });
        taken
    }

    /// Emit and wait for the ack; returns the ack's first argument.
    pub async fn emit_ack(&self, id: &str, event: &str, data: Value) -> Value {
        let req = self
            .next_req
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.send(json!({"op": "emit", "id": id, "event": event, "data": data, "req": req}));
        let line = self
            .expect(
                |v| v["id"] == id && v["type"] == "ack" && v["req"] == req,
                SOON,
            )
            .await;
        assert_ne!(line["timeout"], true, "no ack for {event}");
        line["args"][0].clone()
    }

    /// `chat.join` `room` from socket `id`, expecting success; the ack (with the room's history).
    pub async fn join(&self, id: &str, room: &str) -> Value {
        let joined = self.emit_ack(id, "chat.join", json!({"room": room})).await;
        assert_eq!(joined["ok"], true, "{id} joining {room}: {joined}");
        joined
    }

    /// `chat.send` from socket `id`; the ack.
    pub async fn chat(&self, id: &str, room: &str, text: &str, client_msg_id: &str) -> Value {
        let message = json!({"room": room, "text": text, "client_msg_id": client_msg_id});
        self.emit_ack(id, "chat.send", message).await
    }

    pub async fn disconnected(&self, id: &str) -> String {
        let line = self
            .expect(|v| v["id"] == id && v["type"] == "disconnect", SOON)
            .await;
        line["reason"].as_str().unwrap_or_default().to_owned()
    }

    pub fn disconnect(&self, id: &str) {
        self.send(json!({"op": "disconnect", "id": id}));
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.commands.send(json!({"op": "exit"}).to_string());
        let _ = self.child.start_kill();
    }
}
