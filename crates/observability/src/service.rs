//! The `main` every service binary shares: `healthcheck` subcommand, settings, telemetry, runtime,
//! signals, graceful shutdown, exit code.

use std::future::Future;

use crate::{
    ServiceInfo, init_telemetry,
    lifecycle::{Lifecycle, ShutdownOutcome},
    settings::{Env, SettingsError},
};

/// What a service tells the shared `main`.
pub trait Service: Sized + Send + 'static {
    /// Its settings.
    type Settings: Send + 'static;
    /// Name in logs, traces and the `service` label.
    const NAME: &'static str;
    /// Prefix of its metrics.
    const METRIC_PREFIX: &'static str;
    /// Prefix of its environment variables.
    const ENV_PREFIX: &'static str;
    /// Local default public port (for `healthcheck`).
    const DEFAULT_PUBLIC_PORT: u16;

    /// Read settings from the environment.
    fn settings_from_env() -> Result<Self::Settings, SettingsError>;
    /// The deployment environment named in the settings.
    fn environment(settings: &Self::Settings) -> String;
    /// Build the application (connect, migrate, bind).
    fn build(settings: Self::Settings) -> impl Future<Output = anyhow::Result<Self>> + Send;
    /// Its lifecycle.
    fn lifecycle(&self) -> &Lifecycle;
    /// Serve until shutdown, then release resources in order.
    fn run_until_stopped(self) -> impl Future<Output = anyhow::Result<ShutdownOutcome>> + Send;
}

/// Implement [`Service`] for a service's `Application`.
///
/// Every casino service has the same shape: an `Application` whose inherent `build`, `lifecycle` and
/// `run_until_stopped` do the work (tests and `casino up` call them without importing the trait), and a
/// `Settings` type with `Settings::from_env()` and a `common: CommonSettings` field. The trait impl only
/// forwards to those, so it is written once here; a service names what differs. The calling crate
/// depends on `anyhow` (the trait's error type).
///
/// ```no_run
/// # use casino_observability::{lifecycle::{Lifecycle, ShutdownOutcome}, settings::*};
/// # const ENV_PREFIX: &str = "VAULT";
/// # const DEFAULTS: Defaults = Defaults { public_port: 8081, admin_port: 9081, database: "vault" };
/// # pub struct Settings { pub common: CommonSettings }
/// # impl Settings {
/// #     pub fn from_env() -> Result<Self, SettingsError> {
/// #         CommonSettings::from_env(&Env::new(ENV_PREFIX), DEFAULTS).map(|common| Self { common })
/// #     }
/// # }
/// # pub struct Application { lifecycle: Lifecycle }
/// # impl Application {
/// #     pub async fn build(settings: Settings) -> anyhow::Result<Self> {
/// #         Ok(Self { lifecycle: Lifecycle::new(settings.common.shutdown) })
/// #     }
/// #     pub fn lifecycle(&self) -> &Lifecycle { &self.lifecycle }
/// #     pub async fn run_until_stopped(self) -> anyhow::Result<ShutdownOutcome> {
/// #         Ok(ShutdownOutcome::Clean)
/// #     }
/// # }
/// casino_observability::impl_service!(Application {
///     settings: Settings,
///     name: "vault",
///     metric_prefix: "vault",
///     env_prefix: ENV_PREFIX,
///     default_public_port: DEFAULTS.public_port,
/// });
///
/// fn main() {
///     casino_observability::service::main::<Application>(env!("CARGO_PKG_VERSION"))
/// }
/// ```
#[macro_export]
macro_rules! impl_service {
    ($app:ty {
        settings: $settings:ty,
        name: $name:expr,
        metric_prefix: $metric_prefix:expr,
        env_prefix: $env_prefix:expr,
        default_public_port: $default_public_port:expr $(,)?
    }) => {
        impl $crate::service::Service for $app {
            type Settings = $settings;
            const NAME: &'static str = $name;
            const METRIC_PREFIX: &'static str = $metric_prefix;
            const ENV_PREFIX: &'static str = $env_prefix;
            const DEFAULT_PUBLIC_PORT: u16 = $default_public_port;

            fn settings_from_env()
            -> ::core::result::Result<$settings, $crate::settings::SettingsError> {
                <$settings>::from_env()
            }
            fn environment(settings: &$settings) -> ::std::string::String {
                settings.common.env.clone()
            }
            // `<$app>::method` resolves to the inherent method, which takes precedence over the trait's own.
            async fn build(settings: $settings) -> ::anyhow::Result<Self> {
                <$app>::build(settings).await
            }
            fn lifecycle(&self) -> &$crate::lifecycle::Lifecycle {
                <$app>::lifecycle(self)
            }
            async fn run_until_stopped(
                self,
            ) -> ::anyhow::Result<$crate::lifecycle::ShutdownOutcome> {
                <$app>::run_until_stopped(self).await
            }
        }
    };
}

/// Run service `S` as a process and exit: 0 after a clean shutdown, 1 on failure or a missed deadline,
/// 2 for bad configuration.
pub fn main<S: Service>(version: &'static str) -> ! {
    let env = Env::new(S::ENV_PREFIX);
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        std::process::exit(crate::settings::healthcheck(&env, S::DEFAULT_PUBLIC_PORT));
    }
    let settings = match S::settings_from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{}: configuration error: {error}", S::NAME);
            std::process::exit(2);
        }
    };
    let info = ServiceInfo::new(
        S::NAME,
        S::METRIC_PREFIX,
        version,
        S::environment(&settings),
    );
    let telemetry = match init_telemetry(&info) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("{}: telemetry setup failed: {error:#}", S::NAME);
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{}: cannot start the async runtime: {error}", S::NAME);
            std::process::exit(1);
        }
    };
    let outcome = runtime.block_on(async {
        tracing::info!(version, git_sha = info.git_sha, "starting");
        let app = S::build(settings).await?;
        app.lifecycle().listen_for_signals();
        app.run_until_stopped().await
    });
    let code = match outcome {
        Ok(outcome) => outcome.exit_code(),
        Err(error) => {
            let chain: &(dyn std::error::Error + 'static) = error.as_ref();
            tracing::error!(error = chain, "service failed");
            eprintln!("{}: {error:#}", S::NAME);
            1
        }
    };
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    telemetry.shutdown();
    std::process::exit(code);
}
