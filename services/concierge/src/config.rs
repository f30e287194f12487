//! `CONCIERGE_*` settings.

use casino_observability::settings::{CommonSettings, Defaults, Env, SettingsError};

/// Environment variable prefix.
pub const ENV_PREFIX: &str = "CONCIERGE";

/// Local defaults: public 8082, admin 9082, database `concierge`.
pub const DEFAULTS: Defaults = Defaults {
    public_port: 8082,
    admin_port: 9082,
    database: "concierge",
};

/// Everything Concierge reads at start.
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
