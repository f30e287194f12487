//! Latency statistics.

use std::time::Duration;

/// Collected latencies.
#[derive(Debug, Default, Clone)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// Add one.
    pub fn push(&mut self, latency: Duration) {
        self.0.push(latency);
    }

    /// Merge another set.
    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    /// The `q` quantile (0..=1), nearest rank.
    pub fn quantile(&mut self, q: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        self.0.sort_unstable();
        let rank = ((q * self.0.len() as f64).ceil() as usize).clamp(1, self.0.len());
        self.0[rank - 1]
    }

    /// `p50 .. ms  p99 .. ms  p999 .. ms`.
    pub fn summary(&mut self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "p50 {:.2} ms  p99 {:.2} ms  p999 {:.2} ms",
            ms(self.quantile(0.50)),
            ms(self.quantile(0.99)),
            ms(self.quantile(0.999))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let mut l = Latencies::default();
        for ms in 1..=100 {
            l.push(Duration::from_millis(ms));
        }
        assert_eq!(l.quantile(0.5), Duration::from_millis(50));
        assert_eq!(l.quantile(0.99), Duration::from_millis(99));
        assert_eq!(l.quantile(1.0), Duration::from_millis(100));
    }
}
