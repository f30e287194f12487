//! What happened: every request counted by operation and outcome, latency per operation in a bounded
//! log-scale histogram (a run may last for days), and the live counters the progress line shows.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Outcome of a request that was answered 2xx (or a socket ack with `ok: true`).
pub const OK: &str = "ok";
/// A 5xx answer.
pub const HTTP_5XX: &str = "http_5xx";
/// No answer: connection refused or reset, timeout, unreadable body.
pub const TRANSPORT_ERROR: &str = "transport_error";

/// Whether an outcome is a server-side failure (as opposed to `ok` or a business refusal).
pub fn is_server_error(outcome: &str) -> bool {
    outcome == HTTP_5XX || outcome == TRANSPORT_ERROR
}

/// The outcome label of an HTTP answer: `ok`, the JSON error code of a 4xx (`http_<status>` without
/// one), `http_5xx`.
pub fn outcome_of(status: u16, body: &serde_json::Value) -> String {
    match status {
        200..=299 => OK.to_owned(),
        500..=599 => HTTP_5XX.to_owned(),
        _ => body["error"]["code"]
            .as_str()
            .filter(|code| !code.is_empty())
            .map_or_else(|| format!("http_{status}"), str::to_owned),
    }
}

/// Latencies in log-spaced buckets (2% wide) from 1 µs to about 120 s: quantiles within 2%, memory
/// bounded whatever the run length.
#[derive(Debug, Clone)]
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    max: Duration,
}

const BUCKET_GROWTH: f64 = 1.02;
const BUCKETS: usize = 940;

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: vec![0; BUCKETS],
            count: 0,
            max: Duration::ZERO,
        }
    }
}

impl Histogram {
    fn bucket(latency: Duration) -> usize {
        let micros = latency.as_secs_f64() * 1e6;
        if micros <= 1.0 {
            return 0;
        }
        ((micros.ln() / BUCKET_GROWTH.ln()).ceil() as usize).min(BUCKETS - 1)
    }

    /// Add one.
    pub fn record(&mut self, latency: Duration) {
        self.buckets[Self::bucket(latency)] += 1;
        self.count += 1;
        self.max = self.max.max(latency);
    }

    /// How many were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest recorded.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The `q` quantile (0..=1, nearest rank): the upper bound of its bucket, capped at the maximum.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                if i == BUCKETS - 1 {
                    // The overflow bucket has no upper bound.
                    return self.max;
                }
                let micros = BUCKET_GROWTH.powi(i as i32);
                return Duration::from_secs_f64(micros / 1e6).min(self.max);
            }
        }
        self.max
    }
}

/// Live counters (atomics: read by the progress line while the run updates them).
#[derive(Debug, Default)]
pub struct Counters {
    /// Accepted bets.
    pub bets: AtomicU64,
    /// Accepted wins.
    pub wins: AtomicU64,
    /// Accepted rollbacks.
    pub rollbacks: AtomicU64,
    /// Business refusals (4xx, refused acks) of any operation.
    pub refused: AtomicU64,
    /// Server errors (5xx, transport errors) of any operation.
    pub errors: AtomicU64,
    /// Accepted chat messages.
    pub chat: AtomicU64,
    /// `balance.updated` pushes received on all sockets.
    pub pushes: AtomicU64,
    /// Paced events issued by the main loop and its follow-ups.
    pub events: AtomicU64,
}

/// Counts and latencies of every request.
#[derive(Debug)]
pub struct Stats {
    /// The live counters.
    pub counters: Counters,
    outcomes: Mutex<HashMap<(&'static str, String), u64>>,
    latencies: Mutex<HashMap<&'static str, Histogram>>,
    started: Instant,
    last_push_ms: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            counters: Counters::default(),
            outcomes: Mutex::default(),
            latencies: Mutex::default(),
            started: Instant::now(),
            last_push_ms: AtomicU64::new(0),
        }
    }
}

