//! `casino probe chat` (tools/casino/src/probe.rs, compiled into this test) against a real Room-Service.

#[path = "../../../tools/casino/src/probe.rs"]
#[allow(dead_code)]
mod probe;
mod support;

use std::time::Duration;

use support::TestEnv;

fn args(env: &TestEnv, room_url: &str) -> probe::Args {
    probe::Args {
        room_url: room_url.to_owned(),
        vault_url: "http://127.0.0.1:1".into(),
        email: None,
        password: None,
        token: None,
        signing_key: Some(env.seed.clone()),
        room: "game:probe".into(),
        timeout: 10,
        serve: None,
        interval: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_probe_passes_against_a_working_room_service_and_fails_without_one() {
    let env = TestEnv::start().await;
    let app = env.app().await;
    app.wait_until_live(&env).await;
    assert_eq!(probe::run(args(&env, &app.public)).await.unwrap(), 0);

    // --serve: attempts on an interval, metrics for Prometheus.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut serving = args(&env, &app.public);
    serving.serve = Some(([127, 0, 0, 1], port).into());
    let task = tokio::spawn(probe::run(serving));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = match reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains("probe_success{probe=\"chat\"} 1") {
            assert!(
                text.contains("probe_duration_seconds{probe=\"chat\"} "),
                "{text}"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    task.abort();

    assert_eq!(app.stop().await.exit_code(), 0);
    let mut down = args(&env, "http://127.0.0.1:1");
    down.timeout = 3;
    assert_eq!(probe::run(down).await.unwrap(), 1, "chat is down");
}
