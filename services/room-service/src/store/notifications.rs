//! Notifications in Postgres, and the `LISTEN/NOTIFY` signal that pushes them to every task.
//!
//! Storing a notification and announcing it on [`CHANNEL`] happen in one transaction, and Postgres
//! delivers a `NOTIFY` only after its transaction committed: a task never pushes a notification that is
//! not stored, and every task hears about every stored one (each keeps a listening connection).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, Row as _, Transaction, postgres::PgRow};
use uuid::Uuid;

use crate::domain::notifications::{NewNotification, Notification};

/// The `LISTEN/NOTIFY` channel.
pub const CHANNEL: &str = "room_notifications";

/// Postgres refuses `NOTIFY` payloads of 8000 bytes or more; bigger notifications are announced by id.
const MAX_NOTIFY_BYTES: usize = 7_900;

/// Most notifications replayed to one reconnecting socket; older ones stay available over REST.
pub const MAX_REPLAY: usize = 10_000;

const REPLAY_PAGE: i64 = 500;

const COLUMNS: &str = "id, type, data, occurred_at, created_at, read_at IS NOT NULL AS read";

/// What travels on [`CHANNEL`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Signal {
    /// A notification was stored.
    Notification {
        /// Whose.
        player_id: Uuid,
        /// The notification.
        notification: Notification,
    },
    /// A notification too big for the payload was stored: fetch it.
    NotificationRef {
        /// Whose.
        player_id: Uuid,
        /// Its id.
        id: i64,
    },
    /// The player's unread count changed (read, read-all).
    UnreadCount {
        /// Whose.
        player_id: Uuid,
        /// The new count.
        count: i64,
    },
}

fn from_row(row: &PgRow) -> Result<Notification, sqlx::Error> {
    Ok(Notification {
        id: row.try_get("id")?,
        kind: row.try_get("type")?,
        data: row.try_get("data")?,
        occurred_at: row.try_get("occurred_at")?,
        created_at: row.try_get("created_at")?,
        read: row.try_get("read")?,
    })
}

async fn notify(tx: &mut Transaction<'_, Postgres>, signal: &Signal) -> Result<(), sqlx::Error> {
    let payload = serde_json::to_string(signal).expect("signals serialise");
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Store `n` unless a notification of the same event exists; announce it. `None` if it already existed.
pub async fn store(
    pool: &PgPool,
    n: &NewNotification,
) -> Result<Option<Notification>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "INSERT INTO notifications (event_id, player_id, type, data, occurred_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (event_id) DO NOTHING
         RETURNING id, created_at",
    )
    .bind(n.event_id)
    .bind(n.player_id)
    .bind(n.kind)
    .bind(&n.data)
    .bind(n.occurred_at)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        tx.rollback().await?;
        return Ok(None);
    };
    let notification = Notification {
        id: row.try_get("id")?,
        kind: n.kind.to_owned(),
        data: n.data.clone(),
        occurred_at: n.occurred_at,
        created_at: row.try_get::<DateTime<Utc>, _>("created_at")?,
        read: false,
    };
    let mut signal = Signal::Notification {
        player_id: n.player_id,
        notification: notification.clone(),
    };
    if serde_json::to_string(&signal).map_or(0, |s| s.len()) > MAX_NOTIFY_BYTES {
        signal = Signal::NotificationRef {
            player_id: n.player_id,
            id: notification.id,
        };
    }
    notify(&mut tx, &signal).await?;
    tx.commit().await?;
    Ok(Some(notification))
}

/// One notification of `player`.
pub async fn get(
    pool: &PgPool,
    player: Uuid,
    id: i64,
) -> Result<Option<Notification>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM notifications WHERE player_id = $1 AND id = $2"
    ))
    .bind(player)
    .bind(id)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// A page of `player`'s notifications, newest first, with ids below `before` when given.
