//! Guarding new socket.io sessions: refused while the task shuts down, and limited per source IP (a token
//! bucket), the DoS signal of the blueprint (`room_socket_connections_total{outcome="rate_limited"}` plus
//! one warning log line per source and 10 s).
//!
//! The source is the TCP peer address (`ConnectInfo`, which the shared server provides). Behind proxies
//! that append to `X-Forwarded-For` (`ROOM_SERVICE_TRUSTED_PROXY_HOPS`, 1 behind the ALB), it is the
//! address the outermost trusted proxy saw: the `hops`-th entry from the right (the entries left of it
//! are client-supplied and spoofable). Without the header it is the peer.
//!
//! A source over its limit is told so clearly: the Engine.IO session opens and the socket.io CONNECT is
//! answered with the connect error `rate_limited` (socket.io-client's `connect_error` with
//! `err.message === "rate_limited"`; it does not retry by itself). A source that keeps going after more
//! than a burst's worth of refusals in a row gets plain HTTP 429s, which cost the server nothing.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::{
    extract::{ConnectInfo, MatchedPath, OriginalUri, Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode},
    middleware::Next,
    response::Response,
};
use casino_observability::{http::error_response, metrics::RequestId};

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
    /// Refusals since the last accepted connection.
    refused_in_a_row: u32,
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
        /// More than a burst's worth of refusals in a row: refuse at the HTTP level (429), without
        /// opening a session to say why.
        hard: bool,
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
            refused_in_a_row: 0,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            bucket.refused_in_a_row = 0;
            return Decision::Allow;
        }
        bucket.refused_since_log += 1;
        bucket.refused_in_a_row = bucket.refused_in_a_row.saturating_add(1);
        let hard = bucket.refused_in_a_row > self.rate.burst;
        let log = match bucket.logged_at {
            Some(at) if now.saturating_duration_since(at) < LOG_EVERY => None,
            _ => {
                bucket.logged_at = Some(now);
                Some(std::mem::take(&mut bucket.refused_since_log))
            }
        };
        Decision::Refuse { log, hard }
    }
}

/// Where a connection comes from: the TCP `peer`, or with `trusted_proxy_hops` > 0 the address the
/// outermost trusted proxy saw, the `hops`-th `X-Forwarded-For` entry from the right (several header
/// lines read as one list). With fewer entries than hops, the left-most; without a readable entry, the
/// peer.
pub fn source_ip(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted_proxy_hops: u8,
) -> Option<IpAddr> {
    let peer = peer.map(|p| p.ip().to_canonical());
    if trusted_proxy_hops == 0 {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let Some(index) = entries.len().checked_sub(1) else {
        return peer;
    };
    let index = index.saturating_sub(usize::from(trusted_proxy_hops) - 1);
    entries[index]
        .parse::<IpAddr>()
        .ok()
        .map(|ip| ip.to_canonical())
        .or(peer)
}

/// Set on a new session's request by [`guard`] when its source is over the limit: the namespace
/// middleware refuses the socket with `rate_limited`.
#[derive(Debug, Clone, Copy)]
pub struct OverConnectLimit;

/// Whether an Engine.IO request opens a new session (no `sid` yet).
fn opens_session(request: &Request) -> bool {
    !request
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|pair| pair.starts_with("sid=")))
}

/// Headers a new session's request keeps: what engineioxide and hyper need to open it. engineioxide
/// keeps the parts of the request that opened a session for the session's whole life, so everything else
/// (cookies, user agent, accept-*: easily a few KiB from a browser) is dropped rather than held per socket.
const KEPT_HEADERS: [&str; 6] = [
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "content-type",
];

