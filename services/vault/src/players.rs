//! Player records: locking and unlocking (by staff or by the abuse policy).

use casino_events::{
    Envelope,
    payloads::{PlayerLockChanged, player_types},
    topics,
};
use sqlx::{PgConnection, PgPool};
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
    if locked_for_update(&mut tx, player_id).await? {
        return Ok(false);
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
    enqueue_lock_change(&mut tx, player_types::LOCKED, player_id, reason, by).await?;
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
    if !locked_for_update(&mut tx, player_id).await? {
        return Ok(false);
    }
    sqlx::query("UPDATE players SET locked = FALSE, lock_reason = NULL WHERE id = $1")
        .bind(player_id)
        .execute(&mut *tx)
        .await?;
    enqueue_lock_change(&mut tx, player_types::UNLOCKED, player_id, reason, by).await?;
    tx.commit().await?;
    tracing::info!(player_id = %player_id, reason, by, "player unlocked");
    Ok(true)
}

/// Whether the player is locked, holding the player's row until `tx` ends so that concurrent lock changes
/// apply one after the other; `RowNotFound` if the player does not exist.
async fn locked_for_update(tx: &mut PgConnection, player_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT locked FROM players WHERE id = $1 FOR UPDATE")
        .bind(player_id)
        .fetch_optional(tx)
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}

/// Queue `player.locked` or `player.unlocked` in `tx`: the event goes out only if the change commits.
async fn enqueue_lock_change(
    tx: &mut PgConnection,
    event_type: &str,
    player_id: Uuid,
    reason: &str,
    by: &str,
) -> Result<(), sqlx::Error> {
    let event = Envelope::new(
        event_type,
        "vault",
        Some(player_id),
        PlayerLockChanged {
            reason: reason.to_owned(),
            by: by.to_owned(),
        },
    );
    outbox::enqueue(tx, topics::VAULT_PLAYERS, &event).await?;
    Ok(())
}
