//! Graceful shutdown, shared by every service (blueprint §6).
//!
//! On SIGTERM or SIGINT: readiness turns 503 → wait the drain delay (the load balancer deregisters the task)
//! → stop accepting connections → in-flight requests finish → background tasks are cancelled and awaited
//! (consumers commit their offsets, the outbox relay flushes) → the service closes its pool and flushes
//! telemetry → exit 0. A hard deadline, counted from the signal, exits 1; a second signal exits 1 at once.
//!
//! One [`Lifecycle`] per process: a [`CancellationToken`] for background work and a [`TaskTracker`] to wait
//! for it. Background tasks are spawned with [`Lifecycle::spawn`] and must return when
//! [`Lifecycle::token`] is cancelled.

use std::time::Duration;

use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// How long after the deadline the backstop thread kills a process whose orderly exit is stuck.
pub const BACKSTOP_GRACE: Duration = Duration::from_secs(1);

/// Timing of the shutdown sequence.
#[derive(Debug, Clone, Copy)]
pub struct ShutdownConfig {
    /// How long readiness answers 503 before the listeners close (ALB deregistration delay; 0 locally).
    pub drain_delay: Duration,
    /// Hard deadline from the signal to exit; past it the process exits 1 (and is killed by a backstop
    /// [`BACKSTOP_GRACE`] later if even that hangs). Keep it, plus the grace, below ECS `stopTimeout`.
    pub timeout: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            drain_delay: Duration::ZERO,
            timeout: Duration::from_secs(25),
        }
    }
}

/// How a shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownOutcome {
    /// Everything finished before the deadline: exit 0.
    Clean,
    /// Something was still running at the deadline: exit 1.
    DeadlineExceeded,
}

impl ShutdownOutcome {
    /// The process exit code for this outcome.
    pub fn exit_code(self) -> i32 {
        match self {
            Self::Clean => 0,
            Self::DeadlineExceeded => 1,
        }
    }
}

/// The process's shutdown coordination. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    requested: CancellationToken,
    stop_accepting: CancellationToken,
    background: CancellationToken,
    tracker: TaskTracker,
    config: ShutdownConfig,
}

impl Lifecycle {
    /// A lifecycle with the given timing.
    pub fn new(config: ShutdownConfig) -> Self {
        Self {
            requested: CancellationToken::new(),
            stop_accepting: CancellationToken::new(),
            background: CancellationToken::new(),
            tracker: TaskTracker::new(),
            config,
        }
    }

    /// The timing this lifecycle was built with.
    pub fn config(&self) -> ShutdownConfig {
        self.config
    }

    /// Cancelled when background tasks must stop (after in-flight requests finished).
    pub fn token(&self) -> CancellationToken {
        self.background.clone()
    }

    /// Cancelled as soon as shutdown is requested (before the drain delay): for work that must react
    /// early, such as telling socket clients to reconnect elsewhere.
    pub fn shutdown_requested_token(&self) -> CancellationToken {
        self.requested.clone()
    }

    /// Cancelled when the listeners must stop accepting (after the drain delay).
    pub fn stop_accepting_token(&self) -> CancellationToken {
        self.stop_accepting.clone()
    }

    /// The tracker every background task is spawned on.
    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// Spawn a background task that shutdown waits for. It must watch [`Lifecycle::token`].
    pub fn spawn<F>(&self, name: &'static str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(async move {
            task.await;
            tracing::debug!(task = name, "background task stopped");
        });
    }

    /// Begin the shutdown sequence (what the first signal does).
    pub fn request_shutdown(&self) {
        self.requested.cancel();
    }

    /// Resolves when shutdown has been requested.
    pub async fn shutdown_requested(&self) {
        self.requested.cancelled().await;
    }

    /// Turn SIGTERM and SIGINT into [`Lifecycle::request_shutdown`]; a second signal exits 1 at once, and
    /// the hard deadline exits 1 even if the runtime is wedged. Binaries call this; in-process tests use
    /// [`Lifecycle::request_shutdown`] instead.
    pub fn listen_for_signals(&self) {
        let lifecycle = self.clone();
        tokio::spawn(async move {
            let mut signals = Signals::new();
            signals.recv().await;
            tracing::info!(
                drain_delay_ms = lifecycle.config.drain_delay.as_millis() as u64,
                timeout_ms = lifecycle.config.timeout.as_millis() as u64,
                "shutdown signal received, draining"
            );
            lifecycle.request_shutdown();
            // The orderly path ends at the deadline (logs, flushes telemetry, exits 1); this plain thread
            // is the backstop a moment later, and holds even if every runtime worker is stuck.
            let timeout = lifecycle.config.timeout + BACKSTOP_GRACE;
            std::thread::spawn(move || {
                std::thread::sleep(timeout);
                eprintln!(
                    "{{\"level\":\"ERROR\",\"message\":\"shutdown deadline of {} ms exceeded, exiting 1\"}}",
                    timeout.as_millis()
                );
                std::process::exit(1);
            });
            signals.recv().await;
            eprintln!(
                "{{\"level\":\"ERROR\",\"message\":\"second shutdown signal, exiting 1 now\"}}"
            );
            std::process::exit(1);
        });
    }

    /// Run the sequence after shutdown was requested: drain delay, stop accepting, then wait (until the
    /// deadline) for `servers` (in-flight requests) and then the background tasks.
    pub(crate) async fn drain<F>(&self, servers: F) -> ShutdownOutcome
    where
        F: Future<Output = ()>,
    {
        let deadline = tokio::time::Instant::now() + self.config.timeout;
        tokio::time::sleep(self.config.drain_delay).await;
        self.stop_accepting.cancel();
        tracing::info!("stopped accepting connections, finishing in-flight requests");
        let finished = tokio::time::timeout_at(deadline, async {
            servers.await;
            tracing::info!("in-flight requests finished, stopping background tasks");
            self.background.cancel();
            self.tracker.close();
            self.tracker.wait().await;
        })
        .await;
        match finished {
            Ok(()) => {
                tracing::info!("shutdown complete");
                ShutdownOutcome::Clean
            }
            Err(_) => {
                tracing::error!(
                    timeout_ms = self.config.timeout.as_millis() as u64,
                    background_tasks_left = self.tracker.len(),
                    "shutdown deadline exceeded"
                );
                ShutdownOutcome::DeadlineExceeded
            }
        }
    }
}

/// SIGTERM and SIGINT, installed once so no signal between two waits is lost.
struct Signals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let streams = match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(term), Ok(int)) => Some((term, int)),
                _ => {
                    tracing::error!(
                        "cannot install signal handlers; only ctrl-c will stop the process"
                    );
                    None
                }
            };
            Self { streams }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some((term, int)) = &mut self.streams {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
