//! Continuous proof that the ledger balances (blueprint §4).
//!
//! Every pass checks that (1) each player account's stored balance equals the sum of its transfers and
//! (2) each currency sums to zero over all accounts (system balances are derived from transfers). The
//! number of violations is `vault_ledger_mismatches` (must stay 0); each violation is logged with the ids
//! involved.
//!
//! Summing the whole ledger every 30 s does not scale, so passes are incremental: the per-account sums of
//! every transfer up to a sequence number are kept in `ledger_checkpoints` (migration 0005), and a pass
//! reads only the transfers after it. Only transfers older than a settling margin are folded in, because a
//! sequence number is taken at insert and a slow transaction may commit a lower one after a higher one is
//! visible. Nothing is reported on an incremental pass alone: a mismatch it finds is confirmed by a full pass
//! over every transfer (which also rebuilds the checkpoint), and a full pass runs periodically regardless.
//! Passes run in one REPEATABLE READ snapshot (stored balances and transfers are written in the same
//! transaction, so they agree in any snapshot); only the Vault holding an advisory lock moves the checkpoint
//! (`vault_reconcile_duration_seconds{mode}` times each pass).

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

/// How a pass derives balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// From the checkpoint plus the transfers after it.
    Incremental,
    /// From every transfer (and rebuild the checkpoint).
    Full,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Incremental => "incremental",
            Mode::Full => "full",
        }
    }
}

/// Advisory lock key of the Vault that moves the checkpoint ("vault.rec" in ASCII).
const CHECKPOINT_LOCK: i64 = 0x7661_756c_742e_7265;

/// Runs reconciliation passes and remembers when the last full one was.
#[derive(Debug)]
pub struct Reconciler {
    pool: PgPool,
    settle: Duration,
    full_every: Duration,
    last_full: Option<std::time::Instant>,
}

impl Reconciler {
    /// A reconciler folding transfers older than 60 s into the checkpoint, with a full pass every hour
    /// (and on the first pass).
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            settle: Duration::from_secs(60),
            full_every: Duration::from_secs(3600),
            last_full: None,
        }
    }

    /// Transfers younger than `settle` stay out of the checkpoint (re-read on every pass).
    pub fn settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    /// How often a pass reads the whole ledger even when the incremental one finds nothing.
    pub fn full_every(mut self, full_every: Duration) -> Self {
        self.full_every = full_every;
        self
    }

    /// Run one pass; returns every mismatch and sets `vault_ledger_mismatches`.
    pub async fn pass(&mut self) -> Result<Vec<Mismatch>, sqlx::Error> {
        let full_due = self
            .last_full
            .is_none_or(|at| at.elapsed() >= self.full_every);
        if !full_due {
            let found = self.run(Mode::Incremental).await?;
            if found.is_empty() {
                return Ok(publish(found));
            }
            tracing::warn!(
                mismatches = found.len(),
                "incremental reconciliation found mismatches, confirming with a full pass"
            );
        }
        let found = self.run(Mode::Full).await?;
        self.last_full = Some(std::time::Instant::now());
        Ok(publish(found))
    }

    /// One pass in `mode`, in one snapshot; moves the checkpoint when this Vault holds the lock.
    pub async fn run(&self, mode: Mode) -> Result<Vec<Mismatch>, sqlx::Error> {
        let started = std::time::Instant::now();
        let mut conn = self.pool.acquire().await?;
        // A session lock taken before the snapshot: the previous holder committed before releasing it, so
        // this pass's snapshot always sees the checkpoint it left.
        let leader: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(CHECKPOINT_LOCK)
            .fetch_one(&mut *conn)
            .await?;
        let result = self.run_on(&mut conn, mode, leader).await;
        if leader {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(CHECKPOINT_LOCK)
                .execute(&mut *conn)
                .await;
            if let Err(error) = unlocked {
                // Never hand a connection holding the lock back to the pool: closing it releases the lock.
                tracing::warn!(error = %error, "releasing the reconciler lock failed, closing the connection");
                drop(conn.detach());
            }
        }
        let found = result?;
        metrics::histogram!("vault_reconcile_duration_seconds", "mode" => mode.label())
            .record(started.elapsed().as_secs_f64());
        Ok(found)
    }

    async fn run_on(
        &self,
        conn: &mut sqlx::PgConnection,
        mode: Mode,
        leader: bool,
    ) -> Result<Vec<Mismatch>, sqlx::Error> {
        let mut tx = sqlx::Connection::begin(conn).await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *tx)
            .await?;
        let checkpoint: Option<i64> =
            sqlx::query_scalar("SELECT through_seq FROM ledger_checkpoint_state")
                .fetch_optional(&mut *tx)
                .await?;
        // Without a checkpoint an incremental pass is a full one.
        let (from, use_checkpoint) = match (mode, checkpoint) {
            (Mode::Incremental, Some(seq)) => (seq, true),
            _ => (0, false),
        };
        let found = mismatches(&mut tx, from, use_checkpoint).await?;
        if leader {
            advance(&mut tx, from, use_checkpoint, self.settle).await?;
        }
        tx.commit().await?;
        Ok(found)
    }
}

