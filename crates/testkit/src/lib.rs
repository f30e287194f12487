//! Test harness on real components.
//!
//! - [`postgres`]: a throwaway PostgreSQL server started from the machine's binaries, one per test binary
//!   (process), with a fresh database per test cloned from a migrated template. Works as root by running
//!   the server as the `postgres` user. `DATABASE_URL` points it at an existing server instead.
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

pub mod kafka;
pub mod postgres;
