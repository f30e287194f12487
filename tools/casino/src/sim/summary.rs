//! The closing summary: printed for people, written as JSON (`--summary-json`) for end-to-end tests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::stats::{self, Histogram};

/// Latency of one operation, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Requests measured.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl From<&Histogram> for Latency {
    fn from(h: &Histogram) -> Self {
        let ms = |d: std::time::Duration| (d.as_secs_f64() * 1e5).round() / 100.0;
        Self {
            count: h.count(),
            p50_ms: ms(h.quantile(0.50)),
            p99_ms: ms(h.quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// A player that was kept on socket.io, with every `balance.updated` it received: end-to-end tests log
/// in as it, list its transfers from Vault and check each produced exactly one push.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectedPlayer {
    /// Vault player id.
    pub player_id: Uuid,
    /// Login email.
    pub email: String,
    /// Login password (a synthetic player's).
    pub password: String,
    /// The player's currency.
    pub currency: String,
    /// Transfers the run knows it made for this player (accepted bets, wins and rollbacks, credited
    /// deposits, withdrawal holds and reversals, adjustments); Vault may list more (a bet whose answer
    /// was lost, a deposit credited after the run stopped waiting).
    pub known_transfers: u64,
    /// `transfer_id` of every `balance.updated` received, in arrival order, duplicates preserved.
    pub balance_updates: Vec<Uuid>,
    /// Times the socket was lost and connected again (pushes sent in between are missed).
    pub reconnects: u32,
    /// Pushes whose `transfer_id` was not a UUID (a Room-Service bug if ever non-zero).
    pub malformed_pushes: u32,
}

/// What a run did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// The seed of the plan.
    pub seed: u64,
    /// This run's nonce (in emails, transaction and round ids).
    pub run_nonce: String,
    /// Seconds the main loop ran.
    pub elapsed_seconds: f64,
    /// Stopped early by Ctrl-C.
    pub cancelled: bool,
    /// Players registered and logged in.
    pub players: usize,
    /// Of which misbehaving.
    pub abusers: usize,
    /// Of which kept on socket.io.
    pub connected: usize,
    /// Paced events (game, payment and chat calls) issued.
    pub events: u64,
    /// Requests by operation, then by outcome (`ok`, a 4xx error code, `http_5xx`, `transport_error`).
    pub requests: BTreeMap<String, BTreeMap<String, u64>>,
    /// Latency by operation.
    pub latency: BTreeMap<String, Latency>,
    /// 5xx answers and transport errors, all operations.
    pub server_errors: u64,
    /// Business refusals (4xx, refused socket acks), all operations.
    pub refused: u64,
    /// Stakes of accepted bets that were not rolled back, in EUR at the rates read at the start.
    pub wagered_eur: f64,
    /// Accepted wins, in EUR.
    pub won_eur: f64,
    /// `won_eur / wagered_eur`.
    pub return_to_player: Option<f64>,
    /// `balance.updated` pushes received, all sockets.
    pub balance_updates: u64,
    /// Known transfers of connected players that no push announced (0 when every push arrived).
    pub missing_pushes: u64,
    /// The pushes settled (every known transfer pushed, then 3 s without a push) before `--settle` ran
    /// out.
    pub pushes_settled: bool,
    /// The connected players and what they received.
    pub connected_players: Vec<ConnectedPlayer>,
}

impl Summary {
    /// Requests of `operation` with `outcome`.
    pub fn count(&self, operation: &str, outcome: &str) -> u64 {
        self.requests
            .get(operation)
            .and_then(|o| o.get(outcome))
            .copied()
            .unwrap_or(0)
    }

    /// Requests of `operation`, all outcomes.
    pub fn total(&self, operation: &str) -> u64 {
        self.requests
            .get(operation)
            .map(|o| o.values().sum())
            .unwrap_or(0)
    }

    /// The human-readable report (what `print` writes).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let rate = if self.elapsed_seconds > 0.0 {
            self.events as f64 / self.elapsed_seconds
        } else {
            0.0
        };
        out.push_str(&format!(
            "casino sim{}: {:.1} s, seed {}, run {}, {} players ({} abusers, {} connected), {} events ({:.1}/s)\n",
            if self.cancelled { " (stopped early)" } else { "" },
            self.elapsed_seconds,
            self.seed,
            self.run_nonce,
            self.players,
            self.abusers,
            self.connected,
            self.events,
            rate,
        ));
        out.push_str(&format!(
            "\n{:<16} {:>8} {:>8} {:>9} {:>9}  other outcomes\n",
            "operation", "requests", "ok", "p50 ms", "p99 ms"
        ));
        for (operation, outcomes) in &self.requests {
            let total: u64 = outcomes.values().sum();
            let ok = outcomes.get(stats::OK).copied().unwrap_or(0);
            let mut others: Vec<(&String, &u64)> =
                outcomes.iter().filter(|(o, _)| *o != stats::OK).collect();
            others.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let others: Vec<String> = others.iter().map(|(o, n)| format!("{o} {n}")).collect();
            let latency = self.latency.get(operation);
            out.push_str(&format!(
                "{:<16} {:>8} {:>8} {:>9.2} {:>9.2}  {}\n",
                operation,
                total,
                ok,
                latency.map_or(0.0, |l| l.p50_ms),
                latency.map_or(0.0, |l| l.p99_ms),
                others.join(", ")
            ));
        }
        out.push('\n');
        match self.return_to_player {
            Some(rtp) => out.push_str(&format!(
                "return to player: {:.1}% (wagered {:.2} EUR, won {:.2} EUR)\n",
                rtp * 100.0,
                self.wagered_eur,
                self.won_eur
            )),
            None => out.push_str("return to player: no settled bets\n"),
        }
        let reconnects: u32 = self.connected_players.iter().map(|p| p.reconnects).sum();
        out.push_str(&format!(
            "balance pushes: {} received by {} connected players ({}{}{})\n",
            self.balance_updates,
            self.connected_players.len(),
            if self.pushes_settled {
                "settled"
            } else {
                "still owed or arriving when the wait ended"
            },
            if self.missing_pushes > 0 {
                format!(", {} transfers never pushed", self.missing_pushes)
            } else {
                String::new()
            },
            if reconnects > 0 {
                format!(", {reconnects} reconnects: pushes may be missing")
            } else {
                String::new()
            }
        ));
        out.push_str(&format!(
            "refused: {} (business answers, abusers included); server errors: {}\n",
            self.refused, self.server_errors
        ));
        out
    }

    /// Print the report to stdout.
    pub fn print(&self) {
        print!("{}", self.render());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_lists_operations_and_survives_json() {
        let mut requests = BTreeMap::new();
        requests.insert(
            "bet".to_owned(),
            BTreeMap::from([("ok".to_owned(), 90), ("bet_limit_exceeded".to_owned(), 10)]),
        );
        let summary = Summary {
            seed: 42,
            run_nonce: "abc".into(),
            elapsed_seconds: 10.0,
            cancelled: false,
            players: 5,
            abusers: 1,
            connected: 2,
            events: 200,
            requests,
            latency: BTreeMap::from([(
                "bet".to_owned(),
                Latency {
                    count: 100,
                    p50_ms: 3.5,
                    p99_ms: 12.0,
                    max_ms: 20.0,
                },
            )]),
            server_errors: 0,
            refused: 10,
            wagered_eur: 100.0,
            won_eur: 96.0,
            return_to_player: Some(0.96),
            balance_updates: 150,
            missing_pushes: 2,
            pushes_settled: false,
            connected_players: vec![],
        };
        let text = summary.render();
        assert!(text.contains("bet_limit_exceeded 10"), "{text}");
        assert!(text.contains("return to player: 96.0%"), "{text}");
        assert!(text.contains("20.0/s"), "{text}");
        assert!(text.contains("2 transfers never pushed"), "{text}");
        assert_eq!(summary.count("bet", "ok"), 90);
        assert_eq!(summary.total("bet"), 100);
        let back: Summary =
            serde_json::from_str(&serde_json::to_string(&summary).unwrap()).unwrap();
        assert_eq!(back.count("bet", "bet_limit_exceeded"), 10);
    }
}
