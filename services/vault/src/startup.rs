//! Builds the application the binary and the tests run.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use casino_auth::{Role, extract::TokenVerifier, jwt::JwtSigner};
use casino_messaging::{KafkaConfig, Producer};
use casino_observability::{
    ServiceInfo,
    health::{self, HealthRegistry},
    lifecycle::{Lifecycle, ShutdownOutcome},
    server::Server,
    startup::wait_for_database,
};
use sqlx::postgres::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{
    abuse::AbuseDetector,
    config::{DEFAULTS, ENV_PREFIX, Settings},
    domain::credentials::{Email, Password},
    ledger::{self, Ledger, bets::BetBatcher, currencies::CurrencyBook},
    payments::{PaymentProvider, SandboxProvider, SandboxPsp, Urls},
    rates::{DeterministicFeed, RatesCache},
    routes,
    state::{AppState, Inner},
};

/// Vault's migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A built Vault, bound to its ports, background tasks running.
pub struct Application {
    server: Server,
    lifecycle: Lifecycle,
    pool: PgPool,
    producer: Producer,
    public_addr: SocketAddr,
    admin_addr: SocketAddr,
}

impl Application {
    /// Connect (waiting for `VAULT_DATABASE_CONNECT_TIMEOUT_SECONDS`), migrate, build routers, bind, start
    /// background tasks.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let common = settings.common.clone();
        let info = ServiceInfo::new(
            "vault",
            "vault",
            env!("CARGO_PKG_VERSION"),
            common.env.clone(),
        );
        let lifecycle = Lifecycle::new(common.shutdown);
        let pool = common.lazy_pool("VAULT_DATABASE_URL")?;
        wait_for_database(&pool, common.database_connect_timeout, "vault").await?;
        MIGRATOR
            .run(&pool)
            .await
            .context("running Vault's database migrations")?;
        let currencies = CurrencyBook::default();
        currencies.load(&pool).await.context("loading currencies")?;
        let rates = RatesCache::new(Arc::new(DeterministicFeed));
        rates.refresh().await.context("loading exchange rates")?;
        let signer = match &settings.jwt_signing_key {
            Some(seed) => JwtSigner::from_seed_base64(seed, settings.access_token_ttl)?,
            None => {
                tracing::warn!(
                    "VAULT_JWT_SIGNING_KEY is not set: using a random key, tokens die with this process"
                );
                JwtSigner::generate(settings.access_token_ttl)
            }
        };
        let producer = Producer::new(
            &KafkaConfig::from_settings(&common, "vault"),
            Duration::from_secs(30),
        )?;
        let psp_urls = Urls::default();
        let sandbox = SandboxPsp::new(settings.psp_providers.clone());
        let providers: HashMap<String, Arc<dyn PaymentProvider>> = settings
            .psp_providers
            .iter()
            .map(|(name, secret)| {
                let provider: Arc<dyn PaymentProvider> =
                    Arc::new(SandboxProvider::new(name, secret, psp_urls.clone()));
                (name.clone(), provider)
            })
            .collect();
        let bets = BetBatcher::start(
            pool.clone(),
            settings.bet_workers,
            lifecycle.tracker(),
            lifecycle.token(),
        );
        let state = AppState(Arc::new(Inner {
            ledger: Ledger::new(pool.clone()),
            bets,
            currencies: currencies.clone(),
            rates: rates.clone(),
            verifier: TokenVerifier::Local(signer.verifier()),
            signer,
            abuse: AbuseDetector::new(settings.abuse.clone()),
            pool: pool.clone(),
            settings: settings.clone(),
            providers,
            sandbox: sandbox.clone(),
            psp_urls: psp_urls.clone(),
        }));
        if let Some((email, password)) = &settings.bootstrap_admin {
            bootstrap_admin(&state, email, password).await?;
        }

        let health = HealthRegistry::new(info.clone());
        health::register_postgres(&health, pool.clone());
        health.register(casino_messaging::health_check(&producer));

