//! `VAULT_*` settings.

use casino_observability::settings::{CommonSettings, Defaults, Env, SettingsError};

/// Environment variable prefix.
pub const ENV_PREFIX: &str = "VAULT";

/// Local defaults: public 8081, admin 9081, database `vault`.
pub const DEFAULTS: Defaults = Defaults {
    public_port: 8081,
    admin_port: 9081,
    database: "vault",
};

/// Everything Vault reads at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listeners, database, Kafka, shutdown.
    pub common: CommonSettings,
}

impl Settings {
    /// Read from the environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Ok(Self {
            common: CommonSettings::from_env(&Env::new(ENV_PREFIX), DEFAULTS)?,
        })
    }
}
