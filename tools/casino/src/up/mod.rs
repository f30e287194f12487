//! `casino up`: the whole platform on this machine, no Docker, nothing to configure.
//!
//! Order: PostgreSQL ([`postgres`]; throwaway, `--data-dir`, or `DATABASE_URL`), the embedded Kafka broker
//! on a fixed bootstrap address ([`kafka`]; or `KAFKA_BROKERS`), Vault, Concierge and Room-Service as
//! separate processes (`casino serve <service>`, each waited for on `/readyz`; [`process`]), the chat probe,
//! and Prometheus with the rules in `alerts/` when it is installed. Then it writes `<run dir>/stack.json`,
//! prints where everything is, serves the loopback control endpoint ([`control`]) that `casino fault`
//! uses, and waits for Ctrl-C/SIGTERM to stop everything in reverse order.

pub mod control;
pub mod kafka;
pub mod postgres;
pub mod process;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use rand::RngCore as _;
use tokio_util::sync::CancellationToken;

use crate::stack::{Credentials, GameProvider, ServiceUrls, StackInfo};
use process::{Managed, Spec};

/// Port layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Ports {
    /// The documented local ports (8081-8083, 9081-9083, 9092, 9090, 5432, ...).
    Fixed,
    /// Free ports chosen at start (several stacks side by side, tests).
    Auto,
}

/// Arguments of `casino up`.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "up-options")]
pub struct Args {
    /// Keep PostgreSQL data (and the stack's generated secrets) in this directory between runs.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Where logs, configs and stack.json go.
    #[arg(long, env = "CASINO_RUN_DIR", default_value = crate::stack::DEFAULT_RUN_DIR)]
    pub run_dir: PathBuf,
    /// Port layout.
    #[arg(long, value_enum, default_value = "fixed")]
    pub ports: Ports,
    /// Directory of Prometheus rule files (`*.rules.yml`) to load.
    #[arg(long)]
    pub rules_dir: Option<PathBuf>,
    /// Do not start Prometheus even when it is installed.
    #[arg(long)]
    pub no_prometheus: bool,
    /// Seconds each service may take to become ready.
    #[arg(long, default_value_t = 90)]
    pub ready_timeout: u64,
    /// Also run the player simulator (`casino sim` with the options below) once the stack is up.
    #[arg(long)]
    pub sim: bool,
    /// Simulator options (used with --sim).
    #[command(flatten)]
    pub sim_args: crate::sim::Args,
}

/// The services, in start order.
pub const SERVICES: [&str; 3] = ["vault", "concierge", "room-service"];

struct Layout {
    vault: (SocketAddr, SocketAddr),
    concierge: (SocketAddr, SocketAddr),
    room: (SocketAddr, SocketAddr),
    postgres: u16,
    prometheus: SocketAddr,
    probe: SocketAddr,
    control: SocketAddr,
}

/// Secrets of one stack (kept in `--data-dir` so tokens and logins survive a restart).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Secrets {
    jwt_signing_key: String,
    internal_token: String,
    game_provider_secret: String,
    psp_secrets: Vec<(String, String)>,
    admin_password: String,
}

impl Secrets {
    fn generate() -> Self {
        let random = |n: usize| {
            let mut bytes = vec![0u8; n];
            rand::thread_rng().fill_bytes(&mut bytes);
            bytes
        };
        let token = |n: usize| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random(n));
        Self {
            jwt_signing_key: base64::engine::general_purpose::STANDARD.encode(random(32)),
            internal_token: token(24),
            game_provider_secret: token(24),
            psp_secrets: vec![
                ("sandbox".into(), token(24)),
                ("sandbox-b".into(), token(24)),
            ],
            // Vault's password rule wants a letter and a digit; random base64 may have no digit.
            admin_password: format!(
                "staff-{}-{}",
                token(12),
                rand::Rng::gen_range(&mut rand::thread_rng(), 10..100)
            ),
        }
    }

    fn load_or_generate(data_dir: Option<&Path>) -> anyhow::Result<Self> {
        let Some(dir) = data_dir else {
            return Ok(Self::generate());
        };
        let path = dir.join("secrets.json");
        if let Ok(raw) = std::fs::read(&path) {
            return serde_json::from_slice(&raw)
                .with_context(|| format!("reading {}", path.display()));
        }
        let secrets = Self::generate();
        std::fs::write(&path, serde_json::to_vec_pretty(&secrets)?)
            .with_context(|| format!("writing {}", path.display()))?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        Ok(secrets)
    }
}