        let public = routes::auth::router()
            .merge(routes::wallet::router())
            .merge(routes::games::router())
            .merge(routes::admin::router())
            .merge(routes::payments::router())
            .with_state(state.clone());
        let admin = routes::internal::router()
            .with_state(state.clone())
            .merge(sandbox.router());
        let server = Server::bind(
            common.server,
            &info,
            health,
            lifecycle.clone(),
            public,
            admin,
        )
        .await?;
        // The metrics recorder exists from here on.
        crate::metrics::describe(
            &currencies
                .all()
                .into_iter()
                .map(|c| c.code)
                .collect::<Vec<_>>(),
            &settings.psp_providers.keys().cloned().collect::<Vec<_>>(),
        );
        psp_urls.set(
            settings
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", loopback(server.public_addr()))),
            format!("http://{}", loopback(server.admin_addr())),
        );

        let token = lifecycle.token();
        let relay = ledger::outbox::Relay::new(pool.clone(), producer.clone(), "vault");
        lifecycle.spawn("outbox-relay", relay.clone().run(token.clone()));
        lifecycle.spawn("outbox-gauges", relay.run_backlog_gauges(token.clone()));
        lifecycle.spawn("rates", rates.run(token.clone()));
        lifecycle.spawn(
            "reconciler",
            ledger::reconciler::run(pool.clone(), settings.reconcile_every, token.clone()),
        );
        lifecycle.spawn("round-gauges", round_gauges(pool.clone(), token.clone()));
        lifecycle.spawn(
            "payments",
            routes::payments::run_payment_tasks(
                state.clone(),
                settings.payment_expiry,
                token.clone(),
            ),
        );
        lifecycle.spawn(
            "currency-reload",
            reload_currencies(currencies, pool.clone(), token),
        );

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

    /// Serve until shutdown; background tasks (including the final outbox flush) finish inside the drain;
    /// then flush the producer and close the pool.
    pub async fn run_until_stopped(self) -> anyhow::Result<ShutdownOutcome> {
        let outcome = self.server.run().await?;
        if let Err(error) = self.producer.flush(Duration::from_secs(5)) {
            tracing::warn!(error = %error, "kafka producer flush incomplete at shutdown");
        }
        self.pool.close().await;
        Ok(outcome)
    }
}

/// A wildcard listen address is reached over loopback from this host.
fn loopback(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}

async fn bootstrap_admin(state: &AppState, email: &str, password: &str) -> anyhow::Result<()> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("VAULT_ADMIN_EMAIL: {e}"))?;
    let password = Password::parse_new(password, &email)
        .map_err(|e| anyhow::anyhow!("VAULT_ADMIN_PASSWORD: {e}"))?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM players WHERE email = $1)")
        .bind(email.as_str())
        .fetch_one(&state.pool)
        .await?;
    if !exists {
        crate::routes::auth::create_account(state, &email, &password, Role::Admin, "EUR")
            .await
            .map_err(|e| anyhow::anyhow!("creating the bootstrap admin: {e}"))?;
        tracing::info!(email = email.as_str(), "bootstrap admin created");
    }
    Ok(())
}

async fn round_gauges(pool: PgPool, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {
                let row: Result<(i64, f64), sqlx::Error> = sqlx::query_as(
                    "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(opened_at)), 0)::float8
                     FROM rounds WHERE status = 'open'",
                )
                .fetch_one(&pool)
                .await;
                match row {
                    Ok((open, oldest)) => {
                        metrics::gauge!("vault_open_rounds").set(open as f64);
                        metrics::gauge!("vault_oldest_open_round_age_seconds").set(oldest);
                    }
                    Err(error) => tracing::warn!(error = %error, "could not measure open rounds"),
                }
            }
        }
    }
}

async fn reload_currencies(book: CurrencyBook, pool: PgPool, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {
                if let Err(error) = book.load(&pool).await {
                    tracing::warn!(error = %error, "could not reload currencies");
                }
            }
        }
    }
}

casino_observability::impl_service!(Application {
    settings: Settings,
    name: "vault",
    metric_prefix: "vault",
    env_prefix: ENV_PREFIX,
    default_public_port: DEFAULTS.public_port,
});
