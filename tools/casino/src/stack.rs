//! What `casino up` started, written to `<run dir>/stack.json` so that `casino sim`, `casino fault` and the
//! end-to-end tests find the stack without being told every address.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// Default run directory of `casino up` (`--run-dir` / `CASINO_RUN_DIR` override it).
pub const DEFAULT_RUN_DIR: &str = "/tmp/casino-up";

/// The run directory from the environment, or the default.
pub fn default_run_dir() -> PathBuf {
    std::env::var_os("CASINO_RUN_DIR").map_or_else(|| PathBuf::from(DEFAULT_RUN_DIR), PathBuf::from)
}

/// One service's addresses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceUrls {
    /// Public base URL (`http://127.0.0.1:8081`).
    pub public_url: String,
    /// Admin base URL (`/metrics`, `/internal/v1`).
    pub admin_url: String,
    /// Where the service's JSON log goes.
    pub log_file: PathBuf,
}

/// A signed game provider the stack accepts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GameProvider {
    /// Provider id (`x-casino-provider`).
    pub name: String,
    /// HMAC secret.
    pub secret: String,
}

/// Staff credentials (the bootstrap admin).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
}

/// Everything a client of a local stack needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StackInfo {
    /// The run directory (logs, configs, this file).
    pub run_dir: PathBuf,
    /// Process id of `casino up`.
    pub pid: u32,
    /// The loopback control endpoint used by `casino fault`.
    pub control_url: String,
    /// Vault.
    pub vault: ServiceUrls,
    /// Concierge.
    pub concierge: ServiceUrls,
    /// Room-Service.
    pub room_service: ServiceUrls,
    /// Kafka bootstrap servers.
    pub kafka_brokers: String,
    /// PostgreSQL server URL without a database name (databases: vault, concierge, room_service).
    pub database_url: String,
    /// Prometheus base URL, when Prometheus runs.
    pub prometheus_url: Option<String>,
    /// The chat probe's metrics URL, when it runs.
    pub probe_metrics_url: Option<String>,
    /// The game provider `casino sim` plays as.
    pub game_provider: GameProvider,
    /// Sandbox payment providers configured in Vault.
    pub psp_providers: Vec<String>,
    /// The bootstrap admin.
    pub admin: Credentials,
    /// Bearer token of the services' `/internal/v1`.
    pub internal_token: String,
    /// Base64 Ed25519 seed Vault signs access tokens with (local stacks only).
    pub jwt_signing_key: String,
    /// The child processes at start (pids change when `casino fault stop/start` restarts one).
    pub processes: Vec<ProcessInfo>,
    /// Whether the database server came from `DATABASE_URL` (left running at stop).
    pub database_external: bool,
}

/// One child process of `casino up`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// `vault`, `concierge`, `room-service`, `chat-probe`, `prometheus`.
    pub name: String,
    /// Process id while it runs.
    pub pid: Option<u32>,
}

impl StackInfo {
    /// `<run dir>/stack.json`.
    pub fn path(run_dir: &Path) -> PathBuf {
        run_dir.join("stack.json")
    }

    /// Read the description of the stack running from `run_dir`.
    pub fn load(run_dir: &Path) -> anyhow::Result<Self> {
        let path = Self::path(run_dir);
        let raw = std::fs::read(&path).with_context(|| {
            format!(
                "no stack description at {} (is `casino up` running with this --run-dir?)",
                path.display()
            )
        })?;
        serde_json::from_slice(&raw).with_context(|| format!("reading {}", path.display()))
    }

    /// Write it (atomically: readers never see half a file).
    pub fn save(&self) -> anyhow::Result<()> {
        let path = Self::path(&self.run_dir);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
    }
}
