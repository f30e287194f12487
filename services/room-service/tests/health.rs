//! Room-Service as a black box: the real application on port 0, a fresh database, the embedded Kafka broker.

use casino_testkit::process::{SafeSpawn as _, command};

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
    let public = format!("http://{}", app.public_addr());
    let admin = format!("http://{}", app.admin_addr());
    let lifecycle = app.lifecycle().clone();
    let running = tokio::spawn(app.run_until_stopped());

    let ready = reqwest::get(format!("{public}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let health: serde_json::Value = reqwest::get(format!("{admin}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["service"], "room-service");
    assert_eq!(health["status"], "ok", "{health}");
    let metrics = reqwest::get(format!("{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("room_build_info{"), "{metrics}");

    lifecycle.request_shutdown();
    let outcome = running.await.unwrap().unwrap();
    assert_eq!(outcome.exit_code(), 0);
}

#[test]
fn a_bad_setting_stops_the_process_with_one_clear_line() {
    let output = command(env!("CARGO_BIN_EXE_casino-room-service"))
        .env("ROOM_SERVICE_SHUTDOWN_TIMEOUT_SECONDS", "soon")
        .safe_output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(output.stderr).unwrap().trim(),
        "room-service: configuration error: ROOM_SERVICE_SHUTDOWN_TIMEOUT_SECONDS: expected a whole number of seconds, got \"soon\""
    );
}
