//! `ROOM_SERVICE_*` settings.

use casino_observability::settings::{CommonSettings, Defaults, Env, SettingsError};

/// Environment variable prefix.
pub const ENV_PREFIX: &str = "ROOM_SERVICE";

/// Local defaults: public 8083, admin 9083, database `room_service`.
pub const DEFAULTS: Defaults = Defaults {
    public_port: 8083,
    admin_port: 9083,
    database: "room_service",
};

/// Everything Room-Service reads at start.
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
