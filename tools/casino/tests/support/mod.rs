//! Driving the `casino` binary from tests exactly as a user does: `casino up` as a child process, then
//! `casino sim` and `casino fault` against it.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use casino::stack::StackInfo;
use serde_json::Value;

/// The `casino` binary.
pub fn casino() -> Command {
    Command::new(env!("CARGO_BIN_EXE_casino"))
}

/// A fresh run directory under the temp dir.
pub fn run_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("casino-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `casino up` running as a child.
pub struct Up {
    child: Option<Child>,
    pub info: StackInfo,
    pub run_dir: PathBuf,
}

impl Up {
    /// Start `casino up --ports auto --run-dir <dir> <args>` with `env` and wait for stack.json; panics with
    /// [`Up::try_start`]'s reason (after stopping what started) when the stack does not come up.
    pub fn start(name: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::try_start(name, args, env).unwrap_or_else(|reason| panic!("{reason}"))
    }

    /// `casino fault <args>` against this stack; asserts it succeeded and returns what it printed.
    pub fn fault(&self, args: &[&str]) -> String {
        let output = casino()
            .arg("fault")
            .arg("--run-dir")
            .arg(&self.run_dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "casino fault {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Start `casino sim --run-dir <dir> --quiet --summary-json <file> <args>` as a child.
    pub fn sim(&self, args: &[&str]) -> (Child, PathBuf) {
        let summary = self.run_dir.join("sim-summary.json");
        let child = casino()
            .arg("sim")
            .arg("--run-dir")
            .arg(&self.run_dir)
            .args(["--quiet", "--summary-json"])
            .arg(&summary)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        (child, summary)
    }

    /// SIGTERM, wait (90 s at most), return the exit status and everything `casino up` printed.
    pub fn stop(&mut self) -> (ExitStatus, String, String) {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &self.info.pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(90);
        while child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "casino up did not stop within 90 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let output = child.wait_with_output().unwrap();
        (
            output.status,
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

impl Drop for Up {
    /// A failing test still stops the stack (SIGTERM: the same clean stop as `stop`); the run directory goes.
    fn drop(&mut self) {
        if let Some(child) = &mut self.child
            && matches!(child.try_wait(), Ok(None))
        {
            let _ = Command::new("kill")
                .args(["-TERM", &self.info.pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(60);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = child.kill();
        }
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

/// Wait for a child (a `casino sim`) and return its summary JSON.
pub fn finish_sim(mut child: Child, summary: &Path, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("casino sim did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "casino sim failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&std::fs::read(summary).expect("the summary is written"))
        .expect("the summary is JSON")
}

/// The value of the first sample of `name` (exact name, any labels) in a Prometheus text page.
pub fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// Poll `check` every 500 ms until it returns `Some`, or panic with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) if Instant::now() > deadline => {
                panic!("{what}: not within {timeout:?}; last: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

impl Up {
    /// Like [`Up::start`], but never leaves a half-started stack behind and does not panic: when `casino
    /// up` exits early or the stack is not up within 180 s, it is stopped (SIGTERM, then SIGKILL after
    /// 60 s) and the reason returned, with what it printed.
    pub fn try_start(name: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Self, String> {
        let run_dir = run_dir(name);
        let mut child = casino()
            .args(["up", "--ports", "auto", "--run-dir"])
            .arg(&run_dir)
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("casino up does not start: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Ok(info) = StackInfo::load(&run_dir) {
                return Ok(Self {
                    child: Some(child),
                    info,
                    run_dir,
                });
            }
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                if exited.is_none() {
                    let _ = Command::new("kill")
                        .args(["-TERM", &child.id().to_string()])
                        .status();
                    let stop_deadline = Instant::now() + Duration::from_secs(60);
                    while child.try_wait().ok().flatten().is_none() {
                        if Instant::now() > stop_deadline {
                            let _ = child.kill();
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
                let output = child.wait_with_output().ok();
                let mut stderr = output
                    .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .unwrap_or_default();
                // The run directory goes; keep the end of each process's log in the message.
                let mut logs: Vec<PathBuf> = std::fs::read_dir(run_dir.join("logs"))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|entry| entry.path())
                    .collect();
                logs.sort();
                for log in logs {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    let lines: Vec<&str> = text.lines().collect();
                    let tail = lines[lines.len().saturating_sub(15)..].join("\n");
                    stderr.push_str(&format!("\n--- end of {}:\n{tail}\n", log.display()));
                }
                let _ = std::fs::remove_dir_all(&run_dir);
                return Err(match exited {
                    Some(status) => {
                        format!("casino up exited before the stack was ready: {status}\n{stderr}")
                    }
                    None => format!("the stack was not up within 180 s (stopped it)\n{stderr}"),
                });
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `casino fault <args>` against this stack without panicking: what it printed, or why it failed.
    pub async fn try_fault(run_dir: &Path, args: &[&str]) -> Result<String, String> {
        let mut command = casino();
        command
            .arg("fault")
            .arg("--run-dir")
            .arg(run_dir)
            .args(args);
        let output = tokio::process::Command::from(command)
            .output()
            .await
            .map_err(|e| format!("casino fault {args:?} does not start: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
        } else {
            Err(format!(
                "casino fault {args:?} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }
}
