//! Settings every service reads from its environment (names in `docs/conventions.md`).
//!
//! Each variable is `<PREFIX>_<NAME>` (`VAULT_DATABASE_URL`). A bad value stops the process at start with
//! one line naming the variable; secrets are never echoed back.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use crate::lifecycle::ShutdownConfig;
use crate::server::ServerConfig;

/// A setting that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct SettingsError {
    /// The environment variable.
    pub variable: String,
    /// What is wrong with it.
    pub problem: String,
}

/// Reads `<PREFIX>_*` variables.
#[derive(Debug, Clone)]
pub struct Env {
    prefix: &'static str,
}

impl Env {
    /// A reader for `prefix` (without the trailing underscore).
    pub fn new(prefix: &'static str) -> Self {
        Self { prefix }
    }

    /// The full variable name for `name`.
    pub fn var_name(&self, name: &str) -> String {
        format!("{}_{name}", self.prefix)
    }

    /// The raw value, if set and not empty.
    pub fn raw(&self, name: &str) -> Option<String> {
        std::env::var(self.var_name(name))
            .ok()
            .filter(|v| !v.trim().is_empty())
    }

    /// A string with a default.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.raw(name).unwrap_or_else(|| default.to_owned())
    }

    /// A parsed value with a default; `what` describes the expected form in the error.
    pub fn parse<T: FromStr>(
        &self,
        name: &str,
        default: T,
        what: &str,
    ) -> Result<T, SettingsError> {
        match self.raw(name) {
            None => Ok(default),
            Some(raw) => raw.trim().parse().map_err(|_| SettingsError {
                variable: self.var_name(name),
                problem: format!("expected {what}, got {raw:?}"),
            }),
        }
    }

    /// A secret: like [`Env::raw`], but errors never show the value.
    pub fn secret(&self, name: &str) -> Option<String> {
        self.raw(name)
    }

    /// A duration given in whole seconds.
    pub fn seconds(&self, name: &str, default: u64) -> Result<Duration, SettingsError> {
        self.parse(name, default, "a whole number of seconds")
            .map(Duration::from_secs)
    }
}

/// What every service needs: where to listen, its database, Kafka, and shutdown timing.
#[derive(Clone)]
pub struct CommonSettings {
    /// Listeners.
    pub server: ServerConfig,
    /// PostgreSQL URL (secret).
    pub database_url: String,
    /// Pool size.
    pub database_max_connections: u32,
    /// How long start-up waits for the database to answer (it may still be starting, or failing over).
    pub database_connect_timeout: Duration,
    /// Kafka bootstrap servers.
    pub kafka_brokers: String,
    /// `plaintext` or `sasl_ssl`.
    pub kafka_security_protocol: String,
    /// SCRAM user (MSK).
    pub kafka_sasl_username: Option<String>,
    /// SCRAM password (MSK, secret).
    pub kafka_sasl_password: Option<String>,
    /// Deployment environment name.
    pub env: String,
    /// Drain delay and hard deadline.
    pub shutdown: ShutdownConfig,
    /// Bearer secret for `/internal/v1` (secret). Random per start when unset, so the internal API is
    /// never open by accident.
    pub internal_token: String,
}

impl std::fmt::Debug for CommonSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommonSettings")
            .field("server", &self.server)
            .field("database_url", &redact_url(&self.database_url))
            .field("database_max_connections", &self.database_max_connections)
            .field("database_connect_timeout", &self.database_connect_timeout)
            .field("kafka_brokers", &self.kafka_brokers)
            .field("kafka_security_protocol", &self.kafka_security_protocol)
            .field("env", &self.env)
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
}

impl CommonSettings {
    /// The service's connection pool (lazy: connections open on first use, so a database that is still
    /// starting does not stop the process; readiness reports it). `variable` names the URL's setting in
    /// the error.
    pub fn lazy_pool(&self, variable: &str) -> anyhow::Result<sqlx::PgPool> {
        use anyhow::Context as _;
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(self.database_max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy(&self.database_url)
            .with_context(|| format!("parsing {variable}"))
    }
}

/// Defaults of one service (local ports and database name).
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    /// Local public port.
    pub public_port: u16,
    /// Local admin port.
    pub admin_port: u16,
    /// Database name.
    pub database: &'static str,
}

