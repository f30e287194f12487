//! The double-entry ledger (blueprint §4).
//!
//! Every movement of money is one immutable transfer between a player's account and a system account
//! (`house`, `psp:<provider>`, `bonus`, `jackpot`). Inside the caller's transaction, [`Ledger::post`]:
//! 1. moves the player's balance with one guarded statement (a debit only succeeds if the balance covers
//!    it; the CHECK constraint is the last line of defence), opening the account on its first credit;
//! 2. inserts the transfer (its idempotency key is UNIQUE);
//! 3. writes the `vault.transactions.v1` event into the outbox.
//!
//! System accounts are never updated, so no request waits on a shared row; their balances are derived from
//! transfers by the reconciler.

pub mod bets;
pub mod currencies;
pub mod outbox;
pub mod reconciler;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use casino_events::{
    Envelope,
    payloads::{TransferEvent, TransferKind, transaction_types},
    topics,
};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Which way money moves for the player.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Player → system account (bet, withdrawal hold, negative adjustment).
    DebitPlayer,
    /// System account → player (win, rollback, deposit, bonus...).
    CreditPlayer,
}

/// Game context of a game transfer.
#[derive(Debug, Clone, Default)]
pub struct GameRef {
    /// Game provider.
    pub provider: String,
    /// Provider's round id.
    pub round_id: String,
    /// Game id.
    pub game_id: String,
    /// Game category, when the provider sent one.
    pub game_category: Option<String>,
}

/// One transfer to post.
#[derive(Debug, Clone)]
pub struct Posting {
    /// Kind.
    pub kind: TransferKind,
    /// The player.
    pub player_id: Uuid,
    /// Currency code.
    pub currency: String,
    /// Amount in minor units (> 0).
    pub amount: i64,
    /// EUR value at the current rate.
    pub amount_eur: Decimal,
    /// Player side.
    pub direction: Direction,
    /// System owner on the other side (`house`, `psp:sandbox`, `bonus`, `jackpot`).
    pub counterparty: String,
    /// Globally unique, scoped key (`game:<provider>:<tx id>`, `adj:<key>`...).
    pub idempotency_key: String,
    /// Game context.
    pub game: Option<GameRef>,
    /// The transfer this one compensates.
    pub reference_transfer_id: Option<Uuid>,
    /// A win closing its round.
    pub round_closed: bool,
    /// Free-form details (adjustment reason, staff id).
    pub metadata: serde_json::Value,
}

/// A posted transfer.
#[derive(Debug, Clone)]
pub struct Posted {
    /// Transfer id.
    pub transfer_id: Uuid,
    /// The player's balance in this currency afterwards.
    pub balance_after: i64,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Kind (for metrics).
    pub kind: TransferKind,
    /// Currency (for metrics).
    pub currency: String,
    /// EUR value (for metrics).
    pub amount_eur: Decimal,
}

impl Posted {
    /// Count the transfer; call after the transaction committed.
    pub fn record_metrics(&self) {
        use rust_decimal::prelude::ToPrimitive as _;
        metrics::counter!("vault_transfers_total",
            "kind" => self.kind.as_str(), "currency" => self.currency.clone())
        .increment(1);
        // EUR sums are fractional: the `metrics` counters only count integers, so these monotonic
        // totals are exported as gauges that only ever increase (rate() works the same).
        let eur = self.amount_eur.to_f64().unwrap_or(0.0);
        match self.kind {
            TransferKind::Bet => {
                metrics::gauge!("vault_bet_amount_eur_total", "currency" => self.currency.clone())
                    .increment(eur)
            }
            TransferKind::Win => {
                metrics::gauge!("vault_win_amount_eur_total", "currency" => self.currency.clone())
                    .increment(eur)
            }
            _ => {}
        }
    }
}

/// Why a posting did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The player's balance does not cover a debit.
    #[error("insufficient funds: balance {balance}")]
    InsufficientFunds {
        /// The current balance (0 if the account was never opened).
        balance: i64,
    },
    /// The credit would overflow the balance.
    #[error("balance overflow")]
    Overflow,
    /// A transfer with this idempotency key exists already.
    #[error("duplicate idempotency key")]
    Duplicate,
    /// Database failure.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Posts transfers; caches system account ids.
#[derive(Clone)]
pub struct Ledger {
    pool: PgPool,
    system_accounts: Arc<Mutex<HashMap<(String, String), i64>>>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").finish_non_exhaustive()
    }
}

