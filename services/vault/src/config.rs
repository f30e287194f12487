//! `VAULT_*` settings.

use std::collections::HashMap;
use std::time::Duration;

use casino_observability::settings::{CommonSettings, Defaults, Env, SettingsError};

/// Environment variable prefix.
pub const ENV_PREFIX: &str = "VAULT";

/// Local defaults: public 8081, admin 9081, database `vault`.
pub const DEFAULTS: Defaults = Defaults {
    public_port: 8081,
    admin_port: 9081,
    database: "vault",
};

/// When the abuse policy records signals and locks players.
#[derive(Debug, Clone)]
pub struct AbusePolicy {
    /// Lock a player once this many signals were recorded for them within `window` (0 = never).
    pub lock_after_signals: u32,
    /// Window for `lock_after_signals` and for the rollback ratio.
    pub window: Duration,
    /// Rollbacks / bets above this ratio is a `rollback_ratio` signal...
    pub rollback_ratio: f64,
    /// ...once the player has at least this many bets in the window.
    pub rollback_min_bets: i64,
    /// More bets than this within one second is a `velocity` signal.
    pub max_bets_per_second: usize,
    /// This many `insufficient_funds` refusals within a minute is `insufficient_funds_hammering`.
    pub insufficient_funds_per_minute: usize,
}

impl Default for AbusePolicy {
    fn default() -> Self {
        Self {
            lock_after_signals: 5,
            window: Duration::from_secs(3600),
            rollback_ratio: 0.5,
            rollback_min_bets: 10,
            max_bets_per_second: 20,
            insufficient_funds_per_minute: 10,
        }
    }
}

/// Everything Vault reads at start.
#[derive(Clone)]
pub struct Settings {
    /// Listeners, database, Kafka, shutdown.
    pub common: CommonSettings,
    /// Base64 Ed25519 seed for access tokens (`VAULT_JWT_SIGNING_KEY`); random per start when unset.
    pub jwt_signing_key: Option<String>,
    /// Access token lifetime (`VAULT_ACCESS_TOKEN_TTL_SECONDS`, default 900).
    pub access_token_ttl: Duration,
    /// Refresh token lifetime (`VAULT_REFRESH_TOKEN_TTL_SECONDS`, default 30 days).
    pub refresh_token_ttl: Duration,
    /// Game session lifetime (`VAULT_GAME_SESSION_TTL_SECONDS`, default 4 h).
    pub game_session_ttl: Duration,
    /// HMAC secrets of game providers (`VAULT_GAME_PROVIDER_SECRETS=acme=secret,other=secret2`).
    pub game_providers: HashMap<String, String>,
    /// First admin, created at start if absent (`VAULT_ADMIN_EMAIL`, `VAULT_ADMIN_PASSWORD`).
    pub bootstrap_admin: Option<(String, String)>,
    /// Abuse policy (`VAULT_ABUSE_LOCK_AFTER_SIGNALS`, `VAULT_ABUSE_ROLLBACK_RATIO`,
    /// `VAULT_ABUSE_MAX_BETS_PER_SECOND`).
    pub abuse: AbusePolicy,
    /// Reconciler period (`VAULT_RECONCILE_INTERVAL_SECONDS`, default 30).
    pub reconcile_every: Duration,
    /// Bet batch workers (`VAULT_BET_WORKERS`, default 2): two keep one batch in flight while the next
    /// fills; more means smaller batches and more commits (measured in the README's Performance section).
    pub bet_workers: usize,
    /// Sandbox payment providers and their webhook secrets (`VAULT_PSP_PROVIDERS=sandbox-a=secret,...`).
    pub psp_providers: HashMap<String, String>,
    /// Pending deposits expire after this long (`VAULT_PAYMENT_EXPIRY_SECONDS`, default 1800).
    pub payment_expiry: Duration,
    /// Vault's public base URL as PSPs reach it for webhooks (`VAULT_PUBLIC_URL`; default: the bound
    /// public address).
    pub public_url: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("common", &self.common)
            .field(
                "game_providers",
                &self.game_providers.keys().collect::<Vec<_>>(),
            )
            .field("abuse", &self.abuse)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Defaults around `common` (tests and local runs).
    pub fn with_common(common: CommonSettings) -> Self {
        Self {
            common,
            jwt_signing_key: None,
            access_token_ttl: Duration::from_secs(900),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            game_session_ttl: Duration::from_secs(4 * 3600),
            game_providers: HashMap::new(),
            bootstrap_admin: None,
            abuse: AbusePolicy::default(),
            reconcile_every: Duration::from_secs(30),
            bet_workers: 2,
            psp_providers: HashMap::new(),
            payment_expiry: Duration::from_secs(1800),
            public_url: None,
        }
    }

