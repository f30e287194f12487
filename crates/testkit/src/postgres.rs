//! A throwaway PostgreSQL server per test process and a fresh database per test.
//!
//! The server runs from the machine's binaries (`PG_BINDIR`, `/usr/lib/postgresql/<newest>/bin`, or
//! `pg_config --bindir`) with durability switched off (tests do not need to survive a power cut). PostgreSQL
//! refuses to run as root, so under root it runs as the `postgres` user with a data directory it owns. When
//! the test process exits, a reaper shell (parent-death signal) stops the server and removes its directory;
//! directories of runs that were killed harder are swept by the next run.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;

use crate::process::SafeSpawn as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use sqlx::{Connection as _, Executor as _, PgConnection, PgPool, migrate::Migrator};

const ROOT: &str = "/tmp/casino-testkit";

/// `sh -c REAPER <dir> <postgres> <args...>`: runs postgres and, on SIGTERM or when postgres ends, stops it
/// and removes `<dir>`.
const REAPER: &str = r#"dir="$0"
trap 'kill -QUIT "$pid" 2>/dev/null; wait "$pid"; rm -rf "$dir"; exit 0' TERM
"$@" &
pid=$!
wait "$pid"
rm -rf "$dir"
"#;

/// The server every test of this process uses.
#[derive(Debug)]
pub struct TestPostgres {
    /// `postgres://user@host:port` without a database name.
    base_url: String,
}

static SERVER: OnceLock<Result<TestPostgres, String>> = OnceLock::new();
static DURABLE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Start the server (if this process has not yet) with PostgreSQL's default durability (fsync and
/// synchronous commit on), as benchmarks need; tests keep durability off for speed.
pub fn use_durable_server() {
    DURABLE.store(true, std::sync::atomic::Ordering::SeqCst);
}