impl Ledger {
    /// A ledger on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            system_accounts: Arc::default(),
        }
    }

    /// The id of system account (`owner`, `currency`), created on first use outside any request
    /// transaction (so a rolled-back request never leaves a cached id that does not exist).
    pub async fn system_account(&self, owner: &str, currency: &str) -> Result<i64, sqlx::Error> {
        let key = (owner.to_owned(), currency.to_owned());
        if let Some(id) = self
            .system_accounts
            .lock()
            .ok()
            .and_then(|m| m.get(&key).copied())
        {
            return Ok(id);
        }
        sqlx::query(
            "INSERT INTO accounts (owner, currency, is_system) VALUES ($1, $2, TRUE)
             ON CONFLICT (owner, currency) DO NOTHING",
        )
        .bind(owner)
        .bind(currency)
        .execute(&self.pool)
        .await?;
        let id: i64 =
            sqlx::query_scalar("SELECT id FROM accounts WHERE owner = $1 AND currency = $2")
                .bind(owner)
                .bind(currency)
                .fetch_one(&self.pool)
                .await?;
        if let Ok(mut map) = self.system_accounts.lock() {
            map.insert(key, id);
        }
        Ok(id)
    }

    /// The player's balance in `currency` (0 when the account was never opened).
    pub async fn balance(
        conn: &mut PgConnection,
        player_id: Uuid,
        currency: &str,
    ) -> Result<i64, sqlx::Error> {
        let balance: Option<i64> = sqlx::query_scalar(
            "SELECT balance FROM accounts WHERE player_id = $1 AND currency = $2",
        )
        .bind(player_id)
        .bind(currency)
        .fetch_optional(conn)
        .await?;
        Ok(balance.unwrap_or(0))
    }

    /// Post `posting` inside the caller's transaction `tx`.
    pub async fn post(&self, tx: &mut PgConnection, posting: Posting) -> Result<Posted, PostError> {
        let system = self
            .system_account(&posting.counterparty, &posting.currency)
            .await?;
        let owner = posting.player_id.to_string();
        let (player_account, balance_after): (i64, i64) = match posting.direction {
            Direction::DebitPlayer => {
                let row: Option<(i64, i64)> = sqlx::query_as(
                    "UPDATE accounts SET balance = balance - $3
                     WHERE owner = $1 AND currency = $2 AND balance >= $3
                     RETURNING id, balance",
                )
                .bind(&owner)
                .bind(&posting.currency)
                .bind(posting.amount)
                .fetch_optional(&mut *tx)
                .await?;
                match row {
                    Some(row) => row,
                    None => {
                        let balance =
                            Self::balance(tx, posting.player_id, &posting.currency).await?;
                        return Err(PostError::InsufficientFunds { balance });
                    }
                }
            }
            Direction::CreditPlayer => {
                let row = sqlx::query_as(
                    "INSERT INTO accounts (owner, player_id, currency, is_system, balance)
                     VALUES ($1, $2, $3, FALSE, $4)
                     ON CONFLICT (owner, currency) DO UPDATE SET balance = accounts.balance + EXCLUDED.balance
                     RETURNING id, balance",
                )
                .bind(&owner)
                .bind(posting.player_id)
                .bind(&posting.currency)
                .bind(posting.amount)
                .fetch_one(&mut *tx)
                .await;
                match row {
                    Ok(row) => row,
                    Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("22003") => {
                        return Err(PostError::Overflow);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let (debit, credit, delta) = match posting.direction {
            Direction::DebitPlayer => (player_account, system, -posting.amount),
            Direction::CreditPlayer => (system, player_account, posting.amount),
        };
        let transfer_id = Uuid::now_v7();
        // One time for the transfer and its event (millisecond precision, as on the wire), so that time
        // windows agree between Vault and its consumers.
        let now = Utc::now();
        let stamp = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        let game = posting.game.clone().unwrap_or_default();
        let game_field = |v: &str| (!v.is_empty()).then(|| v.to_owned());
        let inserted = sqlx::query_scalar::<_, DateTime<Utc>>(
            "INSERT INTO transfers (id, kind, debit_account, credit_account, amount, currency, amount_eur,
                 idempotency_key, player_id, player_delta, balance_after, provider, round_id, game_id,
                 game_category, reference_transfer_id, metadata, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
             RETURNING created_at",
        )
        .bind(transfer_id)
        .bind(posting.kind.as_str())
        .bind(debit)
        .bind(credit)
        .bind(posting.amount)
        .bind(&posting.currency)
        .bind(posting.amount_eur)
        .bind(&posting.idempotency_key)
        .bind(posting.player_id)
        .bind(delta)
        .bind(balance_after)
        .bind(game_field(&game.provider))
        .bind(game_field(&game.round_id))
        .bind(game_field(&game.game_id))
        .bind(&game.game_category)
        .bind(posting.reference_transfer_id)
        .bind(&posting.metadata)
        .bind(stamp)
        .fetch_one(&mut *tx)
        .await;
        let created_at = match inserted {
            Ok(at) => at,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(PostError::Duplicate);
            }
            Err(e) => return Err(e.into()),
        };

        let event_type = match (posting.kind, posting.direction) {
            (TransferKind::Bet, _) => transaction_types::BET_PLACED,
            (TransferKind::Win, _) => transaction_types::BET_WON,
            (TransferKind::Rollback, _) => transaction_types::BET_ROLLED_BACK,
            (_, Direction::CreditPlayer) => transaction_types::WALLET_CREDITED,
            (_, Direction::DebitPlayer) => transaction_types::WALLET_DEBITED,
        };
        let mut event = Envelope::new(
            event_type,
            "vault",
            Some(posting.player_id),
            TransferEvent {
                transfer_id,
                kind: posting.kind,
                currency: posting.currency.clone(),
                amount: posting.amount,
                delta,
                balance_after,
                amount_eur: posting.amount_eur,
                provider: game_field(&game.provider),
                round_id: game_field(&game.round_id),
                game_id: game_field(&game.game_id),
                game_category: game.game_category.clone(),
                reference_transfer_id: posting.reference_transfer_id,
                round_closed: posting.round_closed,
            },
        );
        event.occurred_at = created_at;
        outbox::enqueue(tx, topics::VAULT_TRANSACTIONS, &event).await?;
        tracing::info!(
            transfer_id = %transfer_id,
            player_id = %posting.player_id,
            kind = posting.kind.as_str(),
            currency = %posting.currency,
            amount = posting.amount,
            delta,
            balance_after,
            round_id = game_field(&game.round_id),
            "transfer posted"
        );
        Ok(Posted {
            transfer_id,
            balance_after,
            created_at,
            kind: posting.kind,
            currency: posting.currency,
            amount_eur: posting.amount_eur,
        })
    }
}
