//! Vault as a black box: the real application on port 0, a fresh database, the embedded Kafka broker.

use casino_testkit::process::{SafeSpawn as _, command};
use casino_testkit::service::{
    RunningService, assert_refused_at_start, assert_start_fails_without_database, get_json,
};
use std::time::Duration;

use casino_observability::lifecycle::ShutdownOutcome;
use casino_testkit::{kafka::TestKafka, postgres::TestDatabase};
use casino_vault::{config::Settings, startup::Application};
use serde_json::Value;

struct TestApp {
    service: RunningService,
    kafka: TestKafka,
    _db: TestDatabase,
}

async fn spawn_app() -> TestApp {
    let db = TestDatabase::create(&casino_vault::startup::MIGRATOR)
        .await
        .unwrap();
    let kafka = TestKafka::start(&casino_events::topics::ALL).unwrap();
    let settings = Settings::with_common(casino_testkit::service_settings(
        &db.url,
        kafka.bootstrap_servers(),
    ));
    let app = Application::build(settings).await.unwrap();
    TestApp {
        service: RunningService::start(app.public_addr(), app.admin_addr(), app),
        kafka,
        _db: db,
    }
}

impl TestApp {
    async fn stop(self) -> ShutdownOutcome {
        self.service.stop().await
    }
}

fn check<'a>(health: &'a Value, name: &str) -> &'a Value {
    health["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {health}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_is_ready_with_its_database_and_reports_dependencies_on_the_admin_port() {
    let app = spawn_app().await;
    let (status, ready) = get_json(&format!("{}/readyz", app.service.public)).await;
    assert_eq!(status, 200, "{ready}");
    let (status, health) = get_json(&format!("{}/health", app.service.admin)).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["service"], "vault");
    assert_eq!(check(&health, "database")["status"], "ok");
    assert_eq!(check(&health, "kafka")["status"], "ok");
    assert!(health["details"]["db_pool"]["max"].as_u64() == Some(5));
    assert!(
        !health.to_string().contains("test-internal-token"),
        "secrets never appear in /health"
    );

    let metrics = app.service.metrics().await;
    assert!(metrics.contains("vault_build_info{"), "{metrics}");
    assert!(metrics.contains("db_pool_connections_max"));
    assert!(metrics.contains("service_ready"));
    assert_eq!(app.stop().await, ShutdownOutcome::Clean);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_down_degrades_vault_but_keeps_it_ready() {
    let app = spawn_app().await;
    app.kafka.broker_down().unwrap();
    // The kafka check result is cached for a few seconds; wait for a fresh failing one.
    let mut health = Value::Null;
    for _ in 0..40 {
        health = get_json(&format!("{}/health", app.service.admin)).await.1;
        if health["status"] == "degraded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(check(&health, "kafka")["status"], "degraded");
    let (status, _) = get_json(&format!("{}/readyz", app.service.public)).await;
    assert_eq!(status, 200, "Kafka being down never makes Vault unready");
    app.kafka.broker_up().unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_healthcheck_subcommand_reports_the_live_process() {
    let app = spawn_app().await;
    let binary = env!("CARGO_BIN_EXE_casino-vault");
    let healthy = command(binary)
        .arg("healthcheck")
        .env("VAULT_PUBLIC_ADDR", app.service.public_addr.to_string())
        .safe_output()
        .unwrap();
    assert_eq!(healthy.status.code(), Some(0), "{healthy:?}");
    let public_addr = app.service.public_addr;
    app.stop().await;
    let unhealthy = command(binary)
        .arg("healthcheck")
        .env("VAULT_PUBLIC_ADDR", public_addr.to_string())
        .safe_output()
        .unwrap();
    assert_eq!(unhealthy.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_retried_then_fails_start_with_the_cause() {
    let settings =
        Settings::with_common(casino_testkit::service_settings_without_database("vault"));
    assert_start_fails_without_database("vault", Application::build(settings)).await;
}

#[test]
fn a_bad_setting_stops_the_process_with_one_clear_line() {
    assert_refused_at_start(
        command(env!("CARGO_BIN_EXE_casino-vault")).env("VAULT_PUBLIC_ADDR", "not-an-address"),
        "vault: configuration error: VAULT_PUBLIC_ADDR: expected an address like 0.0.0.0:8080, got \"not-an-address\"",
    );
}
