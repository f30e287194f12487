//! Shared helpers of Concierge's black-box tests: the real application on port 0, a fresh database, the
//! embedded Kafka-protocol broker, Vault-shaped events and HTTP calls.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use casino_auth::{
    Role,
    extract::TokenVerifier,
    jwt::{JwtSigner, RemoteJwks},
};
use casino_concierge::{
    config::Settings,
    processor::ConsumerStats,
    reconciler::{self, HttpVault, ReconcileReport},
    startup::{Application, MIGRATOR},
};
use casino_events::{
    Envelope,
    payloads::{TransferEvent, TransferKind, transaction_types},
    topics,
};
use casino_messaging::{KafkaConfig, Producer};
use casino_observability::lifecycle::Lifecycle;
use casino_testkit::{kafka::TestKafka, postgres::TestDatabase};
use chrono::{DateTime, Utc};
use rdkafka::{
    ClientConfig, Message as _, Offset, TopicPartitionList,
    consumer::{Consumer as _, StreamConsumer},
    message::Headers as _,
};
use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

/// The embedded broker with every topic of the platform and its DLQ.
pub fn kafka_with_all_topics() -> TestKafka {
    let mut all: Vec<String> = topics::ALL.iter().map(|t| (*t).to_owned()).collect();
    all.extend(topics::ALL.iter().map(|t| topics::dlq(t)));
    let names: Vec<&str> = all.iter().map(String::as_str).collect();
    TestKafka::start(&names).unwrap()
}

/// Everything a test needs: database, broker, Vault's signing key, a producer playing Vault.
pub struct Harness {
    pub db: TestDatabase,
    pub kafka: TestKafka,
    pub signer: JwtSigner,
    pub vault: Producer,
}

impl Harness {
    pub async fn start() -> Self {
        // CONCIERGE_TEST_LOGS=1 shows the service's JSON logs (with RUST_LOG) when a test fails.
        if std::env::var_os("CONCIERGE_TEST_LOGS").is_some() {
            static LOGS: std::sync::Once = std::sync::Once::new();
            LOGS.call_once(|| {
                let info = casino_observability::ServiceInfo::new(
                    "concierge",
                    "concierge",
                    "test",
                    "test",
                );
                std::mem::forget(casino_observability::init_telemetry(&info));
            });
        }
        let db = TestDatabase::create(&MIGRATOR).await.unwrap();
        let kafka = kafka_with_all_topics();
        let vault = Producer::new(
            &KafkaConfig::plaintext(kafka.bootstrap_servers(), "test-vault"),
            Duration::from_secs(10),
        )
        .unwrap();
        Self {
            db,
            kafka,
            signer: JwtSigner::generate(Duration::from_secs(900)),
            vault,
        }
    }

    /// Settings for an app on this harness (Vault's public key in hand, fast retries).
    pub fn settings(&self) -> Settings {
        let mut settings = Settings::new(
            casino_testkit::service_settings(&self.db.url, self.kafka.bootstrap_servers()),
            TokenVerifier::Local(self.signer.verifier()),
        );
        settings.consumer.retry_backoff = Duration::from_millis(20);
        settings
    }

    pub async fn app(&self) -> App {
        App::start(self.settings()).await
    }

    pub fn token(&self, player: Uuid, role: Role) -> String {
        self.signer.issue(player, role).0
    }

    /// Publish as Vault does (keyed by player, JSON envelope).
    pub async fn publish<T: serde::Serialize>(&self, topic: &str, event: &Envelope<T>) {
        self.vault.send_envelope(topic, event).await.unwrap();
    }

    /// Publish a transfer on `vault.transactions.v1`, as Vault does.
    pub async fn publish_transfer(&self, event: &Envelope<TransferEvent>) {
        self.publish(topics::VAULT_TRANSACTIONS, event).await;
    }

    /// Publish a `bet.placed` of `player` (a new transfer) of `amount_eur` on a game of `category`.
    pub async fn place_bet(
        &self,
        player: Uuid,
        amount_eur: &str,
        category: &str,
        at: DateTime<Utc>,
    ) {
        let event = bet(player, Uuid::now_v7(), eur(amount_eur), Some(category), at);
        self.publish_transfer(&event).await;
    }

