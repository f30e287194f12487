//! Continuous proof that the ledger balances (blueprint §4).
//!
//! Every pass checks that (1) each player account's stored balance equals the sum of its transfers and
//! (2) each currency sums to zero over all accounts (system balances are derived from transfers). The number of violations is `vault_ledger_mismatches`
//! (must stay 0); each violation is logged with the ids involved.

use std::time::Duration;

use sqlx::{PgPool, Row as _};
use tokio_util::sync::CancellationToken;

/// One violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// A player's stored balance differs from the sum of their transfers.
    Balance {
        /// Account id.
        account_id: i64,
        /// Player.
        player_id: String,
        /// Currency.
        currency: String,
        /// Stored balance.
        stored: i64,
        /// Sum of transfers.
        derived: i64,
    },
    /// A currency's accounts do not sum to zero (a transfer crossing currencies).
    Unbalanced {
        /// Currency.
        currency: String,
        /// The sum.
        sum: i64,
    },
}

/// Run one pass; returns every mismatch and sets `vault_ledger_mismatches`.
pub async fn reconcile(pool: &PgPool) -> Result<Vec<Mismatch>, sqlx::Error> {
    let mut found = Vec::new();
    let rows = sqlx::query(
        "WITH flows AS (
             SELECT credit_account AS account, sum(amount)::bigint AS amount FROM transfers GROUP BY credit_account
             UNION ALL
             SELECT debit_account, -sum(amount)::bigint FROM transfers GROUP BY debit_account
         ), derived AS (
             SELECT account, sum(amount)::bigint AS balance FROM flows GROUP BY account
         )
         SELECT a.id, a.player_id::text AS player_id, a.currency, a.balance AS stored,
                COALESCE(d.balance, 0) AS derived
         FROM accounts a LEFT JOIN derived d ON d.account = a.id
         WHERE NOT a.is_system AND a.balance <> COALESCE(d.balance, 0)",
    )
    .fetch_all(pool)
    .await?;
    for row in rows {
        found.push(Mismatch::Balance {
            account_id: row.get("id"),
            player_id: row
                .get::<Option<String>, _>("player_id")
                .unwrap_or_default(),
            currency: row.get("currency"),
            stored: row.get("stored"),
            derived: row.get("derived"),
        });
    }
    // Double entry: over every account, grouped by the *account's* currency, transfers sum to zero. A
    // transfer between accounts of different currencies breaks this.
    let sums = sqlx::query(
        "WITH flows AS (
             SELECT credit_account AS account, amount FROM transfers
             UNION ALL
             SELECT debit_account, -amount FROM transfers
         )
         SELECT a.currency, sum(f.amount)::bigint AS total
         FROM flows f JOIN accounts a ON a.id = f.account
         GROUP BY a.currency HAVING sum(f.amount) <> 0",
    )
    .fetch_all(pool)
    .await?;
    for row in sums {
        found.push(Mismatch::Unbalanced {
            currency: row.get("currency"),
            sum: row.get("total"),
        });
    }
    metrics::gauge!("vault_ledger_mismatches").set(found.len() as f64);
    for mismatch in &found {
        tracing::error!(mismatch = ?mismatch, "ledger mismatch");
    }
    Ok(found)
}

/// Reconcile every `period` until `stop`.
pub async fn run(pool: PgPool, period: Duration, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {
                match reconcile(&pool).await {
                    Ok(found) if found.is_empty() => tracing::debug!("ledger reconciled, no mismatch"),
                    Ok(found) => tracing::error!(mismatches = found.len(), "ledger reconciliation found mismatches"),
                    Err(error) => tracing::warn!(error = %error, "ledger reconciliation failed"),
                }
            }
        }
    }
}
