//! Concierge as a black box: the real application on port 0, a fresh database, the embedded Kafka broker.

use casino_testkit::process::command;
use casino_testkit::service::{
    RunningService, assert_refused_at_start, assert_start_fails_without_database,
};

use std::time::Duration;

use casino_auth::{extract::TokenVerifier, jwt::JwtSigner};
use casino_concierge::{config::Settings, startup::Application};
use casino_testkit::{kafka::TestKafka, postgres::TestDatabase};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concierge_is_ready_serves_metrics_and_stops_cleanly() {
    let db = TestDatabase::empty().await.unwrap();
    let kafka = TestKafka::start(&casino_events::topics::ALL).unwrap();
    let settings = Settings::new(
        casino_testkit::service_settings(&db.url, kafka.bootstrap_servers()),
        TokenVerifier::Local(JwtSigner::generate(Duration::from_secs(900)).verifier()),
    );
    let app = Application::build(settings).await.unwrap();
    let service = RunningService::start(app.public_addr(), app.admin_addr(), app);
    service
        .assert_ready_and_healthy("concierge", "concierge")
        .await;
    assert_eq!(service.stop().await.exit_code(), 0);
}

#[test]
fn a_bad_setting_stops_the_process_with_one_clear_line() {
    assert_refused_at_start(
        command(env!("CARGO_BIN_EXE_casino-concierge"))
            .env("CONCIERGE_SHUTDOWN_TIMEOUT_SECONDS", "soon"),
        "concierge: configuration error: CONCIERGE_SHUTDOWN_TIMEOUT_SECONDS: expected a whole number of seconds, got \"soon\"",
    );
}

#[test]
fn production_without_the_vault_internal_token_is_refused_at_start() {
    assert_refused_at_start(
        command(env!("CARGO_BIN_EXE_casino-concierge"))
            .env("CONCIERGE_ENV", "production")
            .env_remove("CONCIERGE_VAULT_INTERNAL_TOKEN"),
        "concierge: configuration error: CONCIERGE_VAULT_INTERNAL_TOKEN: required in production (the reconciler calls Vault's internal API)",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_fails_the_start_with_a_clear_error_after_retrying() {
    let settings = Settings::new(
        casino_testkit::service_settings_without_database("concierge"),
        TokenVerifier::Local(JwtSigner::generate(Duration::from_secs(900)).verifier()),
    );
    assert_start_fails_without_database("concierge", Application::build(settings)).await;
}
