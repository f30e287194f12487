//! Vault's metric series that must exist before their first event.
//!
//! Most Vault metrics are created where they are counted (`metrics::counter!` at the call site). A
//! Prometheus `rate()`/`increase()` over a series that appears at 1 does not count that first event, and a
//! dashboard or alert rule written against a series that does not exist yet reads "no data" instead of 0.
//! [`describe`] therefore publishes, at start, every label set the alert rules (`alerts/*.rules.yml`) and
//! dashboards (`dashboards/*.json`) rely on, at zero. Nothing here counts anything.

use crate::abuse::Signal;

/// Game API operations (`vault_game_requests_total{operation}`).
pub const GAME_OPERATIONS: [&str; 4] = ["balance", "bet", "win", "rollback"];
/// Game API outcomes the rules use: `ok` and the server-side failures (GameApiErrorRatioHigh).
pub const GAME_OUTCOMES: [&str; 4] = ["ok", "internal_error", "timeout", "unavailable"];
/// Every abuse signal (`vault_abuse_signals_total{signal}`; VaultAbuseSignalSpike compares each with its
/// own recorded baseline, which must start at 0).
pub const ABUSE_SIGNALS: [Signal; 6] = [
    Signal::OverLimit,
    Signal::RollbackRatio,
    Signal::Velocity,
    Signal::InsufficientFundsHammering,
    Signal::IdempotencyConflict,
    Signal::SignatureFailure,
];
/// Signature failure reasons (`vault_auth_failures_total{reason}`, VaultSignatureFailures;
/// `vault_payment_webhook_failures_total{provider, reason}`, PaymentWebhookSignatureFailures).
pub const SIGNATURE_REASONS: [&str; 2] = ["bad_signature", "stale_timestamp"];
/// Final payment statuses per direction (`vault_payments_total{status}`; a deposit ends succeeded,
/// failed or expired, a withdrawal succeeded, reversed or rejected).
pub const FINAL_STATUSES: [(&str, &[&str]); 2] = [
    ("deposit", &["succeeded", "failed", "expired"]),
    ("withdrawal", &["succeeded", "reversed", "rejected"]),
];
/// Topics Vault publishes to through its outbox (`kafka_producer_messages_total{topic, outcome}`).
pub const PRODUCED_TOPICS: [&str; 3] = [
    casino_events::topics::VAULT_TRANSACTIONS,
    casino_events::topics::VAULT_PLAYERS,
    casino_events::topics::VAULT_PAYMENTS,
];

/// Publish the series above at zero for `currencies` (codes) and payment `providers`. Call once the
/// metrics recorder is installed (after the server is bound); calling it again is harmless.
pub fn describe(currencies: &[String], providers: &[String]) {
    use metrics::{counter, gauge};
    for operation in GAME_OPERATIONS {
        for outcome in GAME_OUTCOMES {
            counter!("vault_game_requests_total", "operation" => operation, "outcome" => outcome)
                .increment(0);
        }
    }
    for signal in ABUSE_SIGNALS {
        counter!("vault_abuse_signals_total", "signal" => signal.as_str()).increment(0);
    }
    counter!("vault_players_locked_total").increment(0);
    for reason in SIGNATURE_REASONS {
        counter!("vault_auth_failures_total", "reason" => reason).increment(0);
        for provider in providers {
            counter!("vault_payment_webhook_failures_total",
                "provider" => provider.clone(), "reason" => reason)
            .increment(0);
        }
    }
    for currency in currencies {
        // Monotonic EUR totals exported as gauges (see ledger::Posted::record_metrics): add 0.
        for name in [
            "vault_bet_amount_eur_total",
            "vault_win_amount_eur_total",
            "vault_deposit_amount_eur_total",
            "vault_withdrawal_amount_eur_total",
        ] {
            gauge!(name, "currency" => currency.clone()).increment(0.0);
        }
        for (direction, statuses) in FINAL_STATUSES {
            for provider in providers {
                for status in statuses {
                    counter!("vault_payments_total", "direction" => direction,
                        "currency" => currency.clone(), "provider" => provider.clone(),
                        "status" => *status)
                    .increment(0);
                }
                // VaultPaymentFlagged: a late deposit credited, or a payout after the funds went back.
                counter!("vault_payments_flagged_total", "direction" => direction,
                    "provider" => provider.clone(), "currency" => currency.clone())
                .increment(0);
            }
        }
    }
    casino_messaging::describe_producer(&PRODUCED_TOPICS);
}
