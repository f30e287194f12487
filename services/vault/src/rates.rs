//! Exchange rates to EUR (the reporting currency).
//!
//! Rates come from a [`RatesSource`]; [`RatesCache`] refreshes them in the background (every 30 s, so no
//! rate in use is older than 60 s while the source answers) and exports `vault_exchange_rate{currency}` and
//! `vault_exchange_rate_age_seconds{currency}`. When the source fails, the last rates stay in use and their
//! age keeps growing, which is what the staleness alert watches. The default source for local runs is
//! [`DeterministicFeed`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use rust_decimal::Decimal;
use tokio_util::sync::CancellationToken;

/// Where rates come from. A rate is EUR per one unit of the currency (USD 0.92 means 1 USD = 0.92 EUR).
pub trait RatesSource: Send + Sync + 'static {
    /// Current rates by currency code.
    fn fetch(&self) -> BoxFuture<'_, anyhow::Result<HashMap<String, Decimal>>>;
}

/// A built-in feed for local runs and tests: fixed base rates with a small, deterministic drift (±0.5%)
/// that depends only on the minute, so every Vault task computes the same rate at the same time.
#[derive(Debug, Clone, Default)]
pub struct DeterministicFeed;

const BASE_RATES: &[(&str, i64, u32)] = &[
    ("EUR", 1, 0),
    ("USD", 92, 2),
    ("GBP", 117, 2),
    ("CAD", 68, 2),
    ("JPY", 62, 4),
    ("BTC", 58_000, 0),
];

impl DeterministicFeed {
    /// The rates at `minute` (minutes since the epoch).
    pub fn rates_at(minute: i64) -> HashMap<String, Decimal> {
        BASE_RATES
            .iter()
            .map(|(code, mantissa, scale)| {
                let base = Decimal::new(*mantissa, *scale);
                let rate = if *code == "EUR" {
                    Decimal::ONE
                } else {
                    // A triangle wave over an hour: -0.5% .. +0.5%, in 0.01% steps.
                    let phase = (minute + code.len() as i64 * 7) % 60;
                    let steps = if phase < 30 { phase } else { 60 - phase } - 15;
                    let drift = Decimal::new(steps * 33, 6);
                    (base * (Decimal::ONE + drift)).round_dp(8)
                };
                ((*code).to_owned(), rate)
            })
            .collect()
    }
}

impl RatesSource for DeterministicFeed {
    fn fetch(&self) -> BoxFuture<'_, anyhow::Result<HashMap<String, Decimal>>> {
        Box::pin(async { Ok(Self::rates_at(chrono::Utc::now().timestamp() / 60)) })
    }
}

/// The rates in use, refreshed in the background.
#[derive(Clone)]
pub struct RatesCache {
    source: Arc<dyn RatesSource>,
    state: Arc<RwLock<HashMap<String, (Decimal, Instant)>>>,
}

impl std::fmt::Debug for RatesCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RatesCache").finish_non_exhaustive()
    }
}

/// How often the cache asks the source.
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);

impl RatesCache {
    /// A cache over `source`; call [`RatesCache::refresh`] once before serving.
    pub fn new(source: Arc<dyn RatesSource>) -> Self {
        Self {
            source,
            state: Arc::default(),
        }
    }

    /// Ask the source now.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let rates = self.source.fetch().await?;
        let now = Instant::now();
        if let Ok(mut state) = self.state.write() {
            for (code, rate) in rates {
                if rate <= Decimal::ZERO {
                    tracing::warn!(currency = %code, rate = %rate, "ignoring a non-positive exchange rate");
                    continue;
                }
                state.insert(code, (rate, now));
            }
        }
        self.export();
        Ok(())
    }

    /// The rate of `currency`, if known.
    pub fn rate(&self, currency: &str) -> Option<Decimal> {
        self.state
            .read()
            .ok()
            .and_then(|s| s.get(currency).map(|(rate, _)| *rate))
    }

    /// Every known rate.
    pub fn all(&self) -> HashMap<String, Decimal> {
        self.state
            .read()
            .map(|s| s.iter().map(|(k, (r, _))| (k.clone(), *r)).collect())
            .unwrap_or_default()
    }

    fn export(&self) {
        if let Ok(state) = self.state.read() {
            for (code, (rate, at)) in state.iter() {
                use rust_decimal::prelude::ToPrimitive as _;
                metrics::gauge!("vault_exchange_rate", "currency" => code.clone())
                    .set(rate.to_f64().unwrap_or(0.0));
                metrics::gauge!("vault_exchange_rate_age_seconds", "currency" => code.clone())
                    .set(at.elapsed().as_secs_f64());
            }
        }
    }

    /// Refresh every [`REFRESH_EVERY`] until `stop`; failures keep the previous rates (and log).
    pub async fn run(self, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(REFRESH_EVERY);
        let mut age_ticker = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticker.tick() => {
                    if let Err(error) = self.refresh().await {
                        let error: &(dyn std::error::Error + 'static) = error.as_ref();
                        tracing::warn!(error, "exchange rate refresh failed; keeping the previous rates");
                    }
                }
                _ = age_ticker.tick() => self.export(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feed_is_deterministic_and_stays_within_half_a_percent() {
        for minute in 0..120 {
            let a = DeterministicFeed::rates_at(minute);
            assert_eq!(a, DeterministicFeed::rates_at(minute));
            assert_eq!(a["EUR"], Decimal::ONE);
            let usd = a["USD"];
            let base = Decimal::new(92, 2);
            assert!((usd - base).abs() <= base * Decimal::new(5, 3), "{usd}");
        }
    }

    #[tokio::test]
    async fn the_cache_serves_what_the_source_said() {
        let cache = RatesCache::new(Arc::new(DeterministicFeed));
        assert_eq!(cache.rate("USD"), None);
        cache.refresh().await.unwrap();
        assert!(cache.rate("USD").unwrap() > Decimal::new(9, 1));
        assert_eq!(cache.all().len(), BASE_RATES.len());
    }
}