impl Stats {
    /// Record one request of `operation` with its outcome label and latency.
    pub fn record(&self, operation: &'static str, outcome: &str, latency: Duration) {
        if let Ok(mut outcomes) = self.outcomes.lock() {
            *outcomes.entry((operation, outcome.to_owned())).or_default() += 1;
        }
        if let Ok(mut latencies) = self.latencies.lock() {
            latencies.entry(operation).or_default().record(latency);
        }
        let c = &self.counters;
        if outcome == OK {
            match operation {
                "bet" => c.bets.fetch_add(1, Ordering::Relaxed),
                "win" => c.wins.fetch_add(1, Ordering::Relaxed),
                "rollback" => c.rollbacks.fetch_add(1, Ordering::Relaxed),
                "chat" => c.chat.fetch_add(1, Ordering::Relaxed),
                _ => 0,
            };
        } else if is_server_error(outcome) {
            c.errors.fetch_add(1, Ordering::Relaxed);
        } else {
            c.refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A `balance.updated` arrived.
    pub fn push_received(&self) {
        self.counters.pushes.fetch_add(1, Ordering::Relaxed);
        let now = self.started.elapsed().as_millis() as u64;
        self.last_push_ms.fetch_max(now, Ordering::Relaxed);
    }

    /// Time since the last `balance.updated` (since the start when none came).
    pub fn since_last_push(&self) -> Duration {
        let last = Duration::from_millis(self.last_push_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    /// Requests by operation and outcome.
    pub fn outcomes(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        let mut all: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        if let Ok(outcomes) = self.outcomes.lock() {
            for ((operation, outcome), n) in outcomes.iter() {
                *all.entry((*operation).to_owned())
                    .or_default()
                    .entry(outcome.clone())
                    .or_default() += n;
            }
        }
        all
    }

    /// Latency histograms by operation.
    pub fn latencies(&self) -> BTreeMap<String, Histogram> {
        self.latencies
            .lock()
            .map(|l| {
                l.iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outcomes_are_ok_the_error_code_or_the_status_class() {
        assert_eq!(outcome_of(201, &json!({})), "ok");
        assert_eq!(
            outcome_of(
                422,
                &json!({"error": {"code": "bet_limit_exceeded"}, "balance": "1.00"})
            ),
            "bet_limit_exceeded"
        );
        assert_eq!(outcome_of(404, &serde_json::Value::Null), "http_404");
        assert_eq!(
            outcome_of(503, &json!({"error": {"code": "unavailable"}})),
            "http_5xx"
        );
        assert!(is_server_error("transport_error") && !is_server_error("player_locked"));
    }

    #[test]
    fn histogram_quantiles_are_within_two_percent() {
        let mut h = Histogram::default();
        for ms in 1..=1000 {
            h.record(Duration::from_millis(ms));
        }
        let near = |d: Duration, ms: f64| {
            let got = d.as_secs_f64() * 1000.0;
            assert!((got - ms).abs() <= ms * 0.021, "{got} vs {ms}");
        };
        near(h.quantile(0.5), 500.0);
        near(h.quantile(0.99), 990.0);
        assert_eq!(h.quantile(1.0), Duration::from_millis(1000));
        assert_eq!(h.count(), 1000);
        assert_eq!(Histogram::default().quantile(0.5), Duration::ZERO);
        let mut huge = Histogram::default();
        huge.record(Duration::from_secs(3600));
        assert_eq!(huge.quantile(0.5), Duration::from_secs(3600));
    }

    #[test]
    fn counters_follow_outcomes() {
        let stats = Stats::default();
        stats.record("bet", "ok", Duration::from_millis(3));
        stats.record("bet", "bet_limit_exceeded", Duration::from_millis(3));
        stats.record("win", "http_5xx", Duration::from_millis(3));
        stats.record("deposit", "transport_error", Duration::from_millis(3));
        let c = &stats.counters;
        assert_eq!(c.bets.load(Ordering::Relaxed), 1);
        assert_eq!(c.refused.load(Ordering::Relaxed), 1);
        assert_eq!(c.errors.load(Ordering::Relaxed), 2);
        assert_eq!(stats.outcomes()["bet"]["bet_limit_exceeded"], 1);
        assert_eq!(stats.latencies()["bet"].count(), 2);
    }
}
