//! `ROOM_SERVICE_*` settings.
//!
//! Beyond the common settings (`docs/conventions.md`):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `ROOM_SERVICE_VAULT_URL` | Vault's public base URL; tokens are verified with `{url}/.well-known/jwks.json` | `http://127.0.0.1:8081` |
//! | `ROOM_SERVICE_JWT_SIGNING_KEY` | local runs and benchmarks only (refused when `ROOM_SERVICE_ENV=production`): verify tokens with the public half of this base64 Ed25519 seed (the same value as `VAULT_JWT_SIGNING_KEY`) instead of fetching the JWKS (secret) | unset |
//! | `ROOM_SERVICE_BIG_WIN_EUR` | a `bet.won` of at least this many EUR becomes a `big_win` notification | `500` |
//! | `ROOM_SERVICE_INSTANCE_ID` | this task's id; the live consumer group is `room-service-live-<id>` | the ECS task id when `ECS_CONTAINER_METADATA_URI_V4` is set, else random |
//! | `ROOM_SERVICE_CONNECT_RATE_PER_IP` | new socket connections allowed per source IP per minute (0 = no limit) | `600` |
//! | `ROOM_SERVICE_TRUSTED_PROXY_HOPS` | proxies in front of the service that append to `X-Forwarded-For` (1 behind the ALB); 0 = the TCP peer is the source | `0` |
//! | `ROOM_SERVICE_KAFKA_FETCH_WAIT_MS` | consumers' `fetch.wait.max.ms` (bounds push latency on the embedded mock broker; a real broker answers as soon as data arrives) | `10` |

use std::time::Duration;

use casino_auth::{
    extract::TokenVerifier,
    jwt::{JwtSigner, RemoteJwks},
};
use casino_observability::settings::{CommonSettings, Defaults, Env, SettingsError};
use rust_decimal::Decimal;

/// Environment variable prefix.
pub const ENV_PREFIX: &str = "ROOM_SERVICE";

/// Local defaults: public 8083, admin 9083, database `room_service`.
pub const DEFAULTS: Defaults = Defaults {
    public_port: 8083,
    admin_port: 9083,
    database: "room_service",
};

/// Default `fetch.wait.max.ms` of the consumers. A real broker answers a fetch as soon as data arrives
/// whatever this is; the embedded mock broker (tests, `casino up`) only answers at this deadline, so it
/// bounds push latency there. Idle consumers send about 1000/this fetches per second.
pub const DEFAULT_FETCH_WAIT_MS: u64 = 10;

/// The shared consumer group that stores notifications once.
pub const NOTIFICATIONS_GROUP: &str = "room-service-notifications";

/// Everything Room-Service reads at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listeners, database, Kafka, shutdown.
    pub common: CommonSettings,
    /// How socket and API tokens are verified: Vault's JWKS (production) or a key in hand (tests, local).
    pub token_verifier: TokenVerifier,
    /// Threshold of a `big_win` notification, in EUR.
    pub big_win_eur: Decimal,
    /// This task's id (live consumer group suffix, logs); with [`InstanceIdSource::Ecs`], the fallback
    /// used when the task metadata cannot be read (see [`crate::instance::resolve`]).
    pub instance_id: String,
    /// Where [`Settings::instance_id`] comes from.
    pub instance_id_source: InstanceIdSource,
    /// Per-source-IP limit on new socket connections.
    pub connect_rate: ConnectRate,
    /// Proxies in front of the service that append the address they saw to `X-Forwarded-For` (the ALB:
    /// 1). 0: the source of a connection is its TCP peer address.
    pub trusted_proxy_hops: u8,
    /// Chat rules.
    pub chat: ChatRules,
    /// Longest a consumer's fetch waits at the broker for data (`fetch.wait.max.ms`).
    pub kafka_fetch_wait: Duration,
}

/// Where the task id comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceIdSource {
    /// `ROOM_SERVICE_INSTANCE_ID`.
    Configured,
    /// The ECS task id, read at start from the task metadata endpoint (`ECS_CONTAINER_METADATA_URI_V4`).
    Ecs {
        /// The endpoint's base URL.
        metadata_uri: String,
    },
    /// A random id made at start.
    Random,
}

/// New connections per source IP: a token bucket refilled at `per_minute / 60` per second, holding at most
/// `burst`. `per_minute == 0` disables the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectRate {
    /// Sustained connections per minute.
    pub per_minute: u32,
    /// Bucket size (a sixth of a minute's worth, at least 5).
    pub burst: u32,
}

impl ConnectRate {
    /// The limit for `per_minute` connections a minute (0 = off).
    pub fn per_minute(per_minute: u32) -> Self {
        Self {
            per_minute,
            burst: (per_minute / 6).max(5),
        }
    }

    /// No limit.
    pub fn unlimited() -> Self {
        Self::per_minute(0)
    }
}

/// The chat rules of the issue; fields exist so tests and the benchmark can see them, not to be tuned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatRules {
    /// Longest message, in characters, after trimming.
    pub max_chars: usize,
    /// Messages a player may send per `rate_window`.
    pub rate_limit: u32,
    /// The rate limit's window.
    pub rate_window: Duration,
    /// Messages returned by `chat.join`.
    pub history_on_join: u32,
    /// Chat rooms one socket may be in at once.
    pub max_rooms_per_socket: usize,
}

impl Default for ChatRules {
    fn default() -> Self {
        Self {
            max_chars: 500,
            rate_limit: 5,
            rate_window: Duration::from_secs(10),
            history_on_join: 50,
            max_rooms_per_socket: 10,
        }
    }
}