impl TestPostgres {
    /// The shared server, started on first use (or `DATABASE_URL`'s server).
    pub fn get() -> anyhow::Result<&'static TestPostgres> {
        SERVER
            .get_or_init(|| Self::start().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.base_url)
    }

    fn start() -> anyhow::Result<Self> {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            // Keep the server part; tests create their own databases on it.
            let base = match url.rfind('/') {
                Some(i) if url[..i].contains("@") || url[..i].matches('/').count() > 2 => {
                    url[..i].to_owned()
                }
                _ => url,
            };
            return Ok(Self { base_url: base });
        }
        let bindir = find_bindir()?;
        sweep_stale_dirs();
        let dir = PathBuf::from(ROOT).join(format!(
            "pg-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let data = dir.join("data");
        std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
        let owner = server_user()?;
        if let Some((uid, gid)) = owner {
            for path in [Path::new(ROOT), dir.as_path(), data.as_path()] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .with_context(|| format!("giving {} to the postgres user", path.display()))?;
            }
        }
        let mut initdb = Command::new(bindir.join("initdb"));
        initdb
            .args(["-D"])
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some((uid, gid)) = owner {
            initdb.uid(uid).gid(gid);
        }
        crate::process::no_inherited_descriptors(&mut initdb);
        let output = initdb.safe_output().context("running initdb")?;
        if !output.status.success() {
            bail!(
                "initdb failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }

        let mut last_error = None;
        for _ in 0..5 {
            let port = free_port()?;
            match spawn_server(&bindir, &dir, &data, port, owner) {
                Ok(()) => {
                    return Ok(Self {
                        base_url: format!("postgres://postgres@127.0.0.1:{port}"),
                    });
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("postgres did not start")))
    }
}

/// Locate the PostgreSQL server binaries, or say which package to install.
pub fn find_bindir() -> anyhow::Result<PathBuf> {
    find_bindir_in(
        std::env::var("PG_BINDIR").ok(),
        Path::new("/usr/lib/postgresql"),
        true,
    )
}

fn find_bindir_in(
    explicit: Option<String>,
    versions_root: &Path,
    try_pg_config: bool,
) -> anyhow::Result<PathBuf> {
    if let Some(dir) = explicit {
        return Ok(PathBuf::from(dir));
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir(versions_root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    candidates.sort();
    if let Some((_, bin)) = candidates.pop() {
        return Ok(bin);
    }
    if try_pg_config
        && let Ok(output) = Command::new("pg_config").arg("--bindir").output()
        && output.status.success()
    {
        let bin = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if bin.join("postgres").exists() {
            return Ok(bin);
        }
    }
    bail!(
        "PostgreSQL server binaries not found (looked in $PG_BINDIR, {}/*/bin and \
         `pg_config --bindir`): install them with `apt-get install postgresql` or set DATABASE_URL",
        versions_root.display()
    )
}

/// The (uid, gid) to run the server as: the `postgres` user when we are root, `None` (ourselves) otherwise.
pub fn server_user() -> anyhow::Result<Option<(u32, u32)>> {
    let me = std::fs::metadata("/proc/self")
        .context("reading /proc/self")?
        .uid();
    if me != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    for line in passwd.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.first() == Some(&"postgres") && fields.len() > 3 {
            return Ok(Some((fields[2].parse()?, fields[3].parse()?)));
        }
    }
    bail!(
        "running as root, and PostgreSQL refuses to run as root: create the `postgres` user \
         (`apt-get install postgresql` does) or set DATABASE_URL"
    )
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Start the server from a thread that never exits: the parent-death signal fires when the *thread* that
/// spawned the child ends, and we want it to fire only when the whole test process ends.
fn spawn_server(
    bindir: &Path,
    dir: &Path,
    data: &Path,
    port: u16,
    owner: Option<(u32, u32)>,
) -> anyhow::Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let pg_isready = bindir.join("pg_isready");
    let log_path = dir.join(format!("postgres-{port}.log"));
    let (bindir, dir, data) = (bindir.to_owned(), dir.to_owned(), data.to_owned());
    let log = dir.join(format!("postgres-{port}.log"));
    std::thread::Builder::new()
        .name("testkit-postgres".into())
        .spawn(move || {
            let spawned = (|| -> anyhow::Result<std::process::Child> {
                let log_file = std::fs::File::create(&log)?;
                // A small reaper shell owns the server: when the test process dies it gets SIGTERM (the
                // parent-death signal), stops postgres immediately and removes the data directory.
                let mut cmd = Command::new("/bin/sh");
                cmd.arg("-c")
                    .arg(REAPER)
                    .arg(&dir)
                    .arg(bindir.join("postgres"))
                    .arg("-D")
                    .arg(&data)
                    .args(["-p", &port.to_string(), "-k"])
                    .arg(&dir)
                    .args([
                        "-c",
                        "listen_addresses=127.0.0.1",
                        "-c",
                        "max_connections=400",
                        "-c",
                        "shared_buffers=128MB",
                    ])
                    .args(if DURABLE.load(std::sync::atomic::Ordering::SeqCst) {
                        &[][..]
                    } else {
                        &[
                            "-c",
                            "fsync=off",
                            "-c",
                            "synchronous_commit=off",
                            "-c",
                            "full_page_writes=off",
                        ][..]
                    })
                    .current_dir(&dir)
                    .stdin(Stdio::null())
                    .stdout(log_file.try_clone()?)
                    .stderr(log_file);
                if let Some((uid, gid)) = owner {
                    cmd.uid(uid).gid(gid);
                }
                crate::process::isolate(&mut cmd);
                Ok(cmd.safe_spawn()?)
            })();
            match spawned {
                Ok(child) => {
                    let _ = tx.send(Ok(()));
                    // Keep the child handle (and this thread) alive for the life of the process.
                    let _child = child;
                    loop {
                        std::thread::park();
                    }
                }
                Err(error) => {
                    let _ = tx.send(Err(error));
                }
            }
        })
        .context("spawning the postgres supervisor thread")?;
    rx.recv().context("postgres supervisor thread died")??;

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let mut probe = Command::new(&pg_isready);
            probe
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            crate::process::no_inherited_descriptors(&mut probe);
            let ready = probe.safe_status();
            // Without pg_isready, a TCP accept is as good as we can do.
            if ready.map(|s| s.success()).unwrap_or(true) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!(
                "postgres did not accept connections on port {port} within 30 s: {}",
                log.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A PostgreSQL URL on a loopback port nobody listens on (connections are refused), for start-up tests.
pub fn unreachable_url(database: &str) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding a loopback port");
    format!("postgres://postgres@127.0.0.1:{port}/{database}")
}

/// Remove data directories left by test processes that no longer exist.
fn sweep_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(ROOT) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("pg-"))
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A fresh database for one test, cloned from a template with `migrator`'s migrations applied.
/// Dropped (best effort) when the value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    /// Database name.
    pub name: String,
    /// Full connection URL.
    pub url: String,
    /// A pool on it (bound to the runtime of the test that created it).
    pub pool: PgPool,
}

type TemplateCell = Arc<tokio::sync::OnceCell<String>>;
static TEMPLATES: OnceLock<Mutex<HashMap<String, TemplateCell>>> = OnceLock::new();

impl TestDatabase {
    /// A new, migrated database.
    pub async fn create(migrator: &Migrator) -> anyhow::Result<Self> {
        let server = TestPostgres::get()?;
        let template = template_for(server, migrator).await?;
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&server.url("postgres"))
            .await
            .context("connecting to the test server")?;
        // Cloning fails while another session touches the template; that is brief, so retry.
        let mut attempts = 0;
        loop {
            match admin
                .execute(format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"").as_str())
                .await
            {
                Ok(_) => break,
                Err(error) if attempts < 50 && error.to_string().contains("being accessed") => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => return Err(error).context("cloning the template database"),
            }
        }
        let _ = admin.close().await;
        let url = server.url(&name);
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(20)
            .connect(&url)
            .await
            .context("connecting to the test database")?;
        Ok(Self { name, url, pool })
    }

    /// An empty database with no migrations (for crates that bring their own schema in the test).
    pub async fn empty() -> anyhow::Result<Self> {
        static EMPTY: Migrator = Migrator::DEFAULT;
        Self::create(&EMPTY).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Ok(server) = TestPostgres::get() else {
            return;
        };
        let url = server.url("postgres");
        let name = self.name.clone();
        // The pool's connections belong to the test's runtime, which is blocked in this drop: never await
        // them here. `WITH (FORCE)` terminates them server-side.
        // Drop has no async context of its own; do the async work on a private runtime.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&url).await {
                    let _ = conn
                        .execute(
                            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str(),
                        )
                        .await;
                }
            });
        })
        .join();
    }
}

