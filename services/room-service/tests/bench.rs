//! `casino bench room` (tools/casino/src/bench/room.rs, compiled into this test) end to end at a small
//! scale: it starts Room-Service (the real binary, with its own PostgreSQL and broker) and the Node
//! reference server, and every socket gets every message. No timing is asserted.
//!
//! The same code at full scale, with the figures printed:
//! `CASINO_BENCH_ROOM_SOCKETS=10000 cargo test --release -p casino-room-service --test bench -- --nocapture`

#[path = "../../../tools/casino/src/bench/room.rs"]
#[allow(dead_code)]
mod room;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_room_benchmark_runs_against_room_service_and_the_node_reference() {
    let args = room::Args {
        url: std::env::var("CASINO_BENCH_ROOM_URL").ok(),
        admin_url: None,
        server_pid: std::env::var("CASINO_BENCH_ROOM_PID")
            .ok()
            .and_then(|p| p.parse().ok()),
        signing_key: std::env::var("ROOM_SERVICE_JWT_SIGNING_KEY").ok(),
        server_bin: Some(
            std::env::var("CASINO_BENCH_ROOM_SERVER_BIN")
                .unwrap_or_else(|_| env!("CARGO_BIN_EXE_casino-room-service").into())
                .into(),
        ),
        sockets: env_usize("CASINO_BENCH_ROOM_SOCKETS", 200),
        connect_concurrency: env_usize("CASINO_BENCH_ROOM_CONCURRENCY", 100),
        messages: env_usize("CASINO_BENCH_ROOM_MESSAGES", 3),
        burst: env_usize("CASINO_BENCH_ROOM_BURST", 3),
        room: "game:bench".into(),
        skip_node: std::env::var("CASINO_BENCH_ROOM_SKIP_NODE").is_ok(),
        node_dir: None,
    };
    let mut reports = Vec::new();
    // The same steps as room::run, keeping the reports to check them.
    {
        let server = room::RoomServer::start(&args).await.unwrap();
        reports.push(server.scenario("room-service", &args).await.unwrap());
        server.stop().await;
    }
    if !args.skip_node {
        let node = room::NodeServer::start(&args).await.unwrap();
        reports.push(node.scenario("node socket.io 4.8", &args).await.unwrap());
        node.stop().await;
    }
    room::print_reports(&reports);
    for report in &reports {
        assert_eq!(report.connected, args.sockets, "{}", report.name);
        assert_eq!(
            report.latency_deliveries.1, report.latency_deliveries.0,
            "{}",
            report.name
        );
        assert_eq!(
            report.burst_deliveries.1, report.burst_deliveries.0,
            "{}",
            report.name
        );
        assert!(report.rss_after.is_some(), "{}", report.name);
    }
}
