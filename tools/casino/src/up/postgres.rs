//! The PostgreSQL server of a local stack: the machine's binaries, run as the `postgres` user under root,
//! in a throwaway directory (removed at stop) or in `--data-dir` (kept, initialised on first use).

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use sqlx::{Connection as _, Executor as _, PgConnection};

use super::process::{Signal, send_signal};

/// A server this process started.
#[derive(Debug)]
pub struct LocalPostgres {
    child: tokio::process::Child,
    data: PathBuf,
    throwaway: bool,
    /// `postgres://postgres@127.0.0.1:<port>`.
    pub base_url: String,
}

/// Where the databases live: a server we started, or one given by `DATABASE_URL`.
#[derive(Debug)]
pub enum Database {
    /// Started by `casino up`.
    Local(LocalPostgres),
    /// `DATABASE_URL`'s server (left running at stop).
    External {
        /// URL without the database name.
        base_url: String,
        /// Query string of `DATABASE_URL`, kept for every database (`?sslmode=...`).
        query: String,
    },
}

impl Database {
    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        match self {
            Self::Local(pg) => format!("{}/{name}", pg.base_url),
            Self::External { base_url, query } => format!("{base_url}/{name}{query}"),
        }
    }

    /// The server URL without a database name.
    pub fn base_url(&self) -> &str {
        match self {
            Self::Local(pg) => &pg.base_url,
            Self::External { base_url, .. } => base_url,
        }
    }

    /// Use `DATABASE_URL`'s server.
    pub fn external(url: &str) -> anyhow::Result<Self> {
        let (without_query, query) = match url.split_once('?') {
            Some((head, query)) => (head, format!("?{query}")),
            None => (url, String::new()),
        };
        let after_scheme = without_query
            .find("://")
            .map(|i| i + 3)
            .context("DATABASE_URL is not a postgres:// URL")?;
        let base_url = match without_query[after_scheme..].find('/') {
            Some(slash) => without_query[..after_scheme + slash].to_owned(),
            None => without_query.to_owned(),
        };
        Ok(Self::External { base_url, query })
    }

    /// Create `names` on the server when missing (services migrate their own schema).
    pub async fn create_databases(&self, names: &[&str]) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect(&self.url("postgres"))
            .await
            .with_context(|| {
                format!(
                    "connecting to PostgreSQL at {}",
                    casino_observability::settings::redact_url(self.base_url())
                )
            })?;
        for name in names {
            let exists: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
                    .bind(name)
                    .fetch_optional(&mut conn)
                    .await?;
            if exists.is_none() {
                conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
                    .await
                    .with_context(|| format!("creating database {name}"))?;
            }
        }
        Ok(())
    }

    /// Stop the server if we started it (fast shutdown), and remove a throwaway data directory.
    pub async fn stop(self) {
        if let Self::Local(pg) = self {
            pg.stop().await;
        }
    }
}

impl LocalPostgres {
    /// Start a server on `port` with its data in `data` (initialised when empty). `throwaway` servers run
    /// without fsync and have their directory removed at stop.
    pub async fn start(
        data: &Path,
        port: u16,
        throwaway: bool,
        log: &Path,
    ) -> anyhow::Result<Self> {
        let bindir = casino_testkit::postgres::find_bindir()?;
        let owner = casino_testkit::postgres::server_user()?;
        let fresh = !data.join("PG_VERSION").exists();
        std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
        if let Some((uid, gid)) = owner {
            // The server refuses a data directory it does not own or that others can read.
            std::os::unix::fs::chown(data, Some(uid), Some(gid))
                .with_context(|| format!("giving {} to the postgres user", data.display()))?;
        }
        std::fs::set_permissions(data, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        if fresh {
            let mut initdb = std::process::Command::new(bindir.join("initdb"));
            initdb
                .arg("-D")
                .arg(data)
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
                .current_dir("/")
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            if throwaway {
                initdb.arg("--no-sync");
            }
            if let Some((uid, gid)) = owner {
                initdb.uid(uid).gid(gid);
            }
            casino_testkit::process::no_inherited_descriptors(&mut initdb);
            let output = tokio::process::Command::from(initdb)
                .output()
                .await
                .context("running initdb")?;
            if !output.status.success() {
                bail!(
                    "initdb failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
        }
        let socket_dir = data.join("socket");
        std::fs::create_dir_all(&socket_dir)?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&socket_dir, Some(uid), Some(gid))?;
        }
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = std::process::Command::new(bindir.join("postgres"));
        cmd.arg("-D")
            .arg(data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&socket_dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=200",
            ])
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            // Own process group: a Ctrl-C in the terminal reaches `casino up`, which stops the server last.
            .process_group(0);
        if throwaway {
            cmd.args(["-c", "fsync=off", "-c", "synchronous_commit=off"]);
        }
        if let Some((uid, gid)) = owner {
            cmd.uid(uid).gid(gid);
        }
        super::process::isolate(&mut cmd);
        let mut child = tokio::process::Command::from(cmd)
            .spawn()
            .context("starting postgres")?;
        let base_url = format!("postgres://postgres@127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait()? {
                let tail = std::fs::read_to_string(log).unwrap_or_default();
                bail!(
                    "postgres exited at start ({status}): {}",
                    tail.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
                );
            }
            if PgConnection::connect(&format!("{base_url}/postgres"))
                .await
                .is_ok()
            {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill().await;
                bail!(
                    "postgres did not accept connections on port {port} within 60 s (log: {})",
                    log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self {
            child,
            data: data.to_owned(),
            throwaway,
            base_url,
        })
    }

    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SIGINT = fast shutdown: active sessions are ended, data is flushed.
            send_signal(pid, Signal::Interrupt);
        }
        if tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        if self.throwaway {
            let _ = std::fs::remove_dir_all(&self.data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_external_url_keeps_server_and_query_and_swaps_the_database() {
        let db = Database::external("postgres://u:p@db.example:5432/app?sslmode=require").unwrap();
        assert_eq!(
            db.url("vault"),
            "postgres://u:p@db.example:5432/vault?sslmode=require"
        );
        let db = Database::external("postgres://u@localhost").unwrap();
        assert_eq!(db.url("concierge"), "postgres://u@localhost/concierge");
        assert!(Database::external("localhost:5432").is_err());
    }
}
