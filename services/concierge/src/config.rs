//! `CONCIERGE_*` settings.
//!
//! Besides the common settings (`docs/conventions.md`):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `CONCIERGE_VAULT_URL` | Vault's public base URL (its `/.well-known/jwks.json` verifies player tokens) | `http://127.0.0.1:8081` |
//! | `CONCIERGE_VAULT_INTERNAL_URL` | Vault's admin base URL (`/internal/v1`, for the reconciler) | `http://127.0.0.1:9081` |
//! | `CONCIERGE_VAULT_INTERNAL_TOKEN` | bearer secret for Vault's `/internal/v1` (secret; required in staging and production, reconciler off without it) | unset |
//! | `CONCIERGE_ABNORMAL_POINTS_PER_HOUR` | VIP points one player may earn per UTC hour before it is flagged | `50000` |
//! | `CONCIERGE_CONSUMER_BATCH_SIZE` | most events per batch | `5000` |
//! | `CONCIERGE_CONSUMER_BATCH_WAIT_MS` | longest wait to fill a batch | `10` |
//! | `CONCIERGE_CONSUMER_PARALLELISM` | database transactions one batch may use at once (by partition) | `2` |
//! | `CONCIERGE_VERIFY_INTERVAL_SECONDS` | how often the verifier recomputes new awards | `60` |
//! | `CONCIERGE_RECONCILE_INTERVAL_SECONDS` | how often the reconciler looks for closed windows | `300` |
//! | `CONCIERGE_RECONCILE_WINDOW_SECONDS` | reconciliation window length (divides a day) | `3600` |
//! | `CONCIERGE_RECONCILE_GRACE_SECONDS` | how long after a window closes before it is compared | `300` |

use std::time::Duration;

use casino_auth::{extract::TokenVerifier, jwt::RemoteJwks};
use casino_events::topics;
use casino_observability::settings::{CommonSettings, Defaults, Env, SettingsError};

/// Environment variable prefix.
pub const ENV_PREFIX: &str = "CONCIERGE";

/// Local defaults: public 8082, admin 9082, database `concierge`.
pub const DEFAULTS: Defaults = Defaults {
    public_port: 8082,
    admin_port: 9082,
    database: "concierge",
};

/// The consumer group of Concierge (`docs/conventions.md`).
pub const CONSUMER_GROUP: &str = "concierge";

/// Everything Concierge reads at start.
#[derive(Clone)]
pub struct Settings {
    /// Listeners, database, Kafka, shutdown.
    pub common: CommonSettings,
    /// Vault's public base URL (JWKS).
    pub vault_url: String,
    /// Vault's admin base URL (`/internal/v1`).
    pub vault_internal_url: String,
    /// Bearer secret for Vault's `/internal/v1` (secret). Without it the reconciler does not run.
    pub vault_internal_token: Option<String>,
    /// How player and staff tokens are verified: Vault's JWKS (`TokenVerifier::Remote`) in deployments, a
    /// key in hand (`TokenVerifier::Local`) in tests.
    pub auth: TokenVerifier,
    /// Reward rules that are configuration rather than versioned data.
    pub rewards: RewardSettings,
    /// Event consumption.
    pub consumer: ConsumerTuning,
    /// Verifier and reconciler timing.
    pub background: BackgroundSettings,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("common", &self.common)
            .field("vault_url", &self.vault_url)
            .field("vault_internal_url", &self.vault_internal_url)
            .field(
                "vault_internal_token",
                &self.vault_internal_token.as_ref().map(|_| "<redacted>"),
            )
            .field("rewards", &self.rewards)
            .field("consumer", &self.consumer)
            .field("background", &self.background)
            .finish_non_exhaustive()
    }
}

/// Reward settings.
#[derive(Debug, Clone)]
pub struct RewardSettings {
    /// VIP points one player may earn within one UTC hour (by bet time) before it is flagged as abnormal
    /// (`concierge_abnormal_point_accumulation_total`, one warning log line).
    pub abnormal_points_per_hour: i64,
}

/// How events are consumed.
#[derive(Debug, Clone)]
pub struct ConsumerTuning {
    /// Consumer group (`concierge`; a benchmark or a replay may use another).
    pub group_id: String,
    /// The ledger topic (`vault.transactions.v1`).
    pub transactions_topic: String,
    /// The player topic (`vault.players.v1`).
    pub players_topic: String,
    /// Topic level-ups are published to (`concierge.rewards.v1`).
    pub rewards_topic: String,
    /// Most events per database transaction.
    pub max_batch: usize,
    /// Longest wait to fill a batch.
    pub max_wait: Duration,
    /// Database transactions a batch may use at once (partitions spread over them; each partition's
    /// events stay in one transaction, in order).
    pub parallelism: usize,
    /// First retry delay of a failing batch (doubles per attempt, up to 5 s).
    pub retry_backoff: Duration,
}

/// Background task timing.
#[derive(Debug, Clone)]
pub struct BackgroundSettings {
    /// How often the verifier runs.
    pub verify_interval: Duration,
    /// How often the reconciler looks for windows to compare.
    pub reconcile_interval: Duration,
    /// Reconciliation window length.
    pub reconcile_window: Duration,
    /// Delay after a window closes before it is compared (late events, consumer lag).
    pub reconcile_grace: Duration,
}

