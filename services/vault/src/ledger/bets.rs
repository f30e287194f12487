//! Bets in batches: the hot path of the game API.
//!
//! Concurrent bet requests queue here; a few workers each take whatever is queued (up to a batch) and
//! decide all of it in one call to `vault_place_bets` (migration 0002): one round trip and one commit per
//! batch instead of a dozen statements and a commit per bet. Under light load a batch is one bet and adds no
//! wait; under heavy load batches grow and commits are shared. Each bet is still decided on its own (the
//! function never aborts the batch for a refused bet); bets are sorted by player inside a batch so two
//! batches lock player rows in the same order, and a deadlock or serialization failure retries the batch.

use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgPool, types::Json};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::VaultError;

/// A bet validated and priced by the handler, ready for the database.
#[derive(Debug, Clone, Serialize)]
pub struct PreparedBet {
    /// Game provider.
    pub provider: String,
    /// Provider's transaction id.
    pub transaction_id: String,
    /// Hash of the canonical request (hex), for idempotency.
    pub request_hash: String,
    /// SHA-256 of the game session token (hex).
    pub session_hash: String,
    /// Provider's round.
    pub round_id: String,
    /// Game.
    pub game_id: String,
    /// Game category, if sent.
    pub game_category: Option<String>,
    /// Player.
    pub player_id: Uuid,
    /// Currency code.
    pub currency: String,
    /// Currency decimals.
    pub exponent: u32,
    /// Minor units.
    pub amount: i64,
    /// EUR value (string on the wire, exact).
    #[serde(with = "rust_decimal::serde::str")]
    pub amount_eur: Decimal,
    /// The `house` account of this currency.
    pub house_account: i64,
    /// Id of the transfer if the bet is accepted.
    pub transfer_id: Uuid,
    /// Id of its `bet.placed` event.
    pub event_id: Uuid,
    /// RFC 3339 (ms) time of the event.
    pub occurred_at: String,
    /// Trace context for the event's Kafka headers.
    pub headers: Vec<(String, String)>,
}

/// What the database decided.
#[derive(Debug, Clone)]
pub struct BetOutcome {
    /// `ok`, `replay`, or the refusal code.
    pub code: String,
    /// HTTP status of the answer.
    pub http_status: u16,
    /// The JSON answer (stored for replays).
    pub response: Value,
    /// The transfer, when accepted now.
    pub transfer_id: Option<Uuid>,
    /// Balance afterwards, when accepted now.
    pub balance_after: Option<i64>,
}

type Job = (PreparedBet, oneshot::Sender<Result<BetOutcome, VaultError>>);

/// Most bets decided in one database call.
pub const MAX_BATCH: usize = 64;

/// The queue in front of the batch workers. Cheap to clone.
#[derive(Clone)]
pub struct BetBatcher {
    queue: mpsc::Sender<Job>,
}

impl std::fmt::Debug for BetBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BetBatcher").finish_non_exhaustive()
    }
}

impl BetBatcher {
    /// Start `workers` batch workers on `pool`, stopping when `stop` is cancelled (after the HTTP servers
    /// drained, so no request is left waiting).
    pub fn start(
        pool: PgPool,
        workers: usize,
        tracker: &tokio_util::task::TaskTracker,
        stop: CancellationToken,
    ) -> Self {
        let (queue, receiver) = mpsc::channel::<Job>(4096);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..workers.max(1) {
            tracker.spawn(worker(pool.clone(), receiver.clone(), stop.clone()));
        }
        Self { queue }
    }

    /// Decide one bet.
    pub async fn place(&self, bet: PreparedBet) -> Result<BetOutcome, VaultError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((bet, reply))
            .await
            .map_err(|_| VaultError::Unavailable(anyhow::anyhow!("the bet workers are stopped")))?;
        answer
            .await
            .map_err(|_| VaultError::Unavailable(anyhow::anyhow!("the bet worker went away")))?
    }
}

async fn worker(pool: PgPool, receiver: Arc<Mutex<mpsc::Receiver<Job>>>, stop: CancellationToken) {
    loop {
        let mut jobs = Vec::new();
        {
            let mut receiver = receiver.lock().await;
            tokio::select! {
                _ = stop.cancelled() => return,
                job = receiver.recv() => match job {
                    Some(job) => jobs.push(job),
                    None => return,
                },
            }
            while jobs.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        run_batch(&pool, jobs).await;
    }
}

type Row = (i32, String, i32, Value, Option<Uuid>, Option<i64>);

async fn run_batch(pool: &PgPool, mut jobs: Vec<Job>) {
    // One lock order for player rows across concurrent batches (stable: a player's bets keep their order).
    jobs.sort_by_key(|(bet, _)| bet.player_id);
    let bets: Vec<&PreparedBet> = jobs.iter().map(|(bet, _)| bet).collect();
    metrics::counter!("vault_bet_batches_total").increment(1);
    let mut attempt = 0;
    let rows: Result<Vec<Row>, sqlx::Error> = loop {
        attempt += 1;
        let result = sqlx::query_as::<_, Row>("SELECT * FROM vault_place_bets($1)")
            .bind(Json(&bets))
            .fetch_all(pool)
            .await;
        match result {
            Err(sqlx::Error::Database(e))
                if attempt < 5 && matches!(e.code().as_deref(), Some("40P01" | "40001")) =>
            {
                tracing::warn!(attempt, batch = bets.len(), code = ?e.code(), "bet batch retried after a lock conflict");
                tokio::time::sleep(Duration::from_millis(5 * attempt)).await;
            }
            other => break other,
        }
    };
    match rows {
        Ok(rows) => {
            let mut rows = rows.into_iter();
            for (index, (_, reply)) in jobs.into_iter().enumerate() {
                let outcome = match rows.next() {
                    Some((idx, code, status, response, transfer_id, balance_after))
                        if idx as usize == index =>
                    {
                        Ok(BetOutcome {
                            code,
                            http_status: status as u16,
                            response,
                            transfer_id,
                            balance_after,
                        })
                    }
                    _ => Err(VaultError::Internal(anyhow::anyhow!(
                        "vault_place_bets returned rows out of order"
                    ))),
                };
                let _ = reply.send(outcome);
            }
        }
        Err(error) => {
            let unavailable = matches!(
                error,
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
            );
            let message = format!("deciding a batch of bets: {error}");
            tracing::error!(error = %message, batch = jobs.len(), "bet batch failed");
            for (_, reply) in jobs {
                let error = anyhow::anyhow!("{message}");
                let _ = reply.send(Err(if unavailable {
                    VaultError::Unavailable(error)
                } else {
                    VaultError::Internal(error)
                }));
            }
        }
    }
}