    /// Publish raw bytes.
    pub async fn publish_raw(&self, topic: &str, key: &str, payload: &[u8]) {
        self.vault.send(topic, key, payload, &[]).await.unwrap();
    }

    pub async fn processed_events(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM processed_events")
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    /// Wait until `count` events are recorded as processed.
    pub async fn wait_processed(&self, count: i64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let done = self.processed_events().await;
            if done >= count {
                assert_eq!(done, count, "more events processed than expected");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {done} of {count} events processed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A running Concierge.
pub struct App {
    pub public: String,
    pub admin: String,
    pub lifecycle: Lifecycle,
    pub stats: Arc<ConsumerStats>,
    running:
        tokio::task::JoinHandle<anyhow::Result<casino_observability::lifecycle::ShutdownOutcome>>,
}

impl App {
    pub async fn start(settings: Settings) -> Self {
        let app = Application::build(settings).await.unwrap();
        Self {
            public: format!("http://{}", app.public_addr()),
            admin: format!("http://{}", app.admin_addr()),
            lifecycle: app.lifecycle().clone(),
            stats: app.stats(),
            running: tokio::spawn(app.run_until_stopped()),
        }
    }

    /// Graceful stop (the consumer commits its stored offsets).
    pub async fn stop(self) {
        self.lifecycle.request_shutdown();
        let outcome = self.running.await.unwrap().unwrap();
        assert_eq!(outcome.exit_code(), 0);
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

// ---------------------------------------------------------------------------------------------------
// Concierge against a real Vault (tests/vault_support).

/// The internal API token of the real Vault's admin listener.
pub const VAULT_INTERNAL_TOKEN: &str = "test-internal-token";

/// A Concierge on its own fresh database that trusts a real Vault: its JWKS over HTTP for tokens, its
/// internal API (with [`VAULT_INTERNAL_TOKEN`]) for reconciliation.
pub async fn concierge_with_vault(
    kafka: &TestKafka,
    vault_url: &str,
    vault_admin_url: &str,
) -> (App, TestDatabase) {
    let db = TestDatabase::create(&MIGRATOR).await.unwrap();
    let mut settings = Settings::new(
        casino_testkit::service_settings(&db.url, kafka.bootstrap_servers()),
        TokenVerifier::Remote(RemoteJwks::new(format!(
            "{vault_url}/.well-known/jwks.json"
        ))),
    );
    settings.vault_url = vault_url.to_owned();
    settings.vault_internal_url = vault_admin_url.to_owned();
    settings.vault_internal_token = Some(VAULT_INTERNAL_TOKEN.into());
    (App::start(settings).await, db)
}

/// Wait until `/rewards/me` of `token`'s player shows `eur` (whole euros) wagered in a lifetime; the body.
pub async fn wait_for_lifetime_wagered(app: &App, token: &str, eur: &str) -> Value {
    let url = format!("{}/api/v1/rewards/me", app.public);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = get(&url, Some(token)).await;
        let wagered = &body["lifetime_wagered_eur"];
        if *wagered == eur || *wagered == format!("{eur}.00") {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "concierge did not catch up: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One reconciliation run over the closed one-minute windows before `now`, with no grace period.
pub async fn reconcile(
    db: &TestDatabase,
    vault: &HttpVault,
    now: DateTime<Utc>,
) -> anyhow::Result<ReconcileReport> {
    reconciler::run_once(
        &db.pool,
        vault,
        now,
        Duration::from_secs(60),
        Duration::ZERO,
    )
    .await
}

/// Forget which windows were reconciled, so that the next run compares them again.
pub async fn forget_reconciled_windows(db: &TestDatabase) {
    sqlx::query("DELETE FROM reconciliation_windows")
        .execute(&db.pool)
        .await
        .unwrap();
}

/// The value of one series in Prometheus text (`name{labels}` as printed, labels sorted as printed).
pub fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            (series == name_and_labels).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}

/// The sum of every series of `name` whose labels contain all of `labels` (`key="value"` pairs).
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name && labels.iter().all(|label| rest.contains(label)))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

pub fn eur(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap()
}

fn transfer(kind: TransferKind, amount_eur: Decimal) -> TransferEvent {
    let minor = (amount_eur * Decimal::ONE_HUNDRED)
        .trunc()
        .try_into()
        .unwrap_or(0i64);
    TransferEvent {
        transfer_id: Uuid::now_v7(),
        kind,
        currency: "EUR".into(),
        amount: minor,
        delta: if kind == TransferKind::Win {
            minor
        } else {
            -minor
        },
        balance_after: 0,
        amount_eur,
        provider: Some("acme".into()),
        round_id: Some(Uuid::new_v4().to_string()),
        game_id: Some("book-of-rust".into()),
        game_category: None,
        reference_transfer_id: None,
        round_closed: false,
    }
}

fn envelope(
    event_type: &str,
    player: Uuid,
    at: DateTime<Utc>,
    data: TransferEvent,
) -> Envelope<TransferEvent> {
    let mut event = Envelope::new(event_type, "vault", Some(player), data);
    event.occurred_at = truncate(at);
    event
}

/// `bet.placed` as Vault emits it.
pub fn bet(
    player: Uuid,
    transfer_id: Uuid,
    amount_eur: Decimal,
    category: Option<&str>,
    at: DateTime<Utc>,
) -> Envelope<TransferEvent> {
    let mut data = transfer(TransferKind::Bet, amount_eur);
    data.transfer_id = transfer_id;
    data.game_category = category.map(str::to_owned);
    envelope(transaction_types::BET_PLACED, player, at, data)
}

/// `bet.won`.
pub fn win(player: Uuid, amount_eur: Decimal, at: DateTime<Utc>) -> Envelope<TransferEvent> {
    let mut data = transfer(TransferKind::Win, amount_eur);
    data.round_closed = true;
    envelope(transaction_types::BET_WON, player, at, data)
}

/// `bet.rolled_back` naming `bet_transfer_id`.
pub fn rollback(
    player: Uuid,
    bet_transfer_id: Uuid,
    amount_eur: Decimal,
    at: DateTime<Utc>,
) -> Envelope<TransferEvent> {
    let mut data = transfer(TransferKind::Rollback, amount_eur);
    data.reference_transfer_id = Some(bet_transfer_id);
    envelope(transaction_types::BET_ROLLED_BACK, player, at, data)
}

/// A raw message read back from a topic.
#[derive(Debug, Clone)]
pub struct Raw {
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Raw {
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap()
    }
}

/// Read `count` messages of `topic` from the beginning; then keep listening for
/// `quiet` to make sure no more arrive (they are returned too, so the caller sees extras).
pub async fn read_topic(brokers: &str, topic: &str, count: usize, quiet: Duration) -> Vec<Raw> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{}", Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    // Assign every partition from the beginning: no group join to wait for.
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics()[0].partitions() {
        assignment
            .add_partition_offset(topic, partition.id(), Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let wait = if out.len() < count {
            deadline.saturating_duration_since(Instant::now())
        } else {
            quiet
        };
        let message = match tokio::time::timeout(wait, consumer.recv()).await {
            Ok(message) => message.unwrap(),
            Err(_) if out.len() >= count => return out,
            Err(_) => panic!("only {} of {count} messages on {topic}", out.len()),
        };
        out.push(Raw {
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().unwrap_or_default().to_vec(),
            headers: message
                .headers()
                .map(|h| {
                    h.iter()
                        .filter_map(|h| {
                            Some((h.key.to_owned(), String::from_utf8(h.value?.to_vec()).ok()?))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
}

/// GET with an optional bearer token; returns status and JSON body.
pub async fn get(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// PUT a raw body with a bearer token; returns status and JSON body.
pub async fn put(url: &str, token: &str, body: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .put(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}
