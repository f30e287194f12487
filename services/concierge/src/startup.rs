//! Builds the application the binary and the tests run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use casino_messaging::{
    BatchSettings, ConsumerSettings, KafkaConfig, Producer, outbox::Relay, run_batch_consumer,
};
use casino_observability::{
    ServiceInfo,
    health::{self, HealthRegistry},
    lifecycle::{Lifecycle, ShutdownOutcome},
    server::Server,
    startup::wait_for_database,
};
use sqlx::postgres::PgPool;

use crate::config::{DEFAULTS, ENV_PREFIX, Settings};
use crate::db::RulesCache;
use crate::processor::{ConsumerStats, Processor, ProcessorSettings, parse::Topics};
use crate::reconciler::HttpVault;
use crate::routes::{ApiState, public_router};

/// The migrations, embedded in the binary and run at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// A built Concierge, bound to its ports, its background tasks running.
pub struct Application {
    server: Server,
    lifecycle: Lifecycle,
    pool: PgPool,
    producer: Producer,
    stats: Arc<ConsumerStats>,
    public_addr: SocketAddr,
    admin_addr: SocketAddr,
}

impl Application {
    /// Connect (retrying for `database_connect_timeout`), migrate, build routers, bind, start the
    /// consumer, outbox relay, verifier, reconciler and housekeeping.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let common = &settings.common;
        let info = ServiceInfo::new(
            "concierge",
            "concierge",
            env!("CARGO_PKG_VERSION"),
            common.env.clone(),
        );
        let lifecycle = Lifecycle::new(common.shutdown);
        let pool = common.lazy_pool("CONCIERGE_DATABASE_URL")?;
        wait_for_database(&pool, common.database_connect_timeout, "concierge").await?;
        MIGRATOR
            .run(&pool)
            .await
            .context("running the concierge database migrations")?;
        let kafka = KafkaConfig::from_settings(common, "concierge");
        let producer = Producer::new(&kafka, Duration::from_secs(30))?;
        let health = HealthRegistry::new(info.clone());
        health::register_postgres(&health, pool.clone());
        health.register(casino_messaging::health_check(&producer));

        let rules = Arc::new(RulesCache::default());
        let state = ApiState::new(pool.clone(), rules.clone(), settings.auth.clone());
        let server = Server::bind(
            common.server,
            &info,
            health,
            lifecycle.clone(),
            public_router(state),
            Router::new(),
        )
        .await?;
        // The metrics recorder exists from here on.
        crate::metrics::describe();

        let stats = Arc::new(ConsumerStats::default());
        let tuning = &settings.consumer;
        casino_messaging::describe_producer(&[&tuning.rewards_topic]);
        match rules.current(&pool).await {
            Ok(current) => crate::metrics::describe_levels(&current.levels),
            Err(error) => tracing::warn!(
                error = format!("{error:#}"),
                "could not read the rule set to publish the level counters at zero"
            ),
        }
        let processor = Processor::new(
            pool.clone(),
            rules.clone(),
            ProcessorSettings {
                topics: Topics {
                    transactions: tuning.transactions_topic.clone(),
                    players: tuning.players_topic.clone(),
                },
                rewards_topic: tuning.rewards_topic.clone(),
                abnormal_points_per_hour: settings.rewards.abnormal_points_per_hour,
                parallelism: tuning.parallelism,
            },
            stats.clone(),
        );
        let mut consumer = ConsumerSettings::new(
            kafka,
            tuning.group_id.clone(),
            &[&tuning.transactions_topic, &tuning.players_topic],
        );
        consumer.retry_backoff = tuning.retry_backoff;
        let batch = BatchSettings {
            consumer,
            max_batch: tuning.max_batch,
            max_wait: tuning.max_wait,
        };
        let (dlq, token) = (producer.clone(), lifecycle.token());
        lifecycle.spawn("consumer", async move {
            if let Err(error) = run_batch_consumer(batch, processor, dlq, token).await {
                tracing::error!(error = format!("{error:#}"), "event consumer failed");
            }
        });
        let relay = Relay::new(pool.clone(), producer.clone(), "concierge");
        lifecycle.spawn(
            "outbox-gauges",
            relay.clone().run_backlog_gauges(lifecycle.token()),
        );
        lifecycle.spawn("outbox-relay", relay.run(lifecycle.token()));
        lifecycle.spawn(
            "housekeeping",
            crate::housekeeping::run_housekeeping(pool.clone(), lifecycle.token()),
        );
        lifecycle.spawn(
            "verifier",
            crate::verifier::run(
                pool.clone(),
                rules,
                settings.background.verify_interval,
                lifecycle.token(),
            ),
        );
        match &settings.vault_internal_token {
            Some(token) => {
                let vault = HttpVault::new(&settings.vault_internal_url, token)?;
                lifecycle.spawn(
                    "reconciler",
                    crate::reconciler::run(
                        pool.clone(),
                        vault,
                        settings.background.reconcile_interval,
                        settings.background.reconcile_window,
                        settings.background.reconcile_grace,
                        lifecycle.token(),
                    ),
                );
            }
            None => tracing::warn!(
                "CONCIERGE_VAULT_INTERNAL_TOKEN is not set: the reconciler with vault is off"
            ),
        }

        Ok(Self {
            public_addr: server.public_addr(),
            admin_addr: server.admin_addr(),
            server,
            lifecycle,
            pool,
            producer,
            stats,
        })
    }

    /// Public (ALB) address.
    pub fn public_addr(&self) -> SocketAddr {
        self.public_addr
    }

    /// Admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Shutdown control (tests call `request_shutdown`).
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// This instance's consumer counters (tests and benchmarks wait on them).
    pub fn stats(&self) -> Arc<ConsumerStats> {
        self.stats.clone()
    }

    /// Serve until shutdown; then flush the producer and close the pool.
    pub async fn run_until_stopped(self) -> anyhow::Result<ShutdownOutcome> {
        let outcome = self.server.run().await?;
        if let Err(error) = self.producer.flush(Duration::from_secs(5)) {
            tracing::warn!(error = %error, "kafka producer flush incomplete at shutdown");
        }
        self.pool.close().await;
        Ok(outcome)
    }
}

casino_observability::impl_service!(Application {
    settings: Settings,
    name: "concierge",
    metric_prefix: "concierge",
    env_prefix: ENV_PREFIX,
    default_public_port: DEFAULTS.public_port,
});
