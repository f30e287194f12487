//! The real binary under SIGTERM: a connected official client is told the server is shutting down and
//! is disconnected (so it reconnects elsewhere), and the process exits 0.

mod support;

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use casino_testkit::process::SafeSpawn as _;
use support::{Node, TestEnv};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(unsafe_code)]
async fn sigterm_disconnects_clients_with_the_shutdown_reason_and_exits_zero() {
    let env = TestEnv::start().await;
    let mut child = casino_testkit::process::command(env!("CARGO_BIN_EXE_casino-room-service"))
        .env("ROOM_SERVICE_DATABASE_URL", &env.db.url)
        .env("ROOM_SERVICE_KAFKA_BROKERS", env.kafka.bootstrap_servers())
        .env("ROOM_SERVICE_PUBLIC_ADDR", "127.0.0.1:0")
        .env("ROOM_SERVICE_ADMIN_ADDR", "127.0.0.1:0")
        .env("ROOM_SERVICE_JWT_SIGNING_KEY", &env.seed)
        .env("ROOM_SERVICE_SHUTDOWN_TIMEOUT_SECONDS", "15")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .safe_spawn()
        .unwrap();
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let stdout = child.stdout.take().unwrap();
    let collected = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            collected.lock().unwrap().push(line);
        }
    });
    let public = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = lines.lock().unwrap().iter().find_map(|line| {
                let value: serde_json::Value = serde_json::from_str(line).ok()?;
                (value["message"] == "listening")
                    .then(|| value["public_addr"].as_str().map(str::to_owned))
                    .flatten()
            });
            if let Some(addr) = found {
                break format!("http://{addr}");
            }
            assert!(
                Instant::now() < deadline,
                "no listening line: {:?}",
                lines.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };

    let node = Node::start().await;
    node.connect_as("player", &public, &env.token(Uuid::now_v7()))
        .await;
    assert_eq!(node.unread_count("player").await, 0);

    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);

    let notice = node.event("player", "server.shutdown").await;
    assert_eq!(notice[0]["reason"], "server_shutdown");
    assert_eq!(node.disconnected("player").await, "transport close");

    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the process did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0), "{:?}", lines.lock().unwrap());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let logs = lines.lock().unwrap();
    assert!(
        logs.iter()
            .any(|l| l.contains("socket disconnected") && l.contains("server_shutdown")),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|l| l.contains("shutdown complete")),
        "{logs:?}"
    );
}