impl Default for RewardSettings {
    fn default() -> Self {
        Self {
            abnormal_points_per_hour: 50_000,
        }
    }
}

impl Default for ConsumerTuning {
    fn default() -> Self {
        Self {
            group_id: CONSUMER_GROUP.into(),
            transactions_topic: topics::VAULT_TRANSACTIONS.into(),
            players_topic: topics::VAULT_PLAYERS.into(),
            rewards_topic: topics::CONCIERGE_REWARDS.into(),
            max_batch: 5000,
            max_wait: Duration::from_millis(10),
            parallelism: 2,
            retry_backoff: Duration::from_millis(100),
        }
    }
}

impl Default for BackgroundSettings {
    fn default() -> Self {
        Self {
            verify_interval: Duration::from_secs(60),
            reconcile_interval: Duration::from_secs(300),
            reconcile_window: Duration::from_secs(3600),
            reconcile_grace: Duration::from_secs(300),
        }
    }
}

impl Settings {
    /// Settings with the defaults for everything Concierge adds to `common`, verifying tokens with
    /// `auth` (tests pass `TokenVerifier::Local(signer.verifier())`: Vault's public key in hand).
    pub fn new(common: CommonSettings, auth: TokenVerifier) -> Self {
        Self {
            common,
            vault_url: "http://127.0.0.1:8081".into(),
            vault_internal_url: "http://127.0.0.1:9081".into(),
            vault_internal_token: None,
            auth,
            rewards: RewardSettings::default(),
            consumer: ConsumerTuning::default(),
            background: BackgroundSettings::default(),
        }
    }

    /// Read from the environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        let env = Env::new(ENV_PREFIX);
        let common = CommonSettings::from_env(&env, DEFAULTS)?;
        let vault_url = base_url(&env, "VAULT_URL", "http://127.0.0.1:8081")?;
        let vault_internal_url = base_url(&env, "VAULT_INTERNAL_URL", "http://127.0.0.1:9081")?;
        let vault_internal_token = env.secret("VAULT_INTERNAL_TOKEN");
        if vault_internal_token.is_none()
            && ["production", "staging"].contains(&common.env.as_str())
        {
            return Err(SettingsError {
                variable: env.var_name("VAULT_INTERNAL_TOKEN"),
                problem: format!(
                    "required in {} (the reconciler calls Vault's internal API)",
                    common.env
                ),
            });
        }
        let positive = |name: &str, default: u64| -> Result<u64, SettingsError> {
            let value: u64 = env.parse(name, default, "a positive whole number")?;
            if value == 0 {
                return Err(SettingsError {
                    variable: env.var_name(name),
                    problem: "expected a positive whole number, got 0".into(),
                });
            }
            Ok(value)
        };
        let background = BackgroundSettings {
            verify_interval: Duration::from_secs(positive("VERIFY_INTERVAL_SECONDS", 60)?),
            reconcile_interval: Duration::from_secs(positive("RECONCILE_INTERVAL_SECONDS", 300)?),
            reconcile_window: Duration::from_secs(positive("RECONCILE_WINDOW_SECONDS", 3600)?),
            reconcile_grace: Duration::from_secs(env.parse(
                "RECONCILE_GRACE_SECONDS",
                300,
                "a whole number of seconds",
            )?),
        };
        if 86_400 % background.reconcile_window.as_secs() != 0 {
            return Err(SettingsError {
                variable: env.var_name("RECONCILE_WINDOW_SECONDS"),
                problem: "expected a number of seconds that divides a day (e.g. 900, 3600)".into(),
            });
        }
        Ok(Self {
            vault_url: vault_url.clone(),
            vault_internal_url,
            vault_internal_token,
            auth: TokenVerifier::Remote(RemoteJwks::new(format!(
                "{vault_url}/.well-known/jwks.json"
            ))),
            rewards: RewardSettings {
                abnormal_points_per_hour: positive("ABNORMAL_POINTS_PER_HOUR", 50_000)?
                    .try_into()
                    .map_err(|_| SettingsError {
                        variable: env.var_name("ABNORMAL_POINTS_PER_HOUR"),
                        problem: "too large".into(),
                    })?,
            },
            consumer: ConsumerTuning {
                max_batch: positive("CONSUMER_BATCH_SIZE", 5000)? as usize,
                max_wait: Duration::from_millis(env.parse(
                    "CONSUMER_BATCH_WAIT_MS",
                    10,
                    "a whole number of milliseconds",
                )?),
                parallelism: positive("CONSUMER_PARALLELISM", 2)? as usize,
                ..ConsumerTuning::default()
            },
            background,
            common,
        })
    }
}

/// An `http(s)://` base URL without a trailing slash.
fn base_url(env: &Env, name: &str, default: &str) -> Result<String, SettingsError> {
    let value = env.string(name, default);
    let value = value.trim().trim_end_matches('/').to_owned();
    let host = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"));
    if host.is_none_or(str::is_empty) {
        return Err(SettingsError {
            variable: env.var_name(name),
            problem: format!("expected an http:// or https:// base URL, got {value:?}"),
        });
    }
    Ok(value)
}
