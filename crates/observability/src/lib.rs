//! What every casino service shares to be observable and well-behaved in production.
//!
//! - [`telemetry`]: one call ([`init_telemetry`]) sets up JSON logs on stdout carrying the current trace and
//!   span ids, `RUST_LOG` filtering, and OTLP trace export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//! - [`metrics`]: the Prometheus recorder, the HTTP RED layer (`http_server_requests_total`,
//!   `http_server_request_duration_seconds` by method, route template and status), build info and process
//!   CPU/memory/fd gauges.
//! - [`health`]: a registry of named async checks with timeouts and a short cache, behind `/livez`,
//!   `/readyz` (public port) and `/health` (admin port).
//! - [`lifecycle`]: the shared graceful shutdown (readiness 503, drain delay, stop accepting, finish
//!   in-flight requests, stop background tasks, hard deadline, second signal).
//! - [`server`]: binds the public and admin ports and serves a service's routers with all of the above.
//! - [`http`]: the JSON error body every service answers with, and the fallbacks that use it.
//! - [`service`]: the `main` every service binary shares, the [`service::Service`] trait it runs and
//!   [`impl_service!`], which implements that trait for a service's `Application`.
//! - [`startup`]: retrying a dependency (the database) that is still starting.
//!
//! A service's `main` calls [`init_telemetry`], builds its routers and a [`server::Server`], then runs
//! it with [`lifecycle::Lifecycle::listen_for_signals`].

pub mod health;
pub mod http;
pub mod lifecycle;
pub mod metrics;
pub mod server;
pub mod service;
pub mod settings;
pub mod startup;
pub mod telemetry;

pub use telemetry::{TelemetryGuard, init_telemetry};

/// Who is running: used for log fields, metric labels, `/health` and the OTLP resource.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    /// Service name as it appears in logs, traces and the `service` metric label (`vault`, `room-service`).
    pub name: &'static str,
    /// Prefix of the service's own metrics (`vault`, `concierge`, `room`).
    pub metric_prefix: &'static str,
    /// Crate version.
    pub version: &'static str,
    /// Git commit the binary was built from (`CASINO_GIT_SHA` at build time), or `unknown`.
    pub git_sha: &'static str,
    /// Deployment environment (`local`, `staging`, `production`).
    pub env: String,
}

impl ServiceInfo {
    /// Service info for `name`, with the git sha captured at build time.
    pub fn new(
        name: &'static str,
        metric_prefix: &'static str,
        version: &'static str,
        env: impl Into<String>,
    ) -> Self {
        Self {
            name,
            metric_prefix,
            version,
            git_sha: option_env!("CASINO_GIT_SHA").unwrap_or("unknown"),
            env: env.into(),
        }
    }
}
