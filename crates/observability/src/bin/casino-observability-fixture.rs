//! A tiny service built only from this crate, used by the crate's process-level tests (real signals,
//! real sockets, real OTLP export). Not deployed.
//!
//! Environment: `FIXTURE_DRAIN_DELAY_MS`, `FIXTURE_SHUTDOWN_TIMEOUT_MS`, `FIXTURE_STUBBORN_TASK=1` (a
//! background task that ignores cancellation), plus the standard `OTEL_*` and `RUST_LOG`.

use std::time::Duration;

use axum::{Router, extract::Query, routing::get};
use casino_observability::{
    ServiceInfo,
    health::{Check, HealthRegistry},
    init_telemetry,
    lifecycle::{Lifecycle, ShutdownConfig},
    server::{Server, ServerConfig},
};

fn env_ms(name: &str, default: u64) -> Duration {
    Duration::from_millis(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

#[derive(serde::Deserialize)]
struct Slow {
    ms: u64,
}

fn main() -> anyhow::Result<()> {
    let info = ServiceInfo::new("fixture", "fixture", env!("CARGO_PKG_VERSION"), "test");
    let telemetry = init_telemetry(&info)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let outcome = runtime.block_on(async {
        let lifecycle = Lifecycle::new(ShutdownConfig {
            drain_delay: env_ms("FIXTURE_DRAIN_DELAY_MS", 0),
            timeout: env_ms("FIXTURE_SHUTDOWN_TIMEOUT_MS", 10_000),
        });
        lifecycle.listen_for_signals();
        let health = HealthRegistry::new(info.clone());
        health.register(Check::required("always", || async { Ok(()) }));
        if std::env::var("FIXTURE_STUBBORN_TASK").is_ok_and(|v| v == "1") {
            lifecycle.spawn("stubborn", async {
                // Ignores the cancellation token on purpose.
                tokio::time::sleep(Duration::from_secs(3600)).await;
            });
        }
        let public = Router::new()
            .route(
                "/slow",
                get(|Query(q): Query<Slow>| async move {
                    tracing::info!(ms = q.ms, "slow request started");
                    tokio::time::sleep(Duration::from_millis(q.ms)).await;
                    "done"
                }),
            )
            .route(
                "/api/v1/players/{id}",
                get(|| async {
                    tracing::info!("player looked up");
                    "player"
                }),
            );
        let server = Server::bind(
            ServerConfig {
                public_addr: "127.0.0.1:0".parse()?,
                admin_addr: "127.0.0.1:0".parse()?,
            },
            &info,
            health,
            lifecycle,
            public,
            Router::new(),
        )
        .await?;
        server.run().await
    })?;
    drop(runtime);
    telemetry.shutdown();
    std::process::exit(outcome.exit_code());
}
