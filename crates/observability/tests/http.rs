//! In-process black-box tests of the shared HTTP stack: real listeners on port 0, real HTTP.

use std::time::Duration;

use axum::{Router, routing::get};
use casino_observability::{
    ServiceInfo,
    health::{Check, HealthRegistry},
    http::ErrorBody,
    lifecycle::{Lifecycle, ShutdownConfig, ShutdownOutcome},
    server::{Server, ServerConfig},
};
use serde_json::Value;

struct App {
    public: String,
    admin: String,
    lifecycle: Lifecycle,
    handle: tokio::task::JoinHandle<anyhow::Result<ShutdownOutcome>>,
}

async fn spawn_app(health: HealthRegistry) -> App {
    let info = ServiceInfo::new("http-test", "httptest", "9.9.9", "test");
    let lifecycle = Lifecycle::new(ShutdownConfig {
        drain_delay: Duration::ZERO,
        timeout: Duration::from_secs(5),
    });
    let public = Router::new()
        .route("/api/v1/players/{id}", get(|| async { "ok" }))
        .route(
            "/boom",
            get(|| async {
                if std::hint::black_box(true) {
                    panic!("kaboom");
                }
                "unreachable"
            }),
        );
    let server = Server::bind(
        ServerConfig {
            public_addr: "127.0.0.1:0".parse().unwrap(),
            admin_addr: "127.0.0.1:0".parse().unwrap(),
        },
        &info,
        health,
        lifecycle.clone(),
        public,
        Router::new(),
    )
    .await
    .unwrap();
    let public = format!("http://{}", server.public_addr());
    let admin = format!("http://{}", server.admin_addr());
    let handle = tokio::spawn(server.run());
    App {
        public,
        admin,
        lifecycle,
        handle,
    }
}

fn info() -> ServiceInfo {
    ServiceInfo::new("http-test", "httptest", "9.9.9", "test")
}

#[tokio::test]
async fn requests_are_counted_by_route_template_never_by_raw_path() {
    let app = spawn_app(HealthRegistry::new(info())).await;
    let http = reqwest::Client::new();
    for id in ["123", "456"] {
        let response = http
            .get(format!("{}/api/v1/players/{id}", app.public))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let missing = http
        .get(format!("{}/no/such/path", app.public))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: ErrorBody = missing.json().await.unwrap();
    assert_eq!(body.error.code, "not_found");

    let metrics = http
        .get(format!("{}/metrics", app.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted = |route: &str, status: &str| {
        metrics.lines().find(|line| {
            line.starts_with("http_server_requests_total{")
                && line.contains(&format!("route=\"{route}\""))
                && line.contains(&format!("status=\"{status}\""))
                && line.contains("method=\"GET\"")
        })
    };
    let line = counted("/api/v1/players/{id}", "200").expect("templated route counted");
    assert!(line.ends_with(" 2"), "{line}");
    assert!(counted("unmatched", "404").is_some(), "{metrics}");
    assert!(
        !metrics.contains("/api/v1/players/123"),
        "raw paths never become labels"
    );
    assert!(metrics.contains("http_server_request_duration_seconds_bucket{"));
    assert!(
        metrics.contains("le=\"0.1\""),
        "histograms have an SLO bucket at 100 ms"
    );
    assert!(metrics.contains("httptest_build_info{"));
    assert!(metrics.contains("git_sha="));
    for process_metric in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(metrics.contains(process_metric), "missing {process_metric}");
    }
    assert!(metrics.contains("service=\"http-test\""));
    app.lifecycle.request_shutdown();
    assert_eq!(app.handle.await.unwrap().unwrap(), ShutdownOutcome::Clean);
}

#[tokio::test]
async fn a_panicking_handler_answers_500_with_the_json_error_body() {
    let app = spawn_app(HealthRegistry::new(info())).await;
    let response = reqwest::get(format!("{}/boom", app.public)).await.unwrap();
    assert_eq!(response.status(), 500);
    let body: ErrorBody = response.json().await.unwrap();
    assert_eq!(body.error.code, "internal_error");
    assert_eq!(
        body.error.message, "internal error",
        "5xx bodies hide internals"
    );
    app.lifecycle.request_shutdown();
    app.handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn readiness_follows_required_checks_and_health_shows_optional_failures_as_degraded() {
    let health = HealthRegistry::new(info());
    health.register(Check::required("database", || async { Ok(()) }));
    health.register(Check::optional("kafka", || async {
        Err("all brokers down".into())
    }));
    let app = spawn_app(health.clone()).await;
    let http = reqwest::Client::new();

    let ready = http
        .get(format!("{}/readyz", app.public))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert!(
        !body.to_string().contains("all brokers down"),
        "the public port never shows error details"
    );

    let detail: Value = http
        .get(format!("{}/health", app.admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["status"], "degraded");
    assert_eq!(detail["version"], "9.9.9");
    assert!(detail["uptime_seconds"].is_u64());
    let kafka = detail["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "kafka")
        .unwrap();
    assert_eq!(kafka["status"], "degraded");
    assert_eq!(kafka["error"], "all brokers down");
    assert!(kafka["latency_ms"].is_number());

    assert_eq!(
        http.get(format!("{}/livez", app.public))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.lifecycle.request_shutdown();
    app.handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_failing_required_check_makes_readyz_503() {
    let health = HealthRegistry::new(info());
    health.register(Check::required("database", || async {
        Err("connection refused".into())
    }));
    let app = spawn_app(health).await;
    let ready = reqwest::get(format!("{}/readyz", app.public))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"][0]["status"], "failing");
    app.lifecycle.request_shutdown();
    app.handle.await.unwrap().unwrap();
}