async fn template_for(server: &TestPostgres, migrator: &Migrator) -> anyhow::Result<String> {
    let key: String = migrator
        .iter()
        .map(|m| format!("{}:{}", m.version, hex(&m.checksum)))
        .collect::<Vec<_>>()
        .join(",");
    let cell = {
        let mut all = TEMPLATES
            .get_or_init(Default::default)
            .lock()
            .map_err(|_| anyhow::anyhow!("template registry poisoned"))?;
        all.entry(key.clone()).or_default().clone()
    };
    let name = cell
        .get_or_try_init(|| async { build_template(server, migrator, &key).await })
        .await?;
    Ok(name.clone())
}

async fn build_template(
    server: &TestPostgres,
    migrator: &Migrator,
    key: &str,
) -> anyhow::Result<String> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    let name = format!("tmpl_{:016x}", hasher.finish());
    let building = format!("{name}_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&server.url("postgres"))
        .await
        .context("connecting to the test server")?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&mut admin)
        .await?;
    if exists.is_some() {
        return Ok(name);
    }
    admin
        .execute(format!("CREATE DATABASE \"{building}\"").as_str())
        .await
        .context("creating the template database")?;
    {
        let mut conn = PgConnection::connect(&server.url(&building)).await?;
        migrator
            .run(&mut conn)
            .await
            .context("migrating the template database")?;
        conn.close().await?;
    }
    // Publish under the final name; another process may have won the race, which is fine.
    let renamed = admin
        .execute(format!("ALTER DATABASE \"{building}\" RENAME TO \"{name}\"").as_str())
        .await;
    if renamed.is_err() {
        let _ = admin
            .execute(format!("DROP DATABASE IF EXISTS \"{building}\"").as_str())
            .await;
    }
    admin.close().await?;
    Ok(name)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_name_the_package_to_install() {
        let empty = std::env::temp_dir().join(format!("no-postgres-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&empty).unwrap();
        let error = find_bindir_in(None, &empty, false).unwrap_err().to_string();
        std::fs::remove_dir_all(&empty).unwrap();
        assert!(error.contains("apt-get install postgresql"), "{error}");
    }

    #[test]
    fn the_newest_installed_version_wins() {
        let root = std::env::temp_dir().join(format!("pg-versions-{}", uuid::Uuid::new_v4()));
        for version in ["13", "15", "9"] {
            let bin = root.join(version).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::write(bin.join("postgres"), "").unwrap();
        }
        let found = find_bindir_in(None, &root, false).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        assert!(found.ends_with("15/bin"), "{}", found.display());
    }
}