const ADMIN_EMAIL: &str = "admin@casino.local";
const GAME_PROVIDER: &str = "sim-games";

/// Reserve every port up front so a conflict is one clear line before anything starts. The listeners are
/// dropped (or handed over) just before the processes that use them start.
fn reserve(
    ports: Ports,
    external_db: bool,
    external_kafka: bool,
) -> anyhow::Result<(Layout, HashMap<&'static str, TcpListener>)> {
    let wanted: [(&'static str, u16, bool); 11] = [
        ("vault public", 8081, false),
        ("vault admin", 9081, false),
        ("concierge public", 8082, false),
        ("concierge admin", 9082, false),
        ("room-service public", 8083, false),
        ("room-service admin", 9083, false),
        ("kafka bootstrap", 9092, external_kafka),
        ("postgres", 5432, external_db),
        ("prometheus", 9090, false),
        ("chat probe", 9100, false),
        ("control", 9099, false),
    ];
    let mut listeners = HashMap::new();
    let mut addrs = HashMap::new();
    let mut conflicts = Vec::new();
    for (what, port, unused) in wanted {
        let port = if ports == Ports::Auto || unused {
            0
        } else {
            port
        };
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(listener) => {
                addrs.insert(what, listener.local_addr()?);
                listeners.insert(what, listener);
            }
            Err(error) => conflicts.push(format!("{what} port {port} ({error})")),
        }
    }
    if !conflicts.is_empty() {
        bail!(
            "cannot start: {} already in use; stop what uses it, or run `casino up --ports auto`",
            conflicts.join(", ")
        );
    }
    let layout = Layout {
        vault: (addrs["vault public"], addrs["vault admin"]),
        concierge: (addrs["concierge public"], addrs["concierge admin"]),
        room: (addrs["room-service public"], addrs["room-service admin"]),
        postgres: addrs["postgres"].port(),
        prometheus: addrs["prometheus"],
        probe: addrs["chat probe"],
        control: addrs["control"],
    };
    Ok((layout, listeners))
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// The repository's `alerts/` (rule files), found next to the sources or in the working directory.
fn default_rules_dir() -> PathBuf {
    let from_sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../alerts");
    if from_sources.is_dir() {
        from_sources.canonicalize().unwrap_or(from_sources)
    } else {
        PathBuf::from("alerts")
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

/// Settings every service gets: addresses, database, broker, env, shutdown and the shared internal token.
fn common_env(
    prefix: &str,
    public: SocketAddr,
    admin: SocketAddr,
    database_url: String,
    kafka: &str,
    secrets: &Secrets,
) -> Vec<(String, String)> {
    [
        ("PUBLIC_ADDR", public.to_string()),
        ("ADMIN_ADDR", admin.to_string()),
        ("DATABASE_URL", database_url),
        ("KAFKA_BROKERS", kafka.to_owned()),
        ("ENV", "local".to_owned()),
        ("DRAIN_DELAY_SECONDS", "0".to_owned()),
        ("SHUTDOWN_TIMEOUT_SECONDS", "15".to_owned()),
        ("INTERNAL_TOKEN", secrets.internal_token.clone()),
    ]
    .into_iter()
    .map(|(name, value)| (format!("{prefix}_{name}"), value))
    .collect()
}

/// Everything `casino up` runs, in start order; stopped in reverse.
pub struct Stack {
    /// What clients need.
    pub info: StackInfo,
    /// The processes (services, probe, Prometheus) by name.
    pub processes: tokio::sync::Mutex<Vec<Managed>>,
    /// The broker.
    pub kafka: kafka::Kafka,
    /// The database server.
    pub database: tokio::sync::Mutex<Option<postgres::Database>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// Run `casino up` until Ctrl-C/SIGTERM; the exit code.
pub async fn run(args: Args) -> anyhow::Result<i32> {
    let cancel = CancellationToken::new();
    spawn_signal_watch(cancel.clone());
    let stack = match start(&args, &cancel).await {
        Ok(stack) => Arc::new(stack),
        Err(error) => {
            eprintln!("casino: {error:#}");
            eprintln!("casino: stopped (nothing left running)");
            return Ok(1);
        }
    };
    print_table(&stack.info);
    let control_task = tokio::spawn(control::serve(stack.clone(), cancel.clone()));
    let watch_task = tokio::spawn(watch_processes(stack.clone(), cancel.clone()));
    let sim_task = args.sim.then(|| {
        let (sim_args, info, cancel) = (args.sim_args.clone(), stack.info.clone(), cancel.clone());
        tokio::spawn(async move {
            match crate::sim::run(&sim_args, &info, cancel.child_token()).await {
                Ok(summary) => {
                    summary.print();
                    eprintln!(
                        "casino: the simulation ended; the stack keeps running (Ctrl-C stops it)"
                    );
                }
                Err(error) => eprintln!("casino: the simulation failed: {error:#}"),
            }
        })
    });
    cancel.cancelled().await;
    eprintln!("casino: stopping");
    if let Some(task) = sim_task {
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    }
    let _ = control_task.await;
    let _ = watch_task.await;
    let stack = Arc::try_unwrap(stack).map_err(|_| anyhow::anyhow!("the stack is still in use"))?;
    let clean = stop(stack).await;
    eprintln!("casino: stopped");
    Ok(if clean { 0 } else { 1 })
}

fn spawn_signal_watch(cancel: CancellationToken) {
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(error) => {
                    eprintln!("casino: cannot watch SIGTERM: {error}");
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        cancel.cancel();
        // A second signal while stopping: the user insists; children die with us (parent-death signal).
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("casino: second signal, exiting now");
        std::process::exit(130);
    });
}

async fn start(args: &Args, cancel: &CancellationToken) -> anyhow::Result<Stack> {
    let run_dir = &args.run_dir;
    claim_run_dir(run_dir)?;
    let logs = run_dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    if let Some(dir) = &args.data_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let secrets = Secrets::load_or_generate(args.data_dir.as_deref())?;
    let external_db = std::env::var("DATABASE_URL").ok().filter(|v| !v.is_empty());
    let external_kafka = std::env::var("KAFKA_BROKERS")
        .ok()
        .filter(|v| !v.is_empty());
    let (layout, mut listeners) =
        reserve(args.ports, external_db.is_some(), external_kafka.is_some())?;
    let prometheus_bin = if args.no_prometheus {
        None
    } else {
        find_on_path("prometheus")
    };
    if prometheus_bin.is_none() && !args.no_prometheus {
        eprintln!(
            "casino: prometheus is not installed (apt-get install prometheus); starting without it"
        );
    }

    // 1. PostgreSQL.
    let database = match &external_db {
        Some(url) => postgres::Database::external(url)?,
        None => {
            let (data, throwaway) = match &args.data_dir {
                Some(dir) => (dir.join("postgres"), false),
                None => (run_dir.join("pgdata"), true),
            };
            if throwaway {
                let _ = std::fs::remove_dir_all(&data);
            }
            // Release the reserved port just before the server binds it.
            drop(listeners.remove("postgres"));
            eprintln!("casino: starting postgres on 127.0.0.1:{}", layout.postgres);
            postgres::Database::Local(
                postgres::LocalPostgres::start(
                    &data,
                    layout.postgres,
                    throwaway,
                    &logs.join("postgres.log"),
                )
                .await?,
            )
        }
    };
    if let Err(error) = database
        .create_databases(&["vault", "concierge", "room_service"])
        .await
    {
        database.stop().await;
        return Err(error);
    }

    // 2. Kafka.
    let kafka_listener = listeners
        .remove("kafka bootstrap")
        .filter(|_| external_kafka.is_none());
    let kafka = match kafka::Kafka::start(external_kafka.clone(), kafka_listener, cancel) {
        Ok(kafka) => kafka,
        Err(error) => {
            database.stop().await;
            return Err(error.context("starting Kafka"));
        }
    };
    eprintln!("casino: kafka on {}", kafka.bootstrap);

    // 3. Services, then the probe and Prometheus.
    drop(listeners);
    let exe = std::env::current_exe().context("locating the casino binary")?;
    let http = reqwest::Client::new();
    let ready_timeout = Duration::from_secs(args.ready_timeout);
    let mut specs = process_specs(
        &exe,
        &layout,
        &database,
        &kafka.bootstrap,
        &secrets,
        &logs,
        ready_timeout,
    );
    if let Some(prometheus) = &prometheus_bin {
        let rules = args.rules_dir.clone().unwrap_or_else(default_rules_dir);
        specs.push(prometheus_spec(
            prometheus,
            &rules,
            &layout,
            run_dir,
            &logs,
            ready_timeout,
        )?);
    }
    let mut processes: Vec<Managed> = Vec::new();
    for spec in specs {
        eprintln!("casino: starting {}", spec.name);
        match Managed::start(spec, &http).await {
            Ok(managed) => processes.push(managed),
            Err(error) => {
                for mut process in processes.into_iter().rev() {
                    process.stop().await;
                }
                database.stop().await;
                return Err(error);
            }
        }
    }
    let service_urls = |name: &str, (public, admin): (SocketAddr, SocketAddr)| ServiceUrls {
        public_url: url(public),
        admin_url: url(admin),
        log_file: logs.join(format!("{name}.log")),
    };
    let info = StackInfo {
        run_dir: run_dir.clone(),
        pid: std::process::id(),
        control_url: url(layout.control),
        vault: service_urls("vault", layout.vault),
        concierge: service_urls("concierge", layout.concierge),
        room_service: service_urls("room-service", layout.room),
        kafka_brokers: kafka.bootstrap.clone(),
        database_url: database.base_url().to_owned(),
        prometheus_url: prometheus_bin.as_ref().map(|_| url(layout.prometheus)),
        probe_metrics_url: Some(format!("{}/metrics", url(layout.probe))),
        game_provider: GameProvider {
            name: GAME_PROVIDER.into(),
            secret: secrets.game_provider_secret.clone(),
        },
        psp_providers: secrets
            .psp_secrets
            .iter()
            .map(|(name, _)| name.clone())
            .collect(),
        admin: Credentials {
            email: ADMIN_EMAIL.into(),
            password: secrets.admin_password.clone(),
        },
        internal_token: secrets.internal_token.clone(),
        jwt_signing_key: secrets.jwt_signing_key.clone(),
        processes: processes
            .iter()
            .map(|p| crate::stack::ProcessInfo {
                name: p.spec.name.clone(),
                pid: p.pid(),
            })
            .collect(),
        database_external: external_db.is_some(),
    };
    info.save()?;
    Ok(Stack {
        info,
        processes: tokio::sync::Mutex::new(processes),
        kafka,
        database: tokio::sync::Mutex::new(Some(database)),
        http,
    })
}

/// Refuse a run directory another live `casino up` uses; clear a stale one.
fn claim_run_dir(run_dir: &Path) -> anyhow::Result<()> {
    if let Ok(existing) = StackInfo::load(run_dir) {
        if Path::new(&format!("/proc/{}", existing.pid)).exists()
            && existing.pid != std::process::id()
        {
            bail!(
                "another `casino up` (pid {}) is running from {}; stop it or use --run-dir",
                existing.pid,
                run_dir.display()
            );
        }
        let _ = std::fs::remove_file(StackInfo::path(run_dir));
    }
    std::fs::create_dir_all(run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    // The postgres user must be able to reach a throwaway data directory inside it.
    std::fs::set_permissions(run_dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn process_specs(
    exe: &Path,
    layout: &Layout,
    database: &postgres::Database,
    kafka: &str,
    secrets: &Secrets,
    logs: &Path,
    ready_timeout: Duration,
) -> Vec<Spec> {
    let vault_url = url(layout.vault.0);
    let spec =
        |name: &str, args: Vec<String>, env: Vec<(String, String)>, ready: Option<String>| Spec {
            name: name.to_owned(),
            program: exe.to_owned(),
            args,
            env,
            log: logs.join(format!("{name}.log")),
            ready_url: ready,
            ready_timeout,
            stop_timeout: Duration::from_secs(20),
        };
    let serve = |name: &str| vec!["serve".to_owned(), name.to_owned()];

    let mut vault = common_env(
        "VAULT",
        layout.vault.0,
        layout.vault.1,
        database.url("vault"),
        kafka,
        secrets,
    );
    vault.extend([
        (
            "VAULT_JWT_SIGNING_KEY".into(),
            secrets.jwt_signing_key.clone(),
        ),
        (
            "VAULT_GAME_PROVIDER_SECRETS".into(),
            format!("{GAME_PROVIDER}={}", secrets.game_provider_secret),
        ),
        (
            "VAULT_PSP_PROVIDERS".into(),
            secrets
                .psp_secrets
                .iter()
                .map(|(name, secret)| format!("{name}={secret}"))
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("VAULT_ADMIN_EMAIL".into(), ADMIN_EMAIL.into()),
        (
            "VAULT_ADMIN_PASSWORD".into(),
            secrets.admin_password.clone(),
        ),
        ("VAULT_PUBLIC_URL".into(), vault_url.clone()),
        ("VAULT_RECONCILE_INTERVAL_SECONDS".into(), "5".into()),
    ]);
    let mut concierge = common_env(
        "CONCIERGE",
        layout.concierge.0,
        layout.concierge.1,
        database.url("concierge"),
        kafka,
        secrets,
    );
    concierge.extend([
        ("CONCIERGE_VAULT_URL".into(), vault_url.clone()),
        ("CONCIERGE_VAULT_INTERNAL_URL".into(), url(layout.vault.1)),
        (
            "CONCIERGE_VAULT_INTERNAL_TOKEN".into(),
            secrets.internal_token.clone(),
        ),
        // Short windows locally, so a run of a few minutes is reconciled while you watch.
        ("CONCIERGE_VERIFY_INTERVAL_SECONDS".into(), "10".into()),
        ("CONCIERGE_RECONCILE_INTERVAL_SECONDS".into(), "5".into()),
        ("CONCIERGE_RECONCILE_WINDOW_SECONDS".into(), "60".into()),
        ("CONCIERGE_RECONCILE_GRACE_SECONDS".into(), "15".into()),
    ]);
    let mut room = common_env(
        "ROOM_SERVICE",
        layout.room.0,
        layout.room.1,
        database.url("room_service"),
        kafka,
        secrets,
    );
    room.extend([
        ("ROOM_SERVICE_VAULT_URL".into(), vault_url.clone()),
        ("ROOM_SERVICE_INSTANCE_ID".into(), "local-1".into()),
    ]);
    let probe_args = vec![
        "probe".to_owned(),
        "chat".to_owned(),
        "--serve".to_owned(),
        layout.probe.to_string(),
        "--interval".to_owned(),
        "5".to_owned(),
        "--vault-url".to_owned(),
        vault_url,
        "--room-url".to_owned(),
        url(layout.room.0),
    ];
    let probe_env = vec![(
        "PROBE_SIGNING_KEY".to_owned(),
        secrets.jwt_signing_key.clone(),
    )];
    // A service variable already set in our environment wins over these local defaults (for example
    // CONCIERGE_RECONCILE_WINDOW_SECONDS=10 for a quick reconciliation); children inherit it as is.
    let ours = |mut env: Vec<(String, String)>| {
        env.retain(|(name, _)| std::env::var_os(name).is_none());
        env
    };
    let (vault, concierge, room) = (ours(vault), ours(concierge), ours(room));
    vec![
        spec(
            "vault",
            serve("vault"),
            vault,
            Some(format!("{}/readyz", url(layout.vault.0))),
        ),
        spec(
            "concierge",
            serve("concierge"),
            concierge,
            Some(format!("{}/readyz", url(layout.concierge.0))),
        ),
        spec(
            "room-service",
            serve("room-service"),
            room,
            Some(format!("{}/readyz", url(layout.room.0))),
        ),
        spec(
            "chat-probe",
            probe_args,
            probe_env,
            Some(format!("{}/metrics", url(layout.probe))),
        ),
    ]
}

fn prometheus_spec(
    program: &Path,
    rules: &Path,
    layout: &Layout,
    run_dir: &Path,
    logs: &Path,
    ready_timeout: Duration,
) -> anyhow::Result<Spec> {
    if !rules.is_dir() {
        bail!(
            "the rules directory {} does not exist (--rules-dir)",
            rules.display()
        );
    }
    let dir = run_dir.join("prometheus");
    std::fs::create_dir_all(&dir)?;
    let rules = rules.canonicalize().unwrap_or_else(|_| rules.to_owned());
    let config = prometheus_config(layout, &rules);
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, config)
        .with_context(|| format!("writing {}", config_path.display()))?;
    let data = dir.join("data");
    let _ = std::fs::remove_dir_all(&data);
    Ok(Spec {
        name: "prometheus".into(),
        program: program.to_owned(),
        args: vec![
            format!("--config.file={}", config_path.display()),
            format!("--storage.tsdb.path={}", data.display()),
            format!("--web.listen-address={}", layout.prometheus),
            "--web.enable-lifecycle".into(),
        ],
        env: Vec::new(),
        log: logs.join("prometheus.log"),
        ready_url: Some(format!("{}/-/ready", url(layout.prometheus))),
        ready_timeout,
        stop_timeout: Duration::from_secs(20),
    })
}

/// Prometheus configuration for a local stack: the same job names as docker-compose and ECS.
fn prometheus_config(layout: &Layout, rules: &Path) -> String {
    format!(
        "# Written by `casino up`; job names match deploy/compose/prometheus/prometheus.yml.
global:
  scrape_interval: 5s
  evaluation_interval: 5s
  external_labels:
    env: local
rule_files:
  - {rules}/*.rules.yml
scrape_configs:
  - job_name: vault
    static_configs: [{{targets: [\"{vault}\"]}}]
  - job_name: concierge
    static_configs: [{{targets: [\"{concierge}\"]}}]
  - job_name: room-service
    static_configs: [{{targets: [\"{room}\"]}}]
  - job_name: chat-probe
    static_configs: [{{targets: [\"{probe}\"]}}]
  - job_name: prometheus
    static_configs: [{{targets: [\"{prometheus}\"]}}]
",
        rules = rules.display(),
        vault = layout.vault.1,
        concierge = layout.concierge.1,
        room = layout.room.1,
        probe = layout.probe,
        prometheus = layout.prometheus,
    )
}

/// Report processes that end without being asked to (they stay down until `casino fault start`).
async fn watch_processes(stack: Arc<Stack>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let mut processes = stack.processes.lock().await;
        for process in processes.iter_mut() {
            if let Some(status) = process.exited() {
                eprintln!(
                    "casino: {} exited unexpectedly ({status}); see {} (`casino fault start {}` restarts it)",
                    process.spec.name,
                    process.spec.log.display(),
                    process.spec.name
                );
            }
        }
    }
}

/// Stop in reverse order; whether every service stopped cleanly (exit 0).
async fn stop(stack: Stack) -> bool {
    let mut clean = true;
    let mut processes = stack.processes.into_inner();
    while let Some(mut process) = processes.pop() {
        let name = process.spec.name.clone();
        if let Some(status) = process.stop().await {
            eprintln!("casino: {name} stopped ({status})");
            if !status.success() && SERVICES.contains(&name.as_str()) {
                clean = false;
            }
        }
    }
    drop(stack.kafka);
    eprintln!("casino: kafka stopped");
    if let Some(database) = stack.database.into_inner() {
        database.stop().await;
        eprintln!("casino: postgres stopped");
    }
    let _ = std::fs::remove_file(StackInfo::path(&stack.info.run_dir));
    drop(stack.http);
    clean
}

fn print_table(info: &StackInfo) {
    let mut out = String::new();
    let row = |out: &mut String, name: &str, a: &str, b: &str, c: &str| {
        out.push_str(&format!("  {name:<14} {a:<26} {b:<26} {c}\n"));
    };
    out.push_str(&format!(
        "\ncasino up: the platform is running (run dir {})\n\n",
        info.run_dir.display()
    ));
    row(
        &mut out,
        "service",
        "public",
        "admin (/metrics)",
        "log (JSON)",
    );
    for (name, urls) in [
        ("vault", &info.vault),
        ("concierge", &info.concierge),
        ("room-service", &info.room_service),
    ] {
        row(
            &mut out,
            name,
            &urls.public_url,
            &urls.admin_url,
            &urls.log_file.display().to_string(),
        );
    }
    out.push('\n');
    let kafka_kind = if std::env::var("KAFKA_BROKERS").is_ok() {
        "KAFKA_BROKERS"
    } else {
        "embedded broker"
    };
    out.push_str(&format!(
        "  kafka          {} ({kafka_kind})\n",
        info.kafka_brokers
    ));
    out.push_str(&format!(
        "  postgres       {} ({})\n",
        casino_observability::settings::redact_url(&info.database_url),
        if info.database_external {
            "DATABASE_URL"
        } else {
            "started here"
        }
    ));
    match &info.prometheus_url {
        Some(url) => out.push_str(&format!(
            "  prometheus     {url} (rules from alerts/, alerts at {url}/alerts)\n"
        )),
        None => out.push_str("  prometheus     not running (install the `prometheus` package)\n"),
    }
    if let Some(url) = &info.probe_metrics_url {
        out.push_str(&format!("  chat probe     {url}\n"));
    }
    out.push_str(&format!(
        "  control        {} (used by `casino fault`)\n",
        info.control_url
    ));
    out.push_str(&format!(
        "  staff login    {} / {}\n",
        info.admin.email, info.admin.password
    ));
    out.push_str(&format!(
        "  game provider  {} (HMAC secret in {})\n",
        info.game_provider.name,
        StackInfo::path(&info.run_dir).display()
    ));
    out.push_str(&format!(
        "\nTry:\n  curl -s {v}/readyz\n  curl -s {va}/metrics | grep ^vault_\n  cargo run --release -p casino -- sim --duration 60\n  \
         cargo run --release -p casino -- fault kafka-down --for 30s\n  cargo run --release -p casino -- fault stop room-service\n\n\
         Logs: {logs}/<service>.log. Ctrl-C stops everything.\n",
        v = info.vault.public_url,
        va = info.vault.admin_url,
        logs = info.run_dir.join("logs").display(),
    ));
    println!("{out}");
}

/// `casino serve <service>`: run one service in this process (how `casino up` starts them).
pub fn serve(service: &str) -> ! {
    let version = env!("CARGO_PKG_VERSION");
    match service {
        "vault" => {
            casino_observability::service::main::<casino_vault::startup::Application>(version)
        }
        "concierge" => {
            casino_observability::service::main::<casino_concierge::startup::Application>(version)
        }
        "room-service" => casino_observability::service::main::<
            casino_room_service::startup::Application,
        >(version),
        other => {
            eprintln!("casino: unknown service {other:?} (vault, concierge, room-service)");
            std::process::exit(2)
        }
    }
}
