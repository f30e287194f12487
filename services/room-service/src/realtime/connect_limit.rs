//! Guarding new socket.io sessions: refused while the task shuts down, and limited per source IP (a token
//! bucket), the DoS signal of the blueprint (`room_socket_connections_total{outcome="rate_limited"}` plus
//! one warning log line per source and 10 s).
//!
//! The source IP is the right-most address of `X-Forwarded-For`, which the ALB appends (anything left of
//! it is client-supplied and spoofable). The shared server does not expose the TCP peer address, so a
//! request without that header (a direct connection, local runs) is not rate limited.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::{
    extract::{OriginalUri, Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode},
    middleware::Next,
    response::Response,
};
use casino_observability::http::error_response;

use crate::{config::ConnectRate, metrics, state::AppState};

/// How often one source's refusals are logged at most.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// Buckets kept before idle ones are swept.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
    refused_since_log: u64,
    logged_at: Option<Instant>,
}

/// Per-IP token buckets.
#[derive(Debug)]
pub struct ConnectLimiter {
    rate: ConnectRate,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// What the limiter decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refuse.
    Refuse {
        /// `Some(n)` when this refusal should be logged (at most once per source per 10 s): `n` refusals
        /// since the last log line, this one included.
        log: Option<u64>,
    },
}

impl ConnectLimiter {
    /// A limiter with `rate`.
    pub fn new(rate: ConnectRate) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take a token for a new connection from `ip` at `now`.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Decision {
        if self.rate.per_minute == 0 {
            return Decision::Allow;
        }
        let capacity = f64::from(self.rate.burst);
        let per_second = f64::from(self.rate.per_minute) / 60.0;
        let Ok(mut buckets) = self.buckets.lock() else {
            return Decision::Allow;
        };
        if buckets.len() > SWEEP_ABOVE {
            // Drop sources whose bucket would be full again: they are indistinguishable from new ones.
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() * per_second
                    < capacity
            });
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
            tokens: capacity,
            updated: now,
            refused_since_log: 0,
            logged_at: None,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Decision::Allow;
        }
        bucket.refused_since_log += 1;
        let log = match bucket.logged_at {
            Some(at) if now.saturating_duration_since(at) < LOG_EVERY => None,
            _ => {
                bucket.logged_at = Some(now);
                Some(std::mem::take(&mut bucket.refused_since_log))
            }
        };
        Decision::Refuse { log }
    }
}

/// The client address the load balancer saw: the right-most `X-Forwarded-For` entry.
pub fn source_ip(headers: &HeaderMap) -> Option<IpAddr> {
    let value = headers.get_all("x-forwarded-for").iter().next_back()?;
    value.to_str().ok()?.rsplit(',').next()?.trim().parse().ok()
}

/// Whether an Engine.IO request opens a new session (no `sid` yet).
fn opens_session(request: &Request) -> bool {
    !request
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|pair| pair.starts_with("sid=")))
}

/// The request with its URI and headers copied out of the connection's read buffer.
///
/// hyper parses requests without copying: header values and the URI are slices of the connection's
/// read buffer (8 KiB), and engineioxide keeps a socket's request parts for the socket's whole life, so
/// each socket would pin that buffer. Copying the few bytes that matter lets it go (measured with
/// `casino bench room`: about 7 KiB less per WebSocket connection).
fn detach_from_read_buffer(request: Request) -> Request {
    let (mut parts, body) = request.into_parts();
    if let Ok(uri) = parts.uri.to_string().parse() {
        parts.uri = uri;
    }
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    parts.headers = headers;
    // axum's router keeps the original URI in the extensions (another slice of the buffer).
    if let Some(OriginalUri(uri)) = parts.extensions.get::<OriginalUri>()
        && let Ok(uri) = uri.to_string().parse()
    {
        parts.extensions.insert(OriginalUri(uri));
    }
    Request::from_parts(parts, body)
}

/// axum middleware in front of the socket.io service.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let request = detach_from_read_buffer(request);
    if opens_session(&request) {
        if state.shutdown.is_cancelled() {
            metrics::connection("server_shutdown");
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_shutdown",
                "this server is shutting down, connect again",
            );
        }
        if let Some(ip) = source_ip(request.headers())
            && let Decision::Refuse { log } = state.connect_limiter.check(ip, Instant::now())
        {
            metrics::connection("rate_limited");
            if let Some(refused) = log {
                tracing::warn!(
                    source_ip = %ip,
                    refused_since_last_log = refused,
                    "socket connection rate limit exceeded for source"
                );
            }
            return error_response(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many connections from this address",
            );
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_gets_its_burst_then_the_refill_rate() {
        let limiter = ConnectLimiter::new(ConnectRate::per_minute(60)); // burst 10, 1 per second
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..10 {
            assert_eq!(limiter.check(ip, t0), Decision::Allow);
        }
        assert_eq!(limiter.check(ip, t0), Decision::Refuse { log: Some(1) });
        assert_eq!(limiter.check(ip, t0), Decision::Refuse { log: None });
        assert_eq!(
            limiter.check(other, t0),
            Decision::Allow,
            "sources are independent"
        );
        assert_eq!(
            limiter.check(ip, t0 + Duration::from_millis(1100)),
            Decision::Allow
        );
        assert!(matches!(
            limiter.check(ip, t0 + Duration::from_millis(1200)),
            Decision::Refuse { log: None }
        ));
        assert_eq!(
            limiter.check(ip, t0 + Duration::from_millis(10_300)),
            Decision::Allow,
            "nine seconds refill nine tokens"
        );
    }

    #[test]
    fn refusals_are_logged_once_per_window_with_the_count_since() {
        let limiter = ConnectLimiter::new(ConnectRate::per_minute(6)); // burst 5, one per 10 s
        let ip: IpAddr = "203.0.113.8".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..5 {
            limiter.check(ip, t0);
        }
        assert_eq!(limiter.check(ip, t0), Decision::Refuse { log: Some(1) });
        for _ in 0..3 {
            assert_eq!(limiter.check(ip, t0), Decision::Refuse { log: None });
        }
        let later = t0 + Duration::from_millis(9_000);
        assert_eq!(limiter.check(ip, later), Decision::Refuse { log: None });
        let much_later = t0 + Duration::from_millis(10_000);
        // the refill gave one token back at 10 s
        assert_eq!(limiter.check(ip, much_later), Decision::Allow);
        assert_eq!(
            limiter.check(ip, much_later),
            Decision::Refuse { log: Some(5) }
        );
    }

    #[test]
    fn zero_means_no_limit() {
        let limiter = ConnectLimiter::new(ConnectRate::unlimited());
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        for _ in 0..10_000 {
            assert_eq!(limiter.check(ip, Instant::now()), Decision::Allow);
        }
    }

    #[test]
    fn the_source_is_the_right_most_forwarded_address() {
        let mut headers = HeaderMap::new();
        assert_eq!(source_ip(&headers), None);
        headers.insert("x-forwarded-for", "10.0.0.1, 203.0.113.7".parse().unwrap());
        assert_eq!(source_ip(&headers), Some("203.0.113.7".parse().unwrap()));
        headers.insert("x-forwarded-for", "2001:db8::1".parse().unwrap());
        assert_eq!(source_ip(&headers), Some("2001:db8::1".parse().unwrap()));
        headers.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(source_ip(&headers), None);
    }
}
