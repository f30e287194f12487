//! Room-Service as a black box: the real application on port 0, a fresh database, the embedded Kafka broker.

use casino_testkit::process::command;
use casino_testkit::service::{
    RunningService, assert_refused_at_start, assert_start_fails_without_database,
};

use casino_room_service::{config::Settings, startup::Application};
use casino_testkit::{kafka::TestKafka, postgres::TestDatabase};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_service_is_ready_serves_metrics_and_stops_cleanly() {
    let db = TestDatabase::empty().await.unwrap();
    let kafka = TestKafka::start(&casino_events::topics::ALL).unwrap();
    let signer = casino_auth::jwt::JwtSigner::generate(std::time::Duration::from_secs(60));
    let settings = Settings::for_tests(
        casino_testkit::service_settings(&db.url, kafka.bootstrap_servers()),
        casino_auth::extract::TokenVerifier::Local(signer.verifier()),
    );
    let app = Application::build(settings).await.unwrap();
    let service = RunningService::start(app.public_addr(), app.admin_addr(), app);
    service
        .assert_ready_and_healthy("room-service", "room")
        .await;
    assert_eq!(service.stop().await.exit_code(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_retried_then_fails_start_with_the_cause() {
    let signer = casino_auth::jwt::JwtSigner::generate(std::time::Duration::from_secs(60));
    let settings = Settings::for_tests(
        casino_testkit::service_settings_without_database("room_service"),
        casino_auth::extract::TokenVerifier::Local(signer.verifier()),
    );
    assert_start_fails_without_database("room_service", Application::build(settings)).await;
}

#[test]
fn a_bad_setting_stops_the_process_with_one_clear_line() {
    assert_refused_at_start(
        command(env!("CARGO_BIN_EXE_casino-room-service"))
            .env("ROOM_SERVICE_SHUTDOWN_TIMEOUT_SECONDS", "soon"),
        "room-service: configuration error: ROOM_SERVICE_SHUTDOWN_TIMEOUT_SECONDS: expected a whole number of seconds, got \"soon\"",
    );
}
