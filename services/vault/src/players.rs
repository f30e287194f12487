//! Player records: locking and unlocking (by staff or by the abuse policy).

use casino_events::{
    Envelope,
    payloads::{PlayerLockChanged, player_types},
    topics,
};
use sqlx::PgPool;
use uuid::Uuid;

use crate::ledger::outbox;

/// Lock a player (no bets, no withdrawals, no new game sessions). Returns false if already locked; errors
/// with `RowNotFound` if the player does not exist.
pub async fn lock(
    pool: &PgPool,
    player_id: Uuid,
    reason: &str,
    by: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let exists: Option<bool> =
        sqlx::query_scalar("SELECT locked FROM players WHERE id = $1 FOR UPDATE")
            .bind(player_id)
            .fetch_optional(&mut *tx)
            .await?;
    match exists {
        None => return Err(sqlx::Error::RowNotFound),
        Some(true) => return Ok(false),
        Some(false) => {}
    }
    sqlx::query("UPDATE players SET locked = TRUE, lock_reason = $2 WHERE id = $1")
        .bind(player_id)
        .bind(reason)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE game_sessions SET revoked_at = now() WHERE player_id = $1 AND revoked_at IS NULL",
    )
    .bind(player_id)
    .execute(&mut *tx)
    .await?;
    let event = Envelope::new(
        player_types::LOCKED,
        "vault",
        Some(player_id),
        PlayerLockChanged {
            reason: reason.to_owned(),
            by: by.to_owned(),
        },
    );
    outbox::enqueue(&mut tx, topics::VAULT_PLAYERS, &event).await?;
    tx.commit().await?;
    metrics::counter!("vault_players_locked_total").increment(1);
    tracing::warn!(player_id = %player_id, reason, by, "player locked");
    Ok(true)
}

/// Unlock a player. Returns false if not locked.
pub async fn unlock(
    pool: &PgPool,
    player_id: Uuid,
    reason: &str,
    by: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let locked: Option<bool> =
        sqlx::query_scalar("SELECT locked FROM players WHERE id = $1 FOR UPDATE")
            .bind(player_id)
            .fetch_optional(&mut *tx)
            .await?;
    match locked {
        None => return Err(sqlx::Error::RowNotFound),
        Some(false) => return Ok(false),
        Some(true) => {}
    }
    sqlx::query("UPDATE players SET locked = FALSE, lock_reason = NULL WHERE id = $1")
        .bind(player_id)
        .execute(&mut *tx)
        .await?;
    let event = Envelope::new(
        player_types::UNLOCKED,
        "vault",
        Some(player_id),
        PlayerLockChanged {
            reason: reason.to_owned(),
            by: by.to_owned(),
        },
    );
    outbox::enqueue(&mut tx, topics::VAULT_PLAYERS, &event).await?;
    tx.commit().await?;
    tracing::info!(player_id = %player_id, reason, by, "player unlocked");
    Ok(true)
}
