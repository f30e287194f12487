//! Health checks: `/livez`, `/readyz` and `/health`.
//!
//! A [`HealthRegistry`] holds named async checks. Each has a timeout (a hung dependency is a failed check,
//! not a hung probe) and a short result cache (load balancer probes never stampede the database). A
//! *required* check failing makes the service not ready; an *optional* one (Kafka) only makes `/health` say
//! `degraded`. While draining, `/readyz` answers 503 whatever the checks say.

use std::sync::{
    Arc, Mutex, RwLock,
    atomic::{AtomicBool, Ordering},
};
use std::time::{Duration, Instant};

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use futures::future::{BoxFuture, join_all};
use serde::Serialize;
use serde_json::{Value, json};

use crate::ServiceInfo;

type CheckFn = dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync;
type DetailsFn = dyn Fn() -> Value + Send + Sync;

/// One named dependency check.
pub struct Check {
    name: &'static str,
    required: bool,
    timeout: Duration,
    cache_for: Duration,
    run: Box<CheckFn>,
    last: Mutex<Option<(Instant, CheckResult)>>,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check")
            .field("name", &self.name)
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

impl Check {
    /// A check whose failure makes the service not ready.
    pub fn required<F, Fut>(name: &'static str, run: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self {
            name,
            required: true,
            timeout: Duration::from_secs(2),
            cache_for: Duration::from_secs(2),
            run: Box::new(move || Box::pin(run())),
            last: Mutex::new(None),
        }
    }

    /// A check whose failure only degrades the service.
    pub fn optional<F, Fut>(name: &'static str, run: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self {
            required: false,
            ..Self::required(name, run)
        }
    }

    /// How long one run may take before it counts as failed (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a result is reused (default 2 s).
    pub fn cache_for(mut self, cache_for: Duration) -> Self {
        self.cache_for = cache_for;
        self
    }

    async fn result(&self) -> CheckResult {
        if let Some((at, result)) = self.last.lock().ok().and_then(|l| l.clone())
            && at.elapsed() < self.cache_for
        {
            return result;
        }
        let start = Instant::now();
        let outcome = tokio::time::timeout(self.timeout, (self.run)()).await;
        let latency = start.elapsed();
        let error = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(error),
            Err(_) => Some(format!("timed out after {} ms", self.timeout.as_millis())),
        };
        let result = CheckResult {
            name: self.name,
            required: self.required,
            ok: error.is_none(),
            latency_ms: latency.as_secs_f64() * 1000.0,
            error,
        };
        metrics::gauge!("health_check_up", "check" => self.name).set(if result.ok {
            1.0
        } else {
            0.0
        });
        metrics::gauge!("health_check_duration_seconds", "check" => self.name)
            .set(latency.as_secs_f64());
        if let Some(error) = &result.error {
            tracing::warn!(check = self.name, required = self.required, error = %error, "health check failed");
        }
        if let Ok(mut last) = self.last.lock() {
            *last = Some((Instant::now(), result.clone()));
        }
        result
    }
}

/// The outcome of one check run.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// Check name.
    pub name: &'static str,
    /// Whether failure makes the service unready.
    pub required: bool,
    /// Passed.
    pub ok: bool,
    /// How long the check took.
    pub latency_ms: f64,
    /// Why it failed (admin `/health` only; never shown on the public port).
    pub error: Option<String>,
}

/// Shared, cheap to clone.
#[derive(Clone)]
pub struct HealthRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    info: ServiceInfo,
    started: Instant,
    draining: AtomicBool,
    checks: RwLock<Vec<Arc<Check>>>,
    details: RwLock<Vec<(&'static str, Box<DetailsFn>)>>,
}

impl std::fmt::Debug for HealthRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthRegistry")
            .field("service", &self.inner.info.name)
            .finish_non_exhaustive()
    }
}

/// Overall state, as `/health` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Everything passes.
    Ok,
    /// Required checks pass, an optional one fails.
    Degraded,
    /// A required check fails.
    Failing,
    /// Shutting down.
    Draining,
}

impl HealthRegistry {
    /// An empty registry for `info`'s service.
    pub fn new(info: ServiceInfo) -> Self {
        metrics::gauge!("service_ready").set(0.0);
        Self {
            inner: Arc::new(Inner {
                info,
                started: Instant::now(),
                draining: AtomicBool::new(false),
                checks: RwLock::new(Vec::new()),
                details: RwLock::new(Vec::new()),
            }),
        }
    }

    /// Add a check.
    pub fn register(&self, check: Check) {
        if let Ok(mut checks) = self.inner.checks.write() {
            checks.push(Arc::new(check));
        }
    }

    /// Add a section to `/health` (for example database pool statistics).
    pub fn add_details(
        &self,
        name: &'static str,
        details: impl Fn() -> Value + Send + Sync + 'static,
    ) {
        if let Ok(mut all) = self.inner.details.write() {
            all.push((name, Box::new(details)));
        }
    }

