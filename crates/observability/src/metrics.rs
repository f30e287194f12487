//! Prometheus metrics: the recorder, the HTTP RED layer, build info and process gauges.
//!
//! The recorder is process-wide (the `metrics` facade has one global recorder); [`install`] is idempotent
//! and returns the same handle every time, so several applications started in one test process share it.
//! Every series carries a `service` label. Histograms (`*_seconds`) are real Prometheus histograms with
//! buckets, so SLO rules can use `le` thresholds.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::{
    extract::{MatchedPath, Request},
    http::HeaderValue,
    middleware::Next,
    response::Response,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::propagation::Extractor;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::ServiceInfo;

/// Latency buckets in seconds: fine below 100 ms (the game API SLO), coarse up to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static PROCESS_START: OnceLock<SystemTime> = OnceLock::new();

/// Install the process-wide Prometheus recorder (once) and publish `info`'s build-info gauge.
pub fn install(info: &ServiceInfo) -> PrometheusHandle {
    let handle = HANDLE
        .get_or_init(|| {
            PROCESS_START.get_or_init(SystemTime::now);
            let builder = PrometheusBuilder::new()
                .add_global_label("service", info.name)
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("latency buckets are not empty");
            match builder.install_recorder() {
                Ok(handle) => handle,
                // Another recorder is installed (a test harness); render from a private one so /metrics
                // still answers, but say so loudly.
                Err(error) => {
                    tracing::error!(%error, "could not install the prometheus recorder");
                    PrometheusBuilder::new().build_recorder().handle()
                }
            }
        })
        .clone();
    metrics::gauge!(format!("{}_build_info", info.metric_prefix),
        "version" => info.version, "git_sha" => info.git_sha)
    .set(1.0);
    handle
}

/// Render the exposition text, refreshing process gauges first.
pub fn render(handle: &PrometheusHandle) -> String {
    record_process_metrics();
    handle.run_upkeep();
    handle.render()
}

/// `process_*` gauges from `/proc/self` (Linux); silently absent elsewhere.
pub fn record_process_metrics() {
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the ")" that closes the command name; utime and stime are fields 14 and 15.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| {
                fields
                    .get(i)
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            // USER_HZ is 100 on every Linux platform we deploy to.
            let cpu_seconds = (ticks(11) + ticks(12)) / 100.0;
            metrics::gauge!("process_cpu_seconds_total").set(cpu_seconds);
        }
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines() {
            let kib = |line: &str| {
                line.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
                    * 1024.0
            };
            if line.starts_with("VmRSS:") {
                metrics::gauge!("process_resident_memory_bytes").set(kib(line));
            } else if line.starts_with("VmSize:") {
                metrics::gauge!("process_virtual_memory_bytes").set(kib(line));
            }
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        metrics::gauge!("process_open_fds").set(dir.count() as f64);
    }
    if let Ok(limits) = std::fs::read_to_string("/proc/self/limits")
        && let Some(line) = limits.lines().find(|l| l.starts_with("Max open files"))
        && let Some(soft) = line.split_whitespace().nth(3)
        && let Ok(soft) = soft.parse::<f64>()
    {
        metrics::gauge!("process_max_fds").set(soft);
    }
    if let Some(start) = PROCESS_START.get()
        && let Ok(since_epoch) = start.duration_since(UNIX_EPOCH)
    {
        metrics::gauge!("process_start_time_seconds").set(since_epoch.as_secs_f64());
    }
}

/// Where the inner route layer leaves the matched route template and the request span for the outer layer.
#[derive(Clone, Default)]
struct RouteSlot(Arc<Mutex<Option<(String, tracing::Span)>>>);

/// Outer middleware (add with `Router::layer`, outermost): a request id and the RED metrics
/// `http_server_requests_total` and `http_server_request_duration_seconds` {method, route, status}, plus
/// one log line per request (debug for success, info for 4xx, error for 5xx).
pub async fn track_http(mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let slot = RouteSlot::default();
    req.extensions_mut().insert(slot.clone());
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(request_id.clone()));

    let mut response = next.run(req).await;

    // Take, not clone: an upgraded connection (socket.io) keeps the request's extensions, and with them
    // the slot, for its whole life; the span must end with the response.
    let (route, span) = slot
        .0
        .lock()
        .ok()
        .and_then(|mut r| r.take())
        .unwrap_or_else(|| ("unmatched".to_owned(), tracing::Span::none()));
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }

    let elapsed = start.elapsed().as_secs_f64();
    let status = status.to_string();
    let labels = [
        ("method", method),
        ("route", route.clone()),
        ("status", status.clone()),
    ];
    metrics::counter!("http_server_requests_total", &labels).increment(1);
    metrics::histogram!("http_server_request_duration_seconds", &labels).record(elapsed);
    let _entered = span.enter();
    let duration_ms = elapsed * 1000.0;
    if response.status().is_server_error() {
        tracing::error!(route = %route, status = %status, duration_ms, request_id = %request_id, "request failed");
    } else if response.status().is_client_error() {
        tracing::info!(route = %route, status = %status, duration_ms, request_id = %request_id, "request refused");
    } else {
        tracing::debug!(route = %route, status = %status, duration_ms, request_id = %request_id, "request completed");
    }
    response
}

/// The request id of the current request (from `x-request-id`, or generated), as a request extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Inner middleware (add with `Router::route_layer`): once the route is known, opens the server span
/// (`{method} {route}`, continuing a W3C `traceparent` from the caller) and hands the route to
/// [`track_http`].
pub async fn capture_route(req: Request, next: Next) -> Response {
    let Some(route) = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
    else {
        return next.run(req).await;
    };
    let method = req.method().as_str();
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(req.headers()))
    });
    let span = tracing::info_span!(
        "http.request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        url.path = %req.uri().path(),
        http.response.status_code = tracing::field::Empty,
        request_id = %request_id,
    );
    let _ = span.set_parent(parent);
    if let Some(slot) = req.extensions().get::<RouteSlot>()
        && let Ok(mut value) = slot.0.lock()
    {
        *value = Some((route, span.clone()));
    }
    next.run(req).instrument(span).await
}

struct HeaderExtractor<'a>(&'a axum::http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}