pub async fn list(
    pool: &PgPool,
    player: Uuid,
    unread_only: bool,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Notification>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM notifications
         WHERE player_id = $1 AND ($2::BIGINT IS NULL OR id < $2) AND (NOT $3 OR read_at IS NULL)
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(player)
    .bind(before)
    .bind(unread_only)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_row).collect()
}

async fn announce_unread(
    tx: &mut Transaction<'_, Postgres>,
    player: Uuid,
) -> Result<(), sqlx::Error> {
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE player_id = $1 AND read_at IS NULL",
    )
    .bind(player)
    .fetch_one(&mut **tx)
    .await?;
    notify(
        tx,
        &Signal::UnreadCount {
            player_id: player,
            count,
        },
    )
    .await
}

/// Mark one of `player`'s notifications read (idempotent). `None` if the player has no such notification.
pub async fn mark_read(
    pool: &PgPool,
    player: Uuid,
    id: i64,
) -> Result<Option<Notification>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let updated = sqlx::query(
        "UPDATE notifications SET read_at = clock_timestamp()
         WHERE player_id = $1 AND id = $2 AND read_at IS NULL",
    )
    .bind(player)
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated > 0 {
        announce_unread(&mut tx, player).await?;
    }
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM notifications WHERE player_id = $1 AND id = $2"
    ))
    .bind(player)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    row.as_ref().map(from_row).transpose()
}

/// Mark every notification of `player` read; how many changed.
pub async fn mark_all_read(pool: &PgPool, player: Uuid) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let updated = sqlx::query(
        "UPDATE notifications SET read_at = clock_timestamp() WHERE player_id = $1 AND read_at IS NULL",
    )
    .bind(player)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated > 0 {
        announce_unread(&mut tx, player).await?;
    }
    tx.commit().await?;
    Ok(updated)
}

/// What a (re)connecting socket needs, read from one consistent snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Notifications with ids above the client's last one, oldest first (empty without a last id).
    pub missed: Vec<Notification>,
    /// Unread notifications up to `max_id`.
    pub unread: i64,
    /// The player's newest notification id in the snapshot (0 if none).
    pub max_id: i64,
}

/// Read `player`'s unread count, newest id and, when `after` is given, every notification after it.
pub async fn snapshot(
    pool: &PgPool,
    player: Uuid,
    after: Option<i64>,
) -> Result<Snapshot, sqlx::Error> {
    const COUNTS: &str = "SELECT count(*) FILTER (WHERE read_at IS NULL) AS unread,
                COALESCE(max(id), 0) AS max_id
         FROM notifications WHERE player_id = $1";
    let Some(mut cursor) = after else {
        // Nothing to replay: one statement is one snapshot (one round trip per connect).
        let row = sqlx::query(COUNTS).bind(player).fetch_one(pool).await?;
        return Ok(Snapshot {
            missed: Vec::new(),
            unread: row.try_get("unread")?,
            max_id: row.try_get("max_id")?,
        });
    };
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let row = sqlx::query(COUNTS).bind(player).fetch_one(&mut *tx).await?;
    let mut snapshot = Snapshot {
        missed: Vec::new(),
        unread: row.try_get("unread")?,
        max_id: row.try_get("max_id")?,
    };
    while cursor < snapshot.max_id && snapshot.missed.len() < MAX_REPLAY {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE player_id = $1 AND id > $2
             ORDER BY id LIMIT $3"
        ))
        .bind(player)
        .bind(cursor)
        .bind(REPLAY_PAGE)
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = rows.last() else { break };
        cursor = last.try_get("id")?;
        for row in &rows {
            snapshot.missed.push(from_row(row)?);
        }
        if (rows.len() as i64) < REPLAY_PAGE {
            break;
        }
    }
    if snapshot.missed.len() >= MAX_REPLAY {
        tracing::warn!(player_id = %player, replayed = snapshot.missed.len(), "notification replay truncated");
        snapshot.missed.truncate(MAX_REPLAY);
    }
    tx.commit().await?;
    Ok(snapshot)
}
