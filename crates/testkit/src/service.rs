//! A service's `Application` running inside the test process, as its binary runs it, probed over real HTTP
//! the way the load balancer, Prometheus and the process supervisor see it.

use std::net::SocketAddr;
use std::process::Command;

use casino_observability::{
    lifecycle::{Lifecycle, ShutdownOutcome},
    service::Service,
};
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::process::SafeSpawn as _;

/// A built application serving on its ports until [`RunningService::stop`].
pub struct RunningService {
    /// `http://` and the public (load balancer) address.
    pub public: String,
    /// `http://` and the admin address (`/metrics`, `/health`, internal API).
    pub admin: String,
    /// The bound public address.
    pub public_addr: SocketAddr,
    lifecycle: Lifecycle,
    running: JoinHandle<anyhow::Result<ShutdownOutcome>>,
}

impl RunningService {
    /// Serve `app`, already bound to `public_addr` and `admin_addr`, on a task until stopped. The
    /// addresses come first so a call can read them from `app` before moving it.
    pub fn start<S: Service>(public_addr: SocketAddr, admin_addr: SocketAddr, app: S) -> Self {
        let lifecycle = app.lifecycle().clone();
        Self {
            public: format!("http://{public_addr}"),
            admin: format!("http://{admin_addr}"),
            public_addr,
            lifecycle,
            running: tokio::spawn(app.run_until_stopped()),
        }
    }

    /// The application's shutdown control.
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// The admin port's `/metrics` text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.admin))
            .await
            .expect("the admin port answers")
            .text()
            .await
            .expect("metrics are text")
    }

    /// `/readyz` answers 200, `/health` names `service` and says `ok`, and `/metrics` carries
    /// `<metric_prefix>_build_info`: what the load balancer, an operator and Prometheus first look at.
    pub async fn assert_ready_and_healthy(&self, service: &str, metric_prefix: &str) {
        let ready = reqwest::get(format!("{}/readyz", self.public))
            .await
            .expect("the public port answers");
        assert_eq!(ready.status(), 200);
        let (_, health) = get_json(&format!("{}/health", self.admin)).await;
        assert_eq!(health["service"], service);
        assert_eq!(health["status"], "ok", "{health}");
        let metrics = self.metrics().await;
        assert!(
            metrics.contains(&format!("{metric_prefix}_build_info{{")),
            "{metrics}"
        );
    }

    /// Request shutdown, as the first signal does, and wait for the drain to end.
    pub async fn stop(self) -> ShutdownOutcome {
        self.lifecycle.request_shutdown();
        self.running
            .await
            .expect("the application task does not panic")
            .expect("the application runs until stopped")
    }
}

/// GET `url`: the status and the JSON body.
pub async fn get_json(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

/// Run a service binary whose environment `command` made bad, and assert the process stops at start the
/// way the blueprint says: exit code 2 and `expected` as the one line on stderr, nothing on stdout.
pub fn assert_refused_at_start(command: &mut Command, expected: &str) {
    let output = command.safe_output().expect("the service binary starts");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stderr).trim(), expected);
    assert!(output.stdout.is_empty(), "{output:?}");
}

/// Build a service with [`crate::service_settings_without_database`]:
/// start-up must retry for those 2 s, then fail with "the `database` database was not reachable within 2 s".
pub async fn assert_start_fails_without_database<T>(
    database: &str,
    build: impl std::future::Future<Output = anyhow::Result<T>>,
) {
    let started = std::time::Instant::now();
    let error = match build.await {
        Ok(_) => panic!("started without a database"),
        Err(error) => format!("{error:#}"),
    };
    let expected = format!("the {database} database was not reachable within 2 s");
    assert!(error.starts_with(&expected), "{error}");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "it retried for the connect timeout"
    );
}
