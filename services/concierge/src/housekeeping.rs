//! Housekeeping: old rows that no longer serve a purpose.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Hourly housekeeping until `stop` (see [`housekeep_once`]).
pub async fn run_housekeeping(pool: PgPool, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
        if let Err(error) = housekeep_once(&pool).await {
            tracing::warn!(error = format!("{error:#}"), "housekeeping failed");
        }
    }
}

/// Forget processed event ids older than 30 days (far beyond Kafka's retention, so no redelivery can be
/// older) and published outbox rows older than 7 days. Returns the rows deleted.
pub async fn housekeep_once(pool: &PgPool) -> anyhow::Result<u64> {
    // UUID v7 ids start with their millisecond timestamp: the cut-off is a primary-key range.
    let processed = sqlx::query(
        "DELETE FROM processed_events
          WHERE event_id < (lpad(to_hex((extract(epoch FROM now() - interval '30 days') * 1000)::bigint),
                                 12, '0') || '00000000000000000000')::uuid",
    )
    .execute(pool)
    .await?
    .rows_affected();
    let outbox = sqlx::query("DELETE FROM outbox WHERE published_at < now() - interval '7 days'")
        .execute(pool)
        .await?
        .rows_affected();
    tracing::debug!(processed, outbox, "housekeeping deleted old rows");
    Ok(processed + outbox)
}
