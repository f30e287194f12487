//! The real Vault for Concierge's end-to-end suites: the embedded broker with every topic and DLQ, and Vault
//! on port 0 with a fresh database, the `acme` game provider and a first admin.
#![allow(dead_code)]

use casino_events::topics;
use casino_observability::lifecycle::Lifecycle;
use casino_testkit::{kafka::TestKafka, postgres::TestDatabase, service_settings};
use casino_vault::{
    config::Settings as VaultSettings,
    startup::{Application as Vault, MIGRATOR as VAULT_MIGRATOR},
};

/// The game provider's HMAC secret.
pub const SECRET: &str = "acme-secret-key";
/// The first admin's credentials.
pub const ADMIN: (&str, &str) = ("admin@casino.test", "staff secret 123");

/// The embedded broker with every topic of the platform and its DLQ.
pub fn kafka_with_all_topics() -> TestKafka {
    let mut all: Vec<String> = topics::ALL.iter().map(|t| (*t).to_owned()).collect();
    all.extend(topics::ALL.iter().map(|t| topics::dlq(t)));
    let names: Vec<&str> = all.iter().map(String::as_str).collect();
    TestKafka::start(&names).unwrap()
}

/// A running Vault.
pub struct RunningVault {
    /// Public base URL.
    pub url: String,
    /// Admin base URL (`/internal/v1`, `/metrics`).
    pub admin_url: String,
    /// Its database (tests read it directly).
    pub db: TestDatabase,
    lifecycle: Lifecycle,
    running:
        tokio::task::JoinHandle<anyhow::Result<casino_observability::lifecycle::ShutdownOutcome>>,
}

impl RunningVault {
    /// Start Vault against `kafka`.
    pub async fn start(kafka: &TestKafka) -> Self {
        let db = TestDatabase::create(&VAULT_MIGRATOR).await.unwrap();
        let mut settings =
            VaultSettings::with_common(service_settings(&db.url, kafka.bootstrap_servers()));
        settings.game_providers.insert("acme".into(), SECRET.into());
        settings.bootstrap_admin = Some((ADMIN.0.into(), ADMIN.1.into()));
        let app = Vault::build(settings).await.unwrap();
        let url = format!("http://{}", app.public_addr());
        let admin_url = format!("http://{}", app.admin_addr());
        let lifecycle = app.lifecycle().clone();
        let running = tokio::spawn(app.run_until_stopped());
        Self {
            url,
            admin_url,
            db,
            lifecycle,
            running,
        }
    }

    /// Graceful stop; asserts a clean exit.
    pub async fn stop(self) {
        self.lifecycle.request_shutdown();
        assert_eq!(self.running.await.unwrap().unwrap().exit_code(), 0);
    }
}
