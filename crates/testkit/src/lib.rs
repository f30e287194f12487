//! Test harness on real components.
//!
//! - [`postgres`]: a throwaway PostgreSQL server started from the machine's binaries, one per test binary
//!   (process), with a fresh database per test cloned from a migrated template. Works as root by running
//!   the server as the `postgres` user. `DATABASE_URL` points it at an existing server instead.
//! - [`http`]: helpers for driving a real Vault (JSON posts, signed game API calls) from other suites.
//! - [`process`]: child processes that inherit none of the embedded broker's sockets.
//! - [`kafka`]: an embedded Kafka-protocol broker (librdkafka's mock cluster) on loopback TCP with topic
//!   creation and fault injection. `KAFKA_BROKERS` points it at an existing cluster instead (no faults).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("tests/migrations");
//! let db = casino_testkit::postgres::TestDatabase::create(&MIGRATOR).await?;
//! let kafka = casino_testkit::kafka::TestKafka::start(&["vault.transactions.v1"])?;
//! # let _ = (db, kafka);
//! # Ok(()) }
//! ```

pub mod http;
pub mod kafka;
pub mod postgres;
pub mod process;
pub mod service;

/// Common service settings whose database never answers (see [`postgres::unreachable_url`]), with a 2 s
/// connect timeout: for [`service::assert_start_fails_without_database`].
pub fn service_settings_without_database(
    database: &str,
) -> casino_observability::settings::CommonSettings {
    let mut settings = service_settings(&postgres::unreachable_url(database), "127.0.0.1:1");
    settings.database_connect_timeout = std::time::Duration::from_secs(2);
    settings
}

/// Common service settings for a test: both ports 0, the given database and broker, no drain delay.
pub fn service_settings(
    database_url: &str,
    kafka_brokers: &str,
) -> casino_observability::settings::CommonSettings {
    use casino_observability::{
        lifecycle::ShutdownConfig, server::ServerConfig, settings::CommonSettings,
    };
    CommonSettings {
        server: ServerConfig {
            public_addr: ([127, 0, 0, 1], 0).into(),
            admin_addr: ([127, 0, 0, 1], 0).into(),
        },
        database_url: database_url.to_owned(),
        database_max_connections: 5,
        database_connect_timeout: std::time::Duration::from_secs(30),
        kafka_brokers: kafka_brokers.to_owned(),
        kafka_security_protocol: "plaintext".into(),
        kafka_sasl_username: None,
        kafka_sasl_password: None,
        env: "test".into(),
        shutdown: ShutdownConfig {
            drain_delay: std::time::Duration::ZERO,
            timeout: std::time::Duration::from_secs(10),
        },
        internal_token: "test-internal-token".into(),
    }
}
