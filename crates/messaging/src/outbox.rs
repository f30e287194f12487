//! The transactional outbox and its relay (blueprint §5), for any service with an `outbox` table:
//!
//! ```sql
//! CREATE TABLE outbox (id BIGSERIAL PRIMARY KEY, event_id UUID UNIQUE, topic TEXT NOT NULL, key TEXT NOT NULL,
//!                      payload BYTEA NOT NULL, headers JSONB NOT NULL DEFAULT '[]',
//!                      created_at TIMESTAMPTZ NOT NULL DEFAULT now(), published_at TIMESTAMPTZ);
//! ```
//!
//! Requests never talk to Kafka: [`enqueue`] writes the event into `outbox` inside the request's
//! transaction, with the current trace context. The [`Relay`] publishes unpublished rows in id order with
//! the idempotent producer and marks exactly the delivered ones published. One relay publishes at a time
//! (a transaction-scoped advisory lock), so per-key order holds with several tasks of a service; rows are
//! claimed with `FOR UPDATE SKIP LOCKED`. If Kafka is down, rows wait and `<prefix>_outbox_pending` rises.

use std::time::Duration;

use casino_events::Envelope;
use futures::future::join_all;
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Row as _};
use tokio_util::sync::CancellationToken;

use crate::Producer;

/// Rows per relay batch.
pub const BATCH: i64 = 500;

/// Publishes one service's outbox.
#[derive(Clone)]
pub struct Relay {
    pool: PgPool,
    producer: Producer,
    metric_prefix: &'static str,
    lock_key: i64,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("metric_prefix", &self.metric_prefix)
            .finish_non_exhaustive()
    }
}

/// Write `event` to the outbox inside the caller's transaction.
pub async fn enqueue<T: Serialize>(
    conn: &mut PgConnection,
    topic: &str,
    event: &Envelope<T>,
) -> Result<(), sqlx::Error> {
    let headers = serde_json::to_value(crate::trace::current_context_headers())
        .unwrap_or_else(|_| serde_json::json!([]));
    sqlx::query(
        "INSERT INTO outbox (event_id, topic, key, payload, headers) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(event.event_id)
    .bind(topic)
    .bind(event.key())
    .bind(event.to_vec())
    .bind(headers)
    .execute(conn)
    .await?;
    Ok(())
}

impl Relay {
    /// A relay publishing `pool`'s outbox; metrics are `<metric_prefix>_outbox_*`.
    pub fn new(pool: PgPool, producer: Producer, metric_prefix: &'static str) -> Self {
        // One advisory lock per service (derived from its name), so services sharing a server never block
        // each other.
        let lock_key = metric_prefix.bytes().fold(0x6f75_7462_6f78_i64, |h, b| {
            h.wrapping_mul(31).wrapping_add(i64::from(b))
        });
        Self {
            pool,
            producer,
            metric_prefix,
            lock_key,
        }
    }

    /// Publish one batch. Returns how many rows were published (0 when idle or another relay holds the lock).
    pub async fn publish_batch(&self) -> anyhow::Result<usize> {
        let (pool, producer) = (&self.pool, &self.producer);
        let mut tx = pool.begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(self.lock_key)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(0);
        }
        let rows = sqlx::query(
            "SELECT id, topic, key, payload, headers FROM outbox
         WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        // Enqueue in id order (librdkafka keeps per-partition order with idempotence), then await all.
        let sends = rows.iter().map(|row| {
            let id: i64 = row.get("id");
            let topic: String = row.get("topic");
            let key: String = row.get("key");
            let payload: Vec<u8> = row.get("payload");
            let headers: Vec<(String, String)> =
                serde_json::from_value(row.get::<serde_json::Value, _>("headers"))
                    .unwrap_or_default();
            async move {
                let result = producer.send(&topic, &key, &payload, &headers).await;
                (id, result)
            }
        });
        let results = join_all(sends).await;
        let delivered: Vec<i64> = results
            .iter()
            .filter_map(|(id, r)| r.is_ok().then_some(*id))
            .collect();
        let failed = results.len() - delivered.len();
        if !delivered.is_empty() {
            sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
                .bind(&delivered)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        metrics::counter!(format!("{}_outbox_published_total", self.metric_prefix))
            .increment(delivered.len() as u64);
        if failed > 0 {
            let error = results
                .into_iter()
                .find_map(|(_, r)| r.err())
                .map(|e| format!("{e:#}"))
                .unwrap_or_default();
            tracing::warn!(failed, delivered = delivered.len(), error = %error, "outbox publish incomplete, will retry");
            anyhow::bail!("{failed} outbox rows could not be published: {error}");
        }
        Ok(delivered.len())
    }

    /// Update `<prefix>_outbox_pending` and `<prefix>_outbox_oldest_age_seconds`.
    pub async fn record_backlog(&self) -> Result<(i64, f64), sqlx::Error> {
        let pool = &self.pool;
        let row = sqlx::query(
            "SELECT count(*) AS pending,
                COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 AS oldest
         FROM outbox WHERE published_at IS NULL",
        )
        .fetch_one(pool)
        .await?;
        let pending: i64 = row.get("pending");
        let oldest: f64 = row.get("oldest");
        metrics::gauge!(format!("{}_outbox_pending", self.metric_prefix)).set(pending as f64);
        metrics::gauge!(format!("{}_outbox_oldest_age_seconds", self.metric_prefix)).set(oldest);
        Ok((pending, oldest))
    }

    /// Keep the backlog gauges current (every 2 s), independently of the relay, which may be blocked on an
    /// unreachable broker.
    pub async fn run_backlog_gauges(self, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticker.tick() => {
                    if let Err(error) = self.record_backlog().await {
                        tracing::warn!(error = %error, "could not measure the outbox backlog");
                    }
                }
            }
        }
    }

    /// Publish until `stop`, then make one last attempt to flush. Idle polling every 50 ms; after a failure,
    /// back off up to 5 s.
    pub async fn run(self, stop: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let wait = match self.publish_batch().await {
                Ok(n) if n as i64 == BATCH => Duration::ZERO,
                Ok(_) => {
                    backoff = Duration::from_millis(100);
                    Duration::from_millis(50)
                }
                Err(error) => {
                    let error: &(dyn std::error::Error + 'static) = error.as_ref();
                    tracing::warn!(error, "outbox relay attempt failed");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    backoff
                }
            };
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        // Final flush: whatever is publishable within a few seconds goes out now; the rest waits for the next
        // task (nothing is lost, rows stay in the table).
        let flush = async {
            while let Ok(n) = self.publish_batch().await {
                if n == 0 {
                    break;
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(5), flush)
            .await
            .is_err()
        {
            tracing::warn!("final outbox flush timed out; unpublished rows wait for the next task");
        }
        let _ = self.record_backlog().await;
        tracing::info!("outbox relay stopped");
    }
}