impl CommonSettings {
    /// Read the common settings of the service whose variables start with `env`'s prefix.
    pub fn from_env(env: &Env, defaults: Defaults) -> Result<Self, SettingsError> {
        let addr = |name: &str, port: u16| -> Result<SocketAddr, SettingsError> {
            env.parse(
                name,
                SocketAddr::from(([127, 0, 0, 1], port)),
                "an address like 0.0.0.0:8080",
            )
        };
        let kafka_security_protocol = env.string("KAFKA_SECURITY_PROTOCOL", "plaintext");
        if !["plaintext", "sasl_ssl", "ssl"].contains(&kafka_security_protocol.as_str()) {
            return Err(SettingsError {
                variable: env.var_name("KAFKA_SECURITY_PROTOCOL"),
                problem: format!(
                    "expected plaintext, ssl or sasl_ssl, got {kafka_security_protocol:?}"
                ),
            });
        }
        let database_url = env.string(
            "DATABASE_URL",
            &format!("postgres://postgres@127.0.0.1:5432/{}", defaults.database),
        );
        if !database_url.starts_with("postgres://") && !database_url.starts_with("postgresql://") {
            return Err(SettingsError {
                variable: env.var_name("DATABASE_URL"),
                problem: "expected a postgres:// URL".into(),
            });
        }
        Ok(Self {
            server: ServerConfig {
                public_addr: addr("PUBLIC_ADDR", defaults.public_port)?,
                admin_addr: addr("ADMIN_ADDR", defaults.admin_port)?,
            },
            database_url,
            database_max_connections: env.parse(
                "DATABASE_MAX_CONNECTIONS",
                10,
                "a positive number",
            )?,
            database_connect_timeout: env.seconds("DATABASE_CONNECT_TIMEOUT_SECONDS", 30)?,
            kafka_brokers: env.string("KAFKA_BROKERS", "127.0.0.1:9092"),
            kafka_security_protocol,
            kafka_sasl_username: env.raw("KAFKA_SASL_USERNAME"),
            kafka_sasl_password: env.secret("KAFKA_SASL_PASSWORD"),
            env: env.string("ENV", "local"),
            shutdown: ShutdownConfig {
                drain_delay: env.seconds("DRAIN_DELAY_SECONDS", 0)?,
                timeout: env.seconds("SHUTDOWN_TIMEOUT_SECONDS", 25)?,
            },
            internal_token: env
                .secret("INTERNAL_TOKEN")
                .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
        })
    }
}

/// A database URL with its password replaced, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The `healthcheck` subcommand of every service binary: GET `/livez` on the local public port, exit 0 on
/// 200 and 1 otherwise. Images need no curl.
pub fn healthcheck(env: &Env, default_port: u16) -> i32 {
    use std::io::{Read as _, Write as _};
    let addr: SocketAddr = match env.parse(
        "PUBLIC_ADDR",
        SocketAddr::from(([127, 0, 0, 1], default_port)),
        "an address",
    ) {
        Ok(addr) => addr,
        Err(error) => {
            eprintln!("healthcheck: {error}");
            return 1;
        }
    };
    // A wildcard listen address is reached over loopback.
    let target = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let attempt = || -> std::io::Result<String> {
        let mut stream = std::net::TcpStream::connect_timeout(&target, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"GET /livez HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    };
    match attempt() {
        Ok(response)
            if response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200") =>
        {
            println!("healthy");
            0
        }
        Ok(response) => {
            eprintln!(
                "unhealthy: {}",
                response.lines().next().unwrap_or("empty response")
            );
            1
        }
        Err(error) => {
            eprintln!("unhealthy: {target}: {error}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_database_urls() {
        assert_eq!(
            redact_url("postgres://vault:s3cret@db:5432/vault"),
            "postgres://vault:***@db:5432/vault"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/x"),
            "postgres://postgres@127.0.0.1/x"
        );
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let env = Env::new("CASINO_SETTINGS_TEST_UNSET");
        let settings = CommonSettings::from_env(
            &env,
            Defaults {
                public_port: 8081,
                admin_port: 9081,
                database: "vault",
            },
        )
        .unwrap();
        assert_eq!(settings.server.public_addr.to_string(), "127.0.0.1:8081");
        assert_eq!(settings.server.admin_addr.to_string(), "127.0.0.1:9081");
        assert_eq!(
            settings.database_url,
            "postgres://postgres@127.0.0.1:5432/vault"
        );
        assert_eq!(settings.shutdown.timeout, Duration::from_secs(25));
        assert_eq!(
            settings.internal_token.len(),
            32,
            "a random token, never empty"
        );
    }
}
