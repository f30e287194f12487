//! Builds the application the binary and the tests run.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use casino_messaging::{KafkaConfig, Producer};
use casino_observability::{
    ServiceInfo,
    health::{self, HealthRegistry},
    lifecycle::{Lifecycle, ShutdownOutcome},
    server::Server,
    service::Service,
    settings::SettingsError,
};
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::config::{ENV_PREFIX, Settings};

/// A built Room-Service, bound to its ports.
pub struct Application {
    server: Server,
    lifecycle: Lifecycle,
    pool: PgPool,
    producer: Producer,
    public_addr: SocketAddr,
    admin_addr: SocketAddr,
}

impl Application {
    /// Connect, build routers, bind.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let common = &settings.common;
        let info = ServiceInfo::new(
            "room-service",
            "room",
            env!("CARGO_PKG_VERSION"),
            common.env.clone(),
        );
        let lifecycle = Lifecycle::new(common.shutdown);
        let pool = PgPoolOptions::new()
            .max_connections(common.database_max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy(&common.database_url)
            .context("parsing ROOM_SERVICE_DATABASE_URL")?;
        let producer = Producer::new(
            &KafkaConfig::from_settings(common, "room-service"),
            Duration::from_secs(30),
        )?;
        let health = HealthRegistry::new(info.clone());
        health::register_postgres(&health, pool.clone());
        health.register(casino_messaging::health_check(&producer));

        let server = Server::bind(
            common.server,
            &info,
            health,
            lifecycle.clone(),
            Router::new(),
            Router::new(),
        )
        .await?;
        Ok(Self {
            public_addr: server.public_addr(),
            admin_addr: server.admin_addr(),
            server,
            lifecycle,
            pool,
            producer,
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

impl Service for Application {
    type Settings = Settings;
    const NAME: &'static str = "room-service";
    const METRIC_PREFIX: &'static str = "room";
    const ENV_PREFIX: &'static str = ENV_PREFIX;
    const DEFAULT_PUBLIC_PORT: u16 = crate::config::DEFAULTS.public_port;

    fn settings_from_env() -> Result<Settings, SettingsError> {
        Settings::from_env()
    }
    fn environment(settings: &Settings) -> String {
        settings.common.env.clone()
    }
    async fn build(settings: Settings) -> anyhow::Result<Self> {
        Application::build(settings).await
    }
    fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }
    async fn run_until_stopped(self) -> anyhow::Result<ShutdownOutcome> {
        Application::run_until_stopped(self).await
    }
}