    /// Readiness turns 503 from now on (shutdown has begun).
    pub fn set_draining(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
        metrics::gauge!("service_ready").set(0.0);
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// Run (or reuse) every check, concurrently.
    pub async fn evaluate(&self) -> (Status, Vec<CheckResult>) {
        let checks: Vec<Arc<Check>> = self
            .inner
            .checks
            .read()
            .map(|c| c.clone())
            .unwrap_or_default();
        let results = join_all(checks.iter().map(|c| c.result())).await;
        let status = if self.is_draining() {
            Status::Draining
        } else if results.iter().any(|r| r.required && !r.ok) {
            Status::Failing
        } else if results.iter().any(|r| !r.ok) {
            Status::Degraded
        } else {
            Status::Ok
        };
        let ready = matches!(status, Status::Ok | Status::Degraded);
        metrics::gauge!("service_ready").set(if ready { 1.0 } else { 0.0 });
        (status, results)
    }

    /// `/livez` and `/readyz`, for the public port.
    pub fn public_routes(&self) -> Router {
        Router::new()
            .route("/livez", get(livez))
            .route("/readyz", get(readyz))
            .with_state(self.clone())
    }

    /// `/health`, for the admin port.
    pub fn admin_routes(&self) -> Router {
        Router::new()
            .route("/health", get(health))
            .with_state(self.clone())
    }

    /// Evaluate every `period` so `service_ready` and `health_check_up` stay current without probes.
    pub async fn refresh_until(&self, period: Duration, stop: tokio_util::sync::CancellationToken) {
        let mut ticker = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticker.tick() => { self.evaluate().await; }
            }
        }
    }
}

async fn livez() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(registry): State<HealthRegistry>) -> Response {
    let (status, results) = registry.evaluate().await;
    let checks: Vec<Value> = results
        .iter()
        .map(|r| json!({ "name": r.name, "required": r.required, "status": if r.ok { "ok" } else { "failing" } }))
        .collect();
    let (code, word) = match status {
        Status::Ok | Status::Degraded => (StatusCode::OK, "ready"),
        Status::Failing => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
        Status::Draining => (StatusCode::SERVICE_UNAVAILABLE, "draining"),
    };
    (code, Json(json!({ "status": word, "checks": checks }))).into_response()
}

async fn health(State(registry): State<HealthRegistry>) -> Response {
    let (status, results) = registry.evaluate().await;
    let info = &registry.inner.info;
    let mut details = serde_json::Map::new();
    if let Ok(all) = registry.inner.details.read() {
        for (name, f) in all.iter() {
            details.insert((*name).to_owned(), f());
        }
    }
    let checks: Vec<Value> = results
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "required": r.required,
                "status": if r.ok { "ok" } else if r.required { "failing" } else { "degraded" },
                "latency_ms": (r.latency_ms * 1000.0).round() / 1000.0,
                "error": r.error,
            })
        })
        .collect();
    let code = match status {
        Status::Ok | Status::Degraded => StatusCode::OK,
        Status::Failing | Status::Draining => StatusCode::SERVICE_UNAVAILABLE,
    };
    let body = json!({
        "status": status,
        "service": info.name,
        "version": info.version,
        "git_sha": info.git_sha,
        "env": info.env,
        "uptime_seconds": registry.inner.started.elapsed().as_secs(),
        "checks": checks,
        "details": details,
    });
    (code, Json(body)).into_response()
}

/// A required check that runs `SELECT 1` on `pool`, plus pool statistics in `/health` and the
/// `db_pool_connections_{in_use,idle,max}` gauges.
pub fn register_postgres(registry: &HealthRegistry, pool: sqlx::PgPool) {
    let check_pool = pool.clone();
    registry.register(Check::required("database", move || {
        let pool = check_pool.clone();
        async move {
            sqlx::query("SELECT 1")
                .execute(&pool)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    }));
    registry.add_details("db_pool", move || {
        let size = pool.size();
        let idle = pool.num_idle() as u32;
        let max = pool.options().get_max_connections();
        let in_use = size.saturating_sub(idle);
        metrics::gauge!("db_pool_connections_in_use").set(in_use as f64);
        metrics::gauge!("db_pool_connections_idle").set(idle as f64);
        metrics::gauge!("db_pool_connections_max").set(max as f64);
        json!({ "size": size, "idle": idle, "in_use": in_use, "max": max, "closed": pool.is_closed() })
    });
}

/// Record the pool gauges now (the admin `/metrics` handler calls the `/health` details for this too).
pub fn record_details(registry: &HealthRegistry) {
    if let Ok(all) = registry.inner.details.read() {
        for (_, f) in all.iter() {
            let _ = f();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn registry() -> HealthRegistry {
        HealthRegistry::new(ServiceInfo::new("test", "test", "0.0.0", "test"))
    }

    #[tokio::test]
    async fn a_failing_required_check_makes_the_service_failing_and_optional_only_degraded() {
        let registry = registry();
        registry.register(Check::optional("kafka", || async {
            Err("broker down".into())
        }));
        assert_eq!(registry.evaluate().await.0, Status::Degraded);
        registry.register(Check::required("database", || async {
            Err("refused".into())
        }));
        let (status, results) = registry.evaluate().await;
        assert_eq!(status, Status::Failing);
        assert_eq!(results.len(), 2);
        assert_eq!(results[1].error.as_deref(), Some("refused"));
    }

    #[tokio::test]
    async fn a_hung_check_fails_at_its_timeout() {
        let registry = registry();
        registry.register(
            Check::required("slow", || async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(())
            })
            .timeout(Duration::from_millis(50)),
        );
        let start = Instant::now();
        let (status, results) = registry.evaluate().await;
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(status, Status::Failing);
        assert_eq!(results[0].error.as_deref(), Some("timed out after 50 ms"));
    }

    #[tokio::test]
    async fn results_are_cached_for_the_configured_time() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        let registry = registry();
        registry.register(
            Check::required("db", move || {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            })
            .cache_for(Duration::from_millis(200)),
        );
        registry.evaluate().await;
        registry.evaluate().await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        registry.evaluate().await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn draining_wins_over_passing_checks() {
        let registry = registry();
        registry.register(Check::required("db", || async { Ok(()) }));
        registry.set_draining();
        assert_eq!(registry.evaluate().await.0, Status::Draining);
    }
}