    /// Read from the environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        let env = Env::new(ENV_PREFIX);
        let mut settings = Self::with_common(CommonSettings::from_env(&env, DEFAULTS)?);
        settings.jwt_signing_key = env.secret("JWT_SIGNING_KEY");
        settings.access_token_ttl = env.seconds("ACCESS_TOKEN_TTL_SECONDS", 900)?;
        settings.refresh_token_ttl = env.seconds("REFRESH_TOKEN_TTL_SECONDS", 30 * 24 * 3600)?;
        settings.game_session_ttl = env.seconds("GAME_SESSION_TTL_SECONDS", 4 * 3600)?;
        if let Some(raw) = env.secret("GAME_PROVIDER_SECRETS") {
            settings.game_providers = parse_secret_map(&raw).map_err(|problem| SettingsError {
                variable: env.var_name("GAME_PROVIDER_SECRETS"),
                problem,
            })?;
        }
        if let (Some(email), Some(password)) =
            (env.raw("ADMIN_EMAIL"), env.secret("ADMIN_PASSWORD"))
        {
            settings.bootstrap_admin = Some((email, password));
        }
        settings.abuse.lock_after_signals = env.parse("ABUSE_LOCK_AFTER_SIGNALS", 5, "a number")?;
        settings.abuse.rollback_ratio =
            env.parse("ABUSE_ROLLBACK_RATIO", 0.5, "a ratio like 0.5")?;
        settings.abuse.max_bets_per_second =
            env.parse("ABUSE_MAX_BETS_PER_SECOND", 20, "a number")?;
        settings.reconcile_every = env.seconds("RECONCILE_INTERVAL_SECONDS", 30)?;
        settings.bet_workers = env.parse("BET_WORKERS", 2, "a number of workers (1 to 16)")?;
        if let Some(raw) = env.secret("PSP_PROVIDERS") {
            settings.psp_providers = parse_secret_map(&raw).map_err(|problem| SettingsError {
                variable: env.var_name("PSP_PROVIDERS"),
                problem,
            })?;
        }
        settings.payment_expiry = env.seconds("PAYMENT_EXPIRY_SECONDS", 1800)?;
        settings.public_url = env.raw("PUBLIC_URL");
        if !(1..=16).contains(&settings.bet_workers) {
            return Err(SettingsError {
                variable: env.var_name("BET_WORKERS"),
                problem: format!("expected 1 to 16, got {}", settings.bet_workers),
            });
        }
        if settings.jwt_signing_key.is_some() {
            casino_auth::jwt::JwtSigner::from_seed_base64(
                settings.jwt_signing_key.as_deref().unwrap_or_default(),
                settings.access_token_ttl,
            )
            .map_err(|e| SettingsError {
                variable: env.var_name("JWT_SIGNING_KEY"),
                problem: e.to_string(),
            })?;
        }
        Ok(settings)
    }
}

/// `name=secret,name2=secret2` → map. Names are provider ids (`[a-z0-9_-]+`).
pub fn parse_secret_map(raw: &str) -> Result<HashMap<String, String>, String> {
    let mut map = HashMap::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, secret) = pair
            .split_once('=')
            .ok_or_else(|| "expected name=secret pairs separated by commas".to_owned())?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(format!("{name:?} is not a valid provider name"));
        }
        if secret.trim().len() < 8 {
            return Err(format!("the secret of {name} is shorter than 8 characters"));
        }
        map.insert(name.to_owned(), secret.trim().to_owned());
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_secrets_parse_and_bad_ones_are_refused() {
        let map = parse_secret_map("acme=supersecret, beta-games=anothersecret").unwrap();
        assert_eq!(map["acme"], "supersecret");
        assert_eq!(map["beta-games"], "anothersecret");
        assert!(parse_secret_map("acme").is_err());
        assert!(parse_secret_map("Acme=supersecret").is_err());
        assert!(parse_secret_map("acme=short").is_err());
    }
}
