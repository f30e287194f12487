//! The two listeners of every service, wired with health, metrics, limits and graceful shutdown.
//!
//! - public port: the service's API, `/livez`, `/readyz`;
//! - admin port: the service's internal routes, `/metrics`, `/health`.
//!
//! Both get the HTTP RED metrics and request spans, a JSON 404/405, a 64 KiB body limit and a panic guard
//! that answers 500 with the JSON error body instead of dropping the connection. Handlers can read the
//! TCP peer address with `axum::extract::ConnectInfo<SocketAddr>` (a request extension on both ports).

use std::any::Any;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axum::{
    Router,
    extract::{DefaultBodyLimit, State},
    http::{StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::get,
};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

use crate::{
    ServiceInfo,
    health::{self, HealthRegistry},
    http::{error_response, method_not_allowed, not_found},
    lifecycle::{Lifecycle, ShutdownOutcome},
    metrics::{capture_route, track_http},
};

/// Largest request body any service accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Where to listen.
#[derive(Debug, Clone, Copy)]
pub struct ServerConfig {
    /// Public (ALB) listener; port 0 picks a free port.
    pub public_addr: SocketAddr,
    /// Admin listener (metrics, health, internal API); port 0 picks a free port.
    pub admin_addr: SocketAddr,
}

/// A service bound to its two ports, ready to run.
pub struct Server {
    public_listener: TcpListener,
    admin_listener: TcpListener,
    public_router: Router,
    admin_router: Router,
    health: HealthRegistry,
    lifecycle: Lifecycle,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("public", &self.public_listener.local_addr().ok())
            .field("admin", &self.admin_listener.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Bind both ports and assemble the routers. `public` and `admin` carry the service's own routes.
    pub async fn bind(
        config: ServerConfig,
        info: &ServiceInfo,
        health: HealthRegistry,
        lifecycle: Lifecycle,
        public: Router,
        admin: Router,
    ) -> anyhow::Result<Self> {
        let handle = crate::metrics::install(info);
        let public_listener = TcpListener::bind(config.public_addr)
            .await
            .with_context(|| format!("binding the public port {}", config.public_addr))?;
        let admin_listener = TcpListener::bind(config.admin_addr)
            .await
            .with_context(|| format!("binding the admin port {}", config.admin_addr))?;
        let public_router = instrument(public.merge(health.public_routes()));
        let admin_router = instrument(
            admin.merge(health.admin_routes()).merge(
                Router::new()
                    .route("/metrics", get(render_metrics))
                    .with_state((handle, health.clone())),
            ),
        );
        Ok(Self {
            public_listener,
            admin_listener,
            public_router,
            admin_router,
            health,
            lifecycle,
        })
    }

    /// The bound public address.
    pub fn public_addr(&self) -> SocketAddr {
        self.public_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serve until shutdown is requested on the lifecycle, then drain (see [`crate::lifecycle`]).
    pub async fn run(self) -> anyhow::Result<ShutdownOutcome> {
        let Self {
            public_listener,
            admin_listener,
            public_router,
            admin_router,
            health,
            lifecycle,
        } = self;
        tracing::info!(
            public_addr = %public_listener.local_addr()?,
            admin_addr = %admin_listener.local_addr()?,
            "listening"
        );
        let refresher = health.clone();
        let token = lifecycle.token();
        lifecycle.spawn("health-refresh", async move {
            refresher.refresh_until(Duration::from_secs(5), token).await;
        });

        let stop = lifecycle.stop_accepting_token();
        let public = tokio::spawn(
            axum::serve(
                public_listener,
                public_router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .into_future(),
        );
        let admin = tokio::spawn(
            axum::serve(
                admin_listener,
                admin_router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(stop.cancelled_owned())
            .into_future(),
        );

        lifecycle.shutdown_requested().await;
        health.set_draining();
        tracing::info!("readiness is now 503, draining");
        let outcome = lifecycle
            .drain(async {
                for (name, server) in [("public", public), ("admin", admin)] {
                    match server.await {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => {
                            tracing::error!(listener = name, error = %error, "server stopped with an error")
                        }
                        Err(error) => {
                            tracing::error!(listener = name, error = %error, "server task failed")
                        }
                    }
                }
            })
            .await;
        Ok(outcome)
    }
}

/// Add the shared layers to a router whose routes are all registered.
pub fn instrument(router: Router) -> Router {
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn(capture_route))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(track_http))
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "request handler panicked");
    metrics::counter!("http_server_panics_total").increment(1);
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "internal error",
    )
}

async fn render_metrics(
    State((handle, health)): State<(PrometheusHandle, HealthRegistry)>,
) -> impl IntoResponse {
    health::record_details(&health);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(&handle),
    )
}
