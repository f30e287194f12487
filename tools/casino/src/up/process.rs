//! Child processes of a local stack: spawn with a log file, wait for `/readyz`, stop through the
//! process's own graceful shutdown (SIGTERM, then SIGKILL past a deadline).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Signals `casino up` sends.
#[derive(Debug, Clone, Copy)]
pub enum Signal {
    /// SIGTERM: graceful shutdown.
    Terminate,
    /// SIGINT (PostgreSQL's fast shutdown).
    Interrupt,
}

/// Send `signal` to process `pid` (errors, such as an already gone process, are ignored).
#[allow(unsafe_code)]
pub fn send_signal(pid: u32, signal: Signal) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    let signal = match signal {
        Signal::Terminate => libc::SIGTERM,
        Signal::Interrupt => libc::SIGINT,
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Children of `casino up` get SIGTERM when it dies and inherit none of the embedded broker's sockets
/// (otherwise a connection the broker "closed" stays open in the child and clients wait on it forever after
/// `casino fault kafka-down`).
pub use casino_testkit::process::isolate;

/// How to (re)start one process.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Name shown to the user (`vault`, `prometheus`, ...).
    pub name: String,
    /// Program.
    pub program: PathBuf,
    /// Arguments.
    pub args: Vec<String>,
    /// Extra environment (on top of ours).
    pub env: Vec<(String, String)>,
    /// Where stdout and stderr go (appended).
    pub log: PathBuf,
    /// URL that answers 200 once the process is ready.
    pub ready_url: Option<String>,
    /// How long to wait for readiness.
    pub ready_timeout: Duration,
    /// How long a graceful stop may take before SIGKILL.
    pub stop_timeout: Duration,
}

/// A running (or stopped) child.
#[derive(Debug)]
pub struct Managed {
    /// How it was started.
    pub spec: Spec,
    child: Option<tokio::process::Child>,
}

impl Managed {
    /// Start `spec` and wait until it is ready.
    pub async fn start(spec: Spec, http: &reqwest::Client) -> anyhow::Result<Self> {
        let mut managed = Self { spec, child: None };
        managed.restart(http).await?;
        Ok(managed)
    }

    /// Process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(tokio::process::Child::id)
    }

    /// Whether the process runs.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// `Some(status)` once when the process ended without being asked to.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// (Re)start the process and wait for readiness; an already running process is left alone.
    pub async fn restart(&mut self, http: &reqwest::Client) -> anyhow::Result<()> {
        if self.is_running() {
            return Ok(());
        }
        let spec = &self.spec;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log)
            .with_context(|| format!("opening {}", spec.log.display()))?;
        let mut cmd = std::process::Command::new(&spec.program);
        cmd.args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // Own process group: a Ctrl-C in the terminal reaches only `casino up`, which stops children in
        // order; the parent-death signal covers `casino up` being killed outright.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        isolate(&mut cmd);
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.kill_on_drop(true);
        // Not while the embedded broker is being taken down or up (see `casino_testkit::process`).
        let child = casino_testkit::process::spawning(|| cmd.spawn())
            .with_context(|| format!("starting {} ({})", spec.name, spec.program.display()))?;
        self.child = Some(child);
        self.wait_ready(http).await
    }

    async fn wait_ready(&mut self, http: &reqwest::Client) -> anyhow::Result<()> {
        let Some(url) = self.spec.ready_url.clone() else {
            return Ok(());
        };
        let deadline = Instant::now() + self.spec.ready_timeout;
        let mut last;
        loop {
            if let Some(status) = self.exited() {
                bail!(
                    "{} exited before becoming ready ({status}); see {}",
                    self.spec.name,
                    self.spec.log.display()
                );
            }
            match http.get(&url).timeout(Duration::from_secs(2)).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => {
                    last = format!(
                        "{}: {}",
                        response.status(),
                        response.text().await.unwrap_or_default()
                    );
                }
                Err(error) => last = error.to_string(),
            }
            if Instant::now() > deadline {
                self.stop().await;
                bail!(
                    "{} did not become ready within {} s (last {url}: {}); see {}",
                    self.spec.name,
                    self.spec.ready_timeout.as_secs(),
                    last.chars().take(300).collect::<String>(),
                    self.spec.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Graceful stop: SIGTERM, wait, SIGKILL past the deadline. Returns the exit status when known.
    pub async fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        if let Some(pid) = child.id() {
            send_signal(pid, Signal::Terminate);
        }
        match tokio::time::timeout(self.spec.stop_timeout, child.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => {
                eprintln!(
                    "casino: {} did not stop within {} s; killing it",
                    self.spec.name,
                    self.spec.stop_timeout.as_secs()
                );
                let _ = child.kill().await;
                child.wait().await.ok()
            }
        }
    }
}