impl Settings {
    /// Read from the environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        let env = Env::new(ENV_PREFIX);
        let common = CommonSettings::from_env(&env, DEFAULTS)?;
        let vault_url = env.string("VAULT_URL", "http://127.0.0.1:8081");
        if !vault_url.starts_with("http://") && !vault_url.starts_with("https://") {
            return Err(SettingsError {
                variable: env.var_name("VAULT_URL"),
                problem: format!("expected an http(s) URL, got {vault_url:?}"),
            });
        }
        let token_verifier = match env.secret("JWT_SIGNING_KEY") {
            Some(_) if common.env == "production" => {
                return Err(SettingsError {
                    variable: env.var_name("JWT_SIGNING_KEY"),
                    problem: "is for local runs and benchmarks; in production tokens are verified with Vault's JWKS".into(),
                });
            }
            Some(seed) => {
                let signer = JwtSigner::from_seed_base64(&seed, Duration::from_secs(900)).map_err(
                    |error| SettingsError {
                        variable: env.var_name("JWT_SIGNING_KEY"),
                        problem: error.to_string(),
                    },
                )?;
                TokenVerifier::Local(signer.verifier())
            }
            None => TokenVerifier::Remote(RemoteJwks::new(jwks_url(&vault_url))),
        };
        let big_win_eur: Decimal = env.parse(
            "BIG_WIN_EUR",
            Decimal::from(500),
            "an amount in EUR like 500 or 250.50",
        )?;
        if big_win_eur <= Decimal::ZERO {
            return Err(SettingsError {
                variable: env.var_name("BIG_WIN_EUR"),
                problem: format!("expected a positive amount, got {big_win_eur}"),
            });
        }
        let (instance_id, instance_id_source) = match env.raw("INSTANCE_ID") {
            Some(id) => (id.trim().to_owned(), InstanceIdSource::Configured),
            None => match std::env::var(crate::instance::ECS_METADATA_VARIABLE)
                .ok()
                .filter(|uri| !uri.trim().is_empty())
            {
                Some(uri) => (
                    random_instance_id(),
                    InstanceIdSource::Ecs {
                        metadata_uri: uri.trim().to_owned(),
                    },
                ),
                None => (random_instance_id(), InstanceIdSource::Random),
            },
        };
        if !valid_instance_id(&instance_id) {
            return Err(SettingsError {
                variable: env.var_name("INSTANCE_ID"),
                problem: format!(
                    "expected up to 64 letters, digits, '-', '_' or '.', got {instance_id:?}"
                ),
            });
        }
        let per_minute = env.parse(
            "CONNECT_RATE_PER_IP",
            600u32,
            "a number of connections per minute (0 = no limit)",
        )?;
        let trusted_proxy_hops = env.parse(
            "TRUSTED_PROXY_HOPS",
            0u8,
            "a number of proxies (0 = no proxy, 1 = behind the ALB)",
        )?;
        Ok(Self {
            common,
            token_verifier,
            big_win_eur,
            instance_id,
            instance_id_source,
            connect_rate: ConnectRate::per_minute(per_minute),
            trusted_proxy_hops,
            chat: ChatRules::default(),
            kafka_fetch_wait: Duration::from_millis(env.parse(
                "KAFKA_FETCH_WAIT_MS",
                DEFAULT_FETCH_WAIT_MS,
                "a number of milliseconds",
            )?),
        })
    }

    /// Settings for tests: the given common settings, a verifier in hand, defaults otherwise.
    pub fn for_tests(common: CommonSettings, token_verifier: TokenVerifier) -> Self {
        Self {
            common,
            token_verifier,
            big_win_eur: Decimal::from(500),
            instance_id: random_instance_id(),
            instance_id_source: InstanceIdSource::Random,
            connect_rate: ConnectRate::unlimited(),
            trusted_proxy_hops: 0,
            chat: ChatRules::default(),
            kafka_fetch_wait: Duration::from_millis(DEFAULT_FETCH_WAIT_MS),
        }
    }
}

/// The live consumer group of the task `instance_id`.
pub fn live_group(instance_id: &str) -> String {
    format!("room-service-live-{instance_id}")
}

/// Whether `id` can be a task id (a consumer group suffix): 1-64 of `A-Z a-z 0-9 - _ .`.
pub fn valid_instance_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// Where Vault publishes its token keys.
pub fn jwks_url(vault_url: &str) -> String {
    format!("{}/.well-known/jwks.json", vault_url.trim_end_matches('/'))
}

/// A random task id (16 hex digits).
pub fn random_instance_id() -> String {
    use rand::Rng as _;
    let n: u64 = rand::thread_rng().r#gen();
    format!("{n:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jwks_url_hangs_off_vaults_base_url() {
        assert_eq!(
            jwks_url("http://vault:8080/"),
            "http://vault:8080/.well-known/jwks.json"
        );
        assert_eq!(
            jwks_url("https://api.example.com"),
            "https://api.example.com/.well-known/jwks.json"
        );
    }

    #[test]
    fn the_connect_rate_burst_is_ten_seconds_worth_but_at_least_five() {
        assert_eq!(ConnectRate::per_minute(600).burst, 100);
        assert_eq!(ConnectRate::per_minute(6).burst, 5);
    }

    #[test]
    fn random_instance_ids_differ() {
        assert_ne!(random_instance_id(), random_instance_id());
    }
}