/// The request with its URI and headers copied out of the connection's read buffer; for a request that
/// opens a session, only the headers it needs and none of the per-request extensions the shared layers
/// add.
///
/// hyper parses requests without copying: header values and the URI are slices of the connection's
/// read buffer (8 KiB), and engineioxide keeps a socket's request parts for the socket's whole life, so
/// each socket would pin that buffer. Copying the few bytes that matter lets it go (measured with
/// `casino bench room`: about 7 KiB less per WebSocket connection).
fn detach_from_read_buffer(request: Request, opens_session: bool) -> Request {
    let (mut parts, body) = request.into_parts();
    if let Ok(uri) = parts.uri.to_string().parse() {
        parts.uri = uri;
    }
    let kept = if opens_session {
        KEPT_HEADERS.len()
    } else {
        parts.headers.len()
    };
    let mut headers = HeaderMap::with_capacity(kept);
    for (name, value) in &parts.headers {
        if opens_session && !KEPT_HEADERS.contains(&name.as_str()) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    parts.headers = headers;
    if opens_session {
        parts.extensions.remove::<OriginalUri>();
        parts.extensions.remove::<MatchedPath>();
        parts.extensions.remove::<RequestId>();
    } else if let Some(OriginalUri(uri)) = parts.extensions.get::<OriginalUri>()
        && let Ok(uri) = uri.to_string().parse()
    {
        // axum's router keeps the original URI in the extensions (another slice of the buffer).
        parts.extensions.insert(OriginalUri(uri));
    }
    Request::from_parts(parts, body)
}

/// What [`guard`] needs.
#[derive(Clone)]
pub struct GuardState {
    /// The application.
    pub app: AppState,
    /// `ROOM_SERVICE_TRUSTED_PROXY_HOPS`.
    pub trusted_proxy_hops: u8,
}

/// axum middleware in front of the socket.io service.
pub async fn guard(State(guard): State<GuardState>, request: Request, next: Next) -> Response {
    let state = &guard.app;
    let new_session = opens_session(&request);
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    let source = source_ip(peer, request.headers(), guard.trusted_proxy_hops);
    let mut request = detach_from_read_buffer(request, new_session);
    if new_session {
        request.extensions_mut().remove::<ConnectInfo<SocketAddr>>();
        if state.shutdown.is_cancelled() {
            metrics::connection("server_shutdown");
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_shutdown",
                "this server is shutting down, connect again",
            );
        }
        if let Some(ip) = source
            && let Decision::Refuse { log, hard } = state.connect_limiter.check(ip, Instant::now())
        {
            if let Some(refused) = log {
                tracing::warn!(
                    source_ip = %ip,
                    refused_since_last_log = refused,
                    "socket connection rate limit exceeded for source"
                );
            }
            if hard {
                metrics::connection("rate_limited");
                return error_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many connections from this address",
                );
            }
            // Counted when the namespace middleware refuses the socket.
            request.extensions_mut().insert(OverConnectLimit);
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
        assert_eq!(
            limiter.check(ip, t0),
            Decision::Refuse {
                log: Some(1),
                hard: false
            }
        );
        assert_eq!(
            limiter.check(ip, t0),
            Decision::Refuse {
                log: None,
                hard: false
            }
        );
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
            Decision::Refuse { log: None, .. }
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
        assert!(matches!(
            limiter.check(ip, t0),
            Decision::Refuse { log: Some(1), .. }
        ));
        for _ in 0..3 {
            assert!(matches!(
                limiter.check(ip, t0),
                Decision::Refuse { log: None, .. }
            ));
        }
        let later = t0 + Duration::from_millis(9_000);
        assert!(matches!(
            limiter.check(ip, later),
            Decision::Refuse { log: None, .. }
        ));
        let much_later = t0 + Duration::from_millis(10_000);
        // the refill gave one token back at 10 s
        assert_eq!(limiter.check(ip, much_later), Decision::Allow);
        assert!(matches!(
            limiter.check(ip, much_later),
            Decision::Refuse { log: Some(5), .. }
        ));
    }

    #[test]
    fn a_source_that_keeps_going_after_a_bursts_worth_of_refusals_gets_hard_ones() {
        let limiter = ConnectLimiter::new(ConnectRate::per_minute(6)); // burst 5
        let ip: IpAddr = "203.0.113.10".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(limiter.check(ip, t0), Decision::Allow);
        }
        for n in 1..=5 {
            assert!(
                matches!(limiter.check(ip, t0), Decision::Refuse { hard: false, .. }),
                "refusal {n} says why"
            );
        }
        assert!(matches!(
            limiter.check(ip, t0),
            Decision::Refuse { hard: true, .. }
        ));
        // A token comes back after 10 s: accepted, and the next refusal explains itself again.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(limiter.check(ip, later), Decision::Allow);
        assert!(matches!(
            limiter.check(ip, later),
            Decision::Refuse { hard: false, .. }
        ));
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
    fn without_trusted_proxies_the_source_is_the_peer_whatever_the_headers_say() {
        let peer: SocketAddr = "192.0.2.4:50000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.7".parse().unwrap());
        assert_eq!(
            source_ip(Some(peer), &headers, 0),
            Some("192.0.2.4".parse().unwrap())
        );
        assert_eq!(source_ip(None, &headers, 0), None);
        // An IPv4 client on a dual-stack listener is the IPv4 address.
        let mapped: SocketAddr = "[::ffff:192.0.2.5]:1".parse().unwrap();
        assert_eq!(
            source_ip(Some(mapped), &HeaderMap::new(), 0),
            Some("192.0.2.5".parse().unwrap())
        );
    }

    #[test]
    fn behind_proxies_the_source_is_the_address_the_outermost_trusted_one_saw() {
        let alb: SocketAddr = "10.0.1.20:41000".parse().unwrap();
        let mut headers = HeaderMap::new();
        assert_eq!(
            source_ip(Some(alb), &headers, 1),
            Some("10.0.1.20".parse().unwrap()),
            "no header: the peer"
        );
        headers.insert(
            "x-forwarded-for",
            "198.51.100.1, 10.0.0.1, 203.0.113.7".parse().unwrap(),
        );
        assert_eq!(
            source_ip(Some(alb), &headers, 1),
            Some("203.0.113.7".parse().unwrap())
        );
        assert_eq!(
            source_ip(Some(alb), &headers, 2),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(
            source_ip(Some(alb), &headers, 9),
            Some("198.51.100.1".parse().unwrap()),
            "fewer entries than hops: the left-most"
        );
        // Several header lines are one list.
        let mut split = HeaderMap::new();
        split.append("x-forwarded-for", "198.51.100.1".parse().unwrap());
        split.append("x-forwarded-for", "2001:db8::1".parse().unwrap());
        assert_eq!(
            source_ip(Some(alb), &split, 1),
            Some("2001:db8::1".parse().unwrap())
        );
        headers.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(
            source_ip(Some(alb), &headers, 1),
            Some("10.0.1.20".parse().unwrap()),
            "unreadable: the peer"
        );
    }
}
