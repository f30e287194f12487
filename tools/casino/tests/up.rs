//! `casino up` as a user runs it: a real process that starts Postgres, the embedded broker, the three
//! services, the probe and (when installed) Prometheus, and stops all of them on SIGTERM.

mod support;

use std::process::Command;

use casino::stack::StackInfo;
use support::{Up, casino, run_dir};

fn alive(pid: u32) -> bool {
    // A zombie (exited, not yet reaped) is not running.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread")]
async fn casino_up_starts_everything_and_stops_it_all_cleanly_on_sigterm() {
    let mut up = Up::start("up-clean", &[], &[]);
    let (info, run_dir) = (up.info.clone(), up.run_dir.clone());

    let http = reqwest::Client::new();
    for urls in [&info.vault, &info.concierge, &info.room_service] {
        let ready = http
            .get(format!("{}/readyz", urls.public_url))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200, "{} is ready", urls.public_url);
        let metrics = http
            .get(format!("{}/metrics", urls.admin_url))
            .send()
            .await
            .unwrap();
        assert_eq!(metrics.status(), 200);
        assert!(metrics.text().await.unwrap().contains("service_ready"));
    }
    // The README's hand-placed bet works against it.
    let bet = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/try-a-bet"
    ))
    .env("CASINO_RUN_DIR", &run_dir)
    .output()
    .unwrap();
    let answer = String::from_utf8_lossy(&bet.stdout);
    assert!(
        bet.status.success() && answer.contains(r#""status":"ok""#),
        "scripts/try-a-bet: {answer}\n{}",
        String::from_utf8_lossy(&bet.stderr)
    );
    let pids: Vec<u32> = info.processes.iter().filter_map(|p| p.pid).collect();
    assert!(
        pids.len() >= 4,
        "services and probe run: {:?}",
        info.processes
    );
    let postgres_pids = postgres_children(info.pid);
    assert!(
        !postgres_pids.is_empty(),
        "postgres runs as a child of casino up"
    );

    let (exit, stdout, stderr) = up.stop();
    assert!(
        exit.success(),
        "exit 0 after a clean stop: {exit}\n{stderr}"
    );
    for pid in pids.iter().chain(&postgres_pids) {
        assert!(!alive(*pid), "process {pid} is left behind\n{stderr}");
    }
    for service in ["vault", "concierge", "room-service"] {
        assert!(
            stderr.contains(&format!("casino: {service} stopped (exit status: 0)")),
            "{service} went through its graceful shutdown:\n{stderr}"
        );
    }
    assert!(!StackInfo::path(&run_dir).exists(), "stack.json is removed");
    assert!(
        !run_dir.join("pgdata").exists(),
        "the throwaway database is removed"
    );
    assert!(
        stdout.contains(&info.vault.public_url),
        "the table lists the services:\n{stdout}"
    );
}

#[test]
fn a_port_in_use_is_one_clear_line_and_nothing_starts() {
    let run_dir = run_dir("up-busy");
    // Hold Vault's documented public port (or find it already taken, which is the same situation).
    let _held = std::net::TcpListener::bind("127.0.0.1:8081");
    let output = casino()
        .args(["up", "--ports", "fixed", "--no-prometheus", "--run-dir"])
        .arg(&run_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("vault public port 8081") && stderr.contains("already in use"),
        "{stderr}"
    );
    assert!(!StackInfo::path(&run_dir).exists());
    assert!(!run_dir.join("pgdata").exists(), "no database was started");
    let _ = std::fs::remove_dir_all(&run_dir);
}

/// Child `postgres` processes of `parent` (the server is started directly by casino up).
fn postgres_children(parent: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let after = stat
            .rsplit_once(") ")
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        let ppid: u32 = after
            .split(' ')
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if ppid == parent && stat.contains("(postgres)") {
            pids.push(pid);
        }
    }
    pids
}
