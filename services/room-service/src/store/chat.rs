//! Chat messages and mutes in Postgres.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row as _, postgres::PgRow};
use uuid::Uuid;

use crate::domain::chat::ChatMessageView;

const COLUMNS: &str = "id, room, player_id, text, client_msg_id, created_at";

fn from_row(row: &PgRow) -> Result<ChatMessageView, sqlx::Error> {
    Ok(ChatMessageView {
        message_id: row.try_get("id")?,
        room: row.try_get("room")?,
        player_id: row.try_get("player_id")?,
        text: row.try_get("text")?,
        client_msg_id: row.try_get("client_msg_id")?,
        sent_at: row.try_get("created_at")?,
    })
}

/// Serialise one player's sends across every task until the transaction ends (rate limit and
/// duplicate checks are then exact).
pub async fn lock_player(conn: &mut PgConnection, player: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::TEXT, 0))")
        .bind(player)
        .execute(conn)
        .await?;
    Ok(())
}

/// The message `player` already sent with `client_msg_id`, if any.
pub async fn by_client_msg_id(
    conn: &mut PgConnection,
    player: Uuid,
    client_msg_id: &str,
) -> Result<Option<ChatMessageView>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM chat_messages WHERE player_id = $1 AND client_msg_id = $2"
    ))
    .bind(player)
    .bind(client_msg_id)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// Until when `player` is muted, if they are now.
pub async fn muted_until(
    conn: &mut PgConnection,
    player: Uuid,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT muted_until FROM chat_mutes WHERE player_id = $1 AND muted_until > clock_timestamp()",
    )
    .bind(player)
    .fetch_optional(conn)
    .await
}

/// How many messages `player` sent within `window`, and how long until the oldest of them leaves it.
pub async fn recent(
    conn: &mut PgConnection,
    player: Uuid,
    window: Duration,
) -> Result<(i64, Duration), sqlx::Error> {
    let row = sqlx::query(
        "SELECT count(*) AS n,
                COALESCE(EXTRACT(EPOCH FROM (min(created_at) + make_interval(secs => $2) - clock_timestamp())), 0)::FLOAT8 AS wait
         FROM chat_messages
         WHERE player_id = $1 AND created_at > clock_timestamp() - make_interval(secs => $2)",
    )
    .bind(player)
    .bind(window.as_secs_f64())
    .fetch_one(conn)
    .await?;
    let wait: f64 = row.try_get("wait")?;
    Ok((row.try_get("n")?, Duration::from_secs_f64(wait.max(0.0))))
}

/// Insert an accepted message; returns it with its stored time.
pub async fn insert(
    conn: &mut PgConnection,
    message_id: Uuid,
    room: &str,
    player: Uuid,
    text: &str,
    client_msg_id: &str,
) -> Result<ChatMessageView, sqlx::Error> {
    let row = sqlx::query(&format!(
        "INSERT INTO chat_messages (id, room, player_id, text, client_msg_id)
         VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
    ))
    .bind(message_id)
    .bind(room)
    .bind(player)
    .bind(text)
    .bind(client_msg_id)
    .fetch_one(conn)
    .await?;
    from_row(&row)
}

/// Up to `limit` visible messages of `room` older than `before` (all if `None`), oldest first.
pub async fn history(
    pool: &PgPool,
    room: &str,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ChatMessageView>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM chat_messages
         WHERE room = $1 AND deleted_at IS NULL AND ($2::UUID IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $3"
    ))
    .bind(room)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let mut messages = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    messages.reverse();
    Ok(messages)
}

/// Mute `player` until `until` (replacing any current mute).
pub async fn mute(
    pool: &PgPool,
    player: Uuid,
    until: DateTime<Utc>,
    by: Uuid,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO chat_mutes (player_id, muted_until, muted_by, reason) VALUES ($1, $2, $3, $4)
         ON CONFLICT (player_id) DO UPDATE
         SET muted_until = EXCLUDED.muted_until, muted_by = EXCLUDED.muted_by,
             reason = EXCLUDED.reason, created_at = clock_timestamp()",
    )
    .bind(player)
    .bind(until)
    .bind(by)
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(())
}

/// Lift `player`'s mute; whether there was one.
pub async fn unmute(pool: &PgPool, player: Uuid) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM chat_mutes WHERE player_id = $1")
        .bind(player)
        .execute(pool)
        .await?
        .rows_affected()
        > 0)
}

/// What deleting a message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    /// Deleted now; it was in this room.
    Deleted {
        /// Its room.
        room: String,
    },
    /// It was deleted before.
    AlreadyDeleted,
    /// No such message.
    NotFound,
}

/// Soft-delete a message (it leaves every history).
pub async fn soft_delete(
    conn: &mut PgConnection,
    message_id: Uuid,
    by: Uuid,
) -> Result<Deletion, sqlx::Error> {
    let room: Option<String> = sqlx::query_scalar(
        "UPDATE chat_messages SET deleted_at = clock_timestamp(), deleted_by = $2
         WHERE id = $1 AND deleted_at IS NULL RETURNING room",
    )
    .bind(message_id)
    .bind(by)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(room) = room {
        return Ok(Deletion::Deleted { room });
    }
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM chat_messages WHERE id = $1)")
            .bind(message_id)
            .fetch_one(conn)
            .await?;
    Ok(if exists {
        Deletion::AlreadyDeleted
    } else {
        Deletion::NotFound
    })
}
