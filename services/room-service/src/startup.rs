//! Builds the application the binary and the tests run.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use casino_auth::extract::TokenVerifier;
use casino_messaging::{ConsumerSettings, KafkaConfig, Producer, run_consumer};
use casino_observability::{
    ServiceInfo,
    health::{self, Check, HealthRegistry},
    lifecycle::{Lifecycle, ShutdownOutcome},
    server::Server,
};
use socketioxide::SocketIo;
use sqlx::postgres::PgPool;

use crate::{
    config::{DEFAULTS, ENV_PREFIX, NOTIFICATIONS_GROUP, Settings, live_group},
    consumers::{self, live::LiveHandler, notifications::NotificationsHandler},
    instance, metrics, realtime, routes,
    state::AppState,
    store::MIGRATOR,
};

/// A built Room-Service, bound to its ports.
pub struct Application {
    server: Server,
    lifecycle: Lifecycle,
    pool: PgPool,
    producer: Producer,
    chat_producer: Producer,
    io: SocketIo,
    state: AppState,
    public_addr: SocketAddr,
    admin_addr: SocketAddr,
}

impl Application {
    /// Connect, migrate, build routers and consumers, bind.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let common = &settings.common;
        let info = ServiceInfo::new(
            "room-service",
            "room",
            env!("CARGO_PKG_VERSION"),
            common.env.clone(),
        );
        let lifecycle = Lifecycle::new(common.shutdown);
        // Installed here (idempotent; the server does it again) so start-up failures can be counted.
        casino_observability::metrics::install(&info);
        let instance_id =
            instance::resolve(&settings.instance_id_source, &settings.instance_id).await;
        let pool = common.lazy_pool("ROOM_SERVICE_DATABASE_URL")?;
        casino_observability::startup::wait_for_database(
            &pool,
            common.database_connect_timeout,
            "room_service",
        )
        .await?;
        MIGRATOR
            .run(&pool)
            .await
            .context("migrating the room_service database")?;
        let kafka = KafkaConfig::from_settings(common, "room-service");
        // The DLQ producer of the consumers (waits long: a dead letter must not be lost).
        let producer = Producer::new(&kafka, Duration::from_secs(30))?;
        // Chat sends wait for their publish: give up after 5 s and tell the client to retry.
        let chat_producer = Producer::new(&kafka, Duration::from_secs(5))?;

        let health = HealthRegistry::new(info.clone());
        health::register_postgres(&health, pool.clone());
        health.register(casino_messaging::health_check(&producer));
        if let TokenVerifier::Remote(jwks) = &settings.token_verifier {
            let jwks = jwks.clone();
            health.register(
                Check::optional("vault_jwks", move || {
                    let jwks = jwks.clone();
                    async move { jwks.refresh().await.map_err(|e| format!("{e:#}")) }
                })
                .timeout(Duration::from_secs(4))
                .cache_for(Duration::from_secs(30)),
            );
        }

        let state = AppState::new(
            pool.clone(),
            chat_producer.clone(),
            settings.token_verifier.clone(),
            settings.chat,
            settings.connect_rate,
            lifecycle.shutdown_requested_token(),
            instance_id.clone(),
        );
        let (sockets, io) = realtime::router(state.clone(), settings.trusted_proxy_hops);
        let public = routes::router(state.clone()).merge(sockets);

        let server = Server::bind(
            common.server,
            &info,
            health,
            lifecycle.clone(),
            public,
            Router::new(),
        )
        .await?;
        metrics::describe();

        let app = Self {
            public_addr: server.public_addr(),
            admin_addr: server.admin_addr(),
            server,
            lifecycle,
            pool,
            producer,
            chat_producer,
            io,
            state,
        };
        app.start_background(&settings, kafka);
        Ok(app)
    }

    fn start_background(&self, settings: &Settings, kafka: KafkaConfig) {
        let lifecycle = &self.lifecycle;
        let fetch_wait = settings.kafka_fetch_wait.as_millis().to_string();
        let live_group = live_group(&self.state.instance_id);
        let live =
            ConsumerSettings::new(kafka.clone(), live_group.clone(), &consumers::live::TOPICS)
                .with("auto.offset.reset", "latest")
                .with("fetch.wait.max.ms", &fetch_wait);
        let (io, dlq, token) = (self.io.clone(), self.producer.clone(), lifecycle.token());
        lifecycle.spawn("live-consumer", async move {
            if let Err(error) = run_consumer(live, LiveHandler::new(io), dlq, token).await {
                tracing::error!(error = format!("{error:#}"), "live consumer failed");
            }
        });

        let stored = ConsumerSettings::new(
            kafka,
            NOTIFICATIONS_GROUP,
            &consumers::notifications::TOPICS,
        );
        let handler = NotificationsHandler::new(self.pool.clone(), settings.big_win_eur);
        let (dlq, token) = (self.producer.clone(), lifecycle.token());
        lifecycle.spawn("notifications-consumer", async move {
            if let Err(error) = run_consumer(stored, handler, dlq, token).await {
                tracing::error!(
                    error = format!("{error:#}"),
                    "notifications consumer failed"
                );
            }
        });

        let (pool, sessions, token) = (
            self.pool.clone(),
            self.state.sessions.clone(),
            lifecycle.token(),
        );
        lifecycle.spawn(
            "notification-listener",
            consumers::listener::run(pool, sessions, token),
        );

        let (state, token) = (self.state.clone(), lifecycle.token());
        lifecycle.spawn("session-sweeper", realtime::sweep_sessions(state, token));
        let (sessions, token) = (self.state.sessions.clone(), lifecycle.token());
        lifecycle.spawn(
            "session-expiry",
            realtime::sessions::expire_sessions(sessions, token),
        );

        // At the signal (before the drain delay): tell sockets and close them, so clients reconnect to
        // another task while this one drains, and no websocket holds the shutdown.
        let (io, state, requested) = (
            self.io.clone(),
            self.state.clone(),
            lifecycle.shutdown_requested_token(),
        );
        lifecycle.spawn("socket-shutdown", async move {
            requested.cancelled().await;
            realtime::disconnect_all(&io, &state).await;
        });
        tracing::info!(
            instance_id = %self.state.instance_id,
            live_group = %live_group,
            "room-service started"
        );
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

    /// This task's id (its live consumer group is `room-service-live-<id>`).
    pub fn instance_id(&self) -> &str {
        &self.state.instance_id
    }

    /// The socket.io handle (tests).
    pub fn io(&self) -> &SocketIo {
        &self.io
    }

    /// Serve until shutdown; then flush the producers and close the pool.
    pub async fn run_until_stopped(self) -> anyhow::Result<ShutdownOutcome> {
        let outcome = self.server.run().await?;
        for producer in [&self.chat_producer, &self.producer] {
            if let Err(error) = producer.flush(Duration::from_secs(5)) {
                tracing::warn!(error = %error, "kafka producer flush incomplete at shutdown");
            }
        }
        self.pool.close().await;
        Ok(outcome)
    }
}

casino_observability::impl_service!(Application {
    settings: Settings,
    name: "room-service",
    metric_prefix: "room",
    env_prefix: ENV_PREFIX,
    default_public_port: DEFAULTS.public_port,
});