/// The derived balance of every account touched since `from` (plus, with `use_checkpoint`, the folded sums
/// of every account). Parameters: $1 = from, $2 = use_checkpoint.
const DERIVED: &str = "WITH flows AS (
         SELECT credit_account AS account, amount FROM transfers WHERE seq > $1
         UNION ALL
         SELECT debit_account, -amount FROM transfers WHERE seq > $1
         UNION ALL
         SELECT account_id, derived FROM ledger_checkpoints WHERE $2
     ), derived AS (
         SELECT account, sum(amount)::bigint AS balance FROM flows GROUP BY account
     )";

async fn mismatches(
    tx: &mut sqlx::PgConnection,
    from: i64,
    use_checkpoint: bool,
) -> Result<Vec<Mismatch>, sqlx::Error> {
    let mut found = Vec::new();
    // Not persistent: the unnamed statement is planned with the actual `from`, so an incremental pass
    // walks the seq index instead of a generic plan's scan.
    let rows = sqlx::query(&format!(
        "{DERIVED}
         SELECT a.id, a.player_id::text AS player_id, a.currency, a.balance AS stored,
                COALESCE(d.balance, 0) AS derived
         FROM accounts a LEFT JOIN derived d ON d.account = a.id
         WHERE NOT a.is_system AND a.balance <> COALESCE(d.balance, 0)"
    ))
    .bind(from)
    .bind(use_checkpoint)
    .persistent(false)
    .fetch_all(&mut *tx)
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
    let sums = sqlx::query(&format!(
        "{DERIVED}
         SELECT a.currency, sum(d.balance)::bigint AS total
         FROM derived d JOIN accounts a ON a.id = d.account
         GROUP BY a.currency HAVING sum(d.balance) <> 0"
    ))
    .bind(from)
    .bind(use_checkpoint)
    .persistent(false)
    .fetch_all(&mut *tx)
    .await?;
    for row in sums {
        found.push(Mismatch::Unbalanced {
            currency: row.get("currency"),
            sum: row.get("total"),
        });
    }
    Ok(found)
}

/// Fold the settled transfers after `from` into the checkpoint (a full pass rebuilds it from zero).
async fn advance(
    tx: &mut sqlx::PgConnection,
    from: i64,
    use_checkpoint: bool,
    settle: Duration,
) -> Result<(), sqlx::Error> {
    // created_at is stamped by the Vault that posts (before its transaction, and for bets before they
    // queue for a batch): a transfer committed more than `settle` after its stamp, or stamped by a clock
    // behind this database's, could still carry a lower seq than one folded here. The full-pass
    // confirmation covers that case (an incremental mismatch, never a report).
    let through: Option<i64> = sqlx::query_scalar(
        "SELECT seq FROM transfers
         WHERE seq > $1 AND created_at < now() - make_interval(secs => $2)
         ORDER BY seq DESC LIMIT 1",
    )
    .bind(from)
    .bind(settle.as_secs_f64())
    .persistent(false)
    .fetch_optional(&mut *tx)
    .await?;
    if !use_checkpoint {
        sqlx::query("DELETE FROM ledger_checkpoints")
            .execute(&mut *tx)
            .await?;
    }
    let through = through.unwrap_or(from);
    if through > from {
        sqlx::query(
            "INSERT INTO ledger_checkpoints (account_id, derived)
             SELECT account, sum(amount)::bigint FROM (
                 SELECT credit_account AS account, amount FROM transfers WHERE seq > $1 AND seq <= $2
                 UNION ALL
                 SELECT debit_account, -amount FROM transfers WHERE seq > $1 AND seq <= $2
             ) f GROUP BY account
             ON CONFLICT (account_id) DO UPDATE SET derived = ledger_checkpoints.derived + EXCLUDED.derived",
        )
        .bind(from)
        .bind(through)
        .persistent(false)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO ledger_checkpoint_state (id, through_seq) VALUES (true, $1)
         ON CONFLICT (id) DO UPDATE SET through_seq = EXCLUDED.through_seq, updated_at = now()",
    )
    .bind(through)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn publish(found: Vec<Mismatch>) -> Vec<Mismatch> {
    metrics::gauge!("vault_ledger_mismatches").set(found.len() as f64);
    for mismatch in &found {
        tracing::error!(mismatch = ?mismatch, "ledger mismatch");
    }
    found
}

/// Reconcile every `period` until `stop`.
pub async fn run(pool: PgPool, period: Duration, stop: CancellationToken) {
    let mut reconciler = Reconciler::new(pool);
    let mut ticker = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {
                match reconciler.pass().await {
                    Ok(found) if found.is_empty() => tracing::debug!("ledger reconciled, no mismatch"),
                    Ok(found) => tracing::error!(mismatches = found.len(), "ledger reconciliation found mismatches"),
                    Err(error) => tracing::warn!(error = %error, "ledger reconciliation failed"),
                }
            }
        }
    }
}
